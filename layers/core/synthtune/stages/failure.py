"""RecordFailure: every way a run can fail ends here, recorded on the run with nothing left billing.

Two roads lead here. Every Catch in the state machine ends at the RecordFailure state, with the failed
state's `{Error, Cause}` (`FailureInput`). And EventBridge sends the end of every execution that ended
FAILED, TIMED_OUT or ABORTED (`ExecutionStatusChange`), which covers what no Catch can: an execution
stopped by hand, one out of time, States.DataLimitExceeded (not caught even by `States.ALL`). That event
also follows every failure the first road already recorded; the run record then says so and it changes
nothing (`RunStore.end` writes a final status only over RUNNING).

The order matters. The failure is recorded first — status, failed state, error, the cause bounded to a few
KB with the whole of it in S3 under the run's prefix — so nothing after can lose it. Then `clean_up`
cancels the run's fine-tuning job and deletes what serves its model if they still run, and the record's
`cleanup` and cause say what was stopped and what could not be. Every cause is redacted on the way in.
"""

from __future__ import annotations

import json
from typing import Any

from synthtune.contracts.error_text import MAX_CAUSE_CHARS, redact, safe_text
from synthtune.contracts.errors import ErrorName
from synthtune.contracts.models import provider_of
from synthtune.contracts.workflow import (
    ExecutionStatusChange,
    FailureInput,
    FailureRecord,
)
from synthtune.providers.registry import ProviderRegistry
from synthtune.records.artifacts import ArtifactStore
from synthtune.records.items import now_iso
from synthtune.records.layout import RunLayout
from synthtune.records.runs import RunStore
from synthtune.stages.cleanup import Cleanup, clean_up, describe_cleanup
from synthtune.stages.generate import failed_shards

CLEANUP_STATE = "ReleaseAfterFailure"
"""The state that deletes the deployment after a failure; its own failure is told with the run's."""
EXECUTION_STATE = "Execution"
"""The failed state of a failure no Catch saw: the execution as a whole."""

UNCAUGHT = {
    "FAILED": (
        ErrorName.ExecutionFailed,
        "The execution failed outside every Catch (the event said no more).",
    ),
    "TIMED_OUT": ("States.Timeout", "The execution ran out of time."),
    "ABORTED": (ErrorName.ExecutionAborted, "The execution was stopped before it finished (StopExecution)."),
}
"""The error (unless the event names one) and cause of an execution that ended outside every Catch."""


def failure_message(cause: str) -> str:
    """The human part of a Catch's Cause: a Lambda error's errorMessage, or the cause as it is."""
    try:
        payload = json.loads(cause)
    except (json.JSONDecodeError, TypeError):
        return cause
    if isinstance(payload, dict) and isinstance(payload.get("errorMessage"), str):
        return str(payload["errorMessage"])
    return cause


def record_failure(
    task: FailureInput | ExecutionStatusChange,
    *,
    runs: RunStore,
    data: ArtifactStore,
    providers: ProviderRegistry,
) -> FailureRecord:
    if isinstance(task, ExecutionStatusChange):
        return _record_execution_end(task, runs=runs, data=data, providers=providers)
    # Each Catch writes failure.<its state name>: the state that failed, and perhaps the release after it.
    failures = dict(task.failure)
    release = failures.pop(CLEANUP_STATE, None) if len(failures) > 1 else None
    state, failure = next(iter(failures.items()))
    cause = failure_message(failure.Cause)
    if state == "Generate":
        # The Map reports only that too many iterations failed; the shards recorded why.
        cause = "\n".join(part for part in (cause, failed_shards(runs, task.run_id)) if part)
    if release is not None:
        cause += (
            f"\nThen deleting the fine-tuned model's deployment failed too ({release.Error}: "
            f"{failure_message(release.Cause)})."
        )
    failed = FailureRecord(run_id=task.run_id, state=state, error=failure.Error, cause=cause)
    written = _write(failed, runs, data)
    return _clean_up_after(
        failed, written, runs=runs, data=data, providers=providers, release_failed=bool(release)
    )


