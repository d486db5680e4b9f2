"""StartFineTune, CheckFineTune and CancelFineTune: the fine-tuning job's life, recorded on the run.

Starting is idempotent: Step Functions may run StartFineTune more than once (a retry after a timeout,
a Lambda that died after the provider accepted the job). Before creating a job we look for one this run
already has — first in DynamoDB, then at the provider (OpenAI: the run id in the job's metadata; Bedrock:
the job name derived from the run id) — so a retry picks the job up instead of paying for a second one.
The create itself is sent once (no SDK retry, or, on Bedrock, retried with the same clientRequestToken):
a create whose reply was lost is retried only through this find.

The job's cost is reserved against the budget before it is created. A create that certainly failed
releases it; one whose outcome is unknown keeps it, for the job may exist: the retry either finds the
job, whose billed tokens settle the reservation when it ends, or finds none (the provider's own word
that nothing was created) and starts the job on the same reservation.

The job reads the dataset where Assemble wrote it, in the student's provider's format. When it succeeds,
its loss per step is saved as the run's training_metrics.csv and the final and best losses recorded.
"""

from __future__ import annotations

import csv
import io

from synthtune.contracts.errors import InvalidConfig
from synthtune.contracts.workflow import (
    FINAL_FINE_TUNE_STATUSES,
    FineTuneCheck,
    FineTuneInput,
    FineTuneJobStatus,
    FineTuneState,
    RunRef,
    S3Location,
)
from synthtune.engine.budgeted import outcome_unknown
from synthtune.money.estimate import epochs_for, fine_tuning_usd
from synthtune.money.ledger import CostLedger
from synthtune.money.usage import training_cost_usd
from synthtune.providers.ports import FineTuneRequest, FineTuningPort, TrainingStep
from synthtune.records.artifacts import ArtifactStore
from synthtune.records.items import FINETUNE_SK, ended_job_sk
from synthtune.records.layout import RunLayout
from synthtune.records.runs import RunStore

RESERVED_TRAINING = "fine_tune_reserved_usd"
FINE_TUNE_ATTEMPT = "fine_tune_attempt"
ENDED_WITHOUT_MODEL: frozenset[FineTuneJobStatus] = frozenset({"failed", "cancelled", "cancelling"})
"""A job that will not give the run a model: a resumed run trains its next job instead."""
METRICS_COLUMNS = ("step", "epoch", "training_loss", "validation_loss")


def _record(runs: RunStore, run: RunRef, state: FineTuneState) -> None:
    runs.put(run.run_id, FINETUNE_SK, state)
    runs.update(run.run_id, fine_tune_job_id=state.job_id, fine_tune_status=state.status)
    if state.status in FINAL_FINE_TUNE_STATUSES:
        _settle_training(run, state, runs)


def _carried(state: FineTuneState, previous: FineTuneState) -> FineTuneState:
    """What the provider does not say again on every status read, carried over from the run's state."""
    update: dict[str, object] = {"attempt": previous.attempt} if state.attempt != previous.attempt else {}
    update |= {
        field: getattr(previous, field)
        for field in (
            "epochs",
            "train_tokens_per_epoch",
            "metrics_key",
            "training_loss",
            "best_training_loss",
            "validation_loss",
            "best_validation_loss",
        )
        if getattr(state, field) is None and getattr(previous, field) is not None
    }
    return state.model_copy(update=update) if update else state


def job_status(fine_tuning: FineTuningPort, recorded: FineTuneState) -> FineTuneState:
    """The recorded job as the provider sees it now, with what only the run knows of it carried over."""
    return _carried(fine_tuning.status(recorded), recorded)


def fine_tune_attempt(runs: RunStore, run_id: str) -> int:
    """Which of the run's jobs is its current one (0: the first), as its record says."""
    return int((runs.get(run_id) or {}).get(FINE_TUNE_ATTEMPT, 0))


def recorded_job(runs: RunStore, run_id: str) -> FineTuneState | None:
    """The run's job as the run last recorded it."""
    item = runs.get(run_id, FINETUNE_SK)
    if item is None:
        return None
    return FineTuneState.model_validate(
        {name: value for name, value in item.items() if name in FineTuneState.model_fields}
    )


def _existing_job(
    task: FineTuneInput, fine_tuning: FineTuningPort, runs: RunStore
) -> tuple[FineTuneState | None, int]:
    """The run's current job, if it has one yet, and which attempt it is (or is to be)."""
    run_id = task.run.run_id
    attempt = fine_tune_attempt(runs, run_id)
    previous = recorded_job(runs, run_id)
    if previous is not None and previous.backend == fine_tuning.provider and previous.attempt == attempt:
        current = job_status(fine_tuning, previous)
        if current.status not in ENDED_WITHOUT_MODEL:
            return current, attempt
        # The job ended with no model — it failed, or the run's failure cancelled it so that it stopped
        # billing — and this is the run resumed: it trains again, as its next job, under names of its own.
        # The ended job is recorded first and its reservation settled at what it billed (one still
        # stopping, at its worst case: the dataset's tokens x epochs), so the next job reserves its own.
        _record(runs, task.run, current)
        _settle_training(task.run, current, runs)
        runs.put(run_id, ended_job_sk(current.attempt), current.model_dump())  # for the report's costs
        attempt += 1
        runs.update(run_id, fine_tune_attempt=attempt)
    return fine_tuning.find_job(run_id, attempt), attempt


