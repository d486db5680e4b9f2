"""Fine-tuning on the OpenAI API (or any server that implements its files and fine-tuning endpoints)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from synthtune.contracts.errors import FineTuneUnavailable
from synthtune.contracts.workflow import FINAL_FINE_TUNE_STATUSES, FineTuneState
from synthtune.money.catalog import OPENAI_FINE_TUNING_ENDS, model_info
from synthtune.providers.openai.client import is_official_endpoint, provider_errors
from synthtune.providers.ports import FineTuneRequest

if TYPE_CHECKING:
    from openai import OpenAI
    from openai.types.fine_tuning import FineTuningJob

RUN_ID_METADATA_KEY = "synthtune_run_id"


class OpenAIFineTuneBackend:
    name = "openai"

    def __init__(
        self, client_factory: Callable[[], OpenAI], base_url: str | None, secret_hint: str = ""
    ) -> None:
        # A factory, not a client: Prepare checks availability without reading the API key.
        self._client_factory = client_factory
        self._base_url = base_url
        self._secret_hint = secret_hint

    def check_available(self, base_model: str, today: dt.date) -> None:
        if not is_official_endpoint(self._base_url):
            return  # an OpenAI-compatible server sets its own rules; it will say so when the job is created
        if today > OPENAI_FINE_TUNING_ENDS:
            raise FineTuneUnavailable(
                f"OpenAI stopped accepting new fine-tuning jobs after {OPENAI_FINE_TUNING_ENDS:%Y-%m-%d}; "
                "choose another fine_tune_backend"
            )
        info = model_info(base_model)
        if info is None:
            return  # a snapshot newer than our table: let OpenAI decide
        if not info.fine_tunable:
            raise FineTuneUnavailable(f"OpenAI does not offer fine-tuning for {base_model}")
        if info.retires_on is not None and today >= info.retires_on:
            raise FineTuneUnavailable(f"{base_model} was retired on {info.retires_on:%Y-%m-%d}")

    def find_job(self, run_id: str) -> FineTuneState | None:
        with provider_errors("looking up this run's fine-tuning job", self._secret_hint):
            page = self._client.fine_tuning.jobs.list(metadata={RUN_ID_METADATA_KEY: run_id}, limit=10)
        for job in page.data:
            if (job.metadata or {}).get(RUN_ID_METADATA_KEY) == run_id:
                return self._state(job)
        return None

    def start(self, request: FineTuneRequest) -> FineTuneState:
        client = self._client
        with provider_errors("uploading the training data", self._secret_hint):
            with request.train_file.open("rb") as train:
                training_file = client.files.create(
                    file=(request.train_file.name, train), purpose="fine-tune"
                )
            validation_file_id = None
            if request.validation_file is not None:
                with request.validation_file.open("rb") as validation:
                    validation_file_id = client.files.create(
                        file=(request.validation_file.name, validation), purpose="fine-tune"
                    ).id
        hyperparameters: Any = request.hyperparameters.model_dump()
        with provider_errors(f"creating a fine-tuning job for {request.base_model}", self._secret_hint):
            job = client.fine_tuning.jobs.create(
                model=request.base_model,
                training_file=training_file.id,
                validation_file=validation_file_id,
                method={"type": "supervised", "supervised": {"hyperparameters": hyperparameters}},
                suffix=request.suffix or None,
                metadata={RUN_ID_METADATA_KEY: request.run_id},
            )
        return self._state(job)

    def status(self, job_id: str, base_model: str) -> FineTuneState:
        with provider_errors(f"checking fine-tuning job {job_id}", self._secret_hint):
            job = self._client.fine_tuning.jobs.retrieve(job_id)
        return self._state(job, with_loss=job.status == "succeeded")

    def cancel(self, job_id: str, base_model: str) -> FineTuneState:
        with provider_errors(f"cancelling fine-tuning job {job_id}", self._secret_hint):
            job = self._client.fine_tuning.jobs.retrieve(job_id)
            if job.status not in FINAL_FINE_TUNE_STATUSES:
                job = self._client.fine_tuning.jobs.cancel(job_id)
        return self._state(job)

    @property
    def _client(self) -> OpenAI:
        return self._client_factory()

    def _final_training_loss(self, job_id: str) -> float | None:
        with provider_errors(f"reading checkpoints of {job_id}", self._secret_hint):
            checkpoints = self._client.fine_tuning.jobs.checkpoints.list(job_id, limit=10).data
        if not checkpoints:
            return None
        last = max(checkpoints, key=lambda checkpoint: checkpoint.step_number)
        return last.metrics.train_loss

    def _state(self, job: FineTuningJob, with_loss: bool = False) -> FineTuneState:
        error = ""
        if job.error is not None and (job.error.message or job.error.code):
            error = f"{job.error.code or 'error'}: {job.error.message or ''}".strip()
        elif job.status == "cancelled":
            error = "the job was cancelled"
        return FineTuneState(
            backend=self.name,
            job_id=job.id,
            status=job.status,
            base_model=job.model,
            fine_tuned_model=job.fine_tuned_model,
            trained_tokens=job.trained_tokens,
            training_loss=self._final_training_loss(job.id) if with_loss else None,
            error=error,
        )
