"""Tokens used: what every model call reports, summed by model. (What they cost is `money.usage`.)"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pydantic import BaseModel, ConfigDict


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


UsageByModel = dict[str, Usage]


def add_usage(totals: UsageByModel, model: str, usage: Usage) -> None:
    totals[model] = totals.get(model, Usage()) + usage


def merge_usage(parts: Iterable[Mapping[str, Usage]]) -> UsageByModel:
    totals: UsageByModel = {}
    for part in parts:
        for model, usage in part.items():
            add_usage(totals, model, usage)
    return totals
