"""The run's DynamoDB items: every key, spelled once, and the shape of each item written whole.

One item collection per run (pk `RUN#<run_id>`):
  sk `RUN`             status, stage, problem set, config, counts, fine-tuning job, error and cause
                       (written field by field, by the stage that learns each)
  sk `SHARD#<index>`   one Generate shard's outcome and token usage (rewritten, never added to, on retry):
                       `ShardDone` or `ShardFailed`
  sk `BATCH#<round>#<part>` one Batch API submission: its batch id, requests, reservation (`BatchItem`)
  sk `DATASET`         what Assemble kept and dropped (`DatasetSummary`)
  sk `FINETUNE`        the fine-tuning job as last seen (`FineTuneState`)
  sk `FINETUNE#<attempt>` a job of the run that ended without a model before a resumed run trained its
                       next one (`FineTuneState`)
  sk `SERVING`         what serves the fine-tuned model (a Bedrock deployment) as last seen
  sk `SCORE#<name>`    one benchmark contestant's score and usage (`ContestantScore`)
  sk `SPEND#<kind>#<spender>#<purpose>#<model>` model requests paid for that no other item counts:
                       replies that never arrived, at their worst case (kind paid_but_lost, added to
                       atomically), and the answers a benchmark contestant without a score yet keeps in
                       its checkpoints (kind unfinished, rewritten whole, removed with its score; older
                       runs: discarded) (`SpendItem`, see money.ledger)
Totals are summed from the items when the report is written, so a retried stage never counts twice.

And one item per version of a problem set that a run was started on (pk `PROBLEM_SET#<s3 uri>`, sk
`VERSION#<version id>#<etag>`): the run that handles it, so a second start for the same upload (a repeated
S3 event, an upload and a start-execution) is told which run already does instead of paying again
(`ProblemSetClaim`).

Every item also has `pk`, `sk`, `run_id` and `updated_at`, which `RunStore` writes; `from_item` reads an
item's own fields and ignores the rest.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field

from synthtune.contracts.usage import CallCost, ChatPurpose, Usage
from synthtune.contracts.workflow import ShardResult

RUN_SK = "RUN"
DATASET_SK = "DATASET"
FINETUNE_SK = "FINETUNE"
SERVING_SK = "SERVING"
ENDED_JOB_PREFIX = f"{FINETUNE_SK}#"
SHARD_PREFIX = "SHARD#"
BATCH_PREFIX = "BATCH#"
SCORE_PREFIX = "SCORE#"
SPEND_PREFIX = "SPEND#"

RunStatus = Literal["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "DUPLICATE"]
"""A run record's status: RUNNING until the run is over."""
UNSUCCESSFUL_STATUSES: frozenset[RunStatus] = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})


RUN_PK_PREFIX = "RUN#"


def run_pk(run_id: str) -> str:
    return f"{RUN_PK_PREFIX}{run_id}"


def shard_sk(index: int) -> str:
    return f"{SHARD_PREFIX}{index:05d}"


def batch_round_prefix(round_number: int) -> str:
    """What the sort keys of one round's batches start with."""
    return f"{BATCH_PREFIX}{round_number:02d}#"


def batch_sk(round_number: int, part: int) -> str:
    return f"{batch_round_prefix(round_number)}{part:03d}"


def ended_job_sk(attempt: int) -> str:
    return f"{ENDED_JOB_PREFIX}{attempt:02d}"


def score_sk(contestant: str) -> str:
    return f"{SCORE_PREFIX}{contestant}"


def spend_sk(kind: str, spender: str, purpose: str, model: str) -> str:
    return f"{SPEND_PREFIX}{kind}#{spender}#{purpose}#{model}"


def problem_set_pk(uri: str) -> str:
    return f"PROBLEM_SET#{uri}"


def problem_set_version_sk(etag: str, version_id: str | None) -> str:
    return f"VERSION#{version_id or '-'}#{etag}"


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class RunItem(BaseModel):
    """An item's own attributes, as a stage writes them whole (RunStore adds the keys)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Self:
        """The item as DynamoDB holds it: its keys, and any attribute this shape does not know, ignored."""
        return cls.model_validate({name: value for name, value in item.items() if name in cls.model_fields})


class ShardDone(ShardResult, RunItem):
    """A shard that wrote its answers: GenerateShard's result, and what the answers cost."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: Literal["done"] = "done"
    checkpointed_at_start: int = Field(
        default=0, description="Problems answered by an earlier attempt, so not paid for again."
    )
    cost_usd: float = 0.0
    usage: dict[str, Usage] = Field(default_factory=dict, description="Tokens by model.")
    calls: list[CallCost] = Field(default_factory=list)


class ShardFailed(RunItem):
    """A shard whose last attempt failed: why, and what it had paid for (kept in its checkpoints)."""

    index: int
    status: Literal["failed"] = "failed"
    error: str = Field(description="The exception's class name: an ErrorName for the workflow's own.")
    message: str
    checkpointed: int = Field(default=0, description="Problems answered and checkpointed when it failed.")
    cost_usd: float = 0.0
    calls: list[CallCost] = Field(default_factory=list)


ShardItem = ShardDone | ShardFailed


def shard_item(item: Mapping[str, Any]) -> ShardItem:
    return ShardFailed.from_item(item) if item.get("status") == "failed" else ShardDone.from_item(item)


class BatchItem(RunItem):
    """One Batch API submission, recorded before it is sent (a retry then looks for it at the provider
    before sending it again) and given its batch id once the provider has said it."""

    round: int
    part: int
    requests: int
    reserved_usd: float = Field(default=0.0, description="Held against the budget until the round is in.")
    batch_id: str | None = None

    @property
    def sk(self) -> str:
        return batch_sk(self.round, self.part)


SpendKind = Literal["paid_but_lost", "unfinished", "discarded"]
"""paid_but_lost: requests whose reply never arrived, at their worst case. unfinished: answers (and their
verdicts) a benchmark contestant paid for and keeps in its checkpoints while it has no score, rewritten
whole after each attempt that fails and removed once its score counts them. discarded: in runs from before
the benchmark kept checkpoints, answers a failed attempt paid for and its retry asked for again."""
SPEND_LABELS = {"kind", "spender", "purpose", "model", "unpriced"}
"""A SPEND item's attributes that are set, not added to."""


class SpendItem(Usage, RunItem):
    """Requests of one kind, spender, purpose and model: the tokens (a Usage's counts) and `usd` are each
    added to atomically, the labels set beside them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: SpendKind
    spender: str
    purpose: ChatPurpose
    model: str
    usd: float = 0.0
    unpriced: bool = False

    @property
    def sk(self) -> str:
        return spend_sk(self.kind, self.spender, self.purpose, self.model)

    @property
    def usage(self) -> Usage:
        return Usage.model_validate(self.model_dump(include=set(Usage.model_fields)))

    def amounts(self) -> dict[str, float]:
        """What `RunStore.add` adds to the item."""
        amounts: dict[str, float] = self.model_dump(exclude=SPEND_LABELS)
        return amounts

    def labels(self) -> dict[str, Any]:
        """What `RunStore.add` sets on the item as it adds."""
        return self.model_dump(include=SPEND_LABELS)


class ProblemSetClaim(RunItem):
    """The run that handles one version of a problem set (see `RunStore.claim`)."""

    run_id: str
    etag: str
    version_id: str | None = None
    claimed_at: str = Field(default_factory=now_iso)
