"""The fine-tuning port over OpenAI's files and fine-tuning API (or any server that implements them).

The dataset is in S3; OpenAI reads only files uploaded to it, so `start` downloads the run's training
(and validation) file and uploads it with purpose `fine-tune`, then creates the job with the run id in its
metadata — the key `find_job` looks for, so that a retried StartFineTune never creates a second job.

Neither the uploads nor the create are retried by the SDK (which would send them again with nothing to
tell the service it is the same request): a retry goes through the finds — `find_job` before the create,
and before each upload the run's file under its own name (`synthtune-<run id>-train.jsonl`, see
`files.upload_once`), so that an upload or a job whose reply was lost is used rather than made again.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthtune.contracts.config import FineTuneHyperparameters
from synthtune.contracts.errors import FineTuneUnavailable, InvalidConfig
from synthtune.contracts.models import parse_model
from synthtune.contracts.workflow import FINAL_FINE_TUNE_STATUSES, FineTuneState, S3Location
from synthtune.money.catalog import OPENAI_FINE_TUNING_ENDS, OPENAI_FINE_TUNING_RESTRICTED
from synthtune.providers.openai.client import provider_errors, sent_once
from synthtune.providers.openai.files import upload_once
from synthtune.providers.ports import FineTuneRequest, TrainingStep

if TYPE_CHECKING:
    from openai import OpenAI
    from openai.types.fine_tuning import FineTuningJob

RUN_ID_METADATA_KEY = "synthtune_run_id"
ATTEMPT_METADATA_KEY = "synthtune_attempt"
"""Set from the run's second job on (a resumed run whose job failed); no key is the first."""


def _metadata(run_id: str, attempt: int) -> dict[str, str]:
    return {RUN_ID_METADATA_KEY: run_id, **({ATTEMPT_METADATA_KEY: str(attempt)} if attempt else {})}


def _attempt(metadata: dict[str, str]) -> int:
    value = metadata.get(ATTEMPT_METADATA_KEY, "0")
    return int(value) if value.isdigit() else -1


Download = Callable[[S3Location, Path], None]


