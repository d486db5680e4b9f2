"""What checking a fine-tuning file reports, whatever the provider's format.

Each provider's format (`providers/openai/format.py`, `providers/bedrock/format.py`) checks its own rules
by subclassing `StreamingValidator`, which parses the lines, keeps the first MAX_REPORTED_ISSUES issues and
a count of every issue by check, and two fixed-size token histograms: memory does not grow with the file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MAX_REPORTED_ISSUES = 20
"""Issues a report lists one by one; `issue_counts` counts every issue."""

TOKEN_BIN_BOUNDS: tuple[int, ...] = tuple(2**power for power in range(6, 18))
"""Inclusive upper bounds of the histogram's bins, 64 to 131,072; one more bin holds anything longer."""


class FormatIssue(BaseModel):
    model_config = ConfigDict(frozen=True)

    line: int
    """1-based line number in the file."""
    check: str
    """A name from CHECKS."""
    message: str
    """For a person, starting with the line: "line 7: message 2 has role 'bot'; expected one of ..."."""


class HistogramBin(BaseModel):
    up_to: int | None
    """Inclusive upper bound; None for the last, open-ended bin."""
    examples: int = 0


def _empty_bins() -> list[HistogramBin]:
    return [HistogramBin(up_to=bound) for bound in (*TOKEN_BIN_BOUNDS, None)]


class TokenHistogram(BaseModel):
    """Token counts per example in fixed power-of-two bins, with count, total, min, max and mean.

    Its size does not depend on how many examples were added, and its JSON always has the same 13 bins.
    """

    bins: list[HistogramBin] = Field(default_factory=_empty_bins)
    count: int = 0
    total: int = 0
    min: int | None = None
    max: int | None = None

    def add(self, tokens: int) -> None:
        if tokens < 0:
            raise ValueError(f"a token count cannot be negative: {tokens}")
        # Bin k holds (2**(k+5), 2**(k+6)]; the bit length of tokens - 1 is the power of two above it.
        index = min(max((tokens - 1).bit_length() - 6, 0), len(TOKEN_BIN_BOUNDS))
        self.bins[index].examples += 1
        self.count += 1
        self.total += tokens
        if self.min is None or tokens < self.min:
            self.min = tokens
        if self.max is None or tokens > self.max:
            self.max = tokens

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def percentile(self, q: float) -> int | None:
        """An upper bound on the q-th percentile (q from 0 to 100, nearest rank), None when empty.

        Approximate: the upper bound of the bin holding it, so at most twice the true value, or the
        maximum when that is smaller (always so in the open-ended last bin).
        """
        if not 0 <= q <= 100:
            raise ValueError(f"a percentile is between 0 and 100, not {q}")
        if self.max is None:
            return None
        rank = max(1, math.ceil(q / 100 * self.count))
        seen = 0
        for histogram_bin in self.bins:
            seen += histogram_bin.examples
            if seen >= rank:
                return self.max if histogram_bin.up_to is None else min(histogram_bin.up_to, self.max)
        return self.max


class FormatReport(BaseModel):
    file: str
    examples: int
    """Lines that held an example, valid or not (blank lines are skipped)."""
    issues: list[FormatIssue]
    """The first MAX_REPORTED_ISSUES issues, in file order."""
    issue_counts: dict[str, int]
    """Every issue, counted by check."""
    tokens: TokenHistogram
    """Tokens per well-formed example, including those over the limit."""
    billed_tokens: int
    """Tokens one epoch bills: the sum over valid examples (over-limit ones are not valid)."""
    assistant_tokens: TokenHistogram
    """Tokens of the assistant messages' content per well-formed example, as the cookbook reports."""
    examples_without_system: int
    """Well-formed examples without a system message (a cookbook warning, not an issue)."""
    examples_without_user: int

    @property
    def valid(self) -> bool:
        return not self.issue_counts


