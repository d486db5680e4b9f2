"""Tokens used: what every model call reports, summed by model; and a call's line in the cost ledger.
(What tokens cost is `money.usage`.)"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ChatPurpose = Literal["solve", "answer", "judge", "probe"]
"""What a chat request is for: the teacher solving (generation), a contestant answering (benchmark), the
judge grading, the base student probed for what it knows (generation, and the held-out problems after the
benchmark)."""


class Usage(BaseModel):
    model_config = ConfigDict(frozen=True)

    requests: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            requests=self.requests + other.requests,
            input_tokens=self.input_tokens + other.input_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
        )

    def __sub__(self, other: Usage) -> Usage:
        """What is left of this usage without `other`, a part of it."""
        return Usage(
            requests=self.requests - other.requests,
            input_tokens=self.input_tokens - other.input_tokens,
            cached_input_tokens=self.cached_input_tokens - other.cached_input_tokens,
            output_tokens=self.output_tokens - other.output_tokens,
        )


UsageByModel = dict[str, Usage]


def add_usage(totals: UsageByModel, model: str, usage: Usage) -> None:
    totals[model] = totals.get(model, Usage()) + usage


def merge_usage(parts: Iterable[Mapping[str, Usage]]) -> UsageByModel:
    totals: UsageByModel = {}
    for part in parts:
        for model, usage in part.items():
            add_usage(totals, model, usage)
    return totals


class CallCost(BaseModel):
    """One billed model call: the cost ledger's line."""

    model_config = ConfigDict(frozen=True)

    purpose: Literal["solve", "judge", "probe"]
    model: str
    usage: Usage
    usd: float | None = Field(
        description="At list price (batch calls at the Batch API discount); None: unpriced."
    )
    batch: bool = False
