"""Problem sets: reading and validating what a user hands us, before any model is called.

Accepted formats: JSON Lines (`.jsonl`, `.ndjson`), a JSON array (`.json`), or CSV whose first row names
the columns (`.csv`; names matched ignoring case and surrounding spaces). Each problem has `question`
(required, text) and optionally `answer` (the reference: text or a number), `category`, `id` (text or a
whole number), `split` (`train`, `validation` or `holdout`; `test`/`eval` mean holdout, `val`/`dev` mean
validation) and, in JSON formats, a free-form `metadata` object. Anything else is an error that names
the line and the field, so a typo such as `anwser` is caught instead of silently dropping the reference,
and a question written as a number (`42`) is refused rather than quietly turned into the text "42".

Text that holds nothing visible — spaces, zero-width spaces, joiners, byte-order marks, control
characters — is blank. Sizes and nesting are bounded (`MAX_*` below), each with a plain message, so no
row can grow past what a Step Functions state, a shard or a prompt can carry.
"""

from __future__ import annotations

import csv
import hashlib
import json
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from synthtune.contracts.error_text import bounded, quoted
from synthtune.contracts.errors import InvalidProblemSet

Split = Literal["train", "validation", "holdout"]
ProblemSetFormat = Literal["jsonl", "json", "csv"]

FIELDS = ("id", "question", "answer", "category", "split", "metadata")
CSV_COLUMNS = tuple(field for field in FIELDS if field != "metadata")
DEFAULT_CATEGORY = "general"
MAX_QUESTION_CHARS = 20_000
MAX_ANSWER_CHARS = 20_000
MAX_LABEL_CHARS = 200
"""An id, a category or a split name."""
MAX_METADATA_CHARS = 10_000
"""A problem's metadata as compact JSON: carried on every shard, answer and dataset line."""
MAX_METADATA_DEPTH = 16
MAX_LINE_BYTES = 1_000_000
"""One line of a JSON Lines or CSV file: far more than the largest problem the limits above allow."""
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
# Letters and symbols that draw nothing, though Unicode does not class them as spaces or format characters.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})


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


def detect_format(name: str) -> ProblemSetFormat:
    """The format a file name says: `.jsonl`/`.ndjson`, `.json` (an array) or `.csv`."""
    lowered = name.lower()
    if lowered.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if lowered.endswith(".csv"):
        return "csv"
    if lowered.endswith(".json"):
        return "json"
    raise InvalidProblemSet(f"{name}: cannot tell the format from the file name; use .jsonl, .json or .csv")


def _invisible(character: str) -> bool:
    return character in _BLANK_LETTERS or unicodedata.category(character) in _INVISIBLE_CATEGORIES


def visible_text(text: str) -> str:
    """`text` without the spaces and invisible characters around it ("" when it holds nothing visible)."""
    start, end = 0, len(text)
    while start < end and _invisible(text[start]):
        start += 1
    while end > start and _invisible(text[end - 1]):
        end -= 1
    return text[start:end]


def _described(value: object) -> str:
    """A JSON value's type as a message names it, with the value when it is short."""
    if isinstance(value, bool):
        return f"true/false ({json.dumps(value)})"
    if isinstance(value, int | float):
        return f"a number ({quoted(value)})"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"text ({quoted(value)})"
    return type(value).__name__


def _invisible_names(text: str) -> str:
    names = sorted({f"U+{ord(ch):04X} {unicodedata.name(ch, '')}".strip() for ch in text if not ch.isspace()})
    return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")


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


@dataclass(frozen=True)
class _TextField:
    name: str
    limit: int
    numbers: Literal["no", "any", "whole"] = "no"
    """Whether a JSON number is taken as its text: an answer may be 42 or 0.5, an id 7, a question never."""


_QUESTION = _TextField("question", MAX_QUESTION_CHARS)
_ANSWER = _TextField("answer", MAX_ANSWER_CHARS, numbers="any")
_CATEGORY = _TextField("category", MAX_LABEL_CHARS)
_ID = _TextField("id", MAX_LABEL_CHARS, numbers="whole")
_SPLIT = _TextField("split", MAX_LABEL_CHARS)


def _text_field(row: dict[str, Any], field: _TextField, where: str, errors: _ErrorLog) -> str | None:
    """The field's visible text; None when it is absent or blank (an error if it is not text)."""
    value = row.get(field.name)
    if value is None:
        return None
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number and (field.numbers == "any" or (field.numbers == "whole" and isinstance(value, int))):
        return str(value)
    if not isinstance(value, str):
        expected = {"no": "text", "any": "text or a number", "whole": "text or a whole number"}[field.numbers]
        errors.add(where, f"field '{field.name}' must be {expected}, got {_described(value)}")
        return None
    text = visible_text(value)
    if not text and value.strip():
        if field is _QUESTION:
            errors.add(
                where,
                f"field 'question' is blank: it holds only invisible characters ({_invisible_names(value)})",
            )
        return None
    if len(text) > field.limit:
        errors.add(where, f"field '{field.name}' is {len(text):,} characters; the limit is {field.limit:,}")
        return None
    return text or None


