"""Every failure is recorded, and leaves nothing billing: through the real state machine, counted at the
emulated provider.

A run that fails after its fine-tuning job (or its model's deployment) exists must not leave it running:
RecordFailure cancels the job, found by what the run recorded or, when the run never recorded it, by asking
the provider for this run's job. A cleanup that itself fails never stops the failure being recorded. And
what no Catch sees — an execution stopped by hand, States.DataLimitExceeded — reaches RecordFailure from
EventBridge's "Execution Status Change" event (which moto does not send: the tests deliver it as AWS
would, through the rule template.yaml declares).
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from synthtune.contracts.error_text import MAX_CAUSE_CHARS
from synthtune.records.layout import RunLayout
from synthtune_cli.clock import VirtualClock
from synthtune_cli.emulator import OpenAIEmulator
from synthtune_cli.offline import OfflineStack
from tests.support import (
    FAST_CONFIG,
    OPENAI_MODELS,
    deliver_to_function,
    execute,
    execution_ended_event,
    jsonl,
    sample_rows,
)

SMALL_SET = sample_rows(per_category=8)
EXECUTION_ENDED = ("RecordFailureFunction", "ExecutionEnded")
STATE_LIMIT_BYTES = 256 * 1024
"""What Step Functions allows a state's input or output: more fails the execution, past every Catch."""


def run_record(stack: OfflineStack, run_id: str) -> dict[str, Any]:
    return {item["sk"]: item for item in stack.records(run_id)}["RUN"]


def posts(emulator: OpenAIEmulator, path_suffix: str) -> int:
    return sum(
        1
        for request in emulator.requests
        if request.method == "POST" and request.path.endswith(path_suffix) and request.status < 300
    )


def test_start_fine_tune_failing_after_the_provider_created_the_job_leaves_no_job_running(
    stack: OfflineStack, emulator: OpenAIEmulator
) -> None:
    # Bedrock creates the job, then StartFineTune's lookup of it fails for good: the run never records
    # the job. Before, it trained on (and billed) after the run had failed.
    emulator.configure(min_training_seconds=100_000)
    lookup = "/model-customization-jobs/synthtune-job-"
    emulator.inject_errors(count=1, status=404, path_prefix=lookup)  # before the create: none yet, as it is
    emulator.inject_errors(count=1, status=400, path_prefix=lookup)  # after the create: fails for good

    execution = execute(stack, SMALL_SET, config=FAST_CONFIG)

    assert execution.status == "FAILED"
    assert execution.records["RUN"]["failed_state"] == "StartFineTune"
    (job,) = emulator.customization_jobs.values()  # one job, created once
    assert job["status"] in {"Stopping", "Stopped"}
    assert posts(emulator, "/stop") == 1
    (step,) = execution.records["RUN"]["cleanup"]
    assert (step["resource"], step["id"], step["outcome"]) == ("fine_tune_job", job["jobArn"], "cancelled")
    assert f"Cleanup: cancelled fine-tuning job {job['jobArn']}" in execution.description["cause"]
    assert execution.records["FINETUNE"]["job_id"] == job["jobArn"]  # the run knows of it now


def test_a_check_that_fails_for_good_cancels_the_recorded_job(
    stack: OfflineStack, emulator: OpenAIEmulator
) -> None:
    emulator.configure(min_training_seconds=100_000)
    emulator.inject_errors(count=1, status=400, path_prefix="/v1/fine_tuning/jobs/")

    execution = execute(stack, SMALL_SET, config={**FAST_CONFIG, **OPENAI_MODELS})

    assert execution.status == "FAILED"
    assert execution.description["error"] == "ModelRequestRejected"
    run = execution.records["RUN"]
    assert (run["status"], run["failed_state"]) == ("FAILED", "CheckFineTune")
    (job,) = emulator.fine_tuning_jobs.values()
    assert job["status"] == "cancelled"
    assert posts(emulator, "/cancel") == 1
    assert [step["outcome"] for step in run["cleanup"]] == ["cancelled"]
    assert run["fine_tune_status"] == "cancelled"
    assert "Cleanup: cancelled fine-tuning job" in run["cause"]


