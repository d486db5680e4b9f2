"""A run's report.md and report.html, drawn from its files: `synthtune report RUN_DIR`, and a failed run's
reports when `synthtune run` ends.

Two layouts of a run's files are read:

```
a run directory of `synthtune run`        a run copied from S3
(runs/<run id>/)                          (aws s3 cp --recursive s3://BUCKET/runs/<run id>/ DIR)
  records.json   the run's DynamoDB items   report/summary.json   the run summary
  summary.json   (when records.json is not)
  run.json       how the run was started
  benchmark/<contestant>.jsonl              benchmark/<contestant>.jsonl
  benchmark/holdout_knowledge.jsonl         benchmark/holdout_knowledge.jsonl
  training_metrics.csv                      finetune/training_metrics.csv
  dataset_card.json                         dataset/dataset_card.json
  → report.md, report.html                  → report/report.md, report/report.html
```

Only the summary is needed; the rest is drawn when it is there. Answers written before benchmark outcomes
were recorded read as they were graded (`BenchmarkAnswer`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from synthtune.contracts.config import CONTESTANTS, load_run_config
from synthtune.contracts.errors import InvalidConfig
from synthtune.records.items import RUN_PK_PREFIX, RUN_SK
from synthtune.records.layout import RunLayout
from synthtune.stages.benchmark import BenchmarkAnswer, HoldoutKnowledge
from synthtune.stages.prepare import simulated_models
from synthtune.stages.report import (
    ReportContents,
    RunSummary,
    read_training_curve,
    render_report,
    report_contents,
    summarise_run,
)
from synthtune.stages.report_page import render_report_html
from synthtune_cli.run_directory import RunManifest


class RunFilesError(Exception):
    """The directory holds no run, or a file of it cannot be read; the message names the file."""


_S3 = RunLayout("RUN_ID")
HOLDOUT_KNOWLEDGE = _S3.holdout_knowledge.rsplit("/", 1)[-1]
"""What the base student knew of each held-out problem, beside the contestants' answers."""


def _relative(key: str) -> str:
    """A key under runs/<run id>/, as `aws s3 cp --recursive` lays it out below the directory."""
    return key.removeprefix(_S3.prefix)


@dataclass(frozen=True)
class RunFiles:
    """Where a run's files are in one of the two layouts, and where its reports go."""

    root: Path
    summary: Path
    records: Path | None
    manifest: Path | None
    answers: Path
    training_metrics: Path
    dataset_card: Path
    report: Path
    report_html: Path

    @classmethod
    def local(cls, root: Path) -> RunFiles:
        """The run directory `synthtune run` writes (see `synthtune_cli.runner`)."""
        return cls(
            root=root,
            summary=root / "summary.json",
            records=root / "records.json",
            manifest=root / "run.json",
            answers=root / "benchmark",
            training_metrics=root / "training_metrics.csv",
            dataset_card=root / "dataset_card.json",
            report=root / "report.md",
            report_html=root / "report.html",
        )

    @classmethod
    def downloaded(cls, root: Path) -> RunFiles:
        """The run's prefix in the data bucket, copied as it is."""
        return cls(
            root=root,
            summary=root / _relative(_S3.summary),
            records=None,
            manifest=None,
            answers=root / _relative(_S3.benchmark_answers("any")).rsplit("/", 1)[0],
            training_metrics=root / _relative(_S3.training_metrics),
            dataset_card=root / _relative(_S3.dataset_card),
            report=root / _relative(_S3.report),
            report_html=root / _relative(_S3.report_html),
        )

    @classmethod
    def find(cls, root: Path) -> RunFiles:
        if not root.is_dir():
            raise RunFilesError(f"{root}: no such directory")
        downloaded = cls.downloaded(root)
        if downloaded.summary.is_file():
            return downloaded
        local = cls.local(root)
        if (local.records is not None and local.records.is_file()) or local.summary.is_file():
            return local
        raise RunFilesError(
            f"{root}: not a run directory: no records.json or summary.json (what a run directory of "
            f"`synthtune run` holds, runs/<run id>/), and no {downloaded.summary.relative_to(root)} (what a "
            "run copied from S3 with `aws s3 cp --recursive s3://BUCKET/runs/RUN_ID/ DIR` holds; a run that "
            "failed before its Report step has none)"
        )


