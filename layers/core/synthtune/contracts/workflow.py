"""The contract between statemachine/pipeline.asl.json and the handlers: every state's input and output.

The state stays small — counts, statuses and S3 keys; the data itself lives in S3 — so a run with
10,000 shards is as far below the 256 KB payload limit as one with a single shard. The Generate Map
discards its results (each shard records its own outcome in S3 and DynamoDB); the Benchmark Map
returns one small score per contestant.

State after Prepare:  {run, generation, benchmark, batch: null}
then (batch mode) SubmitBatch/CheckBatch set `batch`, Assemble adds `dataset`,
StartFineTune/CheckFineTune `finetune`, the wait loop `wait`, PrepareServing/CheckServing `serving`
and its wait loop `serving_wait`, Benchmark `scores`, ReleaseServing `serving` again, Report `report`;
a Catch adds `failure.<StateName>` = {Error, Cause}. A second start for a problem set another run already
handles ends right after Prepare, whose output is then a `DuplicateStart`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from synthtune.contracts.config import Contestant, RunConfig
from synthtune.contracts.error_text import ProviderMessage
from synthtune.contracts.problems import SplitCounts
from synthtune.contracts.usage import Usage

FineTuneJobStatus = Literal[
    "validating_files", "queued", "running", "cancelling", "succeeded", "failed", "cancelled"
]
"""Every provider's job statuses in OpenAI's words (Bedrock: validation → validating_files, data processing
→ queued, training → running, Stopping → cancelling, Completed → succeeded, Failed, Stopped → cancelled)."""
FINAL_FINE_TUNE_STATUSES: frozenset[FineTuneJobStatus] = frozenset({"succeeded", "failed", "cancelled"})

ServingKind = Literal["none", "on_demand_deployment", "provisioned_throughput"]
ServingStatus = Literal["creating", "active", "failed", "released"]


class _Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class S3Location(_Contract):
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


class UploadedObject(BaseModel):
    """What S3's "Object Created" event says of the upload (the S3 trigger passes `detail.object` on)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    key: str | None = None
    size: int | None = None
    etag: str | None = None
    version_id: str | None = Field(default=None, alias="version-id")
    sequencer: str | None = None


class StartRequest(_Contract):
    """The execution input: from the CLI, the console, or EventBridge on an S3 upload.

    One run per version of a problem set: a start for a version another run already handles ends at once
    (see `DuplicateStart`), unless `rerun` asks for another run on purpose."""

    key: str = Field(min_length=1, description="Object key of the problem set.")
    bucket: str | None = Field(default=None, description="Defaults to the stack's data bucket.")
    config: dict[str, Any] | None = Field(default=None, description="RunConfig fields to change.")
    object: UploadedObject | None = Field(
        default=None, description="Set by the S3 trigger: the upload the event announced."
    )
    rerun: bool = Field(
        default=False,
        description="Run even if another run already handles this version of the problem set.",
    )


class PrepareInput(_Contract):
    run_id: str = Field(min_length=1)
    input: dict[str, Any] = Field(description="The raw execution input; validated by Prepare.")


class RunRef(_Contract):
    run_id: str
    bucket: str = Field(description="The data bucket every artifact of the run is written to.")
    problem_set: S3Location
    config: RunConfig


class GenerationPlan(_Contract):
    manifest_key: str = Field(description="JSON array of ShardRef, read by the Distributed Map.")
    shard_count: int
    problem_count: int
    splits: SplitCounts


class BenchmarkPlan(_Contract):
    problem_count: int
    contestants: list[Contestant]


class BatchState(_Contract):
    """Where batch generation stands: the loop SubmitBatch → WaitForBatch → CheckBatch carries it."""

    round: int = Field(ge=1, description="Submission round: 1, then one more per resubmission.")
    batch_ids: list[str]
    status: Literal["in_progress", "resubmit", "collected"]
    requests: int = Field(description="Requests submitted this round.")
    succeeded: int = Field(default=0, description="This round's requests answered so far.")
    missing: int = Field(default=0, description="Problems without a teacher reply after this round.")


class PrepareOutput(_Contract):
    status: Literal["PREPARED"] = Field(
        default="PREPARED", description="A `DuplicateStart`'s is DUPLICATE: how the StartedOnce Choice tells."
    )
    run: RunRef
    generation: GenerationPlan
    benchmark: BenchmarkPlan
    batch: BatchState | None = Field(
        default=None,
        description="Always null here: the batch loop's state, present so SubmitBatch can read it.",
    )


