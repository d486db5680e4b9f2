"""StartFineTune, CheckFineTune and CancelFineTune: the fine-tuning job's life, recorded on the run.

Starting is idempotent: Step Functions may run StartFineTune more than once (a retry after a timeout,
a Lambda that died after the provider accepted the job). Before creating a job we look for one this run
already has — first in DynamoDB, then at the provider by the run id stored in the job's metadata — so
a retry picks the job up instead of paying for a second one.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from synthtune.artifacts import ArtifactStore
from synthtune.finetune.backend import FineTuneBackend, FineTuneRequest
from synthtune.runs import FINETUNE_SK, RunStore
from synthtune.workflow import FineTuneCheck, FineTuneInput, FineTuneState


def _record(runs: RunStore, run_id: str, state: FineTuneState) -> None:
    runs.put(run_id, FINETUNE_SK, state.model_dump())
    runs.update(run_id, fine_tune_job_id=state.job_id, fine_tune_status=state.status)


def _existing_job(task: FineTuneInput, backend: FineTuneBackend, runs: RunStore) -> FineTuneState | None:
    recorded = runs.get(task.run.run_id, FINETUNE_SK)
    if recorded is not None and recorded.get("backend") == backend.name:
        return backend.status(str(recorded["job_id"]), task.run.config.student_model)
    return backend.find_job(task.run.run_id)


def start_fine_tune(
    task: FineTuneInput, *, backend: FineTuneBackend, data: ArtifactStore, runs: RunStore
) -> FineTuneState:
    state = _existing_job(task, backend, runs)
    if state is None:
        config = task.run.config
        with tempfile.TemporaryDirectory(prefix="synthtune-") as workdir:
            train_file = Path(workdir) / "train.jsonl"
            data.download(task.dataset.train_key, train_file)
            validation_file = None
            if task.dataset.validation_key is not None:
                validation_file = Path(workdir) / "validation.jsonl"
                data.download(task.dataset.validation_key, validation_file)
            state = backend.start(
                FineTuneRequest(
                    run_id=task.run.run_id,
                    base_model=config.student_model,
                    train_file=train_file,
                    validation_file=validation_file,
                    hyperparameters=config.fine_tune,
                    suffix=config.fine_tune_suffix,
                )
            )
    _record(runs, task.run.run_id, state)
    return state


def check_fine_tune(task: FineTuneCheck, *, backend: FineTuneBackend, runs: RunStore) -> FineTuneState:
    state = backend.status(task.finetune.job_id, task.finetune.base_model)
    _record(runs, task.run.run_id, state)
    return state


def cancel_fine_tune(task: FineTuneCheck, *, backend: FineTuneBackend, runs: RunStore) -> FineTuneState:
    state = backend.cancel(task.finetune.job_id, task.finetune.base_model)
    _record(runs, task.run.run_id, state)
    return state
