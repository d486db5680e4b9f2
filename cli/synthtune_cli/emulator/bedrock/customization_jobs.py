"""Model customisation (fine-tuning) jobs: checked at create, a lifecycle on the emulator's clock, a custom
model and metrics files in S3 at the end.

As on the OpenAI side nothing runs in the background. The training data is read from S3 and judged when the
job is created, its schedule is fixed then from the knobs (validation for `validation_seconds`, data
processing for `queue_seconds`, training for a time set by the trained tokens), and every read works out
where the job stands at `clock.now()`. A job whose data breaks a rule fails when its validation time is
up, with a failure message naming the file, the line and the rule, as Bedrock's does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from synthtune_cli.emulator.bedrock.custom_models import CustomModel, CustomModels
from synthtune_cli.emulator.bedrock.foundation_models import (
    Customization,
    FoundationModel,
    customization_base,
    customization_ids,
)
from synthtune_cli.emulator.bedrock.protocol import (
    JOB_NAME,
    RESOURCE_NAME,
    Arns,
    Listing,
    ListQuery,
    checked_name,
    client_request_token,
    conflict,
    constraint_error,
    iso_time,
    not_found,
    required_string,
    validation_error,
)
from synthtune_cli.emulator.bedrock.s3_objects import S3_URI, S3ObjectError, S3Objects, join_uri
from synthtune_cli.emulator.bedrock.training_data import read_conversations
from synthtune_cli.emulator.draws import IdFactory
from synthtune_cli.emulator.finetuning import LossCurve
from synthtune_cli.emulator.knobs import EmulatorKnobs
from synthtune_cli.emulator.knowledge import Knowledge
from synthtune_cli.emulator.learning import TrainingAssessment, assess, fine_tuned
from synthtune_cli.emulator.tokens import count_message_tokens
from synthtune_cli.emulator.training_data import TrainingDataError, TrainingExample

FINAL_STATUSES = ("Completed", "Failed", "Stopped")
_ROLE_ARN = re.compile(r"arn:aws(-[^:]+)?:iam::([0-9]{12})?:role/.+")
# statusDetails, in the order a job goes through them.
_STAGES = ("validationDetails", "dataProcessingDetails", "trainingDetails")
_VALIDATION, _DATA_PROCESSING, _TRAINING = range(3)
_MAX_VALIDATORS = 10


class _InvalidData(Exception):
    """The job's data cannot be trained on; the message is the job's failure message."""


@dataclass(frozen=True)
class _Plan:
    """What a job with valid data will do, fixed at create. Batch size is 1: a step per example."""

    assessment: TrainingAssessment
    epochs: int
    examples: int
    trained_tokens: int
    curve: LossCurve
    validated: bool

    @property
    def total_steps(self) -> int:
        return self.epochs * self.examples


@dataclass
class _Job:
    arn: str
    job_id: str
    name: str
    model_name: str
    model_arn: str
    role_arn: str
    token: str | None
    base: FoundationModel
    base_model_arn: str
    hyperparameters: dict[str, str]
    training_data_config: dict[str, Any]
    validation_data_config: dict[str, Any]
    output_data_config: dict[str, Any]
    created_at: float
    validated_at: float
    processed_at: float
    planned_finish: float
    plan: _Plan | None
    problem: str | None
    status: str = "InProgress"
    ended_at: float | None = None
    failure_message: str | None = None
    # The stage a failure or a stop happened in.
    halted_stage: int | None = None
    stop_requested_at: float | None = None
    stopped_at: float | None = None

    @property
    def stage_bounds(self) -> tuple[tuple[float, float], ...]:
        return (
            (self.created_at, self.validated_at),
            (self.validated_at, self.processed_at),
            (self.processed_at, self.planned_finish),
        )

    def stage_at(self, at: float) -> int:
        if at < self.validated_at:
            return _VALIDATION
        if at < self.processed_at:
            return _DATA_PROCESSING
        return _TRAINING


class CustomizationJobs:
    """Jobs by ARN, in creation order. Not thread-safe: the emulator's state lock guards it."""

    def __init__(
        self,
        arns: Arns,
        ids: IdFactory,
        knowledge: Knowledge,
        seed: int,
        s3: S3Objects,
        models: CustomModels,
    ) -> None:
        self._arns = arns
        self._ids = ids
        self._knowledge = knowledge
        # The emulator's seed: which training questions the base model knew is its greedy draws under it.
        self._seed = seed
        self._s3 = s3
        self._models = models
        self._jobs: dict[str, _Job] = {}

    def __len__(self) -> int:
        return len(self._jobs)

    def clear(self) -> None:
        self._jobs.clear()

    # -- create -----------------------------------------------------------------------------------

    def create(self, body: Mapping[str, Any], now: float, knobs: EmulatorKnobs) -> str:
        """Start a job (or find the one this request's token already started); returns its ARN."""
        name = checked_name(required_string(body, "jobName"), "jobName", JOB_NAME)
        model_name = checked_name(required_string(body, "customModelName"), "customModelName", RESOURCE_NAME)
        role_arn = required_string(body, "roleArn")
        if not _ROLE_ARN.fullmatch(role_arn):
            raise constraint_error(
                "roleArn", role_arn, f"Member must satisfy regular expression pattern: {_ROLE_ARN.pattern}"
            )
        token = client_request_token(body)
        base = _base_model(required_string(body, "baseModelIdentifier"))
        customization = base.customization
        assert customization is not None
        _check_customization_type(body)
        hyperparameters = _hyperparameters(body.get("hyperParameters"), customization)
        training_uri = _data_uri(body.get("trainingDataConfig"), "trainingDataConfig")
        validation_uris = _validation_uris(body.get("validationDataConfig"), customization)
        output_uri = _data_uri(body.get("outputDataConfig"), "outputDataConfig")

        replayed = self._replayed(token, name)
        if replayed is not None:
            return replayed
        if any(job.name == name for job in self._jobs.values()):
            raise conflict("The provided job name is currently in use. Provide a new job name and try again.")
        if self._models.find(model_name) is not None or any(
            job.model_name == model_name and job.status not in FINAL_STATUSES for job in self._jobs.values()
        ):
            raise conflict(
                f"The provided custom model name {model_name} is currently in use. "
                "Provide a new custom model name and try again."
            )

        job_id = self._ids.bare("model-customization-job")
        epochs = int(hyperparameters["epochCount"])
        plan, problem = self._plan(job_id, base, customization, training_uri, validation_uris, epochs)
        validated_at = now + knobs.validation_seconds
        processed_at = validated_at + knobs.queue_seconds
        training = 0.0
        if plan is not None:
            by_tokens = knobs.training_seconds_per_1k_tokens * plan.trained_tokens / 1000
            training = max(knobs.min_training_seconds, by_tokens)
        job = _Job(
            arn=self._arns.customization_job(customization.model_id, job_id),
            job_id=job_id,
            name=name,
            model_name=model_name,
            model_arn=self._arns.custom_model(customization.model_id, self._ids.bare("custom-model")),
            role_arn=role_arn,
            token=token,
            base=base,
            base_model_arn=self._arns.foundation_model(customization.model_id),
            hyperparameters=hyperparameters,
            training_data_config={"s3Uri": training_uri},
            validation_data_config={"validators": [{"s3Uri": uri} for uri in validation_uris]},
            output_data_config={"s3Uri": output_uri},
            created_at=now,
            validated_at=validated_at,
            processed_at=processed_at,
            planned_finish=processed_at + training,
            plan=plan,
            problem=problem,
        )
        self._jobs[job.arn] = job
        return job.arn

    def _replayed(self, token: str | None, name: str) -> str | None:
        """The job an earlier request with the same client token created: a retry creates nothing."""
        if token is None:
            return None
        earlier = next((job for job in self._jobs.values() if job.token == token), None)
        if earlier is None:
            return None
        if earlier.name != name:
            raise conflict(
                f"The clientRequestToken {token} was already used to create the job {earlier.name}."
            )
        return earlier.arn

    def _plan(
        self,
        job_id: str,
        base: FoundationModel,
        customization: Customization,
        training_uri: str,
        validation_uris: list[str],
        epochs: int,
    ) -> tuple[_Plan | None, str | None]:
        """The job's plan, or the failure message it will fail with once its validation time is up."""
        try:
            examples = self._examples(training_uri, customization.min_examples, customization.max_examples)
            for uri in validation_uris:
                self._examples(uri, 1, customization.max_examples)
        except _InvalidData as error:
            return None, str(error)
        tokens_per_epoch = sum(count_message_tokens(list(example.messages)) for example in examples)
        assessment = assess(examples, self._knowledge, base.simulated, self._seed)
        validated = bool(validation_uris)
        curve = LossCurve.for_data(assessment, epochs * len(examples), job_id, validated)
        return _Plan(assessment, epochs, len(examples), tokens_per_epoch * epochs, curve, validated), None

    def _examples(self, uri: str, minimum: int, maximum: int) -> list[TrainingExample]:
        """The records at `uri`, or _InvalidData carrying the failure message the job will end with."""
        try:
            content = self._s3.read(uri)
        except S3ObjectError as error:
            raise _InvalidData(
                f"Data validation failed: {error}. Check that the object exists and that the job's role "
                "can read it."
            ) from error
        try:
            return read_conversations(content, minimum, maximum)
        except TrainingDataError as error:
            raise _InvalidData(f"Data validation failed for {uri}: {error}.") from error

    # -- lifecycle --------------------------------------------------------------------------------

    def refresh(self, now: float, knobs: EmulatorKnobs) -> None:
        """Move every unfinished job to where it stands at `now`."""
        for job in self._jobs.values():
            self._advance(job, now, knobs)

    def _advance(self, job: _Job, now: float, knobs: EmulatorKnobs) -> None:
        if job.status in FINAL_STATUSES:
            return
        if job.stopped_at is not None:
            if now >= job.stopped_at:
                job.status, job.ended_at = "Stopped", job.stopped_at
            return
        if now < job.validated_at:
            return
        if job.plan is None:
            self._fail(job, job.validated_at, _VALIDATION, job.problem or "Data validation failed.")
        elif now < job.processed_at:
            return
        elif knobs.fine_tune_failure is not None:
            # Noticed by the first read that finds the job training (or past its finish) with the knob set.
            self._fail(job, min(now, job.planned_finish), _TRAINING, knobs.fine_tune_failure)
        elif now >= job.planned_finish:
            self._complete(job, job.plan)

    def _fail(self, job: _Job, at: float, stage: int, message: str) -> None:
        job.status, job.ended_at, job.halted_stage, job.failure_message = "Failed", at, stage, message

    def _complete(self, job: _Job, plan: _Plan) -> None:
        try:
            self._write_metrics(job, plan)
        except S3ObjectError as error:
            self._fail(job, job.planned_finish, _TRAINING, f"The job could not write its output: {error}.")
            return
        validation_loss = plan.curve.valid_loss(plan.total_steps)
        self._models.add(
            CustomModel(
                arn=job.model_arn,
                name=job.model_name,
                job_arn=job.arn,
                job_name=job.name,
                base=job.base,
                base_model_arn=job.base_model_arn,
                hyperparameters=job.hyperparameters,
                training_data_config=job.training_data_config,
                validation_data_config=job.validation_data_config,
                output_data_config=job.output_data_config,
                training_loss=plan.curve.train_loss(plan.total_steps),
                validation_loss=validation_loss,
                created_at=job.planned_finish,
                simulated=fine_tuned(job.base.simulated, plan.assessment),
            )
        )
        job.status, job.ended_at = "Completed", job.planned_finish

    def _write_metrics(self, job: _Job, plan: _Plan) -> None:
        """The files Bedrock writes under the output prefix: step-wise training loss, validation loss."""
        prefix = join_uri(job.output_data_config["s3Uri"], f"model-customization-job-{job.job_id}")
        rows = ["step_number,epoch_number,training_loss,perplexity"]
        for step in range(plan.total_steps):
            loss = plan.curve.train_loss(step + 1)
            rows.append(f"{step},{step // plan.examples},{loss},{round(math.exp(loss), 4)}")
        training_csv = ("\n".join(rows) + "\n").encode("utf-8")
        self._s3.write(
            join_uri(prefix, "training_artifacts", "step_wise_training_metrics.csv"), training_csv, "text/csv"
        )
        if not plan.validated:
            return
        rows = ["step_number,epoch_number,validation_loss,perplexity"]
        for epoch in range(plan.epochs):
            step = (epoch + 1) * plan.examples
            validation_loss = plan.curve.valid_loss(step)
            assert validation_loss is not None
            rows.append(f"{step - 1},{epoch},{validation_loss},{round(math.exp(validation_loss), 4)}")
        validation_csv = ("\n".join(rows) + "\n").encode("utf-8")
        self._s3.write(
            join_uri(prefix, "validation_artifacts", "post_fine_tuning_validation", "validation_metrics.csv"),
            validation_csv,
            "text/csv",
        )

    def stop(self, identifier: str, now: float, knobs: EmulatorKnobs) -> None:
        job = self._get(identifier)
        self._advance(job, now, knobs)
        if job.status == "Stopping":
            return
        if job.status != "InProgress":
            raise validation_error(f"The job {job.name} is {job.status} and cannot be stopped.")
        job.status = "Stopping"
        job.halted_stage = job.stage_at(now)
        job.stop_requested_at = now
        job.stopped_at = now + knobs.customization_stopping_seconds
        self._advance(job, now, knobs)

    # -- reads ------------------------------------------------------------------------------------

    def get(self, identifier: str, now: float) -> dict[str, Any]:
        return self._to_api(self._get(identifier), now)

    def page(self, query: ListQuery, now: float) -> tuple[list[dict[str, Any]], str | None]:
        return query.page([self._listing(job, now) for job in self._jobs.values()])

    def snapshot(self, now: float) -> dict[str, dict[str, Any]]:
        return {arn: self._to_api(job, now) for arn, job in self._jobs.items()}

    def _get(self, identifier: str) -> _Job:
        job = self._jobs.get(identifier) or next(
            (job for job in self._jobs.values() if job.name == identifier), None
        )
        if job is None:
            raise not_found(f"Could not find a model customization job with identifier {identifier}.")
        return job

    def _to_api(self, job: _Job, now: float) -> dict[str, Any]:
        body: dict[str, Any] = {
            "jobArn": job.arn,
            "jobName": job.name,
            "outputModelName": job.model_name,
            "roleArn": job.role_arn,
            "status": job.status,
            "statusDetails": self._status_details(job, now),
            "creationTime": iso_time(job.created_at),
            "lastModifiedTime": iso_time(self._last_modified(job, now)),
            "baseModelArn": job.base_model_arn,
            "hyperParameters": dict(job.hyperparameters),
            "trainingDataConfig": job.training_data_config,
            "validationDataConfig": job.validation_data_config,
            "outputDataConfig": job.output_data_config,
            "customizationType": "FINE_TUNING",
        }
        if job.token is not None:
            body["clientRequestToken"] = job.token
        if job.ended_at is not None:
            body["endTime"] = iso_time(job.ended_at)
        if job.failure_message is not None:
            body["failureMessage"] = job.failure_message
        if job.status == "Completed" and job.plan is not None:
            body["outputModelArn"] = job.model_arn
            body["trainingMetrics"] = {"trainingLoss": job.plan.curve.train_loss(job.plan.total_steps)}
            validation_loss = job.plan.curve.valid_loss(job.plan.total_steps)
            if validation_loss is not None:
                body["validationMetrics"] = [{"validationLoss": validation_loss}]
        return body

    def _listing(self, job: _Job, now: float) -> Listing:
        summary: dict[str, Any] = {
            "jobArn": job.arn,
            "baseModelArn": job.base_model_arn,
            "jobName": job.name,
            "status": job.status,
            "statusDetails": self._status_details(job, now),
            "lastModifiedTime": iso_time(self._last_modified(job, now)),
            "creationTime": iso_time(job.created_at),
            "customModelName": job.model_name,
            "customizationType": "FINE_TUNING",
        }
        if job.ended_at is not None:
            summary["endTime"] = iso_time(job.ended_at)
        if job.status == "Completed":
            summary["customModelArn"] = job.model_arn
        return Listing(job.name, job.status, job.created_at, summary)

    def _last_modified(self, job: _Job, now: float) -> float:
        if job.ended_at is not None:
            return job.ended_at
        if job.stop_requested_at is not None:
            return job.stop_requested_at
        return job.stage_bounds[job.stage_at(now)][0]

    def _status_details(self, job: _Job, now: float) -> dict[str, Any]:
        """Each stage's status: finished stages Completed, the current one as the job is, later ones
        NotStarted."""
        if job.status == "Completed":
            current, current_status = len(_STAGES), "Completed"
        elif job.halted_stage is not None:
            current, current_status = job.halted_stage, job.status
        else:
            current, current_status = job.stage_at(now), "InProgress"
        details: dict[str, Any] = {}
        for index, key in enumerate(_STAGES):
            start, end = job.stage_bounds[index]
            if index < current:
                details[key] = {
                    "status": "Completed",
                    "creationTime": iso_time(start),
                    "lastModifiedTime": iso_time(end),
                }
            elif index == current:
                details[key] = {
                    "status": current_status,
                    "creationTime": iso_time(start),
                    "lastModifiedTime": iso_time(self._last_modified(job, now)),
                }
            else:
                details[key] = {"status": "NotStarted"}
        return details


