"""The run directory: what `synthtune run` keeps on disk while a run happens, and what `--resume` reads.

```
run.json       how to go on: run id, problem set, configuration, providers, each attempt's outcome
run.lock       locked while a process works on the run (two processes must never pay for it twice)
answers.jsonl  every teacher answer paid for so far, readable (rewritten whenever a process stops)
state/         the journal (synthtune_cli.journal): the run's S3 objects and DynamoDB items as they
               are written — each answer in state/s3/runs/<run id>/answers/<shard>/<position>.json, the
               fine-tuning job in state/dynamodb/FINETUNE.json — and, when the emulator serves the
               run, its memory (state/emulator.pickle)
```

A resumed run is the same run: same run id, same problem set, same configuration — except what the
user changes, which must not change the work already paid for (see FIXED_ON_RESUME).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from synthtune.contracts.config import load_run_config
from synthtune.contracts.errors import InvalidConfig
from synthtune.contracts.problems import Problem
from synthtune.contracts.usage import Usage
from synthtune.quality.grading import Grade
from synthtune.records.layout import RunLayout
from synthtune.stages.generate import AnswerSource, Checkpoint, checkpoint_calls, majority_vote
from synthtune_cli import durable
from synthtune_cli.journal import RunJournal

ProviderMode = Literal["emulator", "live"]
RunStatus = Literal["running", "killed", "interrupted", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]
"""running: a process is at it, or was killed before it could say (kill -9, a crash, the machine going
down: a resumed run records such an attempt as killed); interrupted: stopped by Ctrl-C; the rest: how
the execution ended."""


class RunDirectoryError(Exception):
    """The run directory cannot be used as asked; the message says why and what to do."""


class Attempt(BaseModel):
    """One execution of the run: the first, and one per --resume."""

    model_config = ConfigDict(extra="forbid")

    execution_arn: str
    started_at: str
    status: RunStatus = "running"
    error: str | None = None
    cause: str | None = None


class RunManifest(BaseModel):
    """RUN_DIR/run.json."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    problem_set: str = Field(description="The file the run was started from (its copy is in state/).")
    problem_set_key: str = Field(description="Where the run reads it in the emulated bucket.")
    config: dict[str, Any] | None = Field(description="The RunConfig fields the run changes.")
    openai: ProviderMode
    bedrock: ProviderMode
    status: RunStatus = "running"
    attempts: list[Attempt] = Field(default_factory=list)


FIXED_ON_RESUME: dict[str, str] = {
    "holdout_fraction": "it decides which problems are held out, and answers are kept by shard and position",
    "validation_fraction": "it decides the split, and answers are kept by shard and position",
    "split_seed": "it decides the split, and answers are kept by shard and position",
    "shard_size": "answers are kept by shard and position",
    "teacher_model": "the answers already paid for are this teacher's",
    "student_model": "the fine-tuning job the run may have started is this student's",
    "fine_tune_backend": "the fine-tuning job the run may have started is there",
    "fine_tune": "the fine-tuning job the run may have started has these hyperparameters",
    "fine_tune_suffix": "the fine-tuning job the run may have started has this suffix",
}
"""Configuration a resumed run keeps, and why: changing it would mix the answers already paid for with
others, or find the run's fine-tuning job and use it for something it is not."""


def merged_config(saved: dict[str, Any] | None, changes: dict[str, Any] | None) -> dict[str, Any]:
    """`changes` over `saved`, objects (generation, dataset, fine_tune) merged field by field."""
    merged = dict(saved or {})
    for name, value in (changes or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(name), dict):
            merged[name] = merged_config(merged[name], value)
        else:
            merged[name] = value
    return merged


def resumed_config(
    saved: dict[str, Any] | None, changes: dict[str, Any] | None, source: str
) -> dict[str, Any] | None:
    """The configuration a resumed run runs with; InvalidConfig if the changes touch FIXED_ON_RESUME."""
    merged = merged_config(saved, changes)
    before = load_run_config(saved, source="the run's configuration")
    after = load_run_config(merged, source=source)
    for field, why in FIXED_ON_RESUME.items():
        was, now = getattr(before, field), getattr(after, field)
        if was != now:
            shown = [value.model_dump() if isinstance(value, BaseModel) else value for value in (was, now)]
            raise InvalidConfig(
                f"{source}: {field} cannot change when a run resumes ({why}): it was {shown[0]!r}, "
                f"now {shown[1]!r}; start a new run to change it"
            )
    return merged or None


class PaidAnswer(BaseModel):
    """One line of answers.jsonl: a teacher reply the run paid for, as checkpointed the moment it came."""

    model_config = ConfigDict(frozen=True)

    problem_id: str
    shard: int
    position: int
    split: str
    category: str
    question: str
    reference: str | None
    source: AnswerSource
    model: str
    final_answer: str | None = Field(description="The majority answer of the samples (None: unusable).")
    steps: list[str]
    samples: int
    agreement: float | None
    finish_reason: str
    usage: Usage = Field(description="The teacher's tokens for this problem, every request included.")
    cost_usd: float | None = Field(description="The teacher's and the judge's calls, at list price.")
    verdict: Grade | None = Field(
        description="The judge's, when one was paid for; answers that match their reference as written "
        "need none (Assemble grades every answer: see dropped.jsonl and the dataset card)."
    )


