"""Checking a chat fine-tuning file as OpenAI will, before it is uploaded.

The format checks are those of OpenAI's data-preparation guide, under its names (the cookbook notebook
"Chat_finetuning_data_prep", https://cookbook.openai.com/examples/chat_finetuning_data_prep), widened
where the fine-tuning API accepts more than the notebook knows: tool calls, the `tool` role and
`refusal` (the API reference's `FineTuneChatRequestInput`). Three more: `weight` must be 0 or 1 and
only on an assistant message (the API reference again), a line must be JSON (`invalid_json`), and an
example over the per-example token limit is refused (`too_many_tokens`) where OpenAI would silently
truncate it.

The validator streams: fed one line at a time, it keeps counters, two fixed-size histograms and the
first MAX_REPORTED_ISSUES issues, so its memory does not grow with the file. A valid line costs a few
dict and isinstance tests and its tokenisation; pydantic models are built only for issues and reports.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from synthtune.tokens import chat_token_counts, encoding_for

# The message keys of the API reference's FineTuneChatRequestInput (system, user, assistant, tool and
# function messages), which the cookbook's own list (role, content, name, function_call, weight)
# predates. `audio` is left out: fine-tuning accepts no audio messages.
ALLOWED_MESSAGE_KEYS = frozenset(
    {"role", "content", "name", "weight", "function_call", "tool_calls", "tool_call_id", "refusal"}
)
# The cookbook's roles (system, user, assistant, function) and the API's `tool`.
ALLOWED_ROLES = frozenset({"system", "user", "assistant", "tool", "function"})

MAX_REPORTED_ISSUES = 20
"""Issues a report lists one by one; `issue_counts` counts every issue."""

CHECKS: dict[str, str] = {
    "invalid_json": "the line is not JSON",
    "data_type": "the line, or one of its messages, is not a JSON object",
    "missing_messages_list": "no non-empty 'messages' list",
    "message_missing_key": "a message without 'role', or without 'content' (which only an assistant "
    "message with tool_calls or function_call may omit)",
    "message_unrecognized_key": "a message key outside ALLOWED_MESSAGE_KEYS",
    "unrecognized_role": "a role outside ALLOWED_ROLES",
    "missing_content": "content that is not a non-empty string (an assistant message with tool_calls or "
    "function_call may have null or empty content)",
    "invalid_weight": "a weight that is not 0 or 1, or a weight on a message that is not the assistant's",
    "example_missing_assistant_message": "no assistant message to learn from",
    "too_many_tokens": "more tokens than the per-example limit (OpenAI would truncate the example)",
}
"""Every check's name, with what it refuses."""

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


def _json_type(value: object) -> str:
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


def _show(value: object, limit: int = 40) -> str:
    shown = repr(value)
    return shown if len(shown) <= limit else f"{shown[: limit - 3]}..."


def _missing_messages(example: dict[Any, Any]) -> str:
    if "messages" not in example:
        keys = ", ".join(sorted(_show(key) for key in example)) or "none"
        return f"no 'messages' list (keys: {keys})"
    messages = example["messages"]
    if isinstance(messages, list):
        return "'messages' is an empty list"
    return f"'messages' is {_json_type(messages)}; expected a list of messages"


def _message_problems(number: int, message: object) -> list[tuple[str, str]]:
    """Every check one message fails, as (check, what is wrong); the slow path, for bad messages only."""
    if not isinstance(message, dict):
        return [
            (
                "data_type",
                f"message {number} is {_json_type(message)}; expected an object with 'role' and 'content'",
            )
        ]
    problems: list[tuple[str, str]] = []
    role = message.get("role")
    known_role = isinstance(role, str) and role in ALLOWED_ROLES
    label = f"message {number} ({role})" if known_role else f"message {number}"
    calls_tools = role == "assistant" and bool(message.get("tool_calls") or message.get("function_call"))
    if "role" not in message:
        problems.append(("message_missing_key", f"{label} has no 'role'"))
    elif not known_role:
        expected = ", ".join(sorted(ALLOWED_ROLES))
        problems.append(("unrecognized_role", f"{label} has role {_show(role)}; expected one of {expected}"))
    unknown = [key for key in message if key not in ALLOWED_MESSAGE_KEYS]
    if unknown:
        names = ", ".join(sorted(_show(key) for key in unknown))
        allowed = ", ".join(sorted(ALLOWED_MESSAGE_KEYS))
        problems.append(
            ("message_unrecognized_key", f"{label} has unrecognized key {names}; allowed: {allowed}")
        )
    if "content" not in message:
        if not calls_tools:
            problems.append(("message_missing_key", f"{label} has no 'content'"))
    else:
        content = message["content"]
        if calls_tools:
            if content is not None and not isinstance(content, str):
                problems.append(
                    (
                        "missing_content",
                        f"the content of {label} is {_json_type(content)}; expected a string or null",
                    )
                )
        elif not isinstance(content, str) or not content:
            problems.append(
                (
                    "missing_content",
                    f"the content of {label} is {_json_type(content)}; expected a non-empty string",
                )
            )
    if "weight" in message:
        weight = message["weight"]
        if known_role and role != "assistant":
            problems.append(("invalid_weight", f"{label} has a weight; only assistant messages may"))
        elif type(weight) is not int or weight not in (0, 1):
            problems.append(("invalid_weight", f"{label} has weight {_show(weight)}; expected 0 or 1"))
    return problems


