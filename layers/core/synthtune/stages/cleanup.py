"""What a failed run would leave billing, found and stopped: its batches, its fine-tuning job and its model's
deployment.

A run creates three things that cost money for as long as they run: the teacher's Batch API batches (in
batch mode), the fine-tuning job, and on Bedrock the deployment or Provisioned Throughput that serves the
fine-tuned model. The happy path ends both; a
failure can leave either behind — CheckFineTune failing for good while the job trains on, StartFineTune
timing out after the provider created the job but before the run recorded it, a deployment whose release
failed, an execution stopped by hand. RecordFailure calls `clean_up` once the failure is recorded: it
reads what the run recorded (its BATCH, FINETUNE and SERVING items), asks the provider by the run id for
anything it created but did not record (`find_job`, `find`, a batch's metadata), cancels or deletes what is
still running, and says what it did and what it could not. A cleanup that fails never hides the failure:
each step's error is reported, never raised.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from synthtune.contracts.config import RunConfig
from synthtune.contracts.error_text import safe_text
from synthtune.contracts.workflow import (
    FINAL_FINE_TUNE_STATUSES,
    CleanupStep,
    FineTuneCheck,
    FineTuneState,
    RunRef,
    S3Location,
    ServingTask,
)
from synthtune.providers.ports import BatchInfo
from synthtune.providers.registry import ProviderRegistry
from synthtune.records.items import BATCH_PREFIX, SERVING_SK
from synthtune.records.runs import RunStore
from synthtune.stages.batch import batch_metadata
from synthtune.stages.finetune import cancel_fine_tune, fine_tune_attempt, job_status, recorded_job
from synthtune.stages.serve import release_serving

MAX_STEP_DETAIL_CHARS = 500


class Cleanup(BaseModel):
    """What `clean_up` did. `checked`: the run's record was read and every provider that could hold
    something of the run was asked (or nothing could exist yet); False when the record is missing, has no
    configuration yet, or could not be read (`problem` says why)."""

    model_config = ConfigDict(frozen=True)

    checked: bool
    steps: list[CleanupStep] = []
    problem: str = ""

    @property
    def failed(self) -> list[CleanupStep]:
        return [step for step in self.steps if step.outcome == "failed"]


BEFORE_FINE_TUNING = frozenset({"prepare", "generate"})
"""Stages of a run (its record's `stage`) in which it cannot have created a job or a deployment yet."""
BEFORE_GENERATION = frozenset({"prepare"})
"""... nor a batch."""


def clean_up(run_id: str, *, runs: RunStore, providers: ProviderRegistry, bucket: str) -> Cleanup:
    """Cancel the run's batches and fine-tuning job and delete what serves its model, where they still run."""
    try:
        record = runs.get(run_id) or {}
        if record.get("stage") in BEFORE_GENERATION:
            return Cleanup(checked=True)  # nothing to ask any provider about
        run = _run(run_id, record, bucket)
    except (ValidationError, KeyError, TypeError) as error:
        return Cleanup(checked=False, problem=f"the run record is unreadable ({_described(error)})")
    except Exception as error:  # DynamoDB itself failed: nothing is known, so nothing is cleaned
        return Cleanup(checked=False, problem=f"reading the run record failed ({_described(error)})")
    if run is None:
        return Cleanup(checked=False)
    batch_steps = _cancel_batches(run, runs, providers)
    if record.get("stage") in BEFORE_FINE_TUNING:
        return Cleanup(checked=True, steps=batch_steps)
    job, job_step = _cancel_job(run, runs, providers)
    steps = [
        *batch_steps,
        *(step for step in (job_step, _release_serving(run, job, runs, providers)) if step is not None),
    ]
    return Cleanup(checked=True, steps=steps)


def _run(run_id: str, record: dict[str, Any], bucket: str) -> RunRef | None:
    if not record.get("config") or not record.get("problem_set"):
        return None
    return RunRef(
        run_id=run_id,
        bucket=bucket,
        problem_set=S3Location.model_validate(record["problem_set"]),
        config=RunConfig.model_validate(record["config"]),
    )


def _cancel_batches(run: RunRef, runs: RunStore, providers: ProviderRegistry) -> list[CleanupStep]:
    """Cancel every batch of the run that has not ended (its answered requests stay billed, and its
    reservation on the ledger stays whole: nothing collects what it answered)."""
    steps: list[CleanupStep] = []
    try:
        items = runs.items(run.run_id, BATCH_PREFIX)
        if not items:
            return steps  # not in batch mode, or nothing submitted: no provider is asked
        batches = providers.for_model(run.config.teacher_model).batches()
    except Exception as error:
        return [
            CleanupStep(
                resource="batch", id="(this run's batches)", outcome="failed", detail=_described(error)
            )
        ]
    for item in items:
        batch_id = str(item.get("batch_id") or "")
        try:
            if batch_id:
                info: BatchInfo | None = batches.status(batch_id)
            else:  # sent without learning whether it was created: found by its metadata, if it was
                info = batches.find(batch_metadata(run.run_id, int(item["round"]), int(item["part"])))
            if info is None or info.final or info.status == "cancelling":
                continue
            cancelled = batches.cancel(info.id)
        except Exception as error:
            name = batch_id or f"(round {item.get('round')}, part {item.get('part')})"
            steps.append(CleanupStep(resource="batch", id=name, outcome="failed", detail=_described(error)))
            continue
        if cancelled.status in ("cancelling", "cancelled"):
            steps.append(CleanupStep(resource="batch", id=cancelled.id, outcome="cancelled"))
    return steps


def _cancel_job(
    run: RunRef, runs: RunStore, providers: ProviderRegistry
) -> tuple[FineTuneState | None, CleanupStep | None]:
    """The run's job as it is now, and what was done to stop it (None: nothing needed doing)."""
    attempt = fine_tune_attempt(runs, run.run_id)
    recorded = recorded_job(runs, run.run_id)
    backend = recorded.backend if recorded is not None else run.config.student_provider
    if recorded is not None and recorded.attempt < attempt:
        recorded = None  # a resumed run's next job, not recorded yet: the provider is asked for it below
    try:
        fine_tuning = providers.provider(backend).fine_tuning()
        # Not recorded: StartFineTune may have failed after the provider created the job.
        current: FineTuneState | None
        if recorded is not None:
            current = job_status(fine_tuning, recorded)
        else:
            current = fine_tuning.find_job(run.run_id, attempt)
        if current is None or current.status in {*FINAL_FINE_TUNE_STATUSES, "cancelling"}:
            return current or recorded, None
        cancelled = cancel_fine_tune(
            FineTuneCheck(run=run, finetune=current), fine_tuning=fine_tuning, runs=runs
        )
    except Exception as error:
        job_id = recorded.job_id if recorded is not None else "(this run's job, not found)"
        return recorded, CleanupStep(
            resource="fine_tune_job", id=job_id, outcome="failed", detail=_described(error)
        )
    if cancelled.status not in ("cancelled", "cancelling"):
        return cancelled, None  # it ended by itself before the cancel reached it
    return cancelled, CleanupStep(resource="fine_tune_job", id=cancelled.job_id, outcome="cancelled")


def _release_serving(
    run: RunRef, job: FineTuneState | None, runs: RunStore, providers: ProviderRegistry
) -> CleanupStep | None:
    """Delete the deployment (or Provisioned Throughput) serving the model, found by the run's name for it."""
    if job is None or job.status != "succeeded" or job.fine_tuned_model is None:
        return None  # no model, so nothing serves it
    recorded = runs.get(run.run_id, SERVING_SK) or {}
    if recorded.get("status") == "released" or recorded.get("kept"):
        return None
    try:
        serving = providers.provider(job.backend).serving()
        found = serving.find(run.run_id)
        if found is None or found.kind == "none":
            return None
        released = release_serving(
            ServingTask(run=run, finetune=job, serving=found), serving=serving, runs=runs
        )
    except Exception as error:
        name = recorded.get("resource") or recorded.get("name") or "(this run's deployment)"
        kind = recorded.get("kind") if recorded.get("kind") in _SERVING_KINDS else "serving"
        return CleanupStep(resource=kind, id=str(name), outcome="failed", detail=_described(error))
    return CleanupStep(
        resource=released.kind,
        id=released.resource or released.name or "",
        outcome="kept" if released.kept else "deleted",
        detail="keep_deployment is set" if released.kept else "",
    )


_SERVING_KINDS = frozenset({"on_demand_deployment", "provisioned_throughput"})

_BY_HAND = {
    ("batch", "openai"): "on platform.openai.com: Batches, batch {id}, Cancel",
    ("fine_tune_job", "bedrock"): "aws bedrock stop-model-customization-job --job-identifier {id}",
    ("fine_tune_job", "openai"): "on platform.openai.com: Fine-tuning, job {id}, Cancel",
    ("on_demand_deployment", "bedrock"): (
        "aws bedrock delete-custom-model-deployment --custom-model-deployment-identifier {id}"
    ),
    ("provisioned_throughput", "bedrock"): (
        "aws bedrock delete-provisioned-model-throughput --provisioned-model-id {id}"
    ),
    ("serving", "bedrock"): "aws bedrock list-custom-model-deployments / delete-custom-model-deployment",
}
_NAMES = {
    "batch": "batch",
    "fine_tune_job": "fine-tuning job",
    "on_demand_deployment": "custom model deployment",
    "provisioned_throughput": "Provisioned Throughput",
    "serving": "deployment of the fine-tuned model",
}


def describe_cleanup(cleanup: Cleanup, provider: str | None) -> str:
    """The cleanup, for the failure's cause: what was stopped, what was kept, what to stop by hand."""
    lines = []
    done = [step for step in cleanup.steps if step.outcome != "failed"]
    if done:
        said = "; ".join(
            f"{step.outcome} {_NAMES[step.resource]} {step.id}" + (f" ({step.detail})" if step.detail else "")
            for step in done
        )
        lines.append(f"Cleanup: {said}.")
    for step in cleanup.failed:
        advice = _BY_HAND.get((step.resource, provider or ""), "")
        how = f" ({advice.format(id=step.id)})" if advice else ""
        lines.append(
            f"Cleanup could not stop the {_NAMES[step.resource]} {step.id} ({step.detail}): it may still be "
            f"running and billing; stop it by hand{how}."
        )
    if cleanup.problem:
        lines.append(f"Cleanup was not possible: {cleanup.problem}; check the provider for this run's job.")
    return "\n".join(lines)


def _described(error: BaseException) -> str:
    return safe_text(f"{type(error).__name__}: {error}", MAX_STEP_DETAIL_CHARS)
