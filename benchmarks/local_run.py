"""How fast and how cheaply `synthtune run` runs the whole pipeline on this machine: a measurement run on
demand (`make bench`), never a timed test.

What runs is the `synthtune run` command itself, in a process of its own per run, exactly as a user runs
it: the real state machine on moto's interpreter, the handlers in that process. Two measurements:

- `ceiling`: `synthtune run --openai live` against an OpenAI-compatible server that answers after
  `--latency` seconds and refuses requests over `--rpm` (the project's emulator, served on 127.0.0.1 in
  a process of its own, on the wall clock, its rate-limit window 1 s so that a short run cannot spend a
  minute's allowance in a burst). The Generate stage's problems per second, from the execution history
  (MapStateEntered to MapStateExited), over the ceiling min(rpm / 60, shards × in flight / latency):
  how close the offline runtime's Distributed Map comes to what AWS's reaches (benchmarks/generation.py).
- `cpu`: `synthtune run` against the emulator (emulated time: nothing sleeps, the run is CPU-bound) at
  several sizes; the process's CPU time (user + system) per problem, which stays flat when nothing in
  the run (the progress display included) does work that grows with the run.

`--code DIR` runs another checkout's synthtune (say a `git worktree` of main) with this one's Python
environment, for a before/after comparison.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]

TEACHER = "gpt-4.1-2025-04-14"
STUDENT = "gpt-4.1-mini-2025-04-14"
TARGET_SHARE = 0.9
DEFAULT_CPU_SIZES = (600, 3000, 6000)


@dataclass(frozen=True)
class RunMeasurement:
    problems: int
    """Problems the Generate stage answered (train and validation; the held-out ones are benchmarked)."""
    wall_seconds: float
    cpu_seconds: float
    generate_seconds: float
    status: str


def write_problem_set(directory: Path, count: int) -> Path:
    """`count` distinct word problems with answers, the Generate benchmark's."""
    from generation import word_problems  # benchmarks/generation.py, beside this script

    path = directory / f"problems-{count}.jsonl"
    with path.open("w", encoding="utf-8") as file:
        for problem in word_problems(count):
            row = {"question": problem.question, "answer": problem.answer, "category": problem.category}
            file.write(json.dumps(row) + "\n")
    return path


def _timestamp(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(event["timestamp"])).timestamp()


def generate_stage(history: list[dict[str, Any]]) -> tuple[int, float]:
    """(problems the Generate stage answered, its seconds) from an execution history."""
    entered = next(
        e
        for e in history
        if e["type"] == "MapStateEntered" and e["stateEnteredEventDetails"]["name"] == "Generate"
    )
    exited = next(
        e
        for e in history
        if e["type"] == "MapStateExited" and e["stateExitedEventDetails"]["name"] == "Generate"
    )
    problems = json.loads(entered["stateEnteredEventDetails"]["input"])["generation"]["problem_count"]
    return int(problems), _timestamp(exited) - _timestamp(entered)


def run_synthtune(
    problem_set: Path, config: dict[str, Any], out: Path, *, code: Path, environment: dict[str, str]
) -> RunMeasurement:
    """One `synthtune run` in a process of its own; its CPU time from the kernel's accounting."""
    config_path = out / "config.json"
    out.mkdir(parents=True, exist_ok=True)
    config_path.write_text(json.dumps(config), encoding="utf-8")
    path = os.pathsep.join(str(code / folder) for folder in ("layers/core", "cli"))
    arguments = [sys.executable, "-m", "synthtune_cli.main", "run", str(problem_set), "--run-id", "bench"]
    arguments += ["--config", str(config_path), "--out", str(out)]
    if environment.get("OPENAI_BASE_URL"):
        arguments += ["--openai", "live"]
    started = time.perf_counter()
    with (out / "synthtune.log").open("wb") as log:
        process = subprocess.Popen(
            arguments,
            env={**os.environ, "PYTHONPATH": path, **environment},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    run_dir = out / "bench"
    history = json.loads((run_dir / "history.json").read_text(encoding="utf-8"))
    problems, generate_seconds = generate_stage(history)
    execution = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))["execution"]
    return RunMeasurement(
        problems=problems,
        wall_seconds=wall,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        generate_seconds=generate_seconds,
        status=str(execution["status"]),
    )


def _serve_emulator(port: int, problems: int, latency: float, rpm: int, ready: Any) -> None:
    """The emulator as a live server would be: wall-clock latency and limits, fine-tuning at once; it knows
    the answers to the run's `problems` word problems."""
    from generation import word_problems  # benchmarks/generation.py, beside this script

    from synthtune_cli.clock import WallClock
    from synthtune_cli.emulator import EmulatorKnobs, KnowledgeItem, OpenAIEmulator

    knobs = EmulatorKnobs(
        latency_seconds=latency,
        requests_per_minute=rpm,
        rate_limit_window_seconds=1.0,
        validation_seconds=0,
        queue_seconds=0,
        training_seconds_per_1k_tokens=0,
        min_training_seconds=0,
    )
    emulator = OpenAIEmulator(clock=WallClock(), knobs=knobs)
    emulator.add_knowledge(
        KnowledgeItem(question=p.question, answer=p.answer, category=p.category)
        for p in word_problems(problems)
    )
    with emulator.serve(host="127.0.0.1", port=port):
        ready.set()
        while True:
            time.sleep(3600)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def served_emulator(problems: int, latency: float, rpm: int) -> Iterator[str]:
    """The emulator in a process of its own (its work is the server's, not the run's): its base URL."""
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    port = _free_port()
    server = context.Process(target=_serve_emulator, args=(port, problems, latency, rpm, ready), daemon=True)
    server.start()
    try:
        if not ready.wait(timeout=60):
            raise RuntimeError("the emulator did not start within 60 s")
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.terminate()
        server.join(timeout=10)


