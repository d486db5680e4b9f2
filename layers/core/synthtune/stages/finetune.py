"""StartFineTune, CheckFineTune and CancelFineTune: the fine-tuning job's life, recorded on the run.

Starting is idempotent: Step Functions may run StartFineTune more than once (a retry after a timeout,
a Lambda that died after the provider accepted the job). Before creating a job we look for one this run
already has — first in DynamoDB, then at the provider by the run id stored in the job's metadata — so
a retry picks the job up instead of paying for a second one.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from synthtune.contracts.errors import InvalidConfig
from synthtune.contracts.workflow import (
    FINAL_FINE_TUNE_STATUSES,
    FineTuneCheck,
    FineTuneInput,
    FineTuneState,
    RunRef,
)
from synthtune.money.estimate import epochs_for, fine_tuning_usd
from synthtune.money.ledger import CostLedger
from synthtune.money.usage import training_cost_usd
from synthtune.providers.ports import FineTuneBackend, FineTuneRequest
from synthtune.records.artifacts import ArtifactStore
from synthtune.records.runs import FINETUNE_SK, RunStore

RESERVED_TRAINING = "fine_tune_reserved_usd"


def _record(runs: RunStore, run: RunRef, state: FineTuneState) -> None:
    runs.put(run.run_id, FINETUNE_SK, state.model_dump())
    runs.update(run.run_id, fine_tune_job_id=state.job_id, fine_tune_status=state.status)
    if state.status in FINAL_FINE_TUNE_STATUSES:
        _settle_training(run, state, runs)


def _existing_job(task: FineTuneInput, backend: FineTuneBackend, runs: RunStore) -> FineTuneState | None:
    recorded = runs.get(task.run.run_id, FINETUNE_SK)
    if recorded is not None and recorded.get("backend") == backend.name:
        return backend.status(str(recorded["job_id"]), task.run.config.student_model)
    return backend.find_job(task.run.run_id)


def _reserve_training(task: FineTuneInput, ledger: CostLedger) -> float:
    """Reserve the job's cost against the budget before it exists (its trained tokens settle it)."""
    if ledger.budget_usd is None:
        return 0.0
    config, dataset = task.run.config, task.dataset
    epochs = epochs_for(config.fine_tune, dataset.train_examples)
    cost = fine_tuning_usd(config.student_model, dataset.train_tokens, epochs)
    if cost is None:
        raise InvalidConfig(f"{config.student_model} has no training price, so budget_usd cannot be enforced")
    return ledger.reserve(
        cost, f"fine-tuning {config.student_model} on {dataset.train_tokens} tokens x {epochs} epochs"
    )


def _settle_training(run: RunRef, state: FineTuneState, runs: RunStore) -> None:
    """Replace the job's reservation by what its trained tokens cost, once it has ended."""
    ledger = CostLedger(runs, run.run_id, run.config.budget_usd)
    if ledger.budget_usd is None:
        return
    record = runs.get(run.run_id) or {}
    reserved = float(record.get(RESERVED_TRAINING, 0.0))
    if reserved:
        runs.update(run.run_id, fine_tune_reserved_usd=0.0)
        ledger.settle(reserved, training_cost_usd(state.base_model, state.trained_tokens or 0) or 0.0)


def start_fine_tune(
    task: FineTuneInput, *, backend: FineTuneBackend, data: ArtifactStore, runs: RunStore
) -> FineTuneState:
    state = _existing_job(task, backend, runs)
    if state is None:
        config = task.run.config
        ledger = CostLedger(runs, task.run.run_id, config.budget_usd)
        reserved = _reserve_training(task, ledger)
        runs.update(task.run.run_id, fine_tune_reserved_usd=reserved)
        with tempfile.TemporaryDirectory(prefix="synthtune-") as workdir:
            train_file = Path(workdir) / "train.jsonl"
            data.download(task.dataset.train_key, train_file)
            validation_file = None
            if task.dataset.validation_key is not None:
                validation_file = Path(workdir) / "validation.jsonl"
                data.download(task.dataset.validation_key, validation_file)
            request = FineTuneRequest(
                run_id=task.run.run_id,
                base_model=config.student_model,
                train_file=train_file,
                validation_file=validation_file,
                hyperparameters=config.fine_tune,
                suffix=config.fine_tune_suffix,
            )
            try:
                state = backend.start(request)
            except BaseException:
                # No job, nothing to pay: release the reservation so a retry reserves afresh.
                runs.update(task.run.run_id, fine_tune_reserved_usd=0.0)
                ledger.settle(reserved, 0.0)
                raise
    _record(runs, task.run, state)
    return state


def check_fine_tune(task: FineTuneCheck, *, backend: FineTuneBackend, runs: RunStore) -> FineTuneState:
    state = backend.status(task.finetune.job_id, task.finetune.base_model)
    _record(runs, task.run, state)
    return state


def cancel_fine_tune(task: FineTuneCheck, *, backend: FineTuneBackend, runs: RunStore) -> FineTuneState:
    state = backend.cancel(task.finetune.job_id, task.finetune.base_model)
    _record(runs, task.run, state)
    return state
