"""Fine-tuning jobs: validation at create, a lifecycle on the emulator's clock, and the models they make.

Nothing runs in the background. A job's schedule is fixed when it is created (validating_files for
`validation_seconds`, queued for `queue_seconds`, running for a time set by its trained tokens), and every
read works out where the job stands at `clock.now()`. Events, checkpoints and the result file appear only
once their time has come, so a test that steps a VirtualClock sees every status in order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from synthtune_cli.emulator.catalogue import (
    BASE_MODELS,
    SimulatedModel,
    base_model,
    fine_tuned_model_name,
    is_fine_tunable,
    training_snapshot,
)
from synthtune_cli.emulator.draws import IdFactory, draw, token
from synthtune_cli.emulator.errors import ApiError, bad_request, model_not_found
from synthtune_cli.emulator.files import FileStore, StoredFile, cursor_page
from synthtune_cli.emulator.knobs import EmulatorKnobs
from synthtune_cli.emulator.knowledge import Knowledge
from synthtune_cli.emulator.learning import TrainingAssessment, assess, fine_tuned
from synthtune_cli.emulator.tokens import count_message_tokens
from synthtune_cli.emulator.training_data import MIN_TRAINING_EXAMPLES, TrainingDataError, read_examples

ORGANIZATION_ID = "org-synthtune-emulator"
FINAL_STATUSES = ("succeeded", "failed", "cancelled")
_MAX_SUFFIX = 64
_MAX_METADATA_KEYS = 16
# Step events are thinned to about this many per job; the result file keeps every step.
_MAX_STEP_EVENTS = 100
_AUTO_LEARNING_RATE_MULTIPLIER = 1.8
_HYPERPARAMETER_RANGES: dict[str, tuple[type, float, float]] = {
    "n_epochs": (int, 1, 50),
    "batch_size": (int, 1, 256),
    "learning_rate_multiplier": (float, 1e-9, 50),
}


def auto_epochs(examples: int) -> int:
    """OpenAI's documented rule: 3 epochs, moved so that examples × epochs stays within 100..25,000."""
    epochs = 3
    if examples * epochs < 100:
        epochs = min(25, math.ceil(100 / examples))
    elif examples * epochs > 25_000:
        epochs = max(1, 25_000 // examples)
    return epochs


def auto_batch_size(examples: int) -> int:
    """About 0.2% of the examples, between 1 and 256."""
    return max(1, min(256, math.ceil(examples * 0.002)))


@dataclass(frozen=True)
class LossCurve:
    """A deterministic loss curve that ends higher when the data is wrong, unformatted or scarce."""

    start: float
    floor: float
    total_steps: int
    key: str
    validation_gap: float | None

    @classmethod
    def for_data(
        cls, assessment: TrainingAssessment, total_steps: int, key: str, validated: bool
    ) -> LossCurve:
        floor = (
            0.12
            + 1.1 * assessment.answer_noise
            + 0.5 * assessment.format_noise
            + 0.35 * math.exp(-assessment.examples / 40)
        )
        gap = 0.05 + 0.25 * assessment.answer_noise if validated else None
        return cls(2.0 + 0.4 * draw(key, "start"), floor, total_steps, key, gap)

    def train_loss(self, step: int) -> float:
        progress = step / self.total_steps
        trend = self.floor + (self.start - self.floor) * math.exp(-4 * progress)
        wobble = (draw(self.key, "step", step) - 0.5) * 0.08 * (1 - 0.5 * progress)
        return round(max(0.01, trend + wobble), 4)

    def train_accuracy(self, step: int) -> float:
        return round(min(1.0, max(0.0, 1 - self.train_loss(step) / 2.6)), 4)

    def valid_loss(self, step: int) -> float | None:
        return None if self.validation_gap is None else round(self.train_loss(step) + self.validation_gap, 4)

    def metrics(self, step: int) -> dict[str, Any]:
        metrics: dict[str, Any] = {
            "step": step,
            "train_loss": self.train_loss(step),
            "train_mean_token_accuracy": self.train_accuracy(step),
        }
        valid_loss = self.valid_loss(step)
        if valid_loss is not None:
            metrics["valid_loss"] = valid_loss
            metrics["valid_mean_token_accuracy"] = round(min(1.0, max(0.0, 1 - valid_loss / 2.6)), 4)
        return metrics


@dataclass(frozen=True)
class _Plan:
    """What a job with valid data will do, fixed at create."""

    assessment: TrainingAssessment
    n_epochs: int
    batch_size: int
    learning_rate_multiplier: float
    steps_per_epoch: int
    trained_tokens: int
    curve: LossCurve

    @property
    def total_steps(self) -> int:
        return self.n_epochs * self.steps_per_epoch


@dataclass(frozen=True)
class _Event:
    at: float
    key: str
    message: str
    level: str = "info"
    data: Mapping[str, Any] = field(default_factory=dict)
    kind: str = "message"


@dataclass
class _Job:
    id: str
    model: str
    training_file: str
    validation_file: str | None
    requested: dict[str, Any]
    suffix: str | None
    seed: int
    metadata: dict[str, str] | None
    created_at: float
    validated_at: float
    started_at: float
    planned_finish: float
    model_name: str
    plan: _Plan | None
    problem: dict[str, str | None] | None
    status: str = "validating_files"
    ended_at: float | None = None
    error: dict[str, str | None] | None = None
    result_file: str | None = None

    def step_time(self, step: int) -> float:
        assert self.plan is not None
        return self.started_at + (self.planned_finish - self.started_at) * step / self.plan.total_steps


@dataclass(frozen=True)
class FineTunedModel:
    name: str
    created_at: int
    job_id: str
    simulated: SimulatedModel


class FineTuning:
    """Jobs and the fine-tuned models they made. Not thread-safe: the emulator's state lock guards it."""

    def __init__(self, files: FileStore, knowledge: Knowledge, ids: IdFactory, seed: int) -> None:
        self._files = files
        self._knowledge = knowledge
        self._ids = ids
        self._seed = seed
        self._jobs: dict[str, _Job] = {}
        self._models: dict[str, FineTunedModel] = {}

    def clear(self) -> None:
        self._jobs.clear()
        self._models.clear()

    @property
    def job_count(self) -> int:
        return len(self._jobs)

    @property
    def models(self) -> dict[str, FineTunedModel]:
        return dict(self._models)

    def find_model(self, name: str) -> FineTunedModel | None:
        return self._models.get(name)

    def delete_model(self, name: str) -> None:
        self._models.pop(name)

    # -- create -----------------------------------------------------------------------------------

    def create(self, body: Mapping[str, Any], now: float, knobs: EmulatorKnobs) -> dict[str, Any]:
        snapshot = self._validated_model(body.get("model"), knobs)
        training = self._validated_file(body.get("training_file"), "training_file")
        validation_id = body.get("validation_file")
        validation = None if validation_id is None else self._validated_file(validation_id, "validation_file")
        requested = _validated_hyperparameters(body)
        suffix = _validated_suffix(body.get("suffix"))
        metadata = validated_metadata(body.get("metadata"))
        seed = body.get("seed")
        if seed is not None and (
            not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**31
        ):
            raise bad_request("seed must be an integer between 0 and 2147483647.", param="seed")

        job_id = self._ids.new("ftjob-")
        plan, problem = self._plan(job_id, snapshot, training, validation, requested)
        validated_at = now + knobs.validation_seconds
        started_at = validated_at + knobs.queue_seconds
        running = 0.0
        if plan is not None:
            by_tokens = knobs.training_seconds_per_1k_tokens * plan.trained_tokens / 1000
            running = max(knobs.min_training_seconds, by_tokens)
        job = _Job(
            id=job_id,
            model=snapshot,
            training_file=training.id,
            validation_file=validation.id if validation else None,
            requested=requested,
            suffix=suffix,
            seed=seed if isinstance(seed, int) else int(draw(self._seed, job_id, "seed") * 2**31),
            metadata=metadata,
            created_at=now,
            validated_at=validated_at,
            started_at=started_at,
            planned_finish=started_at + running,
            model_name=fine_tuned_model_name(snapshot, suffix, token(8, self._seed, job_id, "model")),
            plan=plan,
            problem=problem,
        )
        self._jobs[job_id] = job
        return self._to_api(job)

    def _validated_model(self, model: object, knobs: EmulatorKnobs) -> str:
        if not isinstance(model, str) or not model:
            raise bad_request("Missing required parameter: 'model'.", param="model")
        if is_fine_tunable(model):
            return training_snapshot(model)
        if model in BASE_MODELS or model in self._models:
            raise ApiError(
                400,
                f"Model {model} is not available for fine-tuning or does not exist.",
                param="model",
                code="model_not_available",
            )
        if knobs.accept_unknown_models:
            return model
        raise model_not_found(model)

    def _validated_file(self, file_id: object, param: str) -> StoredFile:
        if not isinstance(file_id, str) or not file_id:
            raise bad_request(f"Missing required parameter: '{param}'.", param=param)
        stored = self._files.find(file_id)
        if stored is None:
            raise bad_request(f"invalid {param}: {file_id}", param=param)
        if stored.purpose != "fine-tune":
            raise bad_request(
                f"File {file_id} has purpose '{stored.purpose}'; fine-tuning needs purpose 'fine-tune'.",
                param=param,
            )
        return stored

    def _plan(
        self,
        job_id: str,
        snapshot: str,
        training: StoredFile,
        validation: StoredFile | None,
        requested: dict[str, Any],
    ) -> tuple[_Plan | None, dict[str, str | None] | None]:
        """The job's plan, or the data problem it will fail on once validation time is up."""
        try:
            examples = read_examples(training.content, MIN_TRAINING_EXAMPLES)
        except TrainingDataError as error:
            return None, _data_problem("training_file", error)
        if validation is not None:
            try:
                read_examples(validation.content, 1)
            except TrainingDataError as error:
                return None, _data_problem("validation_file", error)
        count = len(examples)
        n_epochs = _resolved(requested["n_epochs"], auto_epochs(count))
        batch_size = min(_resolved(requested["batch_size"], auto_batch_size(count)), count)
        multiplier = requested["learning_rate_multiplier"]
        learning_rate = _AUTO_LEARNING_RATE_MULTIPLIER if multiplier == "auto" else float(multiplier)
        steps_per_epoch = math.ceil(count / batch_size)
        tokens_per_epoch = sum(count_message_tokens(list(example.messages)) for example in examples)
        assessment = assess(examples, self._knowledge, base_model(snapshot), self._seed)
        curve = LossCurve.for_data(assessment, n_epochs * steps_per_epoch, job_id, validation is not None)
        plan = _Plan(
            assessment,
            n_epochs,
            batch_size,
            learning_rate,
            steps_per_epoch,
            tokens_per_epoch * n_epochs,
            curve,
        )
        return plan, None

    # -- lifecycle --------------------------------------------------------------------------------

    def refresh(self, now: float, knobs: EmulatorKnobs) -> None:
        """Move every unfinished job to where it stands at `now`."""
        for job in self._jobs.values():
            self._advance(job, now, knobs)

    def _advance(self, job: _Job, now: float, knobs: EmulatorKnobs) -> None:
        if job.status in FINAL_STATUSES:
            return
        if now < job.validated_at:
            job.status = "validating_files"
        elif job.plan is None:
            job.error = job.problem
            self._end(job, "failed", job.validated_at)
        elif now < job.started_at:
            job.status = "queued"
        elif knobs.fine_tune_failure is not None:
            # A failure is noticed at the first read that finds the job running with the knob set.
            job.error = {"code": "job_failed", "param": None, "message": knobs.fine_tune_failure}
            self._end(job, "failed", min(now, job.planned_finish))
        elif now < job.planned_finish:
            job.status = "running"
        else:
            self._succeed(job)

    def _end(self, job: _Job, status: str, at: float) -> None:
        job.status = status
        job.ended_at = at

    def _succeed(self, job: _Job) -> None:
        assert job.plan is not None
        finished = int(job.planned_finish)
        result = StoredFile(
            id="file-" + token(24, self._seed, job.id, "result"),
            filename="step_metrics.csv",
            purpose="fine-tune-results",
            content=_result_csv(job.plan).encode("utf-8"),
            created_at=finished,
        )
        job.result_file = self._files.add(result).id
        simulated = fine_tuned(base_model(job.model), job.plan.assessment)
        self._models[job.model_name] = FineTunedModel(job.model_name, finished, job.id, simulated)
        self._end(job, "succeeded", job.planned_finish)

    def cancel(self, job_id: str, now: float, knobs: EmulatorKnobs) -> dict[str, Any]:
        job = self._job(job_id)
        self._advance(job, now, knobs)
        if job.status in FINAL_STATUSES:
            raise bad_request(f"Job {job_id} has already {job.status} and cannot be cancelled.", param="id")
        self._end(job, "cancelled", now)
        return self._to_api(job)

    # -- reads ------------------------------------------------------------------------------------

    def retrieve(self, job_id: str) -> dict[str, Any]:
        return self._to_api(self._job(job_id))

    def page(
        self, after: str | None, limit: int, metadata: dict[str, str] | None, null_metadata: bool
    ) -> dict[str, Any]:
        if not 1 <= limit <= 100:
            raise bad_request("limit must be between 1 and 100.", param="limit")
        jobs = list(reversed(self._jobs.values()))
        if null_metadata:
            jobs = [job for job in jobs if job.metadata is None]
        elif metadata:
            jobs = [
                job
                for job in jobs
                if all((job.metadata or {}).get(key) == value for key, value in metadata.items())
            ]
        return cursor_page([self._to_api(job) for job in jobs], after, limit)

    def events(self, job_id: str, now: float, after: str | None, limit: int) -> dict[str, Any]:
        job = self._job(job_id)
        timeline = list(enumerate(self._timeline(job)))
        visible = [
            event for _, event in sorted(timeline, key=lambda pair: (pair[1].at, pair[0]), reverse=True)
        ]
        items = [
            {
                "id": "ftevent-" + token(24, self._seed, job.id, event.key),
                "object": "fine_tuning.job.event",
                "created_at": int(event.at),
                "level": event.level,
                "message": event.message,
                "data": dict(event.data),
                "type": event.kind,
            }
            for event in visible
            if event.at <= now
        ]
        return cursor_page(items, after, _page_limit(limit))

    def checkpoints(self, job_id: str, now: float, after: str | None, limit: int) -> dict[str, Any]:
        job = self._job(job_id)
        if job.plan is None:
            return cursor_page([], after, _page_limit(limit))
        # A job that failed or was cancelled keeps the checkpoints of the epochs it finished before that.
        cut = job.ended_at if job.status in ("failed", "cancelled") else None
        items = []
        for epoch in range(job.plan.n_epochs, 0, -1):
            step = epoch * job.plan.steps_per_epoch
            at = job.step_time(step)
            if at > now or (cut is not None and at >= cut):
                continue
            items.append(
                {
                    "id": "ftckpt_" + token(24, self._seed, job.id, "checkpoint", step),
                    "object": "fine_tuning.job.checkpoint",
                    "created_at": int(at),
                    "fine_tuned_model_checkpoint": f"{job.model_name}:ckpt-step-{step}",
                    "fine_tuning_job_id": job.id,
                    "metrics": job.plan.curve.metrics(step),
                    "step_number": step,
                }
            )
        return cursor_page(items, after, _page_limit(limit))

    def jobs_snapshot(self) -> dict[str, dict[str, Any]]:
        return {job_id: self._to_api(job) for job_id, job in self._jobs.items()}

    def _job(self, job_id: str) -> _Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise ApiError(404, f"No fine-tuning job found with id {job_id}.", param="id")
        return job

    def _timeline(self, job: _Job) -> list[_Event]:
        """Every event of the job up to its end, in the order they happen."""
        validating = f"Validating training file: {job.training_file}"
        if job.validation_file:
            validating += f" and validation file: {job.validation_file}"
        events = [_Event(job.created_at, "created", f"Created fine-tuning job: {job.id}")]
        events.append(_Event(job.created_at, "validating", validating))
        if job.plan is not None:
            events += self._training_events(job, job.plan)
        if job.status == "failed" and job.error is not None and job.ended_at is not None:
            events = [event for event in events if event.at < job.ended_at]
            events.append(_Event(job.ended_at, "failed", str(job.error["message"]), level="error"))
        elif job.status == "cancelled" and job.ended_at is not None:
            events = [event for event in events if event.at < job.ended_at]
            events.append(_Event(job.ended_at, "cancelled", "Fine-tuning job cancelled."))
        return events

    def _training_events(self, job: _Job, plan: _Plan) -> list[_Event]:
        total = plan.total_steps
        every = math.ceil(total / _MAX_STEP_EVENTS)
        events = [
            _Event(job.validated_at, "validated", "Files validated, moving job to queued state"),
            _Event(job.started_at, "started", "Fine-tuning job started"),
        ]
        for step in range(1, total + 1):
            at = job.step_time(step)
            if step % every == 0 or step == total:
                metrics = {**plan.curve.metrics(step), "total_steps": total}
                message = f"Step {step}/{total}: training loss={plan.curve.train_loss(step):.4f}"
                events.append(_Event(at, f"step-{step}", message, data=metrics, kind="metrics"))
            if step % plan.steps_per_epoch == 0:
                events.append(_Event(at, f"checkpoint-{step}", f"Checkpoint created at step {step}"))
        events.append(_Event(job.planned_finish, "model", f"New fine-tuned model created: {job.model_name}"))
        events.append(_Event(job.planned_finish, "succeeded", "The job has successfully completed"))
        return events

    def _to_api(self, job: _Job) -> dict[str, Any]:
        plan = job.plan
        hyperparameters: dict[str, Any] = dict(job.requested)
        if plan is not None and job.status != "validating_files":
            hyperparameters = {
                "n_epochs": plan.n_epochs,
                "batch_size": plan.batch_size,
                "learning_rate_multiplier": plan.learning_rate_multiplier,
            }
        succeeded = job.status == "succeeded"
        return {
            "id": job.id,
            "object": "fine_tuning.job",
            "created_at": int(job.created_at),
            "error": job.error,
            "fine_tuned_model": job.model_name if succeeded else None,
            "finished_at": int(job.ended_at) if job.ended_at is not None else None,
            "hyperparameters": hyperparameters,
            "model": job.model,
            "organization_id": ORGANIZATION_ID,
            "result_files": [job.result_file] if job.result_file else [],
            "seed": job.seed,
            "status": job.status,
            "trained_tokens": plan.trained_tokens if succeeded and plan is not None else None,
            "training_file": job.training_file,
            "validation_file": job.validation_file,
            "estimated_finish": int(job.planned_finish) if job.status in ("queued", "running") else None,
            "integrations": [],
            "metadata": job.metadata,
            "method": {"type": "supervised", "supervised": {"hyperparameters": hyperparameters}},
            "user_provided_suffix": job.suffix,
        }


def _data_problem(param: str, error: TrainingDataError) -> dict[str, str | None]:
    return {
        "code": f"invalid_{param}",
        "param": param,
        "message": f"Invalid {param.replace('_', ' ')}: {error}",
    }


def _resolved(value: Any, auto: int) -> int:
    return auto if value == "auto" else int(value)


def _page_limit(limit: int) -> int:
    if not 1 <= limit <= 100:
        raise bad_request("limit must be between 1 and 100.", param="limit")
    return limit


def _validated_hyperparameters(body: Mapping[str, Any]) -> dict[str, Any]:
    """The requested hyperparameters, each "auto" or a number in range, from either place OpenAI reads."""
    given = body.get("hyperparameters")
    param = "hyperparameters"
    method = body.get("method")
    if method is not None:
        if not isinstance(method, dict) or method.get("type") != "supervised":
            kind = method.get("type") if isinstance(method, dict) else method
            raise bad_request(
                f"Fine-tuning method {kind!r} is not supported by the emulator; use 'supervised'.",
                param="method.type",
            )
        supervised = method.get("supervised") or {}
        if not isinstance(supervised, dict):
            raise bad_request("method.supervised must be an object.", param="method.supervised")
        if supervised.get("hyperparameters") is not None:
            if given is not None:
                raise bad_request(
                    "Give hyperparameters either at the top level or in method.supervised, not both.",
                    param="hyperparameters",
                )
            given, param = supervised["hyperparameters"], "method.supervised.hyperparameters"
    given = {} if given is None else given
    if not isinstance(given, dict):
        raise bad_request(f"{param} must be an object.", param=param)
    unknown = sorted(set(given) - set(_HYPERPARAMETER_RANGES))
    if unknown:
        raise bad_request(f"Unknown hyperparameter {unknown[0]!r}.", param=f"{param}.{unknown[0]}")
    requested: dict[str, Any] = {}
    for name, (kind, low, high) in _HYPERPARAMETER_RANGES.items():
        value = given.get(name, "auto")
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if kind is int and numeric and value != int(value):
            numeric = False
        if value != "auto" and not (numeric and low <= value <= high):
            raise bad_request(
                f"Invalid {name}: {value!r}. Expected 'auto' or a number between {low:g} and {high:g}.",
                param=f"{param}.{name}",
            )
        requested[name] = value if value == "auto" else kind(value)
    return requested


def _validated_suffix(suffix: object) -> str | None:
    if suffix is None:
        return None
    if not isinstance(suffix, str):
        raise bad_request("suffix must be a string.", param="suffix")
    if len(suffix) > _MAX_SUFFIX:
        raise bad_request(
            f"suffix is {len(suffix)} characters long; the maximum is {_MAX_SUFFIX}.", param="suffix"
        )
    return suffix or None


def validated_metadata(metadata: object) -> dict[str, str] | None:
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise bad_request("metadata must be an object of string keys and values.", param="metadata")
    if len(metadata) > _MAX_METADATA_KEYS:
        raise bad_request(
            f"metadata has {len(metadata)} keys; the maximum is {_MAX_METADATA_KEYS}.", param="metadata"
        )
    for key, value in metadata.items():
        if not isinstance(value, str) or len(key) > 64 or len(value) > 512:
            raise bad_request(
                f"metadata[{key!r}] must be a string of at most 512 characters, under a key of at most 64.",
                param="metadata",
            )
    return dict(metadata)


def _result_csv(plan: _Plan) -> str:
    lines = ["step,train_loss,train_accuracy,valid_loss"]
    for step in range(1, plan.total_steps + 1):
        valid = plan.curve.valid_loss(step)
        row = (
            step,
            plan.curve.train_loss(step),
            plan.curve.train_accuracy(step),
            "" if valid is None else valid,
        )
        lines.append(",".join(str(value) for value in row))
    return "\n".join(lines) + "\n"