class OpenAIFineTuning:
    provider = "openai"

    def __init__(
        self, client_factory: Callable[[], OpenAI], download: Download, secret_hint: str = ""
    ) -> None:
        # A factory, not a client: Prepare checks hyperparameters without reading the API key.
        self._client_factory = client_factory
        self._download = download
        self._secret_hint = secret_hint

    @property
    def _client(self) -> OpenAI:
        return self._client_factory()

    def check_hyperparameters(self, hyperparameters: FineTuneHyperparameters, model: str) -> None:
        bedrock_only = [
            name
            for name in ("learning_rate", "learning_rate_warmup_steps")
            if getattr(hyperparameters, name) is not None
        ]
        if bedrock_only:
            raise InvalidConfig(
                f"fine_tune.{bedrock_only[0]}: OpenAI fine-tuning takes no {bedrock_only[0]}; set "
                "fine_tune.learning_rate_multiplier instead (or leave it auto)"
            )

    def find_job(self, run_id: str, attempt: int = 0) -> FineTuneState | None:
        with provider_errors("looking up this run's fine-tuning job", self._secret_hint):
            page = self._client.fine_tuning.jobs.list(metadata={RUN_ID_METADATA_KEY: run_id}, limit=10)
        for job in page.data:
            metadata = job.metadata or {}
            if metadata.get(RUN_ID_METADATA_KEY) == run_id and _attempt(metadata) == attempt:
                return self._state(job).model_copy(update={"attempt": attempt})
        return None

    def start(self, request: FineTuneRequest) -> FineTuneState:
        client = self._client
        with tempfile.TemporaryDirectory(prefix="synthtune-") as workdir:
            folder = Path(workdir)
            training_file = self._upload(client, request.train, folder / upload_name(request.run_id, "train"))
            validation_file_id = None
            if request.validation is not None:
                validation_file_id = self._upload(
                    client, request.validation, folder / upload_name(request.run_id, "validation")
                )
        hyperparameters: Any = {
            name: getattr(request.hyperparameters, name)
            for name in ("n_epochs", "batch_size", "learning_rate_multiplier")
        }
        base = parse_model(request.base_model).id
        with (
            provider_errors(f"creating a fine-tuning job for {base}", self._secret_hint),
            _fine_tuning_refusals(base),
        ):
            job = sent_once(client).fine_tuning.jobs.create(
                model=base,
                training_file=training_file,
                validation_file=validation_file_id,
                method={"type": "supervised", "supervised": {"hyperparameters": hyperparameters}},
                suffix=request.suffix or None,
                metadata=_metadata(request.run_id, request.attempt),
            )
        return self._state(job).model_copy(update={"attempt": request.attempt})

    def _upload(self, client: OpenAI, location: S3Location, path: Path) -> str:
        self._download(location, path)
        return upload_once(client, path, "fine-tune", "uploading the training data", self._secret_hint)

    def status(self, job: FineTuneState) -> FineTuneState:
        with provider_errors(f"checking fine-tuning job {job.job_id}", self._secret_hint):
            current = self._client.fine_tuning.jobs.retrieve(job.job_id)
        return self._state(current)

    def cancel(self, job: FineTuneState) -> FineTuneState:
        with provider_errors(f"cancelling fine-tuning job {job.job_id}", self._secret_hint):
            current = self._client.fine_tuning.jobs.retrieve(job.job_id)
            if current.status not in FINAL_FINE_TUNE_STATUSES:
                current = self._client.fine_tuning.jobs.cancel(job.job_id)
        return self._state(current)

    def training_metrics(self, job: FineTuneState) -> list[TrainingStep]:
        """The job's result file (`step,train_loss,...,valid_loss,...`, one row per step); failing that,
        its checkpoints' metrics (one per epoch)."""
        with provider_errors(f"reading the results of {job.job_id}", self._secret_hint):
            current = self._client.fine_tuning.jobs.retrieve(job.job_id)
            for file_id in current.result_files or []:
                steps = _steps_from_csv(self._client.files.content(file_id).text)
                if steps:
                    return steps
            checkpoints = self._client.fine_tuning.jobs.checkpoints.list(job.job_id, limit=100).data
        return sorted(
            (
                TrainingStep(
                    step=checkpoint.step_number,
                    training_loss=checkpoint.metrics.train_loss,
                    validation_loss=checkpoint.metrics.valid_loss,
                )
                for checkpoint in checkpoints
            ),
            key=lambda step: step.step,
        )

    def _state(self, job: FineTuningJob) -> FineTuneState:
        error = ""
        if job.error is not None and (job.error.message or job.error.code):
            error = f"{job.error.code or 'error'}: {job.error.message or ''}".strip()
        elif job.status == "cancelled":
            error = "the job was cancelled"
        epochs = job.hyperparameters.n_epochs if job.hyperparameters else None
        return FineTuneState(
            backend=self.provider,
            job_id=job.id,
            status=job.status,
            base_model=job.model,
            fine_tuned_model=job.fine_tuned_model,
            trained_tokens=job.trained_tokens,
            epochs=epochs if isinstance(epochs, int) else None,
            error=error,
        )


def upload_name(run_id: str, split: str) -> str:
    """The name a run's fine-tuning file is uploaded under: what `files.find_upload` knows it by."""
    return f"synthtune-{run_id}-{split}.jsonl"


def _steps_from_csv(text: str) -> list[TrainingStep]:
    steps = []
    for row in csv.DictReader(io.StringIO(text)):
        if not (row.get("step") or "").strip().isdigit():
            continue
        steps.append(
            TrainingStep(
                step=int(row["step"]),
                training_loss=_number(row.get("train_loss")),
                validation_loss=_number(row.get("valid_loss")),
            )
        )
    return steps


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


@contextmanager
def _fine_tuning_refusals(model: str) -> Iterator[None]:
    """A 403 on job creation is OpenAI's fine-tuning wind-down, not a bad key: say so by name."""
    import openai

    try:
        yield
    except openai.PermissionDeniedError as error:
        raise FineTuneUnavailable(
            f"OpenAI refused to create a fine-tuning job for {model} (403: {error.message}). OpenAI is "
            f"winding down self-serve fine-tuning: since {OPENAI_FINE_TUNING_RESTRICTED:%Y-%m-%d} only "
            "organisations that used a fine-tuned model in the last 60 days may create jobs, and nobody may "
            f"after {OPENAI_FINE_TUNING_ENDS:%Y-%m-%d}. Fine-tune on Amazon Bedrock instead, e.g. "
            "student_model 'bedrock/amazon.nova-micro-v1:0'."
        ) from error