def render_run_reports(root: Path) -> RunFiles:
    """report.md and report.html for the run in `root`, written where its layout keeps them."""
    files = RunFiles.find(root)
    contents = read_report_contents(files)
    files.report.parent.mkdir(parents=True, exist_ok=True)
    files.report.write_text(render_report(contents), encoding="utf-8")
    files.report_html.write_text(render_report_html(contents), encoding="utf-8")
    return files


def read_report_contents(files: RunFiles) -> ReportContents:
    summary = _summary(files)
    answers = {
        contestant: _answers(path)
        for contestant in CONTESTANTS
        if (path := files.answers / f"{contestant}.jsonl").is_file()
    }
    curve = (
        read_training_curve(files.training_metrics.read_text(encoding="utf-8"))
        if files.training_metrics.is_file()
        else None
    )
    card = _json(files.dataset_card) if files.dataset_card.is_file() else None
    knowledge = files.answers / HOLDOUT_KNOWLEDGE
    return report_contents(
        summary,
        answers,
        curve,
        card if isinstance(card, dict) else None,
        _lines(knowledge, HoldoutKnowledge, "held-out knowledge line") if knowledge.is_file() else None,
    )


def _summary(files: RunFiles) -> RunSummary:
    """From the run's records where the directory has them (the current reading of every line), else
    from summary.json as the run wrote it."""
    if files.records is not None and files.records.is_file():
        records = _json(files.records)
        if not isinstance(records, list) or not all(isinstance(item, dict) for item in records):
            raise RunFilesError(f"{files.records}: not a list of the run's records")
        run: dict[str, Any] = next((item for item in records if item.get("sk") == RUN_SK), {})
        run_id = str(
            run.get("run_id") or str(run.get("pk", "")).removeprefix(RUN_PK_PREFIX) or files.root.name
        )
        summary = summarise_run(run_id, records)
        recorded = "simulated_models" in run
    else:
        document = _json(files.summary)
        try:
            summary = RunSummary.model_validate(document)
        except ValidationError as error:
            raise RunFilesError(
                f"{files.summary}: not a run summary ({error.error_count()} problems)"
            ) from None
        recorded = isinstance(document, dict) and "simulated_models" in document
    if not recorded and files.manifest is not None and files.manifest.is_file():
        # A local run from before runs recorded it: run.json says which providers the emulator stood for.
        summary = summary.model_copy(update={"simulated_models": _simulated_by_manifest(files.manifest)})
    return summary


def _simulated_by_manifest(path: Path) -> list[str]:
    try:
        manifest = RunManifest.model_validate_json(path.read_bytes())
        config = load_run_config(manifest.config, source=str(path))
    except (ValidationError, InvalidConfig):
        return []
    emulated = frozenset(
        provider
        for provider, mode in (("openai", manifest.openai), ("bedrock", manifest.bedrock))
        if mode == "emulator"
    )
    return simulated_models(config, emulated)


def _answers(path: Path) -> list[BenchmarkAnswer]:
    return _lines(path, BenchmarkAnswer, "benchmark answer")


LineT = TypeVar("LineT", bound=BaseModel)


def _lines(path: Path, model: type[LineT], what: str) -> list[LineT]:
    lines = []
    for number, line in enumerate(path.read_bytes().splitlines(), 1):
        if not line.strip():
            continue
        try:
            lines.append(model.model_validate_json(line))
        except ValidationError as error:
            raise RunFilesError(f"{path}, line {number}: not a {what} ({error.errors()[0]['msg']})") from None
    return lines


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except ValueError as error:
        raise RunFilesError(f"{path}: not valid JSON ({error})") from None
