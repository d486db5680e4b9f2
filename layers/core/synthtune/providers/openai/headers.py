"""OpenAI's rate-limit headers, read into the neutral `Backpressure` the pacing gate understands."""

from __future__ import annotations

import re
from collections.abc import Mapping

from synthtune.providers.ports import Backpressure

_DURATION_PART = re.compile(r"(?P<value>\d+(?:\.\d+)?)(?P<unit>ms|h|m|s)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: str | None) -> float | None:
    """OpenAI's reset-header durations: "20ms", "1.5s", "6m0s", "1h2m3s"; None when unreadable."""
    if not value:
        return None
    text = value.strip()
    parts = list(_DURATION_PART.finditer(text))
    if not parts or "".join(part.group(0) for part in parts) != text:
        return None
    return sum(float(part["value"]) * _UNIT_SECONDS[part["unit"]] for part in parts)


def backpressure_from_headers(headers: Mapping[str, str]) -> Backpressure:
    """`retry-after-ms` (else `retry-after`, in seconds) and the `x-ratelimit-*` window headers."""
    lower = {name.lower(): value for name, value in headers.items()}
    retry_after: float | None = None
    if _is_number(lower.get("retry-after-ms")):
        retry_after = float(lower["retry-after-ms"]) / 1000
    elif _is_number(lower.get("retry-after")):
        retry_after = float(lower["retry-after"])
    return Backpressure(
        retry_after_seconds=retry_after,
        remaining_requests=_integer(lower.get("x-ratelimit-remaining-requests")),
        remaining_tokens=_integer(lower.get("x-ratelimit-remaining-tokens")),
        reset_requests_seconds=parse_duration(lower.get("x-ratelimit-reset-requests")),
        reset_tokens_seconds=parse_duration(lower.get("x-ratelimit-reset-tokens")),
    )


def _is_number(value: str | None) -> bool:
    if value is None:
        return False
    try:
        return float(value) >= 0
    except ValueError:
        return False


def _integer(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
