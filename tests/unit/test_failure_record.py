"""RecordFailure's record: bounded on the run, whole in S3, and written whatever else fails."""

from __future__ import annotations

import boto3

from synthtune.contracts.error_text import MAX_CAUSE_CHARS
from synthtune.contracts.workflow import FailureInput, StateFailure
from synthtune.providers.registry import ProviderRegistry
from synthtune.records.artifacts import ArtifactStore
from synthtune.records.layout import RunLayout
from synthtune.records.runs import RunStore
from synthtune.stages.failure import record_failure
from tests.unit.conftest import REGION

HUGE = "line 1: " + "v" * 300_000 + " sk-proj-Ab12Cd34Ef56Gh78Ij90"


def failure(cause: str) -> FailureInput:
    return FailureInput(
        run_id="run-1", failure={"Assemble": StateFailure(Error="InvalidDataset", Cause=cause)}
    )


def test_a_huge_cause_is_bounded_on_the_record_and_whole_in_s3(runs: RunStore, data: ArtifactStore) -> None:
    record = record_failure(failure(HUGE), runs=runs, data=data, providers=ProviderRegistry({}))

    run = runs.get("run-1") or {}
    assert (run["status"], run["failed_state"], run["error"]) == ("FAILED", "Assemble", "InvalidDataset")
    assert run["cause"] == record.cause
    assert len(record.cause) <= MAX_CAUSE_CHARS
    assert record.cause.startswith("line 1: vvv")
    assert f"the full text is at s3://{data.bucket}/{RunLayout('run-1').failure_cause}" in record.cause
    whole = data.read_text(RunLayout("run-1").failure_cause)
    assert len(whole) > 300_000
    assert "sk-[redacted]" in whole
    assert "Ab12Cd34" not in whole + record.cause


def test_the_failure_is_recorded_even_when_its_whole_cause_cannot_be_written(runs: RunStore) -> None:
    nowhere = ArtifactStore("no-such-bucket", boto3.client("s3", region_name=REGION))

    record = record_failure(failure(HUGE), runs=runs, data=nowhere, providers=ProviderRegistry({}))

    run = runs.get("run-1") or {}
    assert (run["status"], run["error"]) == ("FAILED", "InvalidDataset")
    assert record.cause_key is None
    assert "the full text is not kept: writing s3://no-such-bucket/" in record.cause
    assert len(run["cause"]) <= MAX_CAUSE_CHARS


def test_a_run_that_cannot_be_cleaned_up_says_so_and_is_recorded(runs: RunStore, data: ArtifactStore) -> None:
    # Past Assemble, with a record no RunConfig can be read from: the cleanup cannot ask any provider.
    runs.update(
        "run-1",
        status="RUNNING",
        stage="fine_tune",
        config={"no_such_field": 1},
        problem_set={"bucket": "b", "key": "k.jsonl"},
    )

    record = record_failure(failure("the job failed"), runs=runs, data=data, providers=ProviderRegistry({}))

    assert (runs.get("run-1") or {})["status"] == "FAILED"
    assert record.cause.startswith("the job failed\nCleanup was not possible: the run record is unreadable")
    assert "check the provider for this run's job" in record.cause
