"""`synthtune validate` and Prepare make one plan: on every fixture, good and bad, they accept and refuse
alike, and refuse with the same error and the same message (each naming its own copy of the file, and its
own emulator's port).

Prepare runs as deployed — the real handler, through moto's Lambda API, on the offline stack, its models
looked up at the emulator — and validate as a user runs it, on a file on disk, its models looked up at an
emulator of its own.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from synthtune_cli.emulator import OpenAIEmulator
from synthtune_cli.main import main
from synthtune_cli.offline import OfflineStack
from tests.support import SAMPLE_PROBLEM_SET, jsonl, sample_rows

SAMPLE = SAMPLE_PROBLEM_SET.read_bytes()
ROWS = sample_rows()


def csv_of(rows: list[dict[str, Any]], header: list[str] | None) -> bytes:
    table = io.StringIO()
    writer = csv.writer(table)
    if header is not None:
        writer.writerow(header)
    writer.writerows([[row[name] for name in ("question", "answer", "category")] for row in rows])
    return table.getvalue().encode()


def nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"more": value}
    return value


@dataclass(frozen=True)
class Fixture:
    name: str
    file: str
    content: bytes
    config: dict[str, Any] = field(default_factory=dict)
    refused: str | None = None
    """The error both must refuse with (None: both accept)."""
    says: str = ""
    """What the message must say, whoever says it."""


FIXTURES = [
    Fixture("the sample", "sample.jsonl", SAMPLE),
    Fixture("the sample as a JSON array", "sample.json", json.dumps(ROWS, indent=2).encode()),
    Fixture(
        "a CSV header as people write it",
        "capitals.csv",
        csv_of(ROWS, ["Question", " Answer ", "CATEGORY"]),
    ),
    Fixture(
        "8 problems: too few to train",
        "eight.jsonl",
        jsonl(ROWS[:8]),
        refused="InvalidProblemSet",
        says="fine-tuning bedrock/amazon.nova-micro-v1:0 needs at least 8",
    ),
    Fixture(
        "30 problems without answers: nothing to hold out",
        "unanswered.jsonl",
        jsonl([{"question": row["question"]} for row in ROWS[:30]]),
        refused="InvalidProblemSet",
        says="no problem can be held out for the benchmark",
    ),
    Fixture(
        "a question that is a number",
        "number.jsonl",
        jsonl([*ROWS[:-1], {"question": 42, "answer": "42"}]),
        refused="InvalidProblemSet",
        says="line 60: field 'question' must be text, got a number (42)",
    ),
    Fixture(
        "a single JSON object",
        "single.json",
        json.dumps(ROWS[0], indent=2).encode(),
        refused="InvalidProblemSet",
        says="must hold an array of problems",
    ),
    Fixture(
        "JSON Lines named .json",
        "lines.json",
        jsonl(ROWS),
        refused="InvalidProblemSet",
        says="name the file .jsonl",
    ),
    Fixture("an empty file", "empty.jsonl", b"", refused="InvalidProblemSet", says="is empty (0 bytes)"),
    Fixture(
        "JSON nested deeper than a parser goes",
        "deep.jsonl",
        SAMPLE + b'{"question": "q", "metadata": ' + b"[" * 50_000 + b"]" * 50_000 + b"}\n",
        refused="InvalidProblemSet",
        says="line 61: nested too deeply to read",
    ),
    Fixture(
        "nested metadata",
        "metadata.jsonl",
        jsonl([*ROWS, {"question": "What nests?", "metadata": nested(300)}]),
        refused="InvalidProblemSet",
        says="line 61: field 'metadata' nests 300 levels deep; the limit is 16",
    ),
    Fixture(
        "a question of zero-width spaces",
        "invisible.jsonl",
        jsonl([*ROWS, {"question": "\u200b\u200b\u200b", "answer": "1"}]),
        refused="InvalidProblemSet",
        says="line 61: field 'question' is blank: it holds only invisible characters (U+200B",
    ),
    Fixture(
        "a CSV without a header",
        "headless.csv",
        csv_of(ROWS, None),
        refused="InvalidProblemSet",
        says="line 1: the first row must name the columns",
    ),
    Fixture(
        "a misspelt field",
        "typo.jsonl",
        jsonl([*ROWS, {"question": "q", "anwser": "a"}]),
        refused="InvalidProblemSet",
        says="line 61: unknown field 'anwser'",
    ),
    Fixture(
        "a student OpenAI does not fine-tune",
        "sample.jsonl",
        SAMPLE,
        config={"student_model": "gpt-3.5-turbo"},
        refused="FineTuneUnavailable",
        says="student_model 'gpt-3.5-turbo': OpenAI does not fine-tune it",
    ),
    Fixture(
        "a teacher no endpoint serves",
        "sample.jsonl",
        SAMPLE,
        config={"teacher_model": "gpt-9-ultra"},
        refused="InvalidConfig",
        says="teacher_model 'gpt-9-ultra': <emulator>/v1 does not serve it; the closest names it offers:",
    ),
    Fixture(
        "a Bedrock judge Bedrock does not know",
        "sample.jsonl",
        SAMPLE,
        config={"judge_model": "bedrock/amazon.nova-lyte-v1:0"},
        refused="InvalidConfig",
        says="the closest names it offers: 'bedrock/amazon.nova-lite-v1:0'",
    ),
    Fixture(
        "a budget the estimate passes",
        "sample.jsonl",
        SAMPLE,
        config={"budget_usd": 0.01},
        refused="BudgetExceeded",
        says="more than budget_usd $0.01",
    ),
    Fixture(
        "hyperparameters the student's provider refuses",
        "sample.jsonl",
        SAMPLE,
        config={"fine_tune": {"n_epochs": 6}},
        refused="InvalidConfig",
        says="fine_tune.n_epochs is 6",
    ),
]

_EMULATOR = re.compile(r"http://127\.0\.0\.1:\d+")
_NOTE = re.compile(r"^  \(<emulator> is the project's emulator.*$", re.MULTILINE)


@dataclass(frozen=True)
class Outcome:
    error: str | None
    message: str
    """The refusal's message, or for a plan, its split."""


