"""RunConfig: every choice a run makes, each with a documented default.

A run's configuration comes from the execution input's `config` object (or the CLI's `--config FILE`),
validated here once in Prepare and then carried, resolved, through every state. Unknown fields are
rejected so that a typo (`shard_sise`) fails loudly instead of silently running with a default.
Model names are defaults here; their prices and retirement dates live in `synthtune.money.catalog`.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from synthtune.contracts.errors import InvalidConfig
from synthtune.contracts.models import ProviderName, check_model_name, provider_of

# The defaults work today and after OpenAI's 2027-01-14 shutdowns, on AWS alone, with no OpenAI key: Nova
# Micro fine-tunes on Bedrock and its fine-tunes answer on demand, billed per token (see README, "Models").
DEFAULT_TEACHER = "bedrock/us.amazon.nova-2-lite-v1:0"
DEFAULT_STUDENT = "bedrock/amazon.nova-micro-v1:0"
DEFAULT_JUDGE = "bedrock/amazon.nova-lite-v1:0"

Contestant = Literal["base", "fine_tuned", "teacher"]
CONTESTANTS: tuple[Contestant, ...] = ("base", "fine_tuned", "teacher")


class FineTuneHyperparameters(BaseModel):
    """Passed to the fine-tuning job; "auto" (or null) lets the provider choose.

    The ranges here are the widest any provider takes; the student's provider checks its own in Prepare
    (Bedrock's Nova: n_epochs 1-5, learning_rate 1e-6 to 1e-4, warm-up 0-100 steps, no batch size).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_epochs: Annotated[int, Field(ge=1, le=50)] | Literal["auto"] = Field(
        default="auto", description="Passes over the training set."
    )
    batch_size: Annotated[int, Field(ge=1, le=256)] | Literal["auto"] = Field(
        default="auto", description="Examples per gradient step (OpenAI only)."
    )
    learning_rate_multiplier: Annotated[float, Field(gt=0, le=10)] | Literal["auto"] = Field(
        default="auto", description="Scales the provider's base learning rate (OpenAI only)."
    )
    learning_rate: Annotated[float, Field(gt=0, le=1)] | None = Field(
        default=None, description="The learning rate itself (Bedrock only; null: the provider's default)."
    )
    learning_rate_warmup_steps: Annotated[int, Field(ge=0, le=1000)] | None = Field(
        default=None, description="Steps over which the learning rate rises (Bedrock only)."
    )


class GenerationConfig(BaseModel):
    """How the teacher's answers are produced: online calls or the Batch API, and how hard to try."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["online", "batch"] = Field(
        default="online",
        description="online: concurrent chat requests; batch: the OpenAI Batch API (half price, "
        "finishes within 24 h).",
    )
    samples: int = Field(
        default=1,
        ge=1,
        le=16,
        description="Answers per problem (self-consistency); the majority answer is kept and its "
        "agreement recorded. More than 1 needs teacher_temperature > 0.",
    )
    request_timeout_seconds: float = Field(
        default=120.0,
        gt=0,
        le=900,
        description="Longest one teacher (or benchmark) request may take before it is retried.",
    )
    max_attempts: int = Field(
        default=5,
        ge=1,
        le=20,
        description="Tries per problem on 5xx and timeouts before the shard fails; 429s are retried "
        "until the shard runs out of time.",
    )
    tolerated_failure_percent: float = Field(
        default=0.0,
        ge=0,
        le=100,
        description="Share of shards that may fail for good while the run goes on without their problems.",
    )
    batch_poll_interval_seconds: int = Field(
        default=300, ge=1, le=3600, description="Wait between Batch API status checks."
    )
    batch_max_rounds: int = Field(
        default=3,
        ge=1,
        le=10,
        description="Batch submissions per run: requests that expired or failed are resubmitted until "
        "this many rounds have run.",
    )


KnowledgePolicy = Literal["keep_all", "drop_unknown", "abstain_unknown"]
KNOWLEDGE_POLICIES: tuple[KnowledgePolicy, ...] = ("keep_all", "drop_unknown", "abstain_unknown")

REASONING_CATEGORIES: tuple[str, ...] = (
    "math", "maths", "mathematics", "arithmetic", "algebra", "geometry", "logic", "reasoning",
)  # fmt: skip
"""Problem categories that teach a way of reasoning rather than facts: by default their examples are kept
whatever the student knows (an unknown math problem still shows how to reason; an unknown fact only
teaches the student to state things it cannot know)."""


_REASONING_KEEP_ALL: dict[str, KnowledgePolicy] = dict.fromkeys(REASONING_CATEGORIES, "keep_all")


class ProbeConfig(BaseModel):
    """How the base student is asked, before Assemble, whether it already knows each training problem.

    Each probe answer is graded like the teacher's. `greedy` answers at temperature 0, the first with
    the training prompt, each further one with different worked examples before the question (a
    deterministic provider answers the same prompt the same way); `samples` answers at `temperature`,
    in one request where the provider takes `n`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        default=True,
        description="Probe the student; false skips it (and every knowledge category is then unknown to the "
        "run, so knowledge_policy must be keep_all).",
    )
    greedy: int = Field(default=2, ge=1, le=8, description="Answers at temperature 0, each worded apart.")
    samples: int = Field(default=4, ge=0, le=16, description="Answers sampled at `temperature`.")
    temperature: float = Field(
        default=0.7, gt=0, le=2, description="The sampled answers' temperature (the greedy ones use 0)."
    )
    exemplars: int = Field(
        default=3,
        ge=0,
        le=8,
        description="Worked examples (other training problems with their reference answers) before the "
        "question in each greedy answer after the first.",
    )


