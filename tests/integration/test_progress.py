"""What `synthtune run` shows while it runs: from the run's events as they happen, on a terminal as a live
panel, elsewhere as plain lines; never by reading the whole history or every record again."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from synthtune_cli.offline import OfflineStack
from synthtune_cli.progress import RunProgress, RunStatus
from synthtune_cli.runner import run_locally
from tests.support import SAMPLE_PROBLEM_SET, jsonl, sample_rows


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Reads:
    """Counts the offline stack's whole-history and whole-run reads while a run is followed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.history = self.records = 0
        history, records = OfflineStack.history, OfflineStack.records

        def count_history(stack: OfflineStack, arn: str) -> list[dict[str, Any]]:
            self.history += 1
            return history(stack, arn)

        def count_records(stack: OfflineStack, run_id: str) -> list[dict[str, Any]]:
            self.records += 1
            return records(stack, run_id)

        monkeypatch.setattr(OfflineStack, "history", count_history)
        monkeypatch.setattr(OfflineStack, "records", count_records)


def test_plain_lines_follow_every_stage_and_shard_reading_nothing_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = Reads(monkeypatch)
    problem_set = tmp_path / "problems.jsonl"
    problem_set.write_bytes(jsonl(sample_rows(per_category=20)))  # 48 to answer, in 8 shards of 6
    stream = io.StringIO()

    outcome = run_locally(
        problem_set,
        config={"shard_size": 6},
        out_dir=tmp_path / "runs",
        run_id="plain",
        progress_stream=stream,
    )

    assert outcome.status == "SUCCEEDED"
    lines = stream.getvalue().splitlines()
    assert lines[0] == "synthtune run plain"
    assert any(line.endswith("] Generate: the teacher answers 48 problems in 8 shards") for line in lines)
    assert lines[-1].endswith("] Report")
    shard_lines = [line.split("] ")[1].strip() for line in lines if line.endswith("shards done")]
    assert shard_lines[-1] == "8/8 shards done"
    # Followed from events: the run's records read twice (the estimate after Prepare, what a resumed run
    # already has when Generate starts) and once more for the run directory; the history once, for it.
    assert (reads.records, reads.history) == (3, 1)


def test_on_a_terminal_a_live_panel_shows_the_teacher_bar_and_keeps_the_log_lines(tmp_path: Path) -> None:
    terminal = Terminal()

    outcome = run_locally(
        SAMPLE_PROBLEM_SET, config=None, out_dir=tmp_path, run_id="live", progress_stream=terminal
    )

    assert outcome.status == "SUCCEEDED"
    shown = terminal.getvalue()
    assert "\x1b[" in shown  # drawn, not printed
    assert "answers ·" in shown  # the teacher's bar: answers of problems, and the time left
    assert "elapsed" in shown
    assert "synthtune run live" in shown
    assert "Generate: the teacher answers 48 problems in 2 shards" in shown
    assert "2/2 shards done" in shown


class Shown:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.status: list[RunStatus] = []

    def print(self, text: str) -> None:
        self.lines.append(text)

    def say(self, line: str) -> None:
        self.lines.append(line)

    def show(self, status: RunStatus) -> None:
        self.status.append(RunStatus(**vars(status)))

    def close(self) -> None:
        pass


class NoStack:
    """A run that had nothing before Generate started (what a resumed run would have, read once)."""

    def keys(self, prefix: str) -> set[str]:
        return set()

    def records(self, run_id: str) -> list[dict[str, Any]]:
        return []


def entered(name: str, state_input: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "MapStateEntered",
        "stateEnteredEventDetails": {"name": name, "input": json.dumps(state_input)},
    }


def test_answers_and_shards_are_counted_from_the_writes_as_they_are_stored() -> None:
    shown = Shown()
    progress = RunProgress(NoStack(), "r", shown)  # type: ignore[arg-type]
    progress.on_history_event(entered("Generate", {"generation": {"problem_count": 4, "shard_count": 2}}))
    for position in range(3):
        progress.on_write("object", f"runs/r/answers/00000/{position:05d}.json", b"{}")
    progress.on_write("object", "runs/r/answers/00000/00000.json", b"{}")  # graded: the same answer again
    progress.on_write("object", "runs/r/dataset/train.jsonl", b"")  # not an answer
    progress.on_write("item", "SHARD#00000", json.dumps({"status": {"S": "failed"}}).encode())
    progress.on_write("item", "SHARD#00000", json.dumps({"status": {"S": "done"}}).encode())
    progress.on_write("item", "SHARD#00001", json.dumps({"status": {"S": "failed"}}).encode())
    progress.update(wait_seconds=0)

    status = shown.status[-1]
    assert (status.problems, status.answered, status.shards, status.shards_done) == (4, 3, 2, 1)
    assert status.stage == "Generate: the teacher answers 4 problems in 2 shards"
    assert not progress.finished
    progress.on_history_event({"type": "ExecutionSucceeded"})
    progress.update(wait_seconds=0)
    assert progress.finished
