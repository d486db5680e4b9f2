"""The interface every fine-tuning provider implements."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from synthtune.contracts.config import FineTuneHyperparameters
from synthtune.contracts.workflow import FineTuneState


class FineTuneRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    run_id: str
    base_model: str
    train_file: Path
    validation_file: Path | None
    hyperparameters: FineTuneHyperparameters
    suffix: str


class FineTuneBackend(Protocol):
    name: str

    def check_available(self, base_model: str, today: dt.date) -> None:
        """Raise FineTuneUnavailable if a job for this model could not be started today.

        Called by Prepare, before anything is spent; must not call the provider.
        """

    def find_job(self, run_id: str) -> FineTuneState | None:
        """The job an earlier attempt of this run created, if any (so a retry never starts a second)."""

    def start(self, request: FineTuneRequest) -> FineTuneState: ...

    def status(self, job_id: str, base_model: str) -> FineTuneState: ...

    def cancel(self, job_id: str, base_model: str) -> FineTuneState: ...
