"""Problem sets: reading and validating what a user hands us, before any model is called.

Accepted formats: JSON Lines (`.jsonl`, `.ndjson`), a JSON array (`.json`), or CSV with a header row
(`.csv`). Each problem has `question` (required) and optionally `answer` (the reference), `category`,
`id`, `split` (`train`, `validation` or `holdout`; `test`/`eval` mean holdout, `val`/`dev` mean
validation) and, in JSON formats, a free-form `metadata` object. Anything else is an error that names
the line and the field, so a typo such as `anwser` is caught instead of silently dropping the reference.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from synthtune.contracts.error_text import bounded, quoted
from synthtune.contracts.errors import InvalidProblemSet

Split = Literal["train", "validation", "holdout"]
ProblemSetFormat = Literal["jsonl", "json", "csv"]

FIELDS = ("id", "question", "answer", "category", "split", "metadata")
DEFAULT_CATEGORY = "general"
MAX_QUESTION_CHARS = 20_000
MAX_REPORTED_ERRORS = 20
MAX_ERROR_LINE_CHARS = 400
"""One reported error, quoted values included: 20 of them stay a few kilobytes, whatever the data."""

_SPLIT_NAMES: dict[str, Split] = {
    "train": "train",
    "training": "train",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "dev": "validation",
    "holdout": "holdout",
    "held-out": "holdout",
    "heldout": "holdout",
    "test": "holdout",
    "eval": "holdout",
}


class Problem(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    question: str
    answer: str | None = None
    category: str = DEFAULT_CATEGORY
    split: Split | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class SplitCounts(BaseModel):
    """How many problems each split holds."""

    model_config = ConfigDict(frozen=True)

    train: int
    validation: int
    holdout: int


def normalise_question(question: str) -> str:
    """The form two questions are compared in: case-folded, whitespace collapsed."""
    return " ".join(question.casefold().split())


def question_id(question: str) -> str:
    """A stable id from the question text, for problems that bring none."""
    return "q-" + hashlib.sha256(normalise_question(question).encode()).hexdigest()[:12]


def detect_format(key: str, first_bytes: bytes = b"") -> ProblemSetFormat:
    lowered = key.lower()
    if lowered.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if lowered.endswith(".csv"):
        return "csv"
    if lowered.endswith(".json"):
        return "json" if first_bytes.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"[") else "jsonl"
    raise InvalidProblemSet(f"{key}: cannot tell the format from the file name; use .jsonl, .json or .csv")


class _ErrorLog:
    """Collects row errors so the user sees many at once, not one per attempt; each is short, because
    the message travels as a Step Functions cause (see `synthtune.contracts.error_text`)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.messages: list[str] = []
        self.count = 0

    def add(self, where: str, message: str) -> None:
        self.count += 1
        if len(self.messages) < MAX_REPORTED_ERRORS:
            self.messages.append(bounded(f"{where}: {message}", MAX_ERROR_LINE_CHARS))

    def raise_if_any(self) -> None:
        if not self.count:
            return
        more = self.count - len(self.messages)
        lines = "\n".join(f"  {message}" for message in self.messages)
        tail = f"\n  ... and {more} more" if more else ""
        noun = "error" if self.count == 1 else "errors"
        raise InvalidProblemSet(f"{self.source}: {self.count} {noun}\n{lines}{tail}")


def _text_field(row: dict[str, Any], field: str, where: str, errors: _ErrorLog) -> str | None:
    value = row.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        errors.add(where, f"field '{field}' must be a string, got {type(value).__name__}")
        return None
    text = str(value).strip()
    return text or None


def _problem_from_row(row: object, where: str, errors: _ErrorLog) -> Problem | None:
    if not isinstance(row, dict):
        errors.add(where, f"expected a JSON object, got {type(row).__name__}")
        return None
    unknown = sorted(set(row) - set(FIELDS))
    if unknown:
        errors.add(
            where,
            f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(quoted(f) for f in unknown)} "
            f"(allowed: {', '.join(FIELDS)}; put extra data under 'metadata')",
        )
        return None
    before = errors.count
    question = _text_field(row, "question", where, errors)
    answer = _text_field(row, "answer", where, errors)
    category = _text_field(row, "category", where, errors) or DEFAULT_CATEGORY
    problem_id = _text_field(row, "id", where, errors)
    split_name = _text_field(row, "split", where, errors)
    metadata = row.get("metadata") or {}
    if errors.count > before:
        return None
    if question is None:
        errors.add(where, "field 'question' is required and must not be empty")
        return None
    if len(question) > MAX_QUESTION_CHARS:
        errors.add(
            where, f"field 'question' is {len(question):,} characters; the limit is {MAX_QUESTION_CHARS:,}"
        )
        return None
    split: Split | None = None
    if split_name is not None:
        split = _SPLIT_NAMES.get(split_name.lower())
        if split is None:
            errors.add(where, f"field 'split' is {quoted(split_name)}; expected train, validation or holdout")
            return None
        if split == "holdout" and answer is None:
            errors.add(
                where, "a problem in the holdout split needs a reference 'answer' to be graded against"
            )
            return None
    if not isinstance(metadata, dict):
        errors.add(where, f"field 'metadata' must be an object, got {type(metadata).__name__}")
        return None
    return Problem(
        id=problem_id or question_id(question),
        question=question,
        answer=answer,
        category=category,
        split=split,
        metadata=metadata,
    )