def base_config() -> dict[str, Any]:
    """OpenAI models (the emulator's), no judge, the base student alone benchmarked on 10 % held out."""
    return {
        "teacher_model": TEACHER,
        "student_model": STUDENT,
        "judge_model": None,
        "benchmark_contestants": ["base"],
        "holdout_fraction": 0.1,
    }


def measure_ceiling(args: argparse.Namespace, work: Path) -> str:
    problem_set = write_problem_set(work, args.problems)
    # Live, Wait states take real time: poll the (instant) fine-tuning job every second.
    config = {**base_config(), "poll_interval_seconds": 1}
    with served_emulator(args.problems, args.latency, args.rpm) as base_url:
        measurement = run_synthtune(
            problem_set,
            config,
            work / "ceiling",
            code=args.code,
            environment={"OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": "sk-bench"},
        )
    shards = -(-measurement.problems // 25)
    in_flight = min(10, shards) * 4
    ceiling = min(args.rpm / 60, in_flight / args.latency)
    per_second = measurement.problems / measurement.generate_seconds
    rows = [
        [
            "problems generated",
            "latency",
            "rpm",
            "Generate stage",
            "problems/s",
            "ceiling/s",
            "achieved/ceiling",
        ],
        [
            f"{measurement.problems:,}",
            f"{args.latency * 1000:g} ms",
            f"{args.rpm:,}",
            f"{measurement.generate_seconds:.1f} s",
            f"{per_second:.2f}",
            f"{ceiling:.2f}",
            f"{per_second / ceiling:.2f}",
        ],
    ]
    note = (
        f"run {measurement.status} in {measurement.wall_seconds:.0f} s; target achieved/ceiling >= "
        f"{TARGET_SHARE}: {'met' if per_second / ceiling >= TARGET_SHARE else 'not met'}"
    )
    return render(rows, markdown=args.markdown) + f"\n\n- {note}"


def measure_cpu(args: argparse.Namespace, work: Path) -> str:
    rows = [["problems", "generated", "wall time", "CPU time", "CPU per problem", "CPU per added problem"]]
    previous: tuple[int, float] | None = None
    for size in args.sizes:
        print(f"  cpu: {size:,} problems", file=sys.stderr, flush=True)
        problem_set = write_problem_set(work, size)
        measurement = run_synthtune(
            problem_set, base_config(), work / f"cpu-{size}", code=args.code, environment={}
        )
        added = "–"
        if previous is not None:
            added_problems = size - previous[0]
            added = f"{(measurement.cpu_seconds - previous[1]) / added_problems * 1000:.1f} ms"
        rows.append(
            [
                f"{size:,}",
                f"{measurement.problems:,}",
                f"{measurement.wall_seconds:.1f} s",
                f"{measurement.cpu_seconds:.1f} s",
                f"{measurement.cpu_seconds / size * 1000:.1f} ms",
                added,
            ]
        )
        previous = (size, measurement.cpu_seconds)
        if measurement.status != "SUCCEEDED":
            rows[-1][0] += f" ({measurement.status})"
    return render(rows, markdown=args.markdown)


def render(rows: list[list[str]], *, markdown: bool) -> str:
    if markdown:
        rule = ["---"] + ["---:"] * (len(rows[0]) - 1)
        return "\n".join("| " + " | ".join(row) + " |" for row in [rows[0], rule, *rows[1:]])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)) for row in rows
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "measurements", nargs="*", metavar="ceiling|cpu", help="what to measure (default: both)"
    )
    parser.add_argument("--problems", type=int, default=1000, help="problems in the ceiling run (1,000)")
    parser.add_argument("--rpm", type=int, default=600, help="the server's requests per minute (600)")
    parser.add_argument("--latency", type=float, default=0.3, help="the server's seconds per request (0.3)")
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=list(DEFAULT_CPU_SIZES),
        help="problem set sizes of the cpu runs (600 3000 6000)",
    )
    parser.add_argument("--code", type=Path, default=PROJECT_ROOT, help="the checkout whose synthtune runs")
    parser.add_argument("--keep", type=Path, help="keep the runs' directories here")
    parser.add_argument("--markdown", action="store_true", help="print README-ready markdown tables")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    args.measurements = args.measurements or ["ceiling", "cpu"]
    if set(args.measurements) - {"ceiling", "cpu"}:
        parser.error("measure ceiling, cpu or both")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="synthtune-bench-") as scratch:
        work = args.keep or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        for measurement in dict.fromkeys(args.measurements):
            print(f"[{measurement}]", file=sys.stderr, flush=True)
            table = measure_ceiling(args, work) if measurement == "ceiling" else measure_cpu(args, work)
            print(table + "\n")
    print(f"- Measured on {os.cpu_count()} cores, Python {platform.python_version()}.")
    print(f"\n{time.perf_counter() - started:.0f} s in all.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
