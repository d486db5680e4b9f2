"""The fine-tuning port over Amazon Bedrock model customisation (CreateModelCustomizationJob, via boto3).

Bedrock reads the dataset straight from the run's S3 prefix, in `bedrock-conversation-2024` format, with
the stack's service role, and writes its metrics under the run's fine-tuning output prefix. The job's name
and clientRequestToken come from the run id (`names`): a retried StartFineTune finds the job by name, and
a create whose response was lost is answered, when repeated, with the job it already made.

Step Functions' optimised `bedrock:createModelCustomizationJob.sync` integration would wait without a
poll loop, but moto's interpreter cannot run it, and the ASL must run offline as deployed; so a Lambda
calls Bedrock, and the Wait/CheckFineTune loop polls, as for OpenAI.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from synthtune.contracts.config import FineTuneHyperparameters
from synthtune.contracts.errors import FineTuneUnavailable, InvalidConfig
from synthtune.contracts.models import parse_model
from synthtune.contracts.workflow import FineTuneJobStatus, FineTuneState, S3Location
from synthtune.money.catalog import ModelInfo, fine_tunable_by_base_id, model_info
from synthtune.providers.bedrock.client import bedrock_call
from synthtune.providers.bedrock.names import attempt_kind, request_token, resource_name, run_tags
from synthtune.providers.ports import FineTuneRequest, TrainingStep

PROVIDER = "bedrock"
TRAINING_METRICS = "training_artifacts/step_wise_training_metrics.csv"
VALIDATION_METRICS = "validation_metrics.csv"

# Amazon Nova's hyperparameters (Bedrock user guide, cm-hp-nova-mm.html): no batch size (it is 1).
NOVA_EPOCHS = (1, 5)
NOVA_LEARNING_RATE = (1e-6, 1e-4)
NOVA_WARMUP_STEPS = (0, 100)

ReadText = Callable[[S3Location], str]
ListKeys = Callable[[S3Location], set[str]]


def _is_nova(info: ModelInfo | None) -> bool:
    return info is not None and info.family.startswith("nova")


def _status(job: dict[str, Any]) -> FineTuneJobStatus:
    status = job.get("status")
    if status == "Completed":
        return "succeeded"
    if status == "Failed":
        return "failed"
    if status == "Stopped":
        return "cancelled"
    if status == "Stopping":
        return "cancelling"
    details = job.get("statusDetails") or {}
    if (details.get("trainingDetails") or {}).get("status") == "InProgress":
        return "running"
    if (details.get("dataProcessingDetails") or {}).get("status") == "InProgress":
        return "queued"
    return "validating_files"


def _s3_location(uri: str) -> S3Location:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return S3Location(bucket=bucket, key=key)


class BedrockFineTuning:
    provider = PROVIDER

    def __init__(
        self, control: Callable[[], Any], *, role_arn: str | None, read_text: ReadText, list_keys: ListKeys
    ) -> None:
        self._control = control
        self._role_arn = role_arn
        self._read_text = read_text
        self._list_keys = list_keys

    def check_hyperparameters(self, hyperparameters: FineTuneHyperparameters, model: str) -> None:
        info = model_info(model)
        name = parse_model(model).id
        problems = []
        if hyperparameters.batch_size != "auto":
            problems.append(
                f"fine_tune.batch_size: Bedrock fine-tunes {name} with no batch size; leave it auto"
            )
        if hyperparameters.learning_rate_multiplier != "auto":
            problems.append(
                "fine_tune.learning_rate_multiplier is OpenAI's; on Bedrock set fine_tune.learning_rate "
                f"({NOVA_LEARNING_RATE[0]:g} to {NOVA_LEARNING_RATE[1]:g} for Nova)"
            )
        if _is_nova(info):
            epochs, rate, warmup = (
                hyperparameters.n_epochs,
                hyperparameters.learning_rate,
                hyperparameters.learning_rate_warmup_steps,
            )
            if isinstance(epochs, int) and not NOVA_EPOCHS[0] <= epochs <= NOVA_EPOCHS[1]:
                problems.append(
                    f"fine_tune.n_epochs is {epochs}; Bedrock fine-tunes {name} for {NOVA_EPOCHS[0]} to "
                    f"{NOVA_EPOCHS[1]} epochs (epochCount)"
                )
            if rate is not None and not NOVA_LEARNING_RATE[0] <= rate <= NOVA_LEARNING_RATE[1]:
                problems.append(
                    f"fine_tune.learning_rate is {rate:g}; Bedrock takes {NOVA_LEARNING_RATE[0]:g} to "
                    f"{NOVA_LEARNING_RATE[1]:g} for {name} (learningRate)"
                )
            if warmup is not None and not NOVA_WARMUP_STEPS[0] <= warmup <= NOVA_WARMUP_STEPS[1]:
                problems.append(
                    f"fine_tune.learning_rate_warmup_steps is {warmup}; Bedrock takes {NOVA_WARMUP_STEPS[0]} "
                    f"to {NOVA_WARMUP_STEPS[1]} for {name} (learningRateWarmupSteps)"
                )
        if problems:
            raise InvalidConfig("; ".join(problems))

    def _hyperparameters(self, hyperparameters: FineTuneHyperparameters) -> dict[str, str]:
        """Bedrock's names, as the strings the API takes; unset ones left to Bedrock's defaults."""
        chosen: dict[str, str] = {}
        if isinstance(hyperparameters.n_epochs, int):
            chosen["epochCount"] = str(hyperparameters.n_epochs)
        if hyperparameters.learning_rate is not None:
            chosen["learningRate"] = f"{hyperparameters.learning_rate:g}"
        if hyperparameters.learning_rate_warmup_steps is not None:
            chosen["learningRateWarmupSteps"] = str(hyperparameters.learning_rate_warmup_steps)
        return chosen

    def find_job(self, run_id: str, attempt: int = 0) -> FineTuneState | None:
        job = bedrock_call(
            "looking up this run's fine-tuning job",
            self._control().get_model_customization_job,
            tolerate={"ResourceNotFoundException"},
            jobIdentifier=resource_name(run_id, attempt_kind("job", attempt)),
        )
        return None if job is None else self._state(job).model_copy(update={"attempt": attempt})

    def start(self, request: FineTuneRequest) -> FineTuneState:
        if not self._role_arn:
            raise FineTuneUnavailable(
                "Bedrock fine-tuning needs the service role Bedrock reads the dataset with; BEDROCK_ROLE_ARN "
                "is not set (template.yaml sets it to the stack's BedrockCustomizationRole)"
            )
        info = model_info(request.base_model)
        if info is None or info.fine_tuning is None:
            raise FineTuneUnavailable(f"{request.base_model}: Bedrock does not fine-tune it")
        job_kind, model_kind = attempt_kind("job", request.attempt), attempt_kind("model", request.attempt)
        name = resource_name(request.run_id, job_kind)
        arguments: dict[str, Any] = {
            "jobName": name,
            "customModelName": resource_name(request.run_id, model_kind),
            "roleArn": self._role_arn,
            "clientRequestToken": request_token(request.run_id, job_kind),
            "baseModelIdentifier": info.fine_tuning.base_id,
            "customizationType": "FINE_TUNING",
            "trainingDataConfig": {"s3Uri": request.train.uri},
            "outputDataConfig": {"s3Uri": request.output.uri},
            "hyperParameters": self._hyperparameters(request.hyperparameters),
            "jobTags": run_tags(request.run_id),
            "customModelTags": run_tags(request.run_id),
        }
        if request.validation is not None and info.fine_tuning.validation_file:
            arguments["validationDataConfig"] = {"validators": [{"s3Uri": request.validation.uri}]}
        # ConflictException: the name is taken, by the job an earlier attempt of this run created.
        bedrock_call(
            f"creating a fine-tuning job for {request.base_model}",
            self._control().create_model_customization_job,
            tolerate={"ConflictException"},
            **arguments,
        )
        found = self.find_job(request.run_id, request.attempt)
        if found is None:
            raise FineTuneUnavailable(f"Bedrock accepted fine-tuning job {name} but does not find it")
        return found

    def status(self, job: FineTuneState) -> FineTuneState:
        current = bedrock_call(
            f"checking fine-tuning job {job.job_id}",
            self._control().get_model_customization_job,
            jobIdentifier=job.job_id,
        )
        return self._state(current, base_model=job.base_model)

    def cancel(self, job: FineTuneState) -> FineTuneState:
        current = self.status(job)
        if current.status in ("validating_files", "queued", "running"):
            # Validation or Conflict: it ended between the two calls, and its status says how.
            bedrock_call(
                f"stopping fine-tuning job {job.job_id}",
                self._control().stop_model_customization_job,
                tolerate={"ValidationException", "ConflictException"},
                jobIdentifier=job.job_id,
            )
            current = self.status(job)
        return current

    def training_metrics(self, job: FineTuneState) -> list[TrainingStep]:
        """The loss per step from the CSV files the job wrote under its output prefix."""
        current = bedrock_call(
            f"reading fine-tuning job {job.job_id}",
            self._control().get_model_customization_job,
            jobIdentifier=job.job_id,
        )
        output = _s3_location(current["outputDataConfig"]["s3Uri"])
        # Bedrock writes under model-customization-job-<job id>/; older jobs of the prefix are others'.
        job_folder = f"model-customization-job-{job.job_id.rsplit('/', 1)[-1]}/"
        listed = sorted(self._list_keys(output))
        keys = [key for key in listed if job_folder in key] or listed
        training = next((key for key in keys if key.endswith(TRAINING_METRICS)), None)
        if training is None:
            return []
        steps: dict[int, TrainingStep] = {}
        for row in _rows(self._read_text(S3Location(bucket=output.bucket, key=training))):
            step = _integer(row.get("step_number"))
            if step is not None:
                steps[step] = TrainingStep(
                    step=step,
                    epoch=_integer(row.get("epoch_number")),
                    training_loss=_number(row.get("training_loss")),
                )
        validation = next((key for key in keys if key.endswith(VALIDATION_METRICS)), None)
        if validation is not None:
            for row in _rows(self._read_text(S3Location(bucket=output.bucket, key=validation))):
                step = _integer(row.get("step_number"))
                loss = _number(row.get("validation_loss"))
                if step is not None and loss is not None:
                    known = steps.get(step) or TrainingStep(
                        step=step, epoch=_integer(row.get("epoch_number"))
                    )
                    steps[step] = known.model_copy(update={"validation_loss": loss})
        return [steps[step] for step in sorted(steps)]

    def _state(self, job: dict[str, Any], base_model: str | None = None) -> FineTuneState:
        status = _status(job)
        error = ""
        if status == "failed":
            error = str(job.get("failureMessage") or "the job failed")
        elif status == "cancelled":
            error = "the job was stopped"
        epochs = _integer((job.get("hyperParameters") or {}).get("epochCount"))
        output_model = job.get("outputModelArn")
        metrics = job.get("trainingMetrics") or {}
        return FineTuneState(
            backend=PROVIDER,
            job_id=str(job["jobArn"]),
            status=status,
            base_model=base_model or _student_name(str(job.get("baseModelArn", ""))),
            fine_tuned_model=f"{PROVIDER}/{output_model}" if status == "succeeded" and output_model else None,
            epochs=epochs,
            training_loss=_number(metrics.get("trainingLoss")),
            error=error,
        )


def _student_name(base_model_arn: str) -> str:
    """`arn:aws:bedrock:<region>::foundation-model/amazon.nova-micro-v1:0:128k` → the student's name."""
    base_id = base_model_arn.rsplit("/", 1)[-1]
    info = fine_tunable_by_base_id(PROVIDER, base_id)
    return info.name if info is not None else f"{PROVIDER}/{base_id}"


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _integer(value: object) -> int | None:
    try:
        return int(float(str(value))) if value not in (None, "") else None
    except ValueError:
        return None


def _number(value: object) -> float | None:
    try:
        return float(str(value)) if value not in (None, "") else None
    except ValueError:
        return None
