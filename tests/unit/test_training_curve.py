"""The fine-tuning job's loss per step: training_metrics.csv in the run, final and best values on its
state."""

from __future__ import annotations

import csv
import io

from synthtune.contracts.config import FineTuneHyperparameters, RunConfig
from synthtune.contracts.workflow import FineTuneCheck, FineTuneState, RunRef, S3Location
from synthtune.providers.ports import FineTuneRequest, TrainingStep
from synthtune.records.artifacts import ArtifactStore
from synthtune.records.items import FINETUNE_SK
from synthtune.records.layout import RunLayout
from synthtune.records.runs import RunStore
from synthtune.stages.finetune import check_fine_tune, job_status

RUN = "run-curve"
STEPS = [
    TrainingStep(step=1, epoch=1, training_loss=2.0),
    TrainingStep(step=2, epoch=1, training_loss=1.2, validation_loss=1.5),
    TrainingStep(step=3, epoch=2, training_loss=0.9),
    TrainingStep(step=4, epoch=2, training_loss=1.0, validation_loss=1.1),
    TrainingStep(step=5, epoch=2, training_loss=0.95, validation_loss=1.3),
]


class FinishedJob:
    """A provider whose job has succeeded and says nothing of its losses on a status read."""

    provider = "openai"

    def __init__(self, steps: list[TrainingStep]) -> None:
        self.steps = steps

    def check_hyperparameters(self, hyperparameters: FineTuneHyperparameters, model: str) -> None:
        return None

    def find_job(self, run_id: str, attempt: int = 0) -> FineTuneState | None:
        return None

    def start(self, request: FineTuneRequest) -> FineTuneState:
        raise AssertionError("not started here")

    def status(self, job: FineTuneState) -> FineTuneState:
        return FineTuneState(
            backend="openai",
            job_id=job.job_id,
            status="succeeded",
            base_model=job.base_model,
            fine_tuned_model="ft:gpt-4.1-mini:curve",
            trained_tokens=1000,
        )

    def cancel(self, job: FineTuneState) -> FineTuneState:
        return job

    def training_metrics(self, job: FineTuneState) -> list[TrainingStep]:
        return self.steps


def check(data: ArtifactStore, runs: RunStore, steps: list[TrainingStep]) -> FineTuneState:
    run = RunRef(
        run_id=RUN,
        bucket=data.bucket,
        problem_set=S3Location(bucket=data.bucket, key="problem-sets/p.jsonl"),
        config=RunConfig(student_model="gpt-4.1-mini-2025-04-14"),
    )
    running = FineTuneState(
        backend="openai", job_id="ftjob-1", status="running", base_model="gpt-4.1-mini-2025-04-14"
    )
    return check_fine_tune(
        FineTuneCheck(run=run, finetune=running), fine_tuning=FinishedJob(steps), runs=runs, data=data
    )


def test_the_curve_is_saved_with_its_final_and_best_values(data: ArtifactStore, runs: RunStore) -> None:
    state = check(data, runs, STEPS)

    assert state.metrics_key == RunLayout(RUN).training_metrics
    rows = list(csv.DictReader(io.StringIO(data.read_text(state.metrics_key))))
    assert [row["step"] for row in rows] == ["1", "2", "3", "4", "5"]
    assert [row["validation_loss"] for row in rows] == ["", "1.5", "", "1.1", "1.3"]
    assert (state.training_loss, state.best_training_loss) == (0.95, 0.9)
    assert (state.validation_loss, state.best_validation_loss) == (1.3, 1.1)
    # The run's record (what summary.json and the report read) carries them too.
    record = runs.items(RUN)
    (finetune,) = [item for item in record if item["sk"] == FINETUNE_SK]
    assert (float(finetune["best_training_loss"]), float(finetune["best_validation_loss"])) == (0.9, 1.1)


def test_a_later_status_read_keeps_the_losses(data: ArtifactStore, runs: RunStore) -> None:
    state = check(data, runs, STEPS)
    again = job_status(FinishedJob(STEPS), state)
    assert again.metrics_key == state.metrics_key
    assert (again.training_loss, again.best_training_loss) == (0.95, 0.9)
    assert (again.validation_loss, again.best_validation_loss) == (1.3, 1.1)


def test_a_job_without_validation_has_no_validation_values(data: ArtifactStore, runs: RunStore) -> None:
    state = check(
        data, runs, [TrainingStep(step=1, training_loss=1.0), TrainingStep(step=2, training_loss=0.5)]
    )
    assert (state.training_loss, state.best_training_loss) == (0.5, 0.5)
    assert (state.validation_loss, state.best_validation_loss) == (None, None)