def _decoded_lines(lines: Iterable[bytes], errors: _ErrorLog) -> Iterator[tuple[int, str]]:
    for number, raw in enumerate(lines, start=1):
        line = raw.removeprefix(b"\xef\xbb\xbf") if number == 1 else raw
        try:
            yield number, line.decode("utf-8")
        except UnicodeDecodeError as error:
            errors.add(f"line {number}", f"not UTF-8 (byte {error.start + 1} of the line)")


def _rows_jsonl(lines: Iterable[bytes], errors: _ErrorLog) -> Iterator[tuple[str, object]]:
    for number, text in _decoded_lines(lines, errors):
        if not text.strip():
            continue
        try:
            yield f"line {number}", json.loads(text)
        except json.JSONDecodeError as error:
            errors.add(f"line {number}", f"not valid JSON ({error.msg} at column {error.colno})")


def _rows_json_array(lines: Iterable[bytes], errors: _ErrorLog) -> Iterator[tuple[str, object]]:
    data = b"\n".join(lines).removeprefix(b"\xef\xbb\xbf")
    try:
        document = json.loads(data)
    except UnicodeDecodeError:
        errors.add("file", "not UTF-8")
        return
    except json.JSONDecodeError as error:
        errors.add(f"line {error.lineno}", f"not valid JSON ({error.msg} at column {error.colno})")
        return
    if not isinstance(document, list):
        errors.add("file", f"a .json problem set must be an array of objects, got {type(document).__name__}")
        return
    for index, row in enumerate(document, start=1):
        yield f"item {index}", row


def _rows_csv(lines: Iterable[bytes], errors: _ErrorLog) -> Iterator[tuple[str, object]]:
    text_lines = (f"{text}\n" for _, text in _decoded_lines(lines, errors))
    reader = csv.DictReader(text_lines)
    if reader.fieldnames is None:
        return
    header = [name.strip() for name in reader.fieldnames]
    unknown = [name for name in header if name not in FIELDS or name == "metadata"]
    if unknown:
        allowed = ", ".join(f for f in FIELDS if f != "metadata")
        errors.add(
            "line 1", f"unknown column(s) {', '.join(quoted(n) for n in unknown)} (allowed: {allowed})"
        )
        return
    if "question" not in header:
        errors.add("line 1", "the header has no 'question' column")
        return
    for row in reader:
        if None in row:
            errors.add(f"line {reader.line_num}", "more values than header columns")
            continue
        values = {name.strip(): value for name, value in row.items() if name is not None}
        if not any((value or "").strip() for value in values.values()):
            continue
        yield f"line {reader.line_num}", {name: value for name, value in values.items() if value != ""}


def parse_problem_set(lines: Iterable[bytes], source: str, file_format: ProblemSetFormat) -> list[Problem]:
    """Every problem in the set, or InvalidProblemSet listing what is wrong where.

    `lines` are the raw lines of the file (newlines stripped), as S3's `iter_lines` yields them.
    """
    errors = _ErrorLog(source)
    readers = {"jsonl": _rows_jsonl, "json": _rows_json_array, "csv": _rows_csv}
    problems: list[Problem] = []
    first_seen: dict[str, str] = {}
    for where, row in readers[file_format](lines, errors):
        problem = _problem_from_row(row, where, errors)
        if problem is None:
            continue
        if problem.id in first_seen:
            if isinstance(row, dict) and row.get("id") is not None:
                errors.add(where, f"id {quoted(problem.id)} is already used at {first_seen[problem.id]}")
                continue
            # A repeated question without an explicit id: keep both, each with its own id.
            problem = problem.model_copy(update={"id": f"{problem.id}-{where.split()[-1]}"})
        first_seen[problem.id] = where
        problems.append(problem)
    errors.raise_if_any()
    if not problems:
        raise InvalidProblemSet(f"{source}: the problem set has no problems")
    return problems