def _reserve_training(task: FineTuneInput, ledger: CostLedger, epochs: int) -> float:
    """Reserve the job's cost against the budget before it exists (its billed tokens settle it)."""
    if ledger.budget_usd is None:
        return 0.0
    config, dataset = task.run.config, task.dataset
    cost = fine_tuning_usd(config.student_model, dataset.train_tokens, epochs)
    if cost is None:
        raise InvalidConfig(f"{config.student_model} has no training price, so budget_usd cannot be enforced")
    return ledger.reserve(
        cost, f"fine-tuning {config.student_model} on {dataset.train_tokens} tokens x {epochs} epochs"
    )


def _settle_training(run: RunRef, state: FineTuneState, runs: RunStore) -> None:
    """Replace the job's reservation by what its billed tokens cost, once it has ended."""
    ledger = CostLedger(runs, run.run_id, run.config.budget_usd)
    if ledger.budget_usd is None:
        return
    record = runs.get(run.run_id) or {}
    reserved = float(record.get(RESERVED_TRAINING, 0.0))
    if reserved:
        runs.update(run.run_id, fine_tune_reserved_usd=0.0)
        billed = state.billed_tokens
        # Billed tokens unknown (a job found by the run's id, never recorded): its worst case is what was
        # reserved for it.
        cost = reserved if billed is None else training_cost_usd(state.base_model, billed)
        ledger.settle(reserved, reserved if cost is None else cost)


def start_fine_tune(task: FineTuneInput, *, fine_tuning: FineTuningPort, runs: RunStore) -> FineTuneState:
    run, dataset = task.run, task.dataset
    config = run.config
    epochs = epochs_for(config.fine_tune, dataset.train_examples, config.student_model)
    state, attempt = _existing_job(task, fine_tuning, runs)
    if state is None:
        ledger = CostLedger(runs, run.run_id, config.budget_usd)
        # An earlier attempt whose create had an unknown outcome left its reservation: no job was made
        # (the find says so), so this attempt creates it on that reservation.
        reserved = float((runs.get(run.run_id) or {}).get(RESERVED_TRAINING, 0.0))
        if not reserved:
            reserved = _reserve_training(task, ledger, epochs)
            runs.update(run.run_id, fine_tune_reserved_usd=reserved)
        request = FineTuneRequest(
            run_id=run.run_id,
            attempt=attempt,
            base_model=config.student_model,
            train=S3Location(bucket=run.bucket, key=dataset.train_key),
            validation=S3Location(bucket=run.bucket, key=dataset.validation_key)
            if dataset.validation_key is not None
            else None,
            output=S3Location(bucket=run.bucket, key=RunLayout(run.run_id).finetune_output),
            hyperparameters=config.fine_tune,
            suffix=config.fine_tune_suffix,
            train_tokens=dataset.train_tokens,
        )
        try:
            state = fine_tuning.start(request)
        except BaseException as error:
            if not outcome_unknown(error):
                # No job, nothing to pay: release the reservation so a retry reserves afresh.
                runs.update(run.run_id, fine_tune_reserved_usd=0.0)
                ledger.settle(reserved, 0.0)
            raise
    state = state.model_copy(
        update={
            "epochs": state.epochs or epochs,
            "train_tokens_per_epoch": dataset.train_tokens,
            "attempt": attempt,
        }
    )
    _record(runs, run, state)
    return state


def check_fine_tune(
    task: FineTuneCheck, *, fine_tuning: FineTuningPort, runs: RunStore, data: ArtifactStore
) -> FineTuneState:
    state = job_status(fine_tuning, task.finetune)
    if state.status == "succeeded" and state.metrics_key is None:
        state = _save_training_metrics(task.run, state, fine_tuning.training_metrics(state), data)
    _record(runs, task.run, state)
    return state


def cancel_fine_tune(task: FineTuneCheck, *, fine_tuning: FineTuningPort, runs: RunStore) -> FineTuneState:
    state = _carried(fine_tuning.cancel(task.finetune), task.finetune)
    _record(runs, task.run, state)
    return state


def _save_training_metrics(
    run: RunRef, state: FineTuneState, steps: list[TrainingStep], data: ArtifactStore
) -> FineTuneState:
    """training_metrics.csv in the run, and the last and best losses (training and validation) on the job's
    state, where the summary and the report read them."""
    if not steps:
        return state
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(METRICS_COLUMNS)
    for step in steps:
        writer.writerow(
            ["" if getattr(step, column) is None else getattr(step, column) for column in METRICS_COLUMNS]
        )
    key = RunLayout(run.run_id).training_metrics
    data.write_text(key, buffer.getvalue(), "text/csv; charset=utf-8")
    training = [step.training_loss for step in steps if step.training_loss is not None]
    validation = [step.validation_loss for step in steps if step.validation_loss is not None]
    return state.model_copy(
        update={
            "metrics_key": key,
            "training_loss": training[-1] if training else state.training_loss,
            "best_training_loss": min(training) if training else None,
            "validation_loss": validation[-1] if validation else None,
            "best_validation_loss": min(validation) if validation else None,
        }
    )