class KnowledgePolicyConfig(BaseModel):
    """What to do with training examples the base student does not know, by problem category."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: KnowledgePolicy = Field(
        default="drop_unknown", description="The policy of every category not named in `categories`."
    )
    categories: dict[str, KnowledgePolicy] = Field(
        default_factory=lambda: dict(_REASONING_KEEP_ALL),
        description="A policy per problem category (matched ignoring case); by default keep_all for the "
        "reasoning categories (REASONING_CATEGORIES).",
    )

    def for_category(self, category: str) -> KnowledgePolicy:
        folded = category.casefold()
        for name, policy in self.categories.items():
            if name.casefold() == folded:
                return policy
        return self.default

    @property
    def policies(self) -> set[KnowledgePolicy]:
        return {self.default, *self.categories.values()}


ExportFormat = Literal["bedrock", "huggingface"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("bedrock", "huggingface")


class DatasetConfig(BaseModel):
    """Which of the teacher's answers deserve training: the quality gates Assemble applies."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keep_unreferenced: bool = Field(
        default=True,
        description="Keep training examples for problems that have no reference answer to check against.",
    )
    min_agreement: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Self-consistency for problems without a reference: keep an answer only when at least "
        "this share of the generation.samples agree on it (needs samples of 2 or more); null: no threshold.",
    )
    near_duplicate_threshold: float | None = Field(
        default=0.8,
        gt=0,
        le=1,
        description="Drop a question at least this similar (MinHash estimate of the Jaccard similarity of "
        "its character 5-grams) to an earlier one; null keeps near-duplicates (exact ones are always "
        "dropped).",
    )
    contamination_ngram: int = Field(
        default=13,
        ge=4,
        le=100,
        description="Drop a question that shares this many consecutive words with a held-out problem "
        "(a shorter held-out question must appear whole).",
    )
    max_example_tokens: int | None = Field(
        default=None,
        ge=64,
        description="Drop longer examples (system, question and answer, in the student's tokens); null: "
        "the student's per-example fine-tuning limit from the catalog.",
    )
    drop_hedging: bool = Field(
        default=True,
        description='Drop answers that hedge ("I\'m not sure", "probably", "I don\'t know").',
    )
    probe: ProbeConfig = Field(
        default_factory=ProbeConfig,
        description="How the base student is probed for what it already knows (dataset.knowledge_policy).",
    )
    knowledge_policy: KnowledgePolicyConfig = Field(
        default_factory=KnowledgePolicyConfig,
        description='keep_all, drop_unknown or abstain_unknown for every category, or {"default": ..., '
        '"categories": {"<category>": ...}}; by default unknown examples are dropped except in reasoning '
        "categories (math, logic, ...), which keep them.",
    )
    max_abstention_share: float = Field(
        default=0.1,
        ge=0,
        lt=1,
        description="abstain_unknown: the largest share of the training examples that may be abstentions; "
        "unknown examples past it are dropped (student_unknown).",
    )
    exports: list[ExportFormat] = Field(
        default_factory=lambda: list(EXPORT_FORMATS),
        description="Copies of the dataset for other trainers: Amazon Bedrock's conversation format, "
        "Hugging Face chat JSONL.",
    )

    @field_validator("knowledge_policy", mode="before")
    @classmethod
    def _policy_for_every_category(cls, value: object) -> object:
        # "drop_unknown" is short for {"default": "drop_unknown", "categories": {}}: one policy everywhere.
        if isinstance(value, str):
            return {"default": value, "categories": {}}
        return value

    @model_validator(mode="after")
    def _policy_needs_probe(self) -> DatasetConfig:
        if not self.probe.enabled and self.knowledge_policy.policies != {"keep_all"}:
            needing = " and ".join(sorted(self.knowledge_policy.policies - {"keep_all"}))
            raise ValueError(
                f"knowledge_policy {needing} needs to know what the student knows, but probe.enabled is "
                'false; probe the student, or set knowledge_policy to "keep_all"'
            )
        return self

    @property
    def abstains(self) -> bool:
        """Whether some examples may teach the student to say it does not know."""
        return "abstain_unknown" in self.knowledge_policy.policies

    @model_validator(mode="after")
    def _exports_unique(self) -> DatasetConfig:
        if len(set(self.exports)) != len(self.exports):
            raise ValueError("dataset.exports lists a format twice")
        return self