def normalised(text: str, *names: str) -> str:
    for name in names:
        text = text.replace(name, "<problem set>")
    return _NOTE.sub("", _EMULATOR.sub("<emulator>", text)).rstrip()


def by_validate(fixture: Fixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Outcome:
    path = tmp_path / fixture.file
    path.write_bytes(fixture.content)
    config = tmp_path / "config.json"
    config.write_text(json.dumps(fixture.config))
    code = main(["validate", str(path), "--config", str(config)])
    out, err = capsys.readouterr()
    if code == 0:
        split = re.search(r"split: (\d+) train, (\d+) validation, (\d+) holdout", out)
        assert split is not None, out
        return Outcome(None, "{} {} {}".format(*split.groups()))
    assert code == 2, err  # the exit status of every refusal
    error, _, message = err.partition(": ")
    return Outcome(error, normalised(message, str(path)))


def by_prepare(fixture: Fixture, stack: OfflineStack, run_id: str) -> Outcome:
    key = f"inputs/{run_id}/{fixture.file}"
    stack.upload(key, fixture.content)
    payload = {"run_id": run_id, "input": {"key": key, "config": fixture.config}}
    response = stack.client("lambda").invoke(FunctionName="PrepareFunction", Payload=json.dumps(payload))
    body = json.loads(response["Payload"].read())
    if response.get("FunctionError"):
        return Outcome(body["errorType"], normalised(body["errorMessage"], f"s3://{stack.bucket}/{key}"))
    splits = body["generation"]["splits"]
    return Outcome(None, f"{splits['train']} {splits['validation']} {splits['holdout']}")


@pytest.mark.parametrize("fixture", FIXTURES, ids=[fixture.name for fixture in FIXTURES])
def test_validate_and_prepare_agree(
    fixture: Fixture,
    stack: OfflineStack,
    emulator: OpenAIEmulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    validated = by_validate(fixture, tmp_path, capsys)
    prepared = by_prepare(fixture, stack, run_id="agreement")

    assert validated == prepared
    assert validated.error == fixture.refused, validated.message
    assert fixture.says in validated.message
    if fixture.refused is not None:
        # Refused before a token was paid for: at most a free lookup of each model reached the emulator.
        assert emulator.billed == []
        assert {request.method for request in emulator.requests} <= {"GET"}


def test_every_gap_the_issue_names_is_a_fixture() -> None:
    # Issue 12: what validate accepted and a run then refused (or failed on with a traceback).
    refused = {fixture.name for fixture in FIXTURES if fixture.refused}
    assert {
        "8 problems: too few to train",
        "30 problems without answers: nothing to hold out",
        "a question that is a number",
        "a single JSON object",
        "an empty file",
        "JSON nested deeper than a parser goes",
        "nested metadata",
        "a question of zero-width spaces",
        "a CSV without a header",
        "a student OpenAI does not fine-tune",
        "a teacher no endpoint serves",
    } <= refused
    assert "a CSV header as people write it" in {fixture.name for fixture in FIXTURES if not fixture.refused}
