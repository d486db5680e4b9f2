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
from synthtune.records.layout import RunLayout
from synthtune.records.runs import FINETUNE_SK, RunStore

RESERVED_TRAINING = "fine_tune_reserved_usd"
METRICS_COLUMNS = ("step", "epoch", "training_loss", "validation_loss")


def _record(runs: RunStore, run: RunRef, state: FineTuneState) -> None:
    runs.put(run.run_id, FINETUNE_SK, state.model_dump())
    runs.update(run.run_id, fine_tune_job_id=state.job_id, fine_tune_status=state.status)
    if state.status in FINAL_FINE_TUNE_STATUSES:
        _settle_training(run, state, runs)


def _carried(state: FineTuneState, previous: FineTuneState) -> FineTuneState:
    """What the provider does not say again on every status read, carried over from the run's state."""
    update = {
        field: getattr(previous, field)
        for field in (
            "epochs",
            "train_tokens_per_epoch",
            "metrics_key",
            "training_loss",
            "best_training_loss",
        )
        if getattr(state, field) is None and getattr(previous, field) is not None
    }
    return state.model_copy(update=update) if update else state


def _existing_job(task: FineTuneInput, fine_tuning: FineTuningPort, runs: RunStore) -> FineTuneState | None:
    recorded = runs.get(task.run.run_id, FINETUNE_SK)
    if recorded is not None and recorded.get("backend") == fine_tuning.provider:
        previous = FineTuneState.model_validate(
            {name: value for name, value in recorded.items() if name in FineTuneState.model_fields}
        )
        return _carried(fine_tuning.status(previous), previous)
    return fine_tuning.find_job(task.run.run_id)


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
        ledger.settle(reserved, training_cost_usd(state.base_model, state.billed_tokens or 0) or 0.0)


def start_fine_tune(task: FineTuneInput, *, fine_tuning: FineTuningPort, runs: RunStore) -> FineTuneState:
    run, dataset = task.run, task.dataset
    config = run.config
    epochs = epochs_for(config.fine_tune, dataset.train_examples, config.student_model)
    state = _existing_job(task, fine_tuning, runs)
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
        update={"epochs": state.epochs or epochs, "train_tokens_per_epoch": dataset.train_tokens}
    )
    _record(runs, run, state)
    return state


def check_fine_tune(
    task: FineTuneCheck, *, fine_tuning: FineTuningPort, runs: RunStore, data: ArtifactStore
) -> FineTuneState:
    state = _carried(fine_tuning.status(task.finetune), task.finetune)
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
    """training_metrics.csv in the run, and the last and best losses on the job's state."""
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
        }
    )
