"""`synthtune emulator`: its options and its tolerant knowledge reader."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from synthtune_cli.emulator import KnowledgeItem
from synthtune_cli.emulator.command import add_emulator_arguments, read_knowledge_file, run_emulator

EXPECTED = [
    KnowledgeItem(question="What is 2 + 2?", answer="4", category="arithmetic"),
    KnowledgeItem(question="Capital of Peru?", answer="Lima", category=None),
]


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_emulator_arguments(parser)
    return parser.parse_args(argv)


def test_defaults_and_options() -> None:
    defaults = parse()
    options = parse("--port", "9000", "--knowledge", "a.jsonl", "--knowledge", "b.csv", "--time-scale", "60")

    assert (defaults.port, defaults.host, defaults.knowledge, defaults.time_scale) == (
        8787,
        "127.0.0.1",
        [],
        1.0,
    )
    assert (defaults.rpm, defaults.tpm, defaults.error_rate, defaults.latency, defaults.seed) == (
        None,
        None,
        0,
        0,
        0,
    )
    assert options.port == 9000 and options.knowledge == [Path("a.jsonl"), Path("b.csv")]
    assert options.time_scale == 60


def test_refuses_a_non_loopback_host(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_emulator(parse("--host", "0.0.0.0")) == 2
    assert "loopback" in capsys.readouterr().err


def test_reports_a_bad_knowledge_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "ok", "answer": "1"}\n{oops\n')

    assert run_emulator(parse("--knowledge", str(path))) == 2
    assert f"{path}:2" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (
            "problems.jsonl",
            '{"question": "What is 2 + 2?", "answer": 4, "category": "arithmetic"}\n\n'
            '{"question": "Capital of Peru?", "answer": "Lima"}\n',
        ),
        (
            "problems.json",
            json.dumps(
                [
                    {"problem": "What is 2 + 2?", "reference_answer": "4", "topic": "arithmetic"},
                    {"Question": "Capital of Peru?", "Answer": "Lima", "category": ""},
                ]
            ),
        ),
        (
            "wrapped.json",
            json.dumps(
                {
                    "problems": [
                        {"question": "What is 2 + 2?", "answer": "4", "category": "arithmetic"},
                        {"question": "Capital of Peru?", "answer": "Lima"},
                    ]
                }
            ),
        ),
        ("problems.csv", "question,answer,category\nWhat is 2 + 2?,4,arithmetic\nCapital of Peru?,Lima,\n"),
    ],
)
def test_reads_jsonl_json_and_csv(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")

    assert read_knowledge_file(path) == EXPECTED


def test_a_record_without_a_question_names_its_place(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("question,answer\nWhat?,1\n,2\n")

    with pytest.raises(ValueError, match=r"p\.csv:3: no question"):
        read_knowledge_file(path)
