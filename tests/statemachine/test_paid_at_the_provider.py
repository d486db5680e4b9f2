"""Money and work are never lost, through the real state machine, counted at the emulator.

Unlike the other state-machine tests, the stack here keeps the SDKs' retries at their deployed defaults
(no OPENAI_MAX_RETRIES override; boto3's standard mode): what the promises must survive is the transport
as deployed. Each test checks at the provider (the emulator's own records) that a run created exactly one
of each thing and that its ledger and report count at least what the provider billed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from synthtune.contracts.usage import Usage
from synthtune.money.usage import inference_cost_usd
from synthtune.records.layout import RunLayout
from synthtune_cli.clock import VirtualClock
from synthtune_cli.emulator import KnowledgeItem, OpenAIEmulator
from synthtune_cli.emulator.state import BilledRequest
from synthtune_cli.offline import OfflineStack
from tests.support import FAST_CONFIG, Execution, execute, sample_rows

SMALL_SET = sample_rows(per_category=8)  # 24 problems: 19 generated (3 shards of 8), 5 held out
OPENAI_RUN = {
    **FAST_CONFIG,
    "teacher_model": "gpt-4.1-2025-04-14",
    "student_model": "gpt-4.1-mini-2025-04-14",  # its fine-tunes have a price: every request is priced
    "judge_model": "gpt-4.1-mini-2025-04-14",
}


@contextmanager
def deployed_stack(emulator: OpenAIEmulator, clock: VirtualClock, region: str) -> Iterator[OfflineStack]:
    """The offline stack with every SDK retry setting as deployed."""
    with (
        emulator.serve() as server,
        OfflineStack(
            openai_api_key="sk-test",
            parameters={"OpenAIBaseUrl": server.base_url},
            clock=clock,
            region=region,
            extra_environment=server.bedrock_environment(),
        ) as stack,
    ):
        yield stack


@pytest.fixture
def deployed(emulator: OpenAIEmulator, clock: VirtualClock) -> Iterator[OfflineStack]:
    with deployed_stack(emulator, clock, "us-east-1") as stack:
        yield stack


def billed_usd(billed: list[BilledRequest]) -> float:
    total = 0.0
    for request in billed:
        model = request.model if request.api == "openai" else f"bedrock/{request.model}"
        usage = Usage(requests=1, input_tokens=request.input_tokens, output_tokens=request.output_tokens)
        cost = inference_cost_usd(model, usage)
        assert cost is not None, f"{model} has no price: the test cannot compare"
        total += cost
    return total


def summary(stack: OfflineStack, execution: Execution) -> dict[str, Any]:
    body = stack.download(RunLayout(execution.run_id).summary)
    assert body is not None
    return dict(json.loads(body))


def posts(emulator: OpenAIEmulator, path: str) -> int:
    return sum(1 for served in emulator.requests if served.method == "POST" and served.path == path)


@pytest.mark.parametrize("budget", [None, 5.0])
def test_a_run_losing_15_percent_of_replies_succeeds_and_counts_all_the_provider_billed(
    deployed: OfflineStack, emulator: OpenAIEmulator, budget: float | None
) -> None:
    # Every POST the run makes — teacher, judge and benchmark requests, uploads, the job's creation — is
    # carried out by the emulator, and 15% of their replies are lost on the way back.
    emulator.lose_fraction(0.15, seed=11, path_prefix="/v1/")

    execution = execute(deployed, SMALL_SET, config={**OPENAI_RUN, "budget_usd": budget})

    assert execution.status == "SUCCEEDED", execution.description.get("cause")
    assert len(emulator.fine_tuning_jobs) == 1
    billed = emulator.billed
    lost = [request for request in billed if request.lost]
    assert lost, "the knob lost no model reply: the test proves nothing"
    report = summary(deployed, execution)
    answered, paid_but_lost = report["answered"], report["paid_but_lost"]
    # Each lost reply was asked again; the report counts the answers and, at their worst case, the
    # requests whose replies never came: at least every request the provider billed, at least its cost.
    assert answered["requests"] == len(billed) - len(lost)
    assert paid_but_lost["requests"] >= len(lost)
    assert answered["usd"] == pytest.approx(billed_usd([r for r in billed if not r.lost]))
    assert answered["usd"] + paid_but_lost["usd"] >= billed_usd(billed)
    assert report["cost_usd"] >= billed_usd(billed)
    report_md = (deployed.download(RunLayout(execution.run_id).report) or b"").decode()
    assert f"Paid but lost: {paid_but_lost['requests']:,} requests" in report_md
    if budget is not None:
        run = execution.records["RUN"]
        assert run["spent_usd"] >= billed_usd(billed)
        assert run["paid_requests"] >= len(billed)
        assert run["spent_usd"] <= budget


def test_batch_mode_with_lost_create_replies_makes_one_file_one_batch_and_one_job(
    deployed: OfflineStack, emulator: OpenAIEmulator
) -> None:
    # The first upload (the batch's request file), the batch's creation and the job's creation are each
    # carried out and their replies lost: each state is retried by Step Functions, through its find.
    emulator.lose_responses(1, status=502, path_prefix="/v1/files")
    emulator.lose_responses(1, status=502, path_prefix="/v1/batches")
    emulator.lose_responses(1, status=502, path_prefix="/v1/fine_tuning/jobs")

    execution = execute(
        deployed, SMALL_SET, config={**OPENAI_RUN, "judge_model": None, "generation": {"mode": "batch"}}
    )

    assert execution.status == "SUCCEEDED", execution.description.get("cause")
    assert len(emulator.batches) == 1
    assert len(emulator.fine_tuning_jobs) == 1
    uploads = [
        stored.purpose for stored in emulator.files.values() if stored.purpose in ("batch", "fine-tune")
    ]
    assert sorted(uploads) == ["batch", "fine-tune", "fine-tune"]  # requests; train and validation
    assert posts(emulator, "/v1/batches") == 1
    assert posts(emulator, "/v1/fine_tuning/jobs") == 1
    assert execution.lambda_failures().count("ModelUnavailable") == 3


def test_bedrock_creates_whose_replies_are_lost_are_made_once(
    deployed: OfflineStack, emulator: OpenAIEmulator
) -> None:
    # boto3 retries these itself (standard mode): the run's clientRequestToken makes the retry harmless.
    emulator.lose_responses(1, status=502, path_prefix="/model-customization-jobs")
    emulator.lose_responses(1, status=502, path_prefix="/model-customization/custom-model-deployments")

    execution = execute(deployed, SMALL_SET, config={**FAST_CONFIG, "judge_model": None})

    assert execution.status == "SUCCEEDED", execution.description.get("cause")
    assert len(emulator.customization_jobs) == 1
    assert posts(emulator, "/model-customization-jobs") == 2
    assert posts(emulator, "/model-customization/custom-model-deployments") == 2
    assert execution.records["SERVING"]["status"] == "released"
    assert emulator.custom_model_deployments == {}  # the one deployment, deleted after the benchmark
    created = [
        r for r in emulator.requests if r.path.startswith("/model-customization/custom-model-deployments")
    ]
    assert [r.method for r in created].count("DELETE") == 1


def test_a_provisioned_throughput_whose_reply_is_lost_is_bought_once(clock: VirtualClock) -> None:
    # In us-west-2, where Bedrock fine-tunes Llama 3.1, whose fine-tunes answer only through
    # Provisioned Throughput: billed by the hour, so a second one would cost a second hour.
    emulator = OpenAIEmulator(clock=clock, region="us-west-2")
    emulator.add_knowledge(
        KnowledgeItem(question=row["question"], answer=row["answer"], category=row["category"])
        for row in sample_rows()
    )
    emulator.lose_responses(1, status=502, path_prefix="/provisioned-model-throughput")
    config = {
        **FAST_CONFIG,
        "judge_model": None,
        "student_model": "bedrock/meta.llama3-1-8b-instruct-v1:0",
        "allow_provisioned_throughput": True,
    }

    with deployed_stack(emulator, clock, "us-west-2") as stack:
        execution = execute(stack, SMALL_SET, config=config)

    assert execution.status == "SUCCEEDED", execution.description.get("cause")
    assert posts(emulator, "/provisioned-model-throughput") == 2  # boto3's retry, with the same token
    assert execution.records["SERVING"]["billed_hours"] == 1
    deleted = [r for r in emulator.requests if r.method == "DELETE" and r.path.startswith("/provisioned")]
    assert len(deleted) == 1
    assert emulator.provisioned_throughputs == {}  # the one made, deleted: none left billing