class RunConfig(BaseModel):
    """The knobs of one run. Every field has a default; pass only what you change."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    teacher_model: str = Field(
        default=DEFAULT_TEACHER,
        min_length=1,
        description="Writes the step-by-step answers (`provider/model-id`; a bare name is an OpenAI model).",
    )
    student_model: str = Field(
        default=DEFAULT_STUDENT,
        min_length=1,
        description="The model that is fine-tuned, where its provider fine-tunes and serves it.",
    )
    judge_model: str | None = Field(
        default=DEFAULT_JUDGE,
        description="Grades answers that do not match the reference after normalisation; "
        "null grades by normalised match alone.",
    )
    fine_tune_backend: ProviderName | None = Field(
        default=None,
        description="Deprecated: the student's provider is where it is fine-tuned. If set, it must name "
        "that provider.",
    )
    holdout_fraction: float = Field(
        default=0.2,
        gt=0,
        lt=1,
        description="Share of problems with a reference answer and no explicit split that are held out "
        "for the benchmark.",
    )
    validation_fraction: float = Field(
        default=0.1,
        ge=0,
        lt=1,
        description="Share of the remaining problems without an explicit split used as the fine-tuning "
        "validation file.",
    )
    split_seed: str = Field(
        default="synthtune", description="Changes which problems land in which split, deterministically."
    )
    shard_size: int = Field(default=25, ge=1, le=1000, description="Problems per Generate shard.")
    max_concurrency: int = Field(
        default=10, ge=1, le=1000, description="Shards and benchmark contestants running at once."
    )
    request_concurrency: int = Field(
        default=4, ge=1, le=64, description="Model requests in flight inside one Lambda invocation."
    )
    teacher_temperature: float = Field(default=0.0, ge=0, le=2, description="Teacher sampling temperature.")
    max_output_tokens: int = Field(
        default=1024, ge=16, le=32768, description="Cap on each answer's length, for every model."
    )
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    budget_usd: float | None = Field(
        default=None,
        gt=0,
        description="Most the run may spend at list prices; null for no limit. The run stops with "
        "BudgetExceeded before a request, job or benchmark that could exceed it.",
    )
    fine_tune: FineTuneHyperparameters = Field(default_factory=FineTuneHyperparameters)
    fine_tune_suffix: str = Field(
        default="synthtune",
        max_length=18,
        pattern=r"^[a-zA-Z0-9_-]*$",
        description="Appears in the fine-tuned model's name.",
    )
    poll_interval_seconds: int = Field(
        default=60, ge=1, le=3600, description="Wait between fine-tuning and deployment status checks."
    )
    max_wait_seconds: int = Field(
        default=86_400,
        ge=1,
        le=7 * 86_400,
        description="Longest the run waits for fine-tuning before cancelling the job and failing.",
    )
    keep_deployment: bool = Field(
        default=False,
        description="Leave the fine-tuned model's deployment (Bedrock) in place after the benchmark instead "
        "of deleting it.",
    )
    allow_provisioned_throughput: bool = Field(
        default=False,
        description="Allow a student whose fine-tunes answer only through Provisioned Throughput, billed by "
        "the hour while it exists; the estimate and the budget then include it.",
    )
    deployment_max_wait_seconds: int = Field(
        default=3600,
        ge=60,
        le=86_400,
        description="Longest the run waits for the fine-tuned model's deployment to become active.",
    )
    benchmark_contestants: list[Contestant] = Field(
        default_factory=lambda: list(CONTESTANTS),
        min_length=1,
        description="Which models answer the held-out problems.",
    )

    @field_validator("teacher_model", "student_model", "judge_model")
    @classmethod
    def _model_names(cls, name: str | None) -> str | None:
        return None if name is None else check_model_name(name)

    @model_validator(mode="after")
    def _backend_is_the_students(self) -> RunConfig:
        student = provider_of(self.student_model)
        if self.fine_tune_backend is not None and self.fine_tune_backend != student:
            raise ValueError(
                f"fine_tune_backend is {self.fine_tune_backend!r} but student_model "
                f"{self.student_model!r} is a {student} model: a student is fine-tuned where its provider "
                "serves it; drop fine_tune_backend, or name the student as 'provider/model-id'"
            )
        return self

    @property
    def student_provider(self) -> ProviderName:
        return provider_of(self.student_model)

    @model_validator(mode="after")
    def _benchmark_contestants_unique(self) -> RunConfig:
        if len(set(self.benchmark_contestants)) != len(self.benchmark_contestants):
            raise ValueError("benchmark_contestants lists a contestant twice")
        return self

    @model_validator(mode="after")
    def _agreement_needs_samples(self) -> RunConfig:
        # With one sample every answer agrees with itself: the threshold would filter nothing.
        if self.dataset.min_agreement is not None and self.generation.samples < 2:
            raise ValueError(
                f"dataset.min_agreement is {self.dataset.min_agreement:g} but generation.samples is 1; "
                "self-consistency needs several samples per problem (e.g. samples 5, teacher_temperature 0.7)"
            )
        return self


def load_run_config(overrides: object, source: str = "config") -> RunConfig:
    """Validate user-supplied overrides; the error names every bad field and what was expected."""
    if overrides is None:
        return RunConfig()
    if not isinstance(overrides, dict):
        raise InvalidConfig(
            f"{source}: expected a JSON object of RunConfig fields, got {type(overrides).__name__}"
        )
    try:
        return RunConfig.model_validate(overrides)
    except ValidationError as error:
        raise InvalidConfig(f"{source}: {describe_config_errors(error)}") from None


def describe_config_errors(error: ValidationError, model: type[BaseModel] | None = None) -> str:
    """pydantic's errors in plain words, one per field: a misspelt field with the names it may have meant,
    a field a union refused named once (not once per member, with pydantic's tags such as `constrained-int`)
    and the value it got."""
    model = model or RunConfig
    by_field: dict[str, list[str]] = {}
    got: dict[str, object] = {}
    for issue in error.errors():
        path, fields = _field_path(model, issue["loc"])
        name = ".".join(path) or "(root)"
        if issue["type"] == "extra_forbidden":
            close = difflib.get_close_matches(path[-1], sorted(fields), n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            by_field.setdefault(name, []).append(f"not a field here{hint}")
            continue
        message = str(issue["msg"])
        message = message.removeprefix("Value error, ")
        by_field.setdefault(name, []).append(message[:1].lower() + message[1:])
        if "input" in issue and not isinstance(issue["input"], dict):
            got[name] = issue["input"]
    return "; ".join(
        f"{name}: {' or '.join(dict.fromkeys(messages))}" + (f" (got {got[name]!r})" if name in got else "")
        for name, messages in by_field.items()
    )


def _field_path(model: type[BaseModel], loc: tuple[int | str, ...]) -> tuple[list[str], set[str]]:
    """The field names of `loc`, without the tags pydantic adds past a field to name a union's member
    (`constrained-int`), and the names of the fields beside the last one (for a misspelt field's hint)."""
    path: list[str] = []
    current: type[BaseModel] | None = model
    fields: set[str] = set(model.model_fields)
    for part in loc:
        if not isinstance(part, str):  # an index into a list
            path.append(str(part))
            continue
        if current is None:
            break  # past a field that holds no model: a union member's tag
        fields = set(current.model_fields)
        path.append(part)
        if part not in current.model_fields:
            break
        annotation = current.model_fields[part].annotation
        current = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return path, fields