def _depth(value: object) -> int:
    """How deeply objects and arrays nest in a JSON value (a scalar: 0)."""
    deepest, pending = 0, [(value, 0)]
    while pending:
        node, level = pending.pop()
        if isinstance(node, dict | list):
            level += 1
            deepest = max(deepest, level)
            pending.extend((child, level) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def _metadata(row: dict[str, Any], where: str, errors: _ErrorLog) -> dict[str, Any] | None:
    metadata = row.get("metadata")
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        errors.add(where, f"field 'metadata' must be an object, got {_described(metadata)}")
        return None
    depth = _depth(metadata)
    if depth > MAX_METADATA_DEPTH:
        errors.add(where, f"field 'metadata' nests {depth} levels deep; the limit is {MAX_METADATA_DEPTH}")
        return None
    size = len(json.dumps(metadata, ensure_ascii=False, separators=(",", ":")))
    if size > MAX_METADATA_CHARS:
        errors.add(
            where, f"field 'metadata' is {size:,} characters as JSON; the limit is {MAX_METADATA_CHARS:,}"
        )
        return None
    return metadata


def _problem_from_row(row: object, where: str, errors: _ErrorLog) -> Problem | None:
    if not isinstance(row, dict):
        errors.add(where, f"expected a JSON object (one problem), got {_described(row)}")
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
    question = _text_field(row, _QUESTION, where, errors)
    answer = _text_field(row, _ANSWER, where, errors)
    category = _text_field(row, _CATEGORY, where, errors) or DEFAULT_CATEGORY
    problem_id = _text_field(row, _ID, where, errors)
    split_name = _text_field(row, _SPLIT, where, errors)
    metadata = _metadata(row, where, errors)
    if errors.count > before or metadata is None:
        return None
    if question is None:
        errors.add(where, "field 'question' is required and must not be empty")
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
    return Problem(
        id=problem_id or question_id(question),
        question=question,
        answer=answer,
        category=category,
        split=split,
        metadata=metadata,
    )


def _decoded_lines(
    lines: Iterable[bytes], errors: _ErrorLog, *, keep_numbering: bool = False
) -> Iterator[tuple[int, str]]:
    """Each line as text; a line that cannot be read is reported (and, with `keep_numbering`, read as an
    empty line, so that a reader counting lines keeps counting the file's)."""
    for number, raw in enumerate(lines, start=1):
        line = raw.removeprefix(b"\xef\xbb\xbf") if number == 1 else raw
        if len(line) > MAX_LINE_BYTES:
            errors.add(
                f"line {number}", f"{len(line):,} bytes long; a line may hold at most {MAX_LINE_BYTES:,}"
            )
        else:
            try:
                yield number, line.decode("utf-8")
                continue
            except UnicodeDecodeError as error:
                errors.add(f"line {number}", f"not UTF-8 (byte {error.start + 1} of the line)")
        if keep_numbering:
            yield number, ""


def _loads(text: str | bytes) -> object:
    """json.loads, with nesting too deep for the parser turned into the error a user can act on."""
    try:
        return json.loads(text)
    except RecursionError:
        raise _TooDeep from None


class _TooDeep(Exception):
    pass


_TOO_DEEP = f"nested too deeply to read (a problem's metadata may nest at most {MAX_METADATA_DEPTH} levels)"


def _rows_jsonl(lines: Iterable[bytes], errors: _ErrorLog) -> Iterator[tuple[str, object]]:
    for number, text in _decoded_lines(lines, errors):
        if not text.strip():
            continue
        where = f"line {number}"
        try:
            row = _loads(text)
        except _TooDeep:
            errors.add(where, _TOO_DEEP)
            continue
        except json.JSONDecodeError as error:
            hint = ""
            if number == 1 and text.strip() == "[":
                hint = "; a .jsonl file holds one problem per line, a JSON array goes in a .json file"
            errors.add(where, f"not valid JSON ({error.msg} at column {error.colno}){hint}")
            continue
        if isinstance(row, list):
            errors.add(
                where,
                "expected a JSON object (one problem), got an array; a .jsonl file holds one problem per "
                "line, a JSON array goes in a .json file",
            )
            continue
        yield where, row


def _rows_json_array(lines: Iterable[bytes], errors: _ErrorLog) -> Iterator[tuple[str, object]]:
    data = b"\n".join(lines).removeprefix(b"\xef\xbb\xbf")
    if not data.strip():
        return
    try:
        document = _loads(data)
    except UnicodeDecodeError:
        errors.add("file", "not UTF-8")
        return
    except _TooDeep:
        errors.add("file", _TOO_DEEP)
        return
    except json.JSONDecodeError as error:
        if error.msg == "Extra data" and data.lstrip().startswith(b"{"):
            errors.add(
                f"line {error.lineno}",
                "a second JSON value: a .json problem set is one array of problems ([{...}, {...}]); for "
                "one problem per line, name the file .jsonl",
            )
        else:
            errors.add(f"line {error.lineno}", f"not valid JSON ({error.msg} at column {error.colno})")
        return
    if not isinstance(document, list):
        hint = " (a single problem? put it in [ ])" if isinstance(document, dict) else ""
        errors.add(
            "file",
            f"a .json problem set must hold an array of problems ([{{...}}, {{...}}]), got "
            f"{_described(document)}{hint}",
        )
        return
    for index, row in enumerate(document, start=1):
        yield f"item {index}", row


def _csv_header(names: list[str], where: str, errors: _ErrorLog) -> list[str] | None:
    """The header's column names, matched ignoring case and surrounding spaces; None when it is refused."""
    header = [visible_text(name).casefold() for name in names]
    allowed = ", ".join(CSV_COLUMNS)
    if not any(name in CSV_COLUMNS for name in header):
        others = ", ".join(name for name in CSV_COLUMNS if name != "question")
        shown = ", ".join(quoted(name) for name in names[:3]) + (", ..." if len(names) > 3 else "")
        errors.add(
            where,
            f"the first row must name the columns: question, and any of {others}; it reads {shown}",
        )
        return None
    unknown = [name for name, normal in zip(names, header, strict=True) if normal not in CSV_COLUMNS]
    if unknown:
        errors.add(where, f"unknown column(s) {', '.join(quoted(n) for n in unknown)} (allowed: {allowed})")
        return None
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        errors.add(where, f"column(s) {', '.join(quoted(n) for n in repeated)} named twice")
        return None
    if "question" not in header:
        errors.add(where, "the header has no 'question' column")
        return None
    return header


def _rows_csv(lines: Iterable[bytes], errors: _ErrorLog) -> Iterator[tuple[str, object]]:
    reader = csv.reader(f"{text}\n" for _, text in _decoded_lines(lines, errors, keep_numbering=True))
    try:
        first = next((row for row in reader if any(visible_text(value) for value in row)), None)
        if first is None:
            return
        header = _csv_header(first, f"line {reader.line_num}", errors)
        if header is None:
            return
        for values in reader:
            where = f"line {reader.line_num}"
            if len(values) > len(header):
                errors.add(where, "more values than header columns")
                continue
            row = dict(zip(header, values, strict=False))
            if not any(visible_text(value) for value in row.values()):
                continue
            yield where, {name: value for name, value in row.items() if value != ""}
    except csv.Error as error:
        errors.add(f"line {reader.line_num}", f"not valid CSV ({error})")


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
        raise InvalidProblemSet(f"{source}: the problem set has no problems (only blank lines or a header)")
    return problems


@dataclass(frozen=True)
class ProblemSetFile:
    """A problem set where a caller found it: a local file (`synthtune validate`, `run`) or an S3 object
    (Prepare), read the same way whichever it is."""

    name: str
    """How messages name it: the user's own path, or the object's s3:// URI."""
    size: int
    lines: Callable[[], Iterable[bytes]]
    """Its lines without their line breaks, read when the set is parsed."""

    @classmethod
    def local(cls, path: Path) -> ProblemSetFile:
        """A file on this machine (InvalidProblemSet when there is none to read)."""
        if path.is_dir():
            raise InvalidProblemSet(
                f"{path} is a folder, not a problem set; give a .jsonl, .json or .csv file"
            )
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise InvalidProblemSet(f"{path}: no such file") from None
        except OSError as error:
            raise InvalidProblemSet(f"{path}: cannot read it ({error.strerror or error})") from None
        return cls(name=str(path), size=size, lines=lambda: path.read_bytes().splitlines())


def problem_set_format(problem_set: ProblemSetFile) -> ProblemSetFormat:
    """The format the set's name says; InvalidProblemSet for a name no format has, or an empty file."""
    file_format = detect_format(problem_set.name)
    if problem_set.size == 0:
        raise InvalidProblemSet(f"{problem_set.name} is empty (0 bytes): it holds no problems")
    return file_format


def read_problem_set(problem_set: ProblemSetFile) -> list[Problem]:
    """Every problem in the set, or InvalidProblemSet: the format its name says, then its rows."""
    return parse_problem_set(problem_set.lines(), problem_set.name, problem_set_format(problem_set))
