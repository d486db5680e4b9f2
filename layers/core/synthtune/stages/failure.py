"""RecordFailure: every Catch ends here; the run record says which state failed, with what error, why."""

from __future__ import annotations

import json

from synthtune.contracts.workflow import FailureInput, FailureRecord
from synthtune.records.runs import RunStore, now_iso
from synthtune.stages.generate import failed_shards


def failure_message(cause: str) -> str:
    """The human part of a Catch's Cause: a Lambda error's errorMessage, or the cause as it is."""
    try:
        payload = json.loads(cause)
    except (json.JSONDecodeError, TypeError):
        return cause
    if isinstance(payload, dict) and isinstance(payload.get("errorMessage"), str):
        return str(payload["errorMessage"])
    return cause


CLEANUP_STATE = "ReleaseAfterFailure"
"""The state that deletes the deployment after a failure; its own failure is told with the run's."""


def record_failure(task: FailureInput, *, runs: RunStore) -> FailureRecord:
    # Each Catch writes failure.<its state name>: the state that failed, and perhaps the cleanup after it.
    failures = dict(task.failure)
    cleanup = failures.pop(CLEANUP_STATE, None) if len(failures) > 1 else None
    state, failure = next(iter(failures.items()))
    cause = failure_message(failure.Cause)
    if state == "Generate":
        # The Map reports only that too many iterations failed; the shards recorded why.
        cause = "\n".join(part for part in (cause, failed_shards(runs, task.run_id)) if part)
    if cleanup is not None:
        cause += (
            f"\nThen deleting the fine-tuned model's deployment failed too ({cleanup.Error}: "
            f"{failure_message(cleanup.Cause)}): delete it by hand (aws bedrock "
            "list-custom-model-deployments / delete-custom-model-deployment) so it stops costing."
        )
    record = FailureRecord(run_id=task.run_id, state=state, error=failure.Error, cause=cause)
    runs.update(
        task.run_id,
        status="FAILED",
        failed_state=record.state,
        error=record.error,
        cause=record.cause,
        finished_at=now_iso(),
    )
    return record
