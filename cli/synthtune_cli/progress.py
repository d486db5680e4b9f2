"""What `synthtune run` shows while a run happens.

`RunProgress` follows the run from its events as they happen, never by reading everything again: the
execution's history events as moto's interpreter publishes them (`OfflineStack.watch`) and the run's writes
as the journal stores them (`RunJournal.observe`) — each teacher answer checkpointed, each shard's record.
Both arrive on other threads and only go into a queue there; the display's thread applies them, so the
cost of following a run is a few operations per event, whatever its size.

Two displays: on a terminal, a live panel (rich) under the run's log lines — the current stage, the
teacher's answers with a bar and the time left, the shards, the fine-tuning job's status, the time elapsed —
drawn from the moment the command starts; elsewhere (a pipe, a file, CI, the tests) the log lines alone,
each stamped with the seconds since the start, and a line whenever the count of finished shards changes.
"""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Protocol

from synthtune.money.estimate import CostEstimate, describe_estimate
from synthtune.records.items import RUN_SK, SHARD_PREFIX, shard_item
from synthtune.records.layout import RunLayout

if TYPE_CHECKING:
    from rich.live import Live
    from rich.progress import Progress, TaskID

    from synthtune_cli.offline import OfflineStack

SHARD_LINE_SECONDS = 1.0
"""The plain display's shortest interval between two lines of shard counts (the last is always shown)."""


@dataclass
class RunStatus:
    """The run as the live display draws it."""

    stage: str = "starting the offline runtime"
    problems: int | None = None
    """Problems the teacher answers (None outside the Generate stage)."""
    answered: int = 0
    shards: int = 0
    shards_done: int = 0
    batch: bool = False
    fine_tune: str | None = None


class Display(Protocol):
    def print(self, text: str) -> None:
        """A line of the run's log, as it is."""

    def say(self, line: str) -> None:
        """A line of the run's log, stamped with the time since the start."""

    def show(self, status: RunStatus) -> None:
        """The run's status now (called a few times a second, and after each batch of events)."""

    def close(self) -> None: ...


def open_display(stream: IO[str], started: float) -> Display:
    """The live display on a terminal, plain lines anywhere else."""
    if stream.isatty():
        from rich.console import Console

        console = Console(file=stream, stderr=True)
        if console.is_terminal and not console.is_dumb_terminal:
            return LiveDisplay(console, started)
    return PlainDisplay(stream, started)


class PlainDisplay:
    def __init__(self, stream: IO[str], started: float) -> None:
        self._stream = stream
        self._started = started
        self._shards: tuple[int, int] | None = None
        self._shards_said = 0.0

    def print(self, text: str) -> None:
        print(text, file=self._stream, flush=True)

    def say(self, line: str) -> None:
        self.print(f"  [{time.monotonic() - self._started:6.1f}s] {line}")

    def show(self, status: RunStatus) -> None:
        if status.problems is None or not status.shards:
            return
        shards = (status.shards_done, status.shards)
        now = time.monotonic()
        if shards != self._shards and (
            shards[0] == shards[1] or now - self._shards_said >= SHARD_LINE_SECONDS
        ):
            self._shards, self._shards_said = shards, now
            self.say(f"  {shards[0]}/{shards[1]} shards done")

    def close(self) -> None:
        pass


class LiveDisplay:
    """A rich Live panel, redrawn four times a second on rich's thread, under the run's log lines."""

    def __init__(self, console: Any, started: float) -> None:
        from rich.live import Live
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._console = console
        self._started = started
        self._status = RunStatus()
        self._bar: Progress = Progress(
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("answers ·"),
            TimeRemainingColumn(compact=True, elapsed_when_finished=True),
            TextColumn("left"),
            console=console,
        )
        self._task: TaskID | None = None
        self._shards_finished: tuple[int, int] | None = None
        self._live: Live = Live(
            get_renderable=self._render, console=console, refresh_per_second=4, transient=True
        )
        self._live.start()

    def print(self, text: str) -> None:
        self._console.print(text, markup=False, highlight=False, soft_wrap=True)

    def say(self, line: str) -> None:
        self.print(f"  [{time.monotonic() - self._started:6.1f}s] {line}")

    def show(self, status: RunStatus) -> None:
        self._status = status
        if status.problems is not None and not status.batch:
            if self._task is None:
                self._task = self._bar.add_task("", total=status.problems)
            self._bar.update(self._task, completed=status.answered, total=status.problems)
        shards = (status.shards_done, status.shards)
        done = shards[1] > 0 and shards[0] == shards[1]
        if status.problems is not None and done and shards != self._shards_finished:
            self._shards_finished = shards
            self.say(f"  {shards[0]}/{shards[1]} shards done")  # kept in the log once the panel is gone

    def _render(self) -> Any:
        from rich.table import Table

        status = self._status
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold")
        grid.add_column()
        grid.add_row("stage", status.stage)
        if self._task is not None:
            grid.add_row("teacher", self._bar)
        if status.shards:
            grid.add_row("shards", f"{status.shards_done}/{status.shards} done")
        if status.fine_tune:
            grid.add_row("fine-tuning", status.fine_tune)
        grid.add_row("elapsed", duration(time.monotonic() - self._started))
        return grid

    def close(self) -> None:
        self._live.stop()