@dataclass(frozen=True)
class RunDirectory:
    path: Path

    @property
    def manifest_path(self) -> Path:
        return self.path / "run.json"

    @property
    def lock_path(self) -> Path:
        return self.path / "run.lock"

    @property
    def answers_path(self) -> Path:
        return self.path / "answers.jsonl"

    @property
    def state(self) -> Path:
        return self.path / "state"

    @property
    def emulator_state(self) -> Path:
        return self.state / "emulator.pickle"

    def journal(self, manifest: RunManifest, *, bucket: str, table: str) -> RunJournal:
        return RunJournal(
            self.state, manifest.run_id, bucket=bucket, table=table, problem_set_key=manifest.problem_set_key
        )

    # -- run.json ---------------------------------------------------------------------------------

    def read_manifest(self) -> RunManifest:
        if not self.path.is_dir():
            raise RunDirectoryError(f"{self.path}: no such run directory")
        try:
            return RunManifest.model_validate_json(self.manifest_path.read_bytes())
        except FileNotFoundError:
            raise RunDirectoryError(
                f"{self.path}: no run.json, so not a run directory this version of synthtune can resume "
                "(it writes run.json when a run starts)"
            ) from None
        except ValidationError as error:
            raise RunDirectoryError(f"{self.manifest_path}: not a run manifest ({error})") from None

    def write_manifest(self, manifest: RunManifest) -> None:
        document = manifest.model_dump(mode="json")
        data = (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()
        durable.write_atomically(self.manifest_path, data, fsync=True)

    # -- one process at a time --------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold run.lock while the block runs; refuse if another process holds it. The kernel lets go of
        the lock of a process that dies however it dies, so a killed run can be resumed at once."""
        self.path.mkdir(parents=True, exist_ok=True)
        with self.lock_path.open("a+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.seek(0)
                holder = lock.read().strip() or "another process"
                raise RunDirectoryError(
                    f"{self.path}: {holder} is working on this run; wait for it to finish, or stop it "
                    "(Ctrl-C) and resume"
                ) from None
            lock.seek(0)
            lock.truncate()
            lock.write(f"synthtune process {os.getpid()}\n")
            lock.flush()
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # -- answers.jsonl ----------------------------------------------------------------------------

    def write_answers(self, journal: RunJournal, run_id: str) -> int:
        """answers.jsonl from the journalled checkpoints, in shard and position order; how many lines."""
        layout = RunLayout(run_id)
        problems: dict[int, list[Problem]] = {}
        lines: list[bytes] = []
        for key, path in journal.objects(f"{layout.prefix}answers/"):
            shard_name, _, name = key.removeprefix(f"{layout.prefix}answers/").partition("/")
            position = layout.checkpoint_position(name)
            if position is None or not shard_name.isdigit():
                continue
            shard = int(shard_name)
            if shard not in problems:
                problems[shard] = _shard_problems(journal, layout, shard)
            checkpoint = Checkpoint.model_validate_json(path.read_bytes())
            problem = problems[shard][position] if position < len(problems[shard]) else None
            lines.append(_paid_answer(checkpoint, problem, shard, position).model_dump_json().encode())
        durable.write_atomically(self.answers_path, b"".join(line + b"\n" for line in lines), fsync=False)
        return len(lines)


def _shard_problems(journal: RunJournal, layout: RunLayout, shard: int) -> list[Problem]:
    path = journal.object(layout.shard_input(shard))
    if path is None:
        return []
    return [Problem.model_validate_json(line) for line in path.read_bytes().splitlines() if line.strip()]


def _paid_answer(checkpoint: Checkpoint, problem: Problem | None, shard: int, position: int) -> PaidAnswer:
    result = checkpoint.result
    chosen, agreement = majority_vote(result.samples)
    first = chosen or (result.samples[0] if result.samples else None)
    costs = [call.usd for call in checkpoint_calls(checkpoint)]
    return PaidAnswer(
        problem_id=checkpoint.problem_id,
        shard=shard,
        position=position,
        split=(problem.split or "train") if problem else "unknown",
        category=problem.category if problem else "unknown",
        question=problem.question if problem else "",
        reference=problem.answer if problem else None,
        source=checkpoint.source,
        model=result.model,
        final_answer=chosen.solution.final_answer if chosen and chosen.solution else None,
        steps=chosen.solution.steps if chosen and chosen.solution else [],
        samples=len(result.samples),
        agreement=agreement,
        finish_reason=first.finish_reason if first else "none",
        usage=result.usage,
        cost_usd=None if any(cost is None for cost in costs) else sum(cost or 0.0 for cost in costs),
        verdict=checkpoint.grade if checkpoint.judge_calls else None,
    )


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