class ChatFormatValidator:
    """Checks the lines of one chat fine-tuning file, in order, and reports on them all."""

    def __init__(self, file: str, model: str, max_example_tokens: int) -> None:
        if max_example_tokens < 1:
            raise ValueError(f"max_example_tokens must be positive, not {max_example_tokens}")
        self.file = file
        self.model = model
        self.max_example_tokens = max_example_tokens
        self._encoding = encoding_for(model)
        self._repeated_tokens: dict[str, int] = {}
        self._examples = 0
        self._issues: list[FormatIssue] = []
        self._issue_counts: dict[str, int] = {}
        self._issue_total = 0
        self._tokens = TokenHistogram()
        self._assistant_tokens = TokenHistogram()
        self._billed_tokens = 0
        self._without_system = 0
        self._without_user = 0

    def _record(self, line: int, check: str, problem: str) -> None:
        self._issue_total += 1
        self._issue_counts[check] = self._issue_counts.get(check, 0) + 1
        if len(self._issues) < MAX_REPORTED_ISSUES:
            self._issues.append(FormatIssue(line=line, check=check, message=f"line {line}: {problem}"))

    def check_line(self, line: int, raw: bytes | str) -> int | None:
        """Parse and check one line of the file; a blank line is no example and returns None."""
        if not raw or raw.isspace():
            return None
        try:
            example = json.loads(raw)
        except json.JSONDecodeError as error:
            self._examples += 1
            self._record(line, "invalid_json", f"not valid JSON ({error.msg} at column {error.colno})")
            return None
        except UnicodeDecodeError:
            self._examples += 1
            self._record(line, "invalid_json", "not valid JSON (the bytes are not UTF-8 text)")
            return None
        except RecursionError:
            self._examples += 1
            self._record(line, "invalid_json", "not valid JSON (nested too deeply to read)")
            return None
        return self.check(line, example)

    def check(self, line: int, example: object, *, counted: tuple[int, int] | None = None) -> int | None:
        """Validate one parsed line; returns its token count when it is a valid example, None otherwise
        (issue recorded). `counted`: the example's (tokens, assistant tokens) from `count_tokens`, when
        the caller has counted them already."""
        self._examples += 1
        if not isinstance(example, dict):
            self._record(
                line, "data_type", f"expected a JSON object with a 'messages' list, got {_json_type(example)}"
            )
            return None
        messages = example.get("messages")
        if not isinstance(messages, list) or not messages:
            self._record(line, "missing_messages_list", _missing_messages(example))
            return None
        issues_before = self._issue_total
        roles: set[str] = set()
        for number, message in enumerate(messages, 1):
            if type(message) is dict:
                role = message.get("role")
                content = message.get("content")
                # The common case, a valid message, in a handful of cheap tests.
                if (
                    type(content) is str
                    and content
                    and type(role) is str
                    and role in ALLOWED_ROLES
                    and "weight" not in message
                    and message.keys() <= ALLOWED_MESSAGE_KEYS
                ):
                    roles.add(role)
                    continue
                if type(role) is str:
                    roles.add(role)
            for check, problem in _message_problems(number, message):
                self._record(line, check, problem)
        if "assistant" not in roles:
            self._record(
                line, "example_missing_assistant_message", "no assistant message; an example needs one"
            )
        if self._issue_total > issues_before:
            return None

        tokens, assistant_tokens = counted if counted is not None else self.count_tokens(messages)
        self._tokens.add(tokens)
        self._assistant_tokens.add(assistant_tokens)
        self._without_system += "system" not in roles
        self._without_user += "user" not in roles
        if tokens > self.max_example_tokens:
            self._record(
                line,
                "too_many_tokens",
                f"{tokens:,} tokens, over the limit of {self.max_example_tokens:,} per example "
                "(OpenAI would truncate it)",
            )
            return None
        self._billed_tokens += tokens
        return tokens

    def count_tokens(self, messages: list[dict[str, Any]]) -> tuple[int, int]:
        """The example's tokens and its assistant content's (`synthtune.tokens.chat_token_counts`)."""
        return chat_token_counts(messages, self._encoding, self._repeated_tokens)

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


def validate_chat_file(
    lines: Iterable[bytes | str], file: str, model: str, max_example_tokens: int
) -> FormatReport:
    """Check every line of a chat fine-tuning file (numbered from 1, blank lines included)."""
    validator = ChatFormatValidator(file, model, max_example_tokens)
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