class RunProgress:
    """The run's progress, from its events (see the module's docstring)."""

    def __init__(self, stack: OfflineStack, run_id: str, display: Display) -> None:
        self.stack = stack
        self.run_id = run_id
        self.display = display
        self.status = RunStatus(stage="starting the execution")
        self.finished = False
        self._events: queue.SimpleQueue[tuple[str, str, Any]] = queue.SimpleQueue()
        layout = RunLayout(run_id)
        self._answers_prefix = f"{layout.prefix}answers/"
        self._answers: set[str] = set()
        self._shard_status: dict[str, str] = {}
        self._generating = False
        self._job_status: str | None = None
        self._serving_status: str | None = None

    # -- what arrives, on other threads: only queued -----------------------------------------------

    def on_history_event(self, event: dict[str, Any]) -> None:
        self._events.put(("history", "", event))

    def on_write(self, kind: str, key: str, content: bytes | None) -> None:
        if (kind == "object" and key.startswith(self._answers_prefix)) or (
            kind == "item" and key.startswith(SHARD_PREFIX)
        ):
            self._events.put((kind, key, content))

    # -- applied on the display's thread -----------------------------------------------------------

    def update(self, wait_seconds: float) -> None:
        """Apply what arrived (waiting up to `wait_seconds` for the first), then show the status."""
        try:
            pending = [self._events.get(timeout=wait_seconds)]
        except queue.Empty:
            pending = []
        while True:
            try:
                pending.append(self._events.get_nowait())
            except queue.Empty:
                break
        for kind, key, payload in pending:
            if kind == "history":
                self._on_event(payload)
            elif kind == "object":
                (self._answers.add if payload is not None else self._answers.discard)(key)
            else:
                item = json.loads(payload) if payload is not None else {}
                self._shard_status[key] = str(item.get("status", {}).get("S", ""))
        if self._generating:
            self._tally()
        self.display.show(self.status)

    def _tally(self) -> None:
        self.status.answered = len(self._answers)
        self.status.shards_done = sum(1 for status in self._shard_status.values() if status == "done")

    def _say(self, line: str) -> None:
        self.display.say(line)

    def _stage(self, stage: str, line: str | None = None) -> None:
        self.status.stage = stage
        self._say(line or stage)

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        entered = event.get("stateEnteredEventDetails")
        exited = event.get("stateExitedEventDetails")
        if entered is not None:
            self._on_enter(str(entered["name"]), json.loads(entered.get("input") or "{}"))
        elif exited is not None and kind in {"TaskStateExited", "MapStateExited"}:
            self._on_exit(str(exited["name"]), json.loads(exited.get("output") or "{}"))
        elif kind.startswith("Execution") and kind != "ExecutionStarted":
            self.finished = True  # ExecutionSucceeded, ...Failed, ...Aborted, ...TimedOut: the end

    def _on_enter(self, state: str, state_input: dict[str, Any]) -> None:
        if state == "Prepare":
            self._stage("Prepare: reading and validating the problem set")
        elif state == "Generate":
            plan = state_input["generation"]
            problems, shards = plan["problem_count"], plan["shard_count"]
            batch = bool(state_input.get("batch"))
            if batch:
                self._stage(
                    f"Generate: grading the batch's answers to {problems} problems in {shards} shards"
                )
            else:
                self._stage(f"Generate: the teacher answers {problems} problems in {shards} shards")
            self._start_generating(problems, shards, batch=batch)
        elif state == "SubmitBatch":
            self._stage("SubmitBatch: the teacher's requests go to the Batch API")
        elif state in {"Assemble", "StartFineTune", "Report", "RecordFailure"}:
            self._generating = False
            self._stage(state)
        elif state == "PrepareServing":
            self._stage(
                "PrepareServing: making the fine-tuned model answer (a Bedrock deployment; none on OpenAI)"
            )
        elif state in {"ReleaseServing", "ReleaseAfterFailure"}:
            self._stage(f"{state}: deleting what serves the fine-tuned model")
        elif state == "Benchmark":
            plan = state_input["benchmark"]
            contestants = ", ".join(plan["contestants"])
            self._stage(f"Benchmark: {contestants} answer {plan['problem_count']} held-out problems")

    def _start_generating(self, problems: int, shards: int, *, batch: bool) -> None:
        """What a resumed run already has, read once; from here on its writes tell the rest."""
        self._answers.update(self.stack.keys(self._answers_prefix))
        for item in self.stack.records(self.run_id):
            if str(item["sk"]).startswith(SHARD_PREFIX):
                self._shard_status.setdefault(str(item["sk"]), shard_item(item).status)
        self.status.problems, self.status.shards, self.status.batch = problems, shards, batch
        self._generating = True

    def _on_exit(self, state: str, output: dict[str, Any]) -> None:
        if state == "Prepare" and "generation" in output:
            splits = output["generation"]["splits"]
            train, validation, holdout = splits["train"], splits["validation"], splits["holdout"]
            self._say(f"  split: {train} train, {validation} validation, {holdout} held out")
            run = next((item for item in self.stack.records(self.run_id) if item["sk"] == RUN_SK), {})
            estimate = CostEstimate.model_validate(run["estimate"]) if run.get("estimate") else None
            budget = output["run"]["config"].get("budget_usd")
            self._say(f"  {describe_estimate(estimate, budget)}")
        elif state == "Generate":
            self._tally()
            self.display.show(self.status)
            self._generating = False
            self.status.problems = None
        elif state in {"SubmitBatch", "CheckBatch"} and output.get("batch"):
            self._on_batch(state, output["batch"])
        elif state == "Assemble" and "dataset" in output:
            dataset = output["dataset"]
            dropped = (
                ", ".join(f"{reason} {count}" for reason, count in dataset["dropped"].items()) or "nothing"
            )
            self._say(
                f"  dataset: {dataset['train_examples']} train, {dataset['validation_examples']} validation; "
                f"dropped {dropped}"
            )
        elif state in {"StartFineTune", "CheckFineTune", "CancelFineTune"} and "finetune" in output:
            job = output["finetune"]
            polled = duration(output.get("wait", {}).get("waited_seconds", 0))
            self.status.fine_tune = f"job {job['job_id']}: {job['status']} (after {polled} of polling)"
            if job["status"] != self._job_status:
                self._job_status = job["status"]
                self._say(f"  fine-tuning {self.status.fine_tune}")
        elif state in {"PrepareServing", "CheckServing", "ReleaseServing"} and output.get("serving"):
            serving = output["serving"]
            if serving["kind"] != "none" and serving["status"] != self._serving_status:
                self._serving_status = serving["status"]
                fate = "kept (keep_deployment)" if serving.get("kept") else serving["status"]
                waited = duration(output.get("serving_wait", {}).get("waited_seconds", 0))
                self._say(
                    f"  {serving['kind'].replace('_', ' ')} {serving.get('name')}: {fate} (after {waited})"
                )
        elif state == "Benchmark" and "scores" in output:
            scores = ", ".join(f"{s['contestant']} {s['accuracy'] * 100:.1f}%" for s in output["scores"])
            self._say(f"  accuracy: {scores}")

    def _on_batch(self, state: str, batch: dict[str, Any]) -> None:
        status, round_number = batch["status"], batch["round"]
        if state == "SubmitBatch":
            self._say(
                f"  round {round_number}: {batch['requests']} requests in {len(batch['batch_ids'])} batches"
            )
        elif status != "in_progress":
            missing = batch["missing"]
            then = {"resubmit": "resubmitting those", "collected": "collected"}[status]
            self._say(
                f"  round {round_number}: {batch['succeeded']} of {batch['requests']} answered, "
                f"{missing} missing; {then}"
            )


def duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


def follow(
    stack: OfflineStack,
    execution_arn: str,
    progress: RunProgress,
    *,
    timeout_seconds: float,
    describe_every: float = 1.0,
    on_timeout: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Show the execution's progress until it ends; its description then. Nothing is polled but the
    execution's status, once a `describe_every` (in case its end is not an event)."""
    from synthtune_cli.offline import FINAL_STATUSES

    stack.watch(execution_arn, progress.on_history_event)
    deadline = time.monotonic() + timeout_seconds
    described = time.monotonic()
    while True:
        progress.update(wait_seconds=0.25)
        now = time.monotonic()
        if progress.finished or now - described >= describe_every:
            described = now
            description = stack.describe(execution_arn)
            if description["status"] in FINAL_STATUSES:
                progress.update(wait_seconds=0)  # the events that came with the end
                return description
        if now > deadline:
            stack.stop(execution_arn, "timed out waiting offline")
            if on_timeout is not None:
                on_timeout()
            raise TimeoutError(f"{execution_arn} still running after {timeout_seconds} s")