def json_type(value: object) -> str:
    """A JSON value's type as a message names it ("an object", "an empty string", ...)."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string" if value else "an empty string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if value is None:
        return "null"
    return type(value).__name__


def show(value: object, limit: int = 40) -> str:
    """A value quoted for a message, shortened past `limit` characters."""
    shown = repr(value)
    return shown if len(shown) <= limit else f"{shown[: limit - 3]}..."


class StreamingValidator:
    """The bookkeeping every format's checks share: issues, counts, histograms and the report.

    A subclass implements `check` (one parsed line) and `count_tokens`, and calls `record` for each
    problem and `accept` for each example that passed its checks.
    """

    def __init__(self, file: str, max_example_tokens: int) -> None:
        if max_example_tokens < 1:
            raise ValueError(f"max_example_tokens must be positive, not {max_example_tokens}")
        self.file = file
        self.max_example_tokens = max_example_tokens
        self._examples = 0
        self._issues: list[FormatIssue] = []
        self._issue_counts: dict[str, int] = {}
        self._issue_total = 0
        self._tokens = TokenHistogram()
        self._assistant_tokens = TokenHistogram()
        self._billed_tokens = 0
        self._without_system = 0
        self._without_user = 0

    def record(self, line: int, check: str, problem: str) -> None:
        self._issue_total += 1
        self._issue_counts[check] = self._issue_counts.get(check, 0) + 1
        if len(self._issues) < MAX_REPORTED_ISSUES:
            self._issues.append(FormatIssue(line=line, check=check, message=f"line {line}: {problem}"))

    def record_file(self, check: str, problem: str) -> None:
        """A problem with the file as a whole (its name, its size), listed as line 0."""
        self._issue_total += 1
        self._issue_counts[check] = self._issue_counts.get(check, 0) + 1
        if len(self._issues) < MAX_REPORTED_ISSUES:
            self._issues.append(FormatIssue(line=0, check=check, message=f"{self.file}: {problem}"))

    @property
    def examples(self) -> int:
        return self._examples

    @property
    def issue_total(self) -> int:
        return self._issue_total

    def check_line(self, line: int, raw: bytes | str) -> int | None:
        """Parse and check one line of the file; a blank line is no example and returns None."""
        if not raw or raw.isspace():
            return None
        try:
            example = json.loads(raw)
        except json.JSONDecodeError as error:
            self._examples += 1
            self.record(line, "invalid_json", f"not valid JSON ({error.msg} at column {error.colno})")
            return None
        except UnicodeDecodeError:
            self._examples += 1
            self.record(line, "invalid_json", "not valid JSON (the bytes are not UTF-8 text)")
            return None
        except RecursionError:
            self._examples += 1
            self.record(line, "invalid_json", "not valid JSON (nested too deeply to read)")
            return None
        return self.check(line, example)

    def check(self, line: int, example: object, counted: tuple[int, int] | None = None) -> int | None:
        """Validate one parsed line; its token count when it is a valid example, else None."""
        raise NotImplementedError

    def count_tokens(self, messages: list[dict[str, Any]]) -> tuple[int, int]:
        raise NotImplementedError

    def start_example(self) -> int:
        """Count one more example; the issue total before it, to tell whether it added any."""
        self._examples += 1
        return self._issue_total

    def accept(
        self,
        line: int,
        tokens: int,
        assistant_tokens: int,
        *,
        has_system: bool,
        has_user: bool,
        limit_note: str,
    ) -> int | None:
        """Add a well-formed example to the histograms; its tokens, or None when over the limit."""
        self._tokens.add(tokens)
        self._assistant_tokens.add(assistant_tokens)
        self._without_system += not has_system
        self._without_user += not has_user
        if tokens > self.max_example_tokens:
            self.record(
                line,
                "too_many_tokens",
                f"{tokens:,} tokens, over the limit of {self.max_example_tokens:,} per example "
                f"({limit_note})",
            )
            return None
        self._billed_tokens += tokens
        return tokens

    def report(self) -> FormatReport:
        return FormatReport(
            file=self.file,
            examples=self._examples,
            issues=list(self._issues),
            issue_counts=dict(sorted(self._issue_counts.items())),
            tokens=self._tokens.model_copy(deep=True),
            billed_tokens=self._billed_tokens,
            assistant_tokens=self._assistant_tokens.model_copy(deep=True),
            examples_without_system=self._without_system,
            examples_without_user=self._without_user,
        )


def validate_lines(validator: StreamingValidator, lines: Iterable[bytes | str]) -> FormatReport:
    """Check every line of a file (numbered from 1, blank lines included)."""
    for number, raw in enumerate(lines, 1):
        validator.check_line(number, raw)
    return validator.report()


def describe_tokens(histogram: TokenHistogram) -> str:
    """One line for a person: min, mean, p50, p90 (bin upper bounds, hence "≤") and max."""
    if histogram.mean is None:
        return "none"
    return (
        f"min {histogram.min:,}, mean {histogram.mean:,.1f}, p50 ≤{histogram.percentile(50):,}, "
        f"p90 ≤{histogram.percentile(90):,}, max {histogram.max:,}"
    )


def describe_issues(report: FormatReport) -> str:
    """The report's problems for a person: a count, one line per listed issue, and how many more."""
    total = sum(report.issue_counts.values())
    if not total:
        return f"{report.file}: no problems in {report.examples:,} examples"
    lines = [f"{report.file}: {total:,} problem{'s' if total != 1 else ''}"]
    lines.extend(f"  {issue.message}" for issue in report.issues)
    more = total - len(report.issues)
    if more:
        by_check = ", ".join(f"{count:,} {check}" for check, count in report.issue_counts.items())
        lines.append(f"  ... and {more:,} more (all problems by check: {by_check})")
    return "\n".join(lines)
