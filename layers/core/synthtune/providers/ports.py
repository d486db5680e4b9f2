"""What the pipeline needs from a model provider, said in the pipeline's own words.

Every provider (`providers/openai`, `providers/bedrock`) implements these ports; nothing outside
`providers/` sees a provider's SDK, payloads, headers or status words. The ports:

- `ChatPort`: a neutral completion — text or a structured answer, a stop reason, token usage, and the
  back-pressure the provider signalled (`Backpressure`, which the pacing gate reads);
- `BatchPort`: many teacher requests as one asynchronous batch, at the provider's batch price;
- `FineTuningPort`: a supervised fine-tuning job on the dataset's S3 location, in the provider's format;
- `ServingPort`: whatever a fine-tuned model needs before it answers (a Bedrock deployment), and its release;
- `DatasetFormat`: how a training example is written in the provider's file format, and checked;
- `ModelsPort`: whether a model can be used (today, at this endpoint), offline and by asking the provider.

The neutral stop reasons are `stop` (the model finished), `length` (cut off at the token limit),
`content_filter` (withheld by a filter or guardrail), `refusal` (the model declined) and `invalid_json` (a
structured answer that does not parse). Neutral fine-tuning statuses are those of
`contracts.workflow.FineTuneJobStatus`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from synthtune.contracts.config import FineTuneHyperparameters
from synthtune.contracts.examples import ChatExample
from synthtune.contracts.usage import Usage
from synthtune.contracts.workflow import FineTuneState, S3Location, ServingState
from synthtune.prompts import SOLVER_SYSTEM_PROMPT, Exemplar, Solution, Verdict
from synthtune.quality.format_report import FormatReport

ModelRole = Literal["teacher", "judge", "student"]


class Backpressure(BaseModel):
    """What the provider said about its rate-limit window (absent fields were not said).

    OpenAI sends it with every response (`retry-after`, `x-ratelimit-*`); Bedrock says nothing but
    ThrottlingException, so its replies carry none and the gate falls back to its own backoff.
    """

    model_config = ConfigDict(frozen=True)

    retry_after_seconds: float | None = None
    remaining_requests: int | None = None
    remaining_tokens: int | None = None
    reset_requests_seconds: float | None = None
    reset_tokens_seconds: float | None = None

    def wait_after_429(self) -> float | None:
        """How long the provider asks a rejected request to wait, from the most specific advice."""
        if self.retry_after_seconds is not None:
            return self.retry_after_seconds
        exhausted = [
            reset
            for remaining, reset in (
                (self.remaining_requests, self.reset_requests_seconds),
                (self.remaining_tokens, self.reset_tokens_seconds),
            )
            if reset is not None and (remaining is None or remaining <= 0)
        ]
        return max(exhausted) if exhausted else None

    def wait_before_next(self, tokens_per_request: int) -> float:
        """After a success: how long to hold further requests because the window is used up (0: none)."""
        waits = [0.0]
        if self.remaining_requests is not None and self.remaining_requests <= 0:
            waits.append(self.reset_requests_seconds or 0.0)
        if self.remaining_tokens is not None and self.remaining_tokens < max(1, tokens_per_request):
            waits.append(self.reset_tokens_seconds or 0.0)
        return max(waits)


class Reply(BaseModel):
    """A free-text completion."""

    model_config = ConfigDict(frozen=True)

    model: str = Field(description="The canonical name the call is priced and recorded under.")
    text: str | None
    finish_reason: str = Field(description="A neutral stop reason (see the module's docstring).")
    usage: Usage
    refusal: str | None = None
    backpressure: Backpressure | None = None


class Sample(BaseModel):
    """One sampled solution: None (with the reason in finish_reason/refusal) when it is unusable."""

    model_config = ConfigDict(frozen=True)

    solution: Solution | None
    finish_reason: str
    refusal: str | None = None


class SolveResult(BaseModel):
    """The samples of one or more requests for one problem, billed together."""

    model_config = ConfigDict(frozen=True)

    model: str
    samples: list[Sample]
    usage: Usage
    backpressure: Backpressure | None = None

    def merged(self, more: SolveResult) -> SolveResult:
        """This result with `more`'s samples after its own and both requests' usage."""
        return self.model_copy(
            update={"samples": [*self.samples, *more.samples], "usage": self.usage + more.usage}
        )


class ReplyText(BaseModel):
    """One choice of a free-text request: its text (None when withheld) and why it stopped."""

    model_config = ConfigDict(frozen=True)

    text: str | None
    finish_reason: str
    refusal: str | None = None


class Replies(BaseModel):
    """The free-text choices of one request for one problem (probing the student), billed together."""

    model_config = ConfigDict(frozen=True)

    model: str
    replies: list[ReplyText]
    usage: Usage
    backpressure: Backpressure | None = None


class ChatPort(Protocol):
    """A chat model. `model` is the canonical name (`contracts.models`) of the model to ask."""

    def solve(
        self, model: str, question: str, *, temperature: float, max_tokens: int, samples: int = 1
    ) -> SolveResult:
        """Step-by-step solutions as structured answers (the teacher), `samples` of them."""

    def answer(
        self,
        model: str,
        question: str,
        *,
        max_tokens: int,
        endpoint: str | None = None,
        system: str = SOLVER_SYSTEM_PROMPT,
    ) -> Reply:
        """A free-text reply in the training format at temperature 0 (every benchmark contestant).

        `endpoint`, when given, is where the request goes instead of the model's own name (a Bedrock
        custom model answers through its deployment); the reply is still recorded under `model`.
        `system`: the system prompt the student was trained with (`prompts.solver_system_prompt`).
        """

    def replies(
        self,
        model: str,
        question: str,
        *,
        system: str,
        exemplars: Sequence[Exemplar] = (),
        temperature: float,
        max_tokens: int,
        samples: int = 1,
    ) -> Replies:
        """`samples` free-text replies in the training format (probing what a student knows): the
        exemplars as earlier user and assistant turns before the question, in one request where the
        provider takes `n`, else one request per sample."""

    def judge(self, model: str, question: str, reference: str, candidate: str) -> tuple[Verdict, Usage]:
        """Whether `candidate` means the same as `reference`."""

    def samples_per_request(self, model: str) -> int:
        """The most samples one request may ask for (1 where the API has no `n`)."""


# -- batch ------------------------------------------------------------------------------------------

BatchStatus = Literal[
    "validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled"
]
FINAL_BATCH_STATUSES: frozenset[str] = frozenset({"failed", "completed", "expired", "cancelled"})


class BatchInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    status: BatchStatus
    output_ref: str | None = Field(description="Where the answered requests are (a file id, a URI).")
    error_ref: str | None = Field(description="Where the failed and expired requests are.")
    total: int
    completed: int
    failed: int
    errors: list[str] = Field(description="Why the batch itself failed validation, one line each.")

    @property
    def final(self) -> bool:
        return self.status in FINAL_BATCH_STATUSES


class BatchOutcome(BaseModel):
    """One request of a finished batch: its answer, or the error code it ended with."""

    model_config = ConfigDict(frozen=True)

    custom_id: str
    result: SolveResult | None = None
    error: str | None = None


class BatchPort(Protocol):
    max_requests_per_batch: int
    max_file_bytes: int

    def request_line(
        self, custom_id: str, model: str, question: str, *, temperature: float, max_tokens: int, samples: int
    ) -> bytes:
        """One line of a request file: the same request `ChatPort.solve` sends online."""

    def submit(self, requests_file: Path, metadata: dict[str, str]) -> BatchInfo:
        """Upload the file (or find it uploaded under its name by an earlier attempt) and create the
        batch, sent once: a create whose reply was lost is found with `find`, never made again."""

    def find(self, metadata: dict[str, str]) -> BatchInfo | None:
        """The batch an earlier attempt created with this metadata, if any."""

    def status(self, batch_id: str) -> BatchInfo: ...

    def cancel(self, batch_id: str) -> BatchInfo:
        """Stop a batch that has not ended (what it already answered is still billed)."""

    def outcomes(self, info: BatchInfo) -> Iterator[BatchOutcome]:
        """Every request of a final batch, answered or failed (streamed: output files are large)."""


# -- fine-tuning ------------------------------------------------------------------------------------


class FineTuneRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    run_id: str
    attempt: int = Field(
        default=0, ge=0, description="Which of the run's jobs to create: part of the names `find_job` finds."
    )
    base_model: str = Field(description="The student's canonical name.")
    train: S3Location = Field(description="The training file, in the provider's dataset format.")
    validation: S3Location | None
    output: S3Location = Field(description="Where the provider may write what the job produces.")
    hyperparameters: FineTuneHyperparameters
    suffix: str
    train_tokens: int = Field(description="Billed tokens of one epoch, as Assemble counted them.")


class TrainingStep(BaseModel):
    """One row of the job's loss curve."""

    model_config = ConfigDict(frozen=True)

    step: int
    epoch: int | None = None
    training_loss: float | None = None
    validation_loss: float | None = None