def test_a_batch_mode_run_that_fails_cancels_the_batch_still_answering(
    stack: OfflineStack, emulator: OpenAIEmulator
) -> None:
    # The batch takes hours; CheckBatch's first look at it fails for good. Before, the batch answered on
    # (and billed) after the run had failed.
    emulator.configure(batch_min_seconds=36_000)
    emulator.inject_errors(count=1, status=400, path_prefix="/v1/batches/")

    batch_mode = {**FAST_CONFIG, **OPENAI_MODELS, "generation": {"mode": "batch"}, "budget_usd": 5.0}
    execution = execute(stack, SMALL_SET, config=batch_mode)

    assert execution.status == "FAILED"
    run = execution.records["RUN"]
    assert (run["failed_state"], execution.description["error"]) == ("CheckBatch", "ModelRequestRejected")
    (batch,) = emulator.batches.values()
    assert batch["status"] in {"cancelling", "cancelled"}
    assert posts(emulator, "/cancel") == 1
    (step,) = run["cleanup"]
    assert (step["resource"], step["id"], step["outcome"]) == ("batch", batch["id"], "cancelled")
    assert f"Cleanup: cancelled batch {batch['id']}" in run["cause"]
    # Nothing collected what it answered: its reservation stays whole on the ledger.
    reserved = float(execution.records["BATCH#01#000"]["reserved_usd"])
    assert reserved > 0 and run["committed_usd"] == pytest.approx(reserved)


def test_a_cleanup_that_fails_too_still_records_the_failure_and_says_what_to_stop(
    stack: OfflineStack, emulator: OpenAIEmulator
) -> None:
    # CheckFineTune fails for good, and so does RecordFailure's own look at the job.
    emulator.configure(min_training_seconds=100_000)
    emulator.inject_errors(count=2, status=400, path_prefix="/v1/fine_tuning/jobs/")

    execution = execute(stack, SMALL_SET, config={**FAST_CONFIG, **OPENAI_MODELS})

    assert execution.status == "FAILED"
    assert (
        execution.description["error"] == "ModelRequestRejected"
    )  # the run's own failure, not the cleanup's
    assert execution.entered("FailureNotRecorded") == 0
    run = execution.records["RUN"]
    assert (run["status"], run["failed_state"]) == ("FAILED", "CheckFineTune")
    (job,) = emulator.fine_tuning_jobs.values()
    assert job["status"] in {"validating_files", "queued", "running"}  # still billing: the record says so
    (step,) = run["cleanup"]
    assert (step["id"], step["outcome"]) == (job["id"], "failed")
    assert "ModelRequestRejected" in step["detail"]
    assert f"Cleanup could not stop the fine-tuning job {job['id']}" in run["cause"]
    assert "stop it by hand" in execution.description["cause"]