def _record_execution_end(
    event: ExecutionStatusChange, *, runs: RunStore, data: ArtifactStore, providers: ProviderRegistry
) -> FailureRecord:
    detail = event.detail
    run_id = detail.name
    error, default_cause = UNCAUGHT[detail.status]
    stage = (runs.get(run_id) or {}).get("stage")
    during = f" during the {stage} stage" if stage else ""
    failed = FailureRecord(
        run_id=run_id,
        status=detail.status,
        state=EXECUTION_STATE,
        error=detail.error or error,
        cause=f"The execution ended {detail.status}{during}, outside every Catch: "
        f"{detail.cause or default_cause}",
    )
    # Only over RUNNING: the Catch's RecordFailure (or Report) may have ended the run already.
    attributes = _attributes(failed.model_copy(update={"cause": safe_text(failed.cause, MAX_CAUSE_CHARS)}))
    if not runs.end(run_id, str(attributes.pop("status")), **attributes):
        existing = runs.get(run_id) or {}
        return FailureRecord(
            run_id=run_id,
            status=existing["status"] if existing.get("status") in UNCAUGHT else "FAILED",
            state=str(existing.get("failed_state") or EXECUTION_STATE),
            error=str(existing.get("error") or failed.error),
            cause=str(existing.get("cause") or ""),
            cause_key=existing.get("cause_key"),
            already_recorded=True,
        )
    written = _write(failed, runs, data)
    return _clean_up_after(failed, written, runs=runs, data=data, providers=providers, release_failed=False)


def _clean_up_after(
    failed: FailureRecord,
    written: FailureRecord,
    *,
    runs: RunStore,
    data: ArtifactStore,
    providers: ProviderRegistry,
    release_failed: bool,
) -> FailureRecord:
    """Clean up after the recorded failure, then record what the cleanup did beside it."""
    try:
        cleanup = clean_up(failed.run_id, runs=runs, providers=providers, bucket=data.bucket)
    except Exception as error:  # the failure is recorded already: a cleanup's own bug must not hide it
        cleanup = Cleanup(checked=False, problem=safe_text(f"{type(error).__name__}: {error}", 500))
    told = describe_cleanup(cleanup, _student_provider(runs, failed.run_id))
    if release_failed and not _serving_handled(cleanup):
        told += (
            "\nThe deployment may still exist: delete it by hand (aws bedrock list-custom-model-deployments "
            "/ delete-custom-model-deployment) so it stops costing."
        )
    told = told.strip()
    if not told and not cleanup.steps:
        return written
    cause = f"{failed.cause}\n{told}" if told else failed.cause
    return _write(failed.model_copy(update={"cause": cause, "cleanup": cleanup.steps}), runs, data)


def _serving_handled(cleanup: Cleanup) -> bool:
    """Whether the cleanup looked for the deployment and did not fail to delete it."""
    return cleanup.checked and not any(step.resource != "fine_tune_job" for step in cleanup.failed)


def _student_provider(runs: RunStore, run_id: str) -> str | None:
    config = (runs.get(run_id) or {}).get("config") or {}
    model = config.get("student_model")
    return provider_of(model) if isinstance(model, str) else None


def _write(failed: FailureRecord, runs: RunStore, data: ArtifactStore) -> FailureRecord:
    """Record the failure: its whole cause (redacted) in S3 under the run's prefix, a bounded cause on the
    run record and in what the execution fails with. S3 failing loses the whole text, never the record."""
    whole = redact(failed.cause)
    key = RunLayout(failed.run_id).failure_cause
    try:
        data.write_text(key, whole)
    except Exception as error:  # recorded all the same: the record matters more than the whole text
        rest, cause_key = f"not kept: writing {data.uri(key)} failed ({type(error).__name__})", None
    else:
        rest, cause_key = f"at {data.uri(key)}", key
    written = failed.model_copy(
        update={"cause": safe_text(whole, MAX_CAUSE_CHARS, rest=rest), "cause_key": cause_key}
    )
    runs.update(failed.run_id, **_attributes(written))
    return written


def _attributes(record: FailureRecord) -> dict[str, Any]:
    """The run record's fields for the failure (`record.cause` bounded already)."""
    return {
        "status": record.status,
        "failed_state": record.state,
        "error": record.error,
        "cause": record.cause,
        "cause_key": record.cause_key,
        "cleanup": [step.model_dump() for step in record.cleanup],
        "finished_at": now_iso(),
    }
