"""The command's own manners: a version, an exit-code table, config errors in plain words, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from synthtune.contracts.config import load_run_config
from synthtune.contracts.errors import InvalidConfig
from synthtune_cli.main import main

SAMPLE = Path(__file__).resolve().parents[2] / "events" / "problem-set.sample.jsonl"


def test_version_and_the_exit_codes_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as version:
        main(["--version"])
    assert version.value.code == 0
    assert capsys.readouterr().out.startswith("synthtune ")

    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = capsys.readouterr().out
    for code in ("0 ", "1 ", "2 ", "130 "):
        assert f"\n  {code}" in help_text


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"shard_sise": 3}, "shard_sise: not a field here; did you mean 'shard_size'?"),
        ({"fine_tune": {"n_epochz": 2}}, "fine_tune.n_epochz: not a field here; did you mean 'n_epochs'?"),
        (
            {"fine_tune": {"n_epochs": "x"}},
            "fine_tune.n_epochs: input should be a valid integer, unable to parse string as an integer or "
            "input should be 'auto' (got 'x')",
        ),
        (
            {"generation": {"mode": "bach"}},
            "generation.mode: input should be 'online' or 'batch' (got 'bach')",
        ),
    ],
)
def test_config_errors_read_as_plain_words(config: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidConfig) as refused:
        load_run_config(config)
    assert str(refused.value) == f"config: {message}"
    assert "constrained-int" not in str(refused.value)


def test_an_output_directory_that_cannot_be_made_is_a_plain_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", str(SAMPLE), "--out", "/proc/synthtune-nope"])

    err = capsys.readouterr().err
    assert code == 2
    assert "synthtune: /proc/synthtune-nope" in err
    assert "Traceback" not in err


def test_a_closed_pipe_prints_no_traceback() -> None:
    # validate's output is read by a process that stops at once (as `| head -c 1` does).
    command = [sys.executable, "-m", "synthtune_cli.main", "validate", str(SAMPLE)]
    producer = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert producer.stdout is not None
    producer.stdout.read(1)
    producer.stdout.close()
    _, err = producer.communicate(timeout=120)

    assert b"Traceback" not in err
    assert b"BrokenPipeError" not in err