class FineTuningPort(Protocol):
    provider: str

    def check_hyperparameters(self, hyperparameters: FineTuneHyperparameters, model: str) -> None:
        """Raise InvalidConfig naming each value outside what the provider accepts for `model`."""

    def find_job(self, run_id: str, attempt: int = 0) -> FineTuneState | None:
        """The run's job `attempt` as a retry of its create would find it, if it exists (so a retry never
        starts a second)."""

    def start(self, request: FineTuneRequest) -> FineTuneState: ...

    def status(self, job: FineTuneState) -> FineTuneState: ...

    def cancel(self, job: FineTuneState) -> FineTuneState: ...

    def training_metrics(self, job: FineTuneState) -> list[TrainingStep]:
        """The job's loss per step, from what the provider publishes (empty when it published none)."""


# -- serving ----------------------------------------------------------------------------------------


class ServingPort(Protocol):
    def prepare(self, run_id: str, job: FineTuneState, *, provisioned_throughput: bool) -> ServingState:
        """Start making the fine-tuned model answerable, or find what an earlier attempt started."""

    def status(self, serving: ServingState) -> ServingState: ...

    def find(self, run_id: str) -> ServingState | None:
        """What this run created to serve its model, if anything (for the release after a failure)."""

    def release(self, serving: ServingState) -> ServingState:
        """Delete what `prepare` created, so it costs nothing more; safe to call twice."""


