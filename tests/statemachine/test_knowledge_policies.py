"""Teaching only what the student can learn, through the real state machine: the base student is probed
on every answer worth training (never a held-out problem) before Assemble, and each
`dataset.knowledge_policy` does to the `unknown` examples exactly what it says — counted in the card and
the drop log, with abstentions capped — while the benchmark reports hallucination per contestant."""

from __future__ import annotations

import json
from typing import Any

import pytest

from synthtune.prompts import ABSTAINING_SYSTEM_PROMPT, ABSTENTION_ANSWER, SOLVER_SYSTEM_PROMPT
from synthtune.records.layout import RunLayout
from synthtune.stages.assemble.card import DatasetCard
from synthtune.stages.generate import GeneratedAnswer
from synthtune_cli.emulator import OpenAIEmulator
from synthtune_cli.offline import OfflineStack
from tests.support import FAST_CONFIG, OPENAI_MODELS, execute, sample_rows

RUN_ID = "knowledge-run"
LAYOUT = RunLayout(RUN_ID)


def jsonl_rows(stack: OfflineStack, key: str) -> list[dict[str, Any]]:
    body = stack.download(key)
    assert body is not None, key
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def answers(stack: OfflineStack) -> list[GeneratedAnswer]:
    """Every shard's answers, as Generate wrote them."""
    shards = json.loads(stack.download(LAYOUT.manifest) or b"[]")
    return [
        GeneratedAnswer.model_validate(row)
        for shard in shards
        for row in jsonl_rows(stack, LAYOUT.shard_output(shard["index"]))
    ]


def run(
    stack: OfflineStack, policy: str, **dataset: Any
) -> tuple[Any, DatasetCard, dict[str, dict[str, Any]]]:
    config = {
        **OPENAI_MODELS,
        **FAST_CONFIG,
        "judge_model": None,
        "dataset": {"knowledge_policy": policy, **dataset},
    }
    execution = execute(stack, sample_rows(), run_id=RUN_ID, config=config)
    assert execution.status == "SUCCEEDED", execution.description.get("cause")
    card = DatasetCard.model_validate(json.loads(stack.download(LAYOUT.dataset_card) or b"{}"))
    dropped = {row["problem_id"]: row for row in jsonl_rows(stack, LAYOUT.dropped)}
    return execution, card, dropped


@pytest.mark.parametrize("policy", ["keep_all", "drop_unknown", "abstain_unknown"])
def test_each_policy_does_what_it_says_to_the_examples_the_student_does_not_know(
    stack: OfflineStack, emulator: OpenAIEmulator, policy: str
) -> None:
    _, card, dropped = run(stack, policy, max_abstention_share=0.2)
    generated = answers(stack)
    holdout = {row["id"] for row in jsonl_rows(stack, LAYOUT.holdout)}

    probed = [answer for answer in generated if answer.knowledge is not None]
    assert probed and not {answer.problem_id for answer in generated} & holdout  # never a held-out problem
    assert all(answer.status in ("verified", "unverified") for answer in probed)
    unknown = {answer.problem_id for answer in probed if answer.knowledge.category == "unknown"}  # type: ignore[union-attr]
    assert unknown, "the emulated nano student knows only some of the sample set"

    assert card.knowledge is not None and card.accounted
    assert card.knowledge.probed == len(probed)
    assert card.knowledge.by_knowledge["unknown"] == len(unknown)
    student_unknown = {pid for pid, row in dropped.items() if row["reason"] == "student_unknown"}
    train = jsonl_rows(stack, LAYOUT.train)
    abstentions = [
        row for row in train if row["messages"][-1]["content"].endswith(f"Answer: {ABSTENTION_ANSWER}")
    ]
    if policy == "keep_all":
        assert not student_unknown and not abstentions
        assert all(row["messages"][0]["content"] == SOLVER_SYSTEM_PROMPT for row in train)
    elif policy == "drop_unknown":
        assert student_unknown == unknown - {
            pid for pid, row in dropped.items() if row["reason"] != "student_unknown"
        }
        assert student_unknown and not abstentions
        assert all(dropped[pid]["detail"].startswith("unknown: 0 of 2 greedy") for pid in student_unknown)
    else:
        assert abstentions and len(abstentions) <= 0.2 * len(train)
        assert len(abstentions) + len(student_unknown) <= len(unknown)
        assert all(row["messages"][0]["content"] == ABSTAINING_SYSTEM_PROMPT for row in train)

    benchmark = json.loads(stack.download(LAYOUT.benchmark) or b"{}")
    for score in benchmark["scores"]:
        assert "hallucination_rate" in score and "abstention_rate" in score


def test_a_probe_costs_its_own_line_and_every_probe_request_is_billed_once(
    stack: OfflineStack, emulator: OpenAIEmulator
) -> None:
    run(stack, "drop_unknown")
    student = OPENAI_MODELS["student_model"]
    generated = answers(stack)
    probed = [answer for answer in generated if answer.knowledge is not None]
    # Each probe: 2 greedy requests and one request for the 4 samples (OpenAI takes n).
    probe_calls = [call for answer in probed for call in answer.calls if call.purpose == "probe"]
    assert sum(call.usage.requests for call in probe_calls) == 3 * len(probed)
    billed_student = [request for request in emulator.billed if request.model.startswith(student)]
    holdout = len(jsonl_rows(stack, LAYOUT.holdout))
    # The base student is also asked the held-out problems (its benchmark, then its held-out probe).
    assert len(billed_student) >= 3 * len(probed) + holdout