class DuplicateStart(_Contract):
    """Prepare's output when another run already handles this version of the problem set: the execution
    ends right there (AlreadyHandled), having read nothing and spent nothing."""

    run_id: str
    status: Literal["DUPLICATE"] = "DUPLICATE"
    duplicate_of: str = Field(description="The run that handles this version of the problem set.")
    problem_set: S3Location
    etag: str
    version_id: str | None = None
    message: str


class ShardRef(_Contract):
    index: int = Field(ge=0)
    problem_count: int = Field(ge=1)


class ShardTask(_Contract):
    run: RunRef
    shard: ShardRef


class ShardResult(_Contract):
    index: int
    problems: int
    answered: int
    verified: int
    rejected: int
    failed: int


class BatchTask(_Contract):
    run: RunRef
    generation: GenerationPlan
    batch: BatchState | None = Field(default=None, description="The previous round's state, if any.")


class AssembleInput(_Contract):
    run: RunRef
    generation: GenerationPlan


class DatasetSummary(_Contract):
    train_key: str
    validation_key: str | None
    train_examples: int
    validation_examples: int
    train_tokens: int = Field(description="Billed tokens in the training file, one epoch.")
    dropped: dict[str, int]
    epochs: int | None = Field(default=None, description="The epochs the job will run (configured or auto).")
    estimated_training_usd: float | None = Field(
        default=None, description="train_tokens x epochs at the student's training price; None if unpriced."
    )
    card_key: str | None = Field(default=None, description="dataset_card.json: every count and drop reason.")
    format: str = Field(
        default="openai-chat",
        description="The format of train_key and validation_key: the student's provider's fine-tuning "
        "format.",
    )


class FineTuneInput(_Contract):
    run: RunRef
    dataset: DatasetSummary


class FineTuneState(_Contract):
    backend: str = Field(description="The provider the student is fine-tuned and served on.")
    job_id: str = Field(description="The provider's job id (Bedrock: the job's ARN).")
    status: FineTuneJobStatus
    base_model: str = Field(description="The student, by its canonical name.")
    fine_tuned_model: str | None = Field(
        default=None, description="The trained model's canonical name (Bedrock: bedrock/<custom model ARN>)."
    )
    trained_tokens: int | None = Field(
        default=None,
        description="Tokens the job billed: as the provider reports them, or the dataset's tokens x epochs "
        "where it reports none (Bedrock).",
    )
    epochs: int | None = None
    train_tokens_per_epoch: int | None = Field(
        default=None, description="The training file's billed tokens, one epoch (from Assemble)."
    )
    training_loss: float | None = Field(default=None, description="The last step's training loss.")
    best_training_loss: float | None = Field(
        default=None, description="The lowest training loss of any step."
    )
    validation_loss: float | None = Field(default=None, description="The last reported validation loss.")
    best_validation_loss: float | None = Field(
        default=None, description="The lowest validation loss reported (None without a validation file)."
    )
    metrics_key: str | None = Field(default=None, description="training_metrics.csv: the loss per step.")
    error: ProviderMessage = Field(
        default="", description="Why the job failed or was cancelled; empty otherwise (redacted, bounded)."
    )
    attempt: int = Field(
        default=0,
        ge=0,
        description="Which of the run's jobs this is: 0, the first; a resumed run whose job ended failed or "
        "cancelled starts the next (see stages.finetune).",
    )

    @property
    def billed_tokens(self) -> int | None:
        """What the job bills for: the provider's count, else the file's tokens times the epochs."""
        if self.trained_tokens is not None:
            return self.trained_tokens
        if self.train_tokens_per_epoch is not None and self.epochs is not None:
            return self.train_tokens_per_epoch * self.epochs
        return None


class FineTuneCheck(_Contract):
    run: RunRef
    finetune: FineTuneState


class ServingState(_Contract):
    """What makes the fine-tuned model answer, for the benchmark (PrepareServing → CheckServing → Release)."""

    provider: str
    kind: ServingKind = Field(
        description="none: the provider serves fine-tuned models as they are (OpenAI); on_demand_deployment: "
        "a Bedrock custom model deployment, billed per token; provisioned_throughput: billed by the hour."
    )
    status: ServingStatus
    model: str = Field(description="The fine-tuned model served, by its canonical name.")
    endpoint: str | None = Field(default=None, description="What requests name instead of the model.")
    resource: str | None = Field(default=None, description="The deployment's or provisioned model's ARN.")
    name: str | None = Field(default=None, description="Its name (deterministic from the run id).")
    created_at: str | None = None
    error: ProviderMessage = ""
    kept: bool = Field(default=False, description="Left in place at the end because keep_deployment is set.")


class ServingTask(_Contract):
    run: RunRef
    finetune: FineTuneState
    serving: ServingState | None = Field(default=None, description="What PrepareServing returned, if it ran.")


