"""Serving the fine-tuned student for the benchmark on Amazon Bedrock, through the real state machine.

A custom model answers only through a deployment (or Provisioned Throughput, billed by the hour). The
promise these tests keep, counted at the emulated provider: one is created per run, it is active before the
benchmark asks anything, and it is deleted afterwards — after a success and after every failure once it may
exist — unless keep_deployment says to leave it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from synthtune.contracts.problems import parse_problem_set
from synthtune.records.layout import RunLayout
from synthtune_cli.clock import VirtualClock
from synthtune_cli.emulator import KnowledgeItem, OpenAIEmulator
from synthtune_cli.offline import OfflineStack
from tests.support import FAST_CONFIG, SAMPLE_PROBLEM_SET, execute, sample_rows

SMALL_SET = sample_rows(per_category=8)
DEPLOYMENTS = "/model-customization/custom-model-deployments"


def requests(emulator: OpenAIEmulator, method: str, prefix: str) -> int:
    return sum(
        1
        for request in emulator.requests
        if request.method == method and request.path.startswith(prefix) and request.status < 300
    )


def test_a_benchmark_failure_still_deletes_the_deployment(
    stack: OfflineStack, emulator: OpenAIEmulator
) -> None:
    # The fine-tuned model (asked through its deployment's ARN) refuses every request: not retried.
    emulator.inject_errors(count=1000, status=400, path_prefix="/model/arn:")

    execution = execute(stack, SMALL_SET, config=FAST_CONFIG)

    assert execution.status == "FAILED"
    assert execution.records["RUN"]["failed_state"] == "Benchmark"
    assert execution.description["error"] == "ModelRequestRejected"
    assert requests(emulator, "POST", DEPLOYMENTS) == 1
    assert requests(emulator, "DELETE", DEPLOYMENTS) == 1
    assert emulator.custom_model_deployments == {}
    assert execution.entered("ReleaseAfterFailure") == 1


def test_a_deployment_that_fails_is_deleted_and_fails_the_run(
    stack: OfflineStack, emulator: OpenAIEmulator
) -> None:
    emulator.configure(deployment_failure="Simulated capacity shortage")

    execution = execute(stack, SMALL_SET, config=FAST_CONFIG)

    assert execution.status == "FAILED"
    assert execution.description["error"] == "ServingFailed"
    assert "Simulated capacity shortage" in execution.description["cause"]
    assert execution.entered("Benchmark") == 0
    assert emulator.custom_model_deployments == {}


def test_a_deployment_that_never_becomes_active_is_given_up_and_deleted(
    stack: OfflineStack, emulator: OpenAIEmulator
) -> None:
    emulator.configure(deployment_seconds=100_000)

    execution = execute(
        stack,
        SMALL_SET,
        config={**FAST_CONFIG, "poll_interval_seconds": 120, "deployment_max_wait_seconds": 600},
    )

    assert execution.status == "FAILED"
    assert execution.description["error"] == "ServingTimedOut"
    assert "was not active within 600 seconds" in execution.description["cause"]
    assert execution.entered("CheckServing") == 5
    assert execution.entered("Benchmark") == 0
    assert emulator.custom_model_deployments == {}


def test_the_poll_loop_waits_for_the_deployment(stack: OfflineStack, emulator: OpenAIEmulator) -> None:
    emulator.configure(deployment_seconds=500)

    execution = execute(stack, SMALL_SET, config={**FAST_CONFIG, "poll_interval_seconds": 60})

    assert execution.status == "SUCCEEDED", execution.description.get("cause")
    assert execution.entered("CheckServing") >= 8
    # Nothing asked the deployment before it was active: ModelNotReady would have been a 429.
    assert [request.status for request in emulator.requests].count(429) == 0


def test_keep_deployment_leaves_it_active_and_says_so(stack: OfflineStack, emulator: OpenAIEmulator) -> None:
    execution = execute(stack, SMALL_SET, config={**FAST_CONFIG, "keep_deployment": True})

    assert execution.status == "SUCCEEDED", execution.description.get("cause")
    (deployment,) = emulator.custom_model_deployments.values()
    assert deployment["status"] == "Active"
    assert execution.records["SERVING"]["kept"] is True
    report = (stack.download(RunLayout("test-run").report) or b"").decode()
    assert "kept, because keep_deployment is set" in report


def test_a_student_needing_provisioned_throughput_is_refused_unless_allowed(
    stack: OfflineStack, emulator: OpenAIEmulator
) -> None:
    execution = execute(
        stack, SMALL_SET, config={**FAST_CONFIG, "student_model": "bedrock/us.amazon.nova-2-lite-v1:0"}
    )

    assert execution.status == "FAILED"
    assert execution.description["error"] == "InvalidConfig"
    assert "allow_provisioned_throughput" in execution.description["cause"]
    assert not emulator.requests  # refused before anything was spent


@pytest.fixture
def oregon(clock: VirtualClock) -> Iterator[tuple[OfflineStack, OpenAIEmulator]]:
    """The stack and the emulator in us-west-2, where Bedrock fine-tunes Llama 3.1."""
    emulator = OpenAIEmulator(clock=clock, region="us-west-2")
    problems = parse_problem_set(SAMPLE_PROBLEM_SET.read_bytes().splitlines(), "sample", "jsonl")
    emulator.add_knowledge(
        KnowledgeItem(question=p.question, answer=p.answer, category=p.category) for p in problems
    )
    with (
        emulator.serve() as server,
        OfflineStack(
            openai_api_key="sk-test",
            parameters={"OpenAIBaseUrl": server.base_url},
            clock=clock,
            region="us-west-2",
            extra_environment={"OPENAI_MAX_RETRIES": "0", **server.bedrock_environment()},
        ) as stack,
    ):
        yield stack, emulator


def test_provisioned_throughput_when_allowed_is_priced_by_the_hour_and_deleted(
    oregon: tuple[OfflineStack, OpenAIEmulator],
) -> None:
    stack, emulator = oregon
    config = {
        **FAST_CONFIG,
        "student_model": "bedrock/meta.llama3-1-8b-instruct-v1:0",
        "allow_provisioned_throughput": True,
        "budget_usd": 100.0,
    }

    execution = execute(stack, SMALL_SET, config=config)

    assert execution.status == "SUCCEEDED", execution.description.get("cause")
    assert execution.records["RUN"]["estimate"]["serving_usd"] == pytest.approx(24.0)
    serving = execution.records["SERVING"]
    assert (serving["kind"], serving["status"], serving["billed_hours"]) == (
        "provisioned_throughput",
        "released",
        1,
    )
    assert serving["cost_usd"] == pytest.approx(24.0)
    assert emulator.provisioned_throughputs == {}
    assert requests(emulator, "DELETE", "/provisioned-model-throughput") == 1
    # The hour was reserved against the budget when it was created and settled when it was deleted.
    assert execution.records["RUN"]["spent_usd"] >= 24.0