@pytest.fixture
def held_at_the_first_poll(clock: VirtualClock, monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Hold the execution in its first WaitForFineTune (poll_interval_seconds 777) until released; the
    returned event is set once it is held. Release it with `.released.set()`."""
    held, released = threading.Event(), threading.Event()
    sleep = clock.sleep

    def hold(seconds: float) -> None:
        if seconds == 777 and not held.is_set():
            held.set()
            released.wait(30)
        sleep(seconds)

    monkeypatch.setattr(clock, "sleep", hold)
    held.released = released  # type: ignore[attr-defined]
    return held


@pytest.mark.parametrize(
    ("detail", "status", "error"),
    [
        ({}, "ABORTED", "ExecutionAborted"),
        # What AWS reports for a state output over 256 KB: no Catch sees it, not even States.ALL.
        (
            {
                "status": "FAILED",
                "error": "States.DataLimitExceeded",
                "cause": "The state/task returned a "
                "result with a size exceeding the maximum number of bytes service limit. " + "x" * 300_000,
            },
            "FAILED",
            "States.DataLimitExceeded",
        ),
    ],
)
def test_an_execution_that_ends_outside_every_catch_is_recorded_and_its_job_cancelled(
    stack: OfflineStack,
    emulator: OpenAIEmulator,
    held_at_the_first_poll: Any,
    detail: dict[str, Any],
    status: str,
    error: str,
) -> None:
    emulator.configure(min_training_seconds=100_000)
    stack.upload("problem-sets/test.jsonl", jsonl(SMALL_SET))
    arn = stack.start_execution(
        "stopped-run",
        {"key": "problem-sets/test.jsonl", "config": {**FAST_CONFIG, "poll_interval_seconds": 777}},
    )
    assert held_at_the_first_poll.wait(60), "the run never reached its first poll"
    stack.stop(arn, "stopped by hand")
    held_at_the_first_poll.released.set()
    assert stack.wait(arn)["status"] == "ABORTED"
    (job,) = emulator.customization_jobs.values()
    assert job["status"] == "InProgress"  # the job trains on after the execution stopped...
    assert run_record(stack, "stopped-run")["status"] == "RUNNING"  # ...and nothing recorded the end

    record = deliver_to_function(stack, EXECUTION_ENDED, execution_ended_event(stack, arn, **detail))

    assert (record.get("status"), record.get("error"), record.get("state")) == (status, error, "Execution"), (
        record
    )
    run = run_record(stack, "stopped-run")
    assert (run["status"], run["error"], run["failed_state"]) == (status, error, "Execution")
    assert "during the fine_tune stage" in run["cause"]
    assert len(run["cause"]) <= MAX_CAUSE_CHARS
    (job,) = emulator.customization_jobs.values()
    assert job["status"] in {"Stopping", "Stopped"}
    assert [step["outcome"] for step in run["cleanup"]] == ["cancelled"]
    whole = (stack.download(RunLayout("stopped-run").failure_cause) or b"").decode()
    assert whole.startswith(f"The execution ended {status} during the fine_tune stage")
    assert len(whole) > len(detail.get("cause", ""))  # nothing of it cut


def test_the_end_of_an_execution_whose_failure_was_recorded_changes_nothing(
    stack: OfflineStack, emulator: OpenAIEmulator
) -> None:
    execution = execute(stack, [{"question": "What is 1+1?", "anwser": "2"}])
    assert execution.status == "FAILED"

    record = deliver_to_function(stack, EXECUTION_ENDED, execution_ended_event(stack, execution.arn))

    assert record["already_recorded"] is True
    assert (record["state"], record["error"]) == ("Prepare", "InvalidProblemSet")
    run = run_record(stack, "test-run")
    assert run == execution.records["RUN"]


def test_a_huge_cause_still_ends_with_the_run_failed_and_the_cause_readable(
    stack: OfflineStack, emulator: OpenAIEmulator
) -> None:
    # 25 rows echoing 40,000-character values: the error used to be a megabyte, the state past 256 KB,
    # the execution failed with States.DataLimitExceeded and the run record stayed RUNNING forever.
    huge = "v" * 40_000
    rows = [{"question": f"What is {i}?", huge: "misspelt field", "answer": str(i)} for i in range(25)]

    execution = execute(stack, rows)

    assert execution.status == "FAILED"
    assert execution.description["error"] == "InvalidProblemSet"
    run = execution.records["RUN"]
    assert (run["status"], run["failed_state"], run["error"]) == ("FAILED", "Prepare", "InvalidProblemSet")
    cause = run["cause"]
    assert len(cause) <= MAX_CAUSE_CHARS
    assert cause.startswith("s3://synthtune-local-data/problem-sets/test.jsonl: 25 errors")
    assert "line 1: unknown field 'vvvv" in cause
    assert execution.description["cause"] == cause
    assert (stack.download(run["cause_key"]) or b"").decode().startswith(cause.splitlines()[0])
    # No state came near Step Functions' limit, so in AWS no States.DataLimitExceeded either.
    sizes = [
        len(json.dumps(event[details]).encode())
        for event in execution.history
        for details in ("stateEnteredEventDetails", "stateExitedEventDetails")
        if details in event
    ]
    assert max(sizes) < 32 * 1024
    assert emulator.requests == []


def test_an_unreachable_endpoint_fails_the_run_in_prepare_on_its_first_try(
    clock: VirtualClock, closed_port: int
) -> None:
    endpoint = f"http://127.0.0.1:{closed_port}/v1"
    started = clock.now()
    with OfflineStack(openai_api_key="sk-test", parameters={"OpenAIBaseUrl": endpoint}, clock=clock) as stack:
        execution = execute(stack, SMALL_SET, config={**FAST_CONFIG, **OPENAI_MODELS})

    assert execution.status == "FAILED"
    assert execution.description["error"] == "EndpointUnreachable"
    assert f"cannot reach GET {endpoint}/models/" in execution.description["cause"]
    assert "connection refused" in execution.description["cause"]
    # Tried once, not retried: Step Functions' retries of a passing outage would wait 30 s and more.
    assert execution.lambda_failures() == ["EndpointUnreachable"]
    assert clock.now() - started < 30