def _base_model(identifier: str) -> FoundationModel:
    base = customization_base(identifier)
    if base is None:
        raise validation_error(
            f"The provided base model identifier {identifier} is not supported for fine-tuning. "
            f"Use one of: {', '.join(customization_ids())}."
        )
    return base


def _check_customization_type(body: Mapping[str, Any]) -> None:
    kind = body.get("customizationType", "FINE_TUNING")
    if kind != "FINE_TUNING":
        raise validation_error(
            f"customizationType {kind!r} is not supported by the emulator; it emulates FINE_TUNING only."
        )
    if body.get("customizationConfig") is not None:
        raise validation_error(
            "customizationConfig configures distillation and reinforcement fine-tuning, "
            "which the emulator does not emulate; leave it out for FINE_TUNING."
        )


def _hyperparameters(raw: object, customization: Customization) -> dict[str, str]:
    """The job's hyperparameters, each given one checked against Bedrock's range, the rest defaulted."""
    given = {} if raw is None else raw
    if not isinstance(given, dict):
        raise constraint_error("hyperParameters", raw, "Member must be a map of strings to strings")
    known = {parameter.name: parameter for parameter in customization.hyperparameters}
    for key, value in given.items():
        parameter = known.get(key)
        if parameter is None:
            raise validation_error(
                f"The hyperparameter {key} is not supported for {customization.model_id}; "
                f"supported: {', '.join(known)}."
            )
        if not _in_range(value, parameter.kind, parameter.minimum, parameter.maximum):
            kind = "an integer" if parameter.kind is int else "a number"
            raise validation_error(
                f"The hyperparameter {key} has the invalid value {value!r}: expected {kind} "
                f"from {parameter.minimum:g} to {parameter.maximum:g}, as a string."
            )
    return {name: str(given.get(name, parameter.default)) for name, parameter in known.items()}


