"""`synthtune report RUN_DIR`: a run's report.md and report.html drawn again from its files, in a run
directory of `synthtune run` and in a run copied from S3; old runs and failed runs render too."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from synthtune.stages.report import KNOWLEDGE_TITLE
from synthtune_cli.main import main
from tests.support import OPENAI_MODELS, SAMPLE_PROBLEM_SET, jsonl, sample_rows
from tests.support_report import Page

RUN_ID = "demo"


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo run, as `make demo` leaves it (kept read-only by the tests: each works on a copy)."""
    out = tmp_path_factory.mktemp("runs")
    assert main(["run", str(SAMPLE_PROBLEM_SET), "--out", str(out), "--run-id", RUN_ID]) == 0
    return out / RUN_ID


def copy_of(run_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / run_dir.name
    shutil.copytree(run_dir, target)
    return target


def report_command(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["report", str(run_dir)])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_run_directory_renders_its_reports_again(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = copy_of(finished_run, tmp_path)
    (run_dir / "report.md").unlink()
    (run_dir / "report.html").unlink()

    code, out, err = report_command(run_dir, capsys)

    assert code == 0, err
    assert out.split() == [str(run_dir / "report.md"), str(run_dir / "report.html")]
    # Drawn from the run's files, they say what the Report step wrote, to the byte.
    assert (run_dir / "report.md").read_text() == (finished_run / "report.md").read_text()
    assert (run_dir / "report.html").read_text() == (finished_run / "report.html").read_text()
    page = Page.parse((run_dir / "report.html").read_text())
    assert page.charts == {
        "chart-accuracy": 1,
        "chart-categories": 1,
        "chart-trade-off": 1,
        "chart-loss": 1,
    }
    assert page.external_references() == []
    assert "simulated" in page.ids()
    verdicts = [
        comparison["verdict"]
        for comparison in json.loads((run_dir / "benchmark.json").read_text())["comparisons"]
    ]
    assert len(verdicts) == 2
    assert all(verdict in (run_dir / "report.md").read_text() for verdict in verdicts)


def test_a_run_copied_from_s3_renders_into_its_report_folder(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The run directory's journal holds the run's S3 objects under their keys: runs/<run id>/... is what
    # `aws s3 cp --recursive s3://BUCKET/runs/<run id>/ DIR` would leave in DIR.
    downloaded = tmp_path / "downloaded"
    shutil.copytree(finished_run / "state" / "s3" / "runs" / RUN_ID, downloaded)
    assert {"report", "benchmark", "finetune", "dataset"} <= {path.name for path in downloaded.iterdir()}
    (downloaded / "report" / "report.md").unlink()
    (downloaded / "report" / "report.html").unlink()

    code, out, err = report_command(downloaded, capsys)

    assert code == 0, err
    assert out.split() == [
        str(downloaded / "report" / "report.md"),
        str(downloaded / "report" / "report.html"),
    ]
    assert (downloaded / "report" / "report.md").read_text() == (finished_run / "report.md").read_text()
    assert (downloaded / "report" / "report.html").read_text() == (finished_run / "report.html").read_text()


def test_an_old_run_renders_with_outcomes_and_the_simulated_flag_filled_in(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = copy_of(finished_run, tmp_path)
    # As an older version wrote it: no outcome on the answers, no probe of the held-out problems, no
    # simulated models on the run, no report.html, and a report.md without intervals.
    (run_dir / "benchmark" / "holdout_knowledge.jsonl").unlink()
    for path in (run_dir / "benchmark").glob("*.jsonl"):
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        path.write_text(
            "".join(json.dumps({k: v for k, v in line.items() if k != "outcome"}) + "\n" for line in lines)
        )
    records = json.loads((run_dir / "records.json").read_text())
    for item in records:
        item.pop("simulated_models", None)
    (run_dir / "records.json").write_text(json.dumps(records))
    (run_dir / "report.html").unlink()
    (run_dir / "report.md").write_text("# an old report\n")

    code, _, err = report_command(run_dir, capsys)

    assert code == 0, err
    report = (run_dir / "report.md").read_text()
    # What the run's report says, but for what the held-out probe adds (run.json says the emulator
    # answered).
    assert f"## {KNOWLEDGE_TITLE}" in (finished_run / "report.md").read_text()
    assert report == without_section((finished_run / "report.md").read_text(), KNOWLEDGE_TITLE)
    assert "**Simulated models.**" in report
    page = Page.parse((run_dir / "report.html").read_text())
    assert "simulated" in page.ids()
    assert "The held-out problems were not probed" in " ".join(page.text)


def without_section(markdown: str, title: str) -> str:
    """report.md without its `## title` section."""
    before, after = markdown.split(f"## {title}\n", 1)
    rest = after.split("\n## ", 1)
    return before + (f"## {rest[1]}" if len(rest) == 2 else "")


def test_a_failed_run_renders_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A weak teacher gets most answers wrong: too few survive to fine-tune on (a bad problem set is refused
    # before a run starts, so a run fails in Assemble at the earliest).
    weak = tmp_path / "weak.jsonl"
    weak.write_bytes(jsonl(sample_rows(per_category=6)))
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**OPENAI_MODELS, "teacher_model": "gpt-4.1-nano-2025-04-14"}))
    out = tmp_path / "runs"
    assert main(["run", str(weak), "--config", str(config), "--out", str(out), "--run-id", "weak"]) == 1
    run_dir = out / "weak"
    written = (run_dir / "report.html").read_text()
    (run_dir / "report.html").unlink()
    capsys.readouterr()

    code, _, err = report_command(run_dir, capsys)

    assert code == 0, err
    assert (run_dir / "report.html").read_text() == written
    page = Page.parse(written)
    assert page.ids()[:3] == ["simulated", "failure", "verdict"]
    assert "InvalidDataset" in " ".join(page.text)
    assert "## Failed in Assemble: `InvalidDataset`" in (run_dir / "report.md").read_text()


def test_a_directory_that_is_not_a_run_is_refused_naming_what_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("not a run")

    code, out, err = report_command(tmp_path, capsys)

    assert code == 2
    assert out == ""
    assert "not a run directory" in err
    assert "records.json" in err
    assert "report/summary.json" in err
    assert not (tmp_path / "report.html").exists()
    assert report_command(tmp_path / "missing", capsys)[0] == 2


def test_an_unreadable_answers_file_is_named(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = copy_of(finished_run, tmp_path)
    with (run_dir / "benchmark" / "base.jsonl").open("a") as answers:
        answers.write('{"problem_id": "x"}\n')

    code, _, err = report_command(run_dir, capsys)

    assert code == 2
    assert f"{run_dir / 'benchmark' / 'base.jsonl'}, line 13: not a benchmark answer" in err
