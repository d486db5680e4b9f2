"""The run's DynamoDB items (records.items): keys as existing runs hold them, shapes as the stages write
and read them, and spelled nowhere else."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from synthtune.contracts.usage import CallCost, Usage
from synthtune.money.ledger import CostLedger, SpendRecord, spend_records
from synthtune.records import items
from synthtune.records.items import (
    BatchItem,
    ProblemSetClaim,
    ShardDone,
    ShardFailed,
    SpendItem,
    batch_round_prefix,
    batch_sk,
    problem_set_pk,
    problem_set_version_sk,
    run_pk,
    score_sk,
    shard_sk,
    spend_sk,
)
from synthtune.records.runs import RunStore
from synthtune_cli.template import PROJECT_ROOT
from tests.support import code_strings

RUN = "run-items"
MODEL = "openai/gpt-4.1-mini-2025-04-14"


def test_keys_are_spelled_as_existing_runs_hold_them() -> None:
    # Changing one orphans every item already written under it (and every journalled local run).
    assert run_pk("r-1") == "RUN#r-1"
    assert (items.RUN_SK, items.DATASET_SK, items.FINETUNE_SK, items.SERVING_SK) == (
        "RUN",
        "DATASET",
        "FINETUNE",
        "SERVING",
    )
    assert shard_sk(7) == "SHARD#00007"
    assert batch_sk(2, 13) == "BATCH#02#013"
    assert score_sk("fine_tuned") == "SCORE#fine_tuned"
    assert spend_sk("discarded", "generation", "solve", MODEL) == f"SPEND#discarded#generation#solve#{MODEL}"
    assert problem_set_pk("s3://b/k.jsonl") == "PROBLEM_SET#s3://b/k.jsonl"
    assert problem_set_version_sk("abc", None) == "VERSION#-#abc"
    assert problem_set_version_sk("abc", "v9") == "VERSION#v9#abc"


def test_a_query_prefix_finds_exactly_its_items() -> None:
    assert shard_sk(0).startswith(items.SHARD_PREFIX)
    assert batch_sk(1, 0).startswith(batch_round_prefix(1))
    assert not batch_sk(10, 0).startswith(batch_round_prefix(1))
    assert score_sk("base").startswith(items.SCORE_PREFIX)
    assert spend_sk("paid_but_lost", "g", "judge", MODEL).startswith(items.SPEND_PREFIX)


def test_shard_items_are_read_back_as_written(runs: RunStore) -> None:
    call = CallCost(purpose="solve", model=MODEL, usage=Usage(requests=2, output_tokens=9), usd=0.25)
    done = ShardDone(
        index=0,
        problems=3,
        answered=3,
        verified=2,
        rejected=1,
        failed=0,
        checkpointed_at_start=1,
        cost_usd=0.25,
        usage={MODEL: Usage(requests=2, output_tokens=9)},
        calls=[call],
    )
    failed = ShardFailed(index=1, error="RateLimited", message="429", checkpointed=2, calls=[call])
    runs.put(RUN, shard_sk(0), done)
    runs.put(RUN, shard_sk(1), failed)
    runs.put(RUN, score_sk("base"), {"contestant": "base"})  # not a shard: not read as one

    assert runs.shards(RUN) == [done, failed]
    assert runs.get(RUN, shard_sk(0))["status"] == "done"  # type: ignore[index]


def test_batch_items_are_read_by_round(runs: RunStore) -> None:
    first = BatchItem(round=1, part=0, requests=5, reserved_usd=0.5)
    runs.put(RUN, first.sk, first)
    runs.update(RUN, first.sk, batch_id="batch_1")
    runs.put(RUN, batch_sk(10, 0), BatchItem(round=10, part=0, requests=1))

    assert runs.batches(RUN, 1) == [first.model_copy(update={"batch_id": "batch_1"})]
    assert [item.round for item in runs.batches(RUN, 10)] == [10]


def test_spend_items_add_up_and_read_back(runs: RunStore) -> None:
    ledger = CostLedger(runs, RUN, budget_usd=None)
    spend = SpendRecord(
        kind="paid_but_lost",
        spender="generation",
        purpose="solve",
        model=MODEL,
        usage=Usage(requests=1, input_tokens=10, output_tokens=100),
        usd=0.5,
    )
    ledger.record(spend)
    ledger.record(spend)
    (stored,) = runs.items(RUN, items.SPEND_PREFIX)
    assert SpendItem.from_item(stored).sk == stored["sk"]
    (read,) = spend_records(runs.items(RUN))
    assert read == spend.model_copy(update={"usage": spend.usage + spend.usage, "usd": 1.0})

    unpriced = spend.model_copy(update={"model": "openai/unpriced", "usd": None})
    ledger.record(unpriced)
    assert {record.model: record.usd for record in spend_records(runs.items(RUN))}["openai/unpriced"] is None


def test_a_problem_set_claim_names_the_run_that_holds_it(runs: RunStore) -> None:
    pk, sk = problem_set_pk("s3://b/k.jsonl"), problem_set_version_sk("etag-1", None)
    assert runs.claim(pk, sk, ProblemSetClaim(run_id="first", etag="etag-1")) == "first"
    assert runs.claim(pk, sk, ProblemSetClaim(run_id="second", etag="etag-1")) == "first"
    assert runs.claim(pk, sk, ProblemSetClaim(run_id="second", etag="etag-1"), replacing="first") == "second"


def test_an_item_read_ignores_the_keys_and_what_its_shape_does_not_know() -> None:
    stored = {"pk": run_pk(RUN), "sk": batch_sk(1, 0), "run_id": RUN, "updated_at": "now", "round": 1}
    item = BatchItem.from_item({**stored, "part": 0, "requests": 2, "added_later": True})
    assert item == BatchItem(round=1, part=0, requests=2)
    with pytest.raises(ValueError, match="extra"):
        BatchItem(round=1, part=0, requests=2, batch=1)  # type: ignore[call-arg]


KEY_SPELLINGS = ("RUN#", "SHARD#", "BATCH#", "SCORE#", "SPEND#", "PROBLEM_SET#", "VERSION#")
SORT_KEYS = {"RUN", "DATASET", "FINETUNE", "SERVING"}
SOURCES = [
    PROJECT_ROOT / "layers" / "core" / "synthtune",
    PROJECT_ROOT / "functions",
    PROJECT_ROOT / "cli" / "synthtune_cli",
    PROJECT_ROOT / "benchmarks",
]
ITEMS_MODULE = Path(items.__file__).resolve()
MODULES = [
    path
    for root in SOURCES
    for path in sorted(root.rglob("*.py"))
    if "__pycache__" not in path.parts and path.resolve() != ITEMS_MODULE
]


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(PROJECT_ROOT)))
def test_keys_are_spelled_only_in_records_items(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    spelt = {value for value in code_strings(tree) if value.startswith(KEY_SPELLINGS) or value in SORT_KEYS}
    assert not spelt, f"spells the keys {sorted(spelt)}: use records.items' constants and key builders"