def _in_range(value: object, kind: type[int] | type[float], minimum: float, maximum: float) -> bool:
    if not isinstance(value, str):
        return False
    try:
        number: float = kind(value)
    except ValueError:
        return False
    return math.isfinite(number) and minimum <= number <= maximum


def _data_uri(config: object, field: str) -> str:
    if not isinstance(config, dict):
        raise constraint_error(field, config, "Member must not be null")
    uri = config.get("s3Uri")
    if not isinstance(uri, str):
        if config.get("invocationLogsConfig") is not None:
            raise validation_error("invocationLogsConfig is not supported by the emulator; give an s3Uri.")
        raise constraint_error(f"{field}.s3Uri", uri, "Member must not be null")
    if not S3_URI.fullmatch(uri):
        raise constraint_error(
            f"{field}.s3Uri", uri, f"Member must satisfy regular expression pattern: {S3_URI.pattern}"
        )
    return uri


def _validation_uris(config: object, customization: Customization) -> list[str]:
    if config is None:
        return []
    if not customization.accepts_validation_data:
        raise validation_error(
            f"validationDataConfig is not supported for {customization.model_id}; leave it out."
        )
    validators = config.get("validators") if isinstance(config, dict) else None
    if not isinstance(validators, list) or not 1 <= len(validators) <= _MAX_VALIDATORS:
        raise constraint_error(
            "validationDataConfig.validators",
            validators,
            f"Member must be a list of 1 to {_MAX_VALIDATORS} validators",
        )
    return [
        _data_uri(validator, f"validationDataConfig.validators.{index + 1}")
        for index, validator in enumerate(validators)
    ]