# -- datasets ---------------------------------------------------------------------------------------


class FormatValidator(Protocol):
    def count_tokens(self, messages: list[dict[str, Any]]) -> tuple[int, int]:
        """An example's tokens and its assistant messages' tokens, as the provider bills them."""

    def check(self, line: int, example: object, counted: tuple[int, int] | None = None) -> int | None:
        """Check one parsed line; its tokens when it is valid. `counted` saves counting them twice."""

    def check_file_name(self, key: str) -> None:
        """Check the name the file will be read under."""

    def check_line(self, line: int, raw: bytes | str) -> int | None:
        """Parse and check one line as read from a file (a blank line is no example)."""

    def report(self) -> FormatReport: ...


class DatasetFormat(Protocol):
    name: str
    """The format's own name (`openai-chat`, `bedrock-conversation-2024`)."""
    folder: str | None
    """Where under the run's dataset/ the files in this format go (None: dataset/ itself)."""

    def record(self, example: ChatExample) -> dict[str, Any]: ...

    def validator(self, source: str, model: str, max_example_tokens: int) -> FormatValidator: ...

    def accepts_validation(self, model: str) -> bool:
        """Whether a fine-tuning job on `model` takes a validation file."""

    def example_bounds(self, model: str) -> tuple[int, int | None]:
        """The fewest and the most training examples a job on `model` accepts."""

    def unfit(self, example: ChatExample) -> str | None:
        """Why `example` cannot be written in this format (a rule that would fail the whole job), if so."""


# -- models -----------------------------------------------------------------------------------------


class LiveModelStatus(BaseModel):
    """What the provider itself says of a model, asked at the endpoint the run would use (a free lookup:
    nothing is generated, trained or created)."""

    model_config = ConfigDict(frozen=True)

    model: str
    available: bool = Field(description="Found, and not shut down by the endpoint's own account.")
    detail: str
    endpoint: str = Field(default="", description="Where it was asked, as a message names it.")
    found: bool = True
    closest: tuple[str, ...] = Field(
        default=(), description="When it was not found: the names the endpoint offers that come closest."
    )
    shutdown_on: dt.date | None = None
    fine_tunable: bool | None = None


class ModelsPort(Protocol):
    def check_usable(self, model: str, role: ModelRole, today: dt.date) -> None:
        """Raise (ModelRetired, FineTuneUnavailable, InvalidConfig) if `model` cannot serve `role` today,
        naming the date and a replacement. Offline: the dated catalog only, never the provider."""

    def live_status(self, model: str, role: ModelRole) -> LiveModelStatus:
        """Look `model` up at the provider's endpoint (OpenAI's `GET /models/{id}`, Bedrock's
        GetFoundationModel): whether it is served there, its lifecycle, whether it can be fine-tuned; for
        one that is not served, the closest names the endpoint lists. Free: no tokens, nothing created."""


class Provider(Protocol):
    """One model provider's ports, built lazily: a port is made only when a run needs it."""

    name: str
    batch_generation: bool
    """Whether the teacher's answers can come through this provider's batch port."""

    def chat(self, *, request_timeout_seconds: float | None = None) -> ChatPort:
        """The provider's chat port. Its SDK never retries a request (each attempt may be billed): the
        caller retries through `engine.paced`, each attempt settled in the ledger by `engine.budgeted`."""

    def batches(self) -> BatchPort: ...

    def fine_tuning(self) -> FineTuningPort: ...

    def serving(self) -> ServingPort: ...

    def models(self) -> ModelsPort: ...