class BenchmarkTask(_Contract):
    run: RunRef
    benchmark: BenchmarkPlan
    finetune: FineTuneState
    serving: ServingState | None = None
    contestant: Contestant


BenchmarkOutcome = Literal["correct", "wrong", "abstained", "no_answer"]
"""What one benchmark answer was: right; a final answer that is wrong (a hallucination, when the model
attempted it); the model said it does not know; or no usable answer (empty, refused, truncated)."""


class ContestantScore(_Contract):
    contestant: Contestant
    model: str
    total: int
    correct: int
    accuracy: float
    answered: int = Field(description="Replies that had a final answer at all.")
    abstained: int = Field(default=0, description="Answers that said the model does not know.")
    no_answer: int = Field(default=0, description="Replies with no usable answer: empty, refused, truncated.")
    abstention_rate: float = Field(default=0.0, description="abstained / total.")
    hallucination_rate: float | None = Field(
        default=None,
        description="Wrong among attempted: wrong / (correct + wrong); None when nothing was attempted.",
    )
    usage: dict[str, Usage] = Field(description="Tokens by model: the contestant's and the judge's.")
    judge_usage: dict[str, Usage] = Field(
        default_factory=dict,
        description="The judge's part of `usage`, by model (empty in runs from before it was kept apart).",
    )
    probe_usage: dict[str, Usage] = Field(
        default_factory=dict,
        description="The base contestant's probe of the held-out problems after its benchmark (for analysis "
        "only), by model: the student's requests and the judge's verdicts; not part of `usage`.",
    )


class ReportInput(_Contract):
    run: RunRef
    generation: GenerationPlan
    dataset: DatasetSummary
    finetune: FineTuneState
    serving: ServingState | None = None
    benchmark: BenchmarkPlan
    scores: list[ContestantScore]


class ReportOutput(_Contract):
    run_id: str
    status: Literal["SUCCEEDED"]
    summary: S3Location
    report: S3Location
    accuracy: dict[str, float]
    cost_usd: float


class StateFailure(BaseModel):
    """What a Catch puts at failure.<StateName> (Step Functions' own capitalised field names)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    Error: str
    Cause: str = ""


class FailureInput(_Contract):
    run_id: str
    failure: dict[str, StateFailure]


class ExecutionEnded(BaseModel):
    """The detail of EventBridge's "Step Functions Execution Status Change" event, for an execution that
    ended FAILED, TIMED_OUT or ABORTED: how RecordFailure hears of a failure no Catch could handle
    (States.DataLimitExceeded, an execution stopped by hand or out of time)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    executionArn: str
    stateMachineArn: str
    name: str = Field(description="The execution's name: the run id.")
    status: Literal["FAILED", "TIMED_OUT", "ABORTED"]
    error: str | None = None
    cause: str | None = None


class ExecutionStatusChange(BaseModel):
    """The EventBridge event around `ExecutionEnded` (only the fields RecordFailure reads)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    source: Literal["aws.states"]
    detail_type: Literal["Step Functions Execution Status Change"] = Field(alias="detail-type")
    detail: ExecutionEnded


class FailureEvent(RootModel[FailureInput | ExecutionStatusChange]):
    """What RecordFailure is invoked with: a Catch's failure, or the end of an execution no Catch saw."""


CleanupResource = Literal[
    "batch", "fine_tune_job", "on_demand_deployment", "provisioned_throughput", "serving"
]
CleanupOutcome = Literal["cancelled", "deleted", "kept", "failed"]


class CleanupStep(_Contract):
    """Something the run created that could still bill, and what RecordFailure did about it."""

    resource: CleanupResource = Field(
        description="batch (the teacher's Batch API requests), fine_tune_job, or what served the "
        "fine-tuned model (serving: not known, the lookup failed)."
    )
    id: str = Field(description="The provider's id or ARN; or the name the run gives it.")
    outcome: CleanupOutcome = Field(
        description="cancelled or deleted; kept (keep_deployment); failed: it may still be running."
    )
    detail: str = Field(default="", description="Why it failed (redacted), or what the provider said.")


class FailureRecord(_Contract):
    run_id: str
    status: Literal["FAILED", "TIMED_OUT", "ABORTED"] = "FAILED"
    state: str
    error: str
    cause: str = Field(description="Redacted and at most a few KB; the whole text is at cause_key.")
    cause_key: str | None = Field(default=None, description="The whole cause, in the data bucket.")
    cleanup: list[CleanupStep] = Field(
        default_factory=list, description="What the run had left running, cancelled or deleted (or not)."
    )
    already_recorded: bool = Field(
        default=False, description="The run had ended before this failure was reported: nothing changed."
    )
