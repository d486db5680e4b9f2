"""`synthtune run --resume`: a run stopped however it stops goes on, and pays for nothing twice.

What is paid for is counted where it is served: the emulator's request log. Judge calls are off and only
named contestants are benchmarked, so every successful model request (a chat completion, a Converse
call) is a teacher answer or a benchmark answer. Two runs are real processes stopped by real signals —
kill -9 halfway through generation, Ctrl-C once the fine-tuning job exists — with the emulator in this
process, behind a gate that holds requests so that each signal lands at a known point (no sleeps, no
timed assertions); the others run in this process, with the emulator `synthtune run` starts itself.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from synthtune.contracts.config import RunConfig
from synthtune.contracts.problems import parse_problem_set
from synthtune.money.estimate import estimate_run_cost, worst_case_solve_usd
from synthtune.split import split_problems
from synthtune_cli import emulator as emulator_package
from synthtune_cli.clock import ScaledClock
from synthtune_cli.emulator import EmulatorServer, KnowledgeItem, OpenAIEmulator
from synthtune_cli.main import main
from synthtune_cli.run_directory import RunDirectory, RunManifest
from synthtune_cli.template import PROJECT_ROOT
from tests.support import OPENAI_MODELS, jsonl, sample_rows

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

SMALL_SET = sample_rows(per_category=8)  # 24 problems: 19 generated (3 shards of 8), 5 held out
GENERATED, HELD_OUT = 19, 5
COUNTED = {
    "shard_size": 8,
    "judge_model": None,
    "benchmark_contestants": ["base"],
    "dataset": {"probe": {"enabled": False}, "knowledge_policy": "keep_all"},
}
"""Runs whose model requests are counted one per problem: the student's probe (whose own resume is
tested in tests/unit/test_generation_resume.py and test_benchmark_faults.py) is off."""
LIVE_OPENAI = {**COUNTED, **OPENAI_MODELS, "judge_model": None, "poll_interval_seconds": 1}
"""A run on OpenAI models served by the emulator in this process, which the run reaches as `--openai
live` (Wait states then sleep for real: the emulator's clock runs 600 times faster)."""
GUARD_SECONDS = 120.0
"""How long a test waits for a process to reach a point before it gives up: a guard, not a measurement."""


def model_answers(emulator: OpenAIEmulator, provider: str = "openai") -> int:
    """Model requests the emulator answered: chat completions, or Bedrock Converse calls."""
    return sum(
        1
        for request in emulator.requests
        if request.method == "POST"
        and request.status == 200
        and (
            request.path == "/v1/chat/completions"
            if provider == "openai"
            else request.path.startswith("/model/") and request.path.endswith("/converse")
        )
    )


def requests_to(emulator: OpenAIEmulator, method: str, path: str) -> int:
    return sum(1 for request in emulator.requests if (request.method, request.path) == (method, path))


class Gate:
    """WSGI middleware in front of the emulator: lets `allowed` matching requests through, then holds the
    next ones until `release` — which serves them, or refuses them with a 503 the emulator never sees —
    and lets every later one through."""

    def __init__(self, app: WSGIApplication, matches: Callable[[str, str], bool], allowed: int) -> None:
        self._app = app
        self._matches = matches
        self._allowed = allowed
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._serve = False
        self.held = 0

    def release(self, *, serve: bool) -> None:
        self._serve = serve
        self._released.set()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if self._matches(environ["REQUEST_METHOD"], environ["PATH_INFO"]):
            with self._lock:
                hold = self._allowed <= 0 and not self._released.is_set()
                self._allowed -= 1
                self.held += hold
            if hold:
                self._released.wait()
                if not self._serve:
                    start_response("503 Service Unavailable", [("Content-Type", "application/json")])
                    return [b'{"error": {"message": "held by the test", "type": "server_error"}}']
        return self._app(environ, start_response)


def knowing_emulator() -> OpenAIEmulator:
    emulator = OpenAIEmulator(clock=ScaledClock(600))
    emulator.add_knowledge(
        KnowledgeItem(**{k: row[k] for k in ("question", "answer", "category")}) for row in sample_rows()
    )
    return emulator


def write_inputs(tmp_path: Path, config: dict[str, Any]) -> tuple[Path, Path]:
    problem_set = tmp_path / "small.jsonl"
    problem_set.write_bytes(jsonl(SMALL_SET))
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    return problem_set, config_file


def start_synthtune(
    run_dir: Path, arguments: list[str], environment: dict[str, str], log: Path
) -> subprocess.Popen[bytes]:
    """`synthtune run ... --out PARENT --run-id NAME` for `run_dir`, in a process of its own, with this
    worktree's code first on its path."""
    path = os.pathsep.join(str(PROJECT_ROOT / folder) for folder in ("layers/core", "cli"))
    where = ["--out", str(run_dir.parent), "--run-id", run_dir.name]
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "synthtune_cli.main", "run", *arguments, *where],
            env={**os.environ, "PYTHONPATH": path, **environment},
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + GUARD_SECONDS
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"synthtune exited ({process.returncode}) before {what}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"synthtune did not reach {what} within {GUARD_SECONDS} s:\n{log.read_text()}")
        time.sleep(0.05)


def answers_kept(run_dir: Path) -> int:
    """Teacher answers in the run directory's journal: what a resumed run will not pay for again."""
    return len(list((run_dir / "state" / "s3" / "runs" / run_dir.name / "answers").glob("*/*.json")))


def answer_lines(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "answers.jsonl").read_text().splitlines()]


def manifest(run_dir: Path) -> dict[str, Any]:
    return dict(json.loads((run_dir / "run.json").read_text()))


def test_a_run_killed_halfway_through_generation_resumes_and_pays_for_no_answer_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator = knowing_emulator()
    paid_before_kill = 6
    teacher = Gate(
        emulator.wsgi_app,
        lambda method, path: (method, path) == ("POST", "/v1/chat/completions"),
        paid_before_kill,
    )
    problem_set, config = write_inputs(tmp_path, LIVE_OPENAI)
    run_dir = tmp_path / "runs" / "killed"
    log = tmp_path / "first-process.log"
    with EmulatorServer(teacher) as server:
        live = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "sk-live-test"}
        process = start_synthtune(
            run_dir, [str(problem_set), "--openai", "live", "--config", str(config)], live, log
        )
        # Six answers paid for and on disk, the next requests held at the gate: kill -9 now.
        wait_for(
            lambda: teacher.held > 0 and answers_kept(run_dir) == paid_before_kill,
            process,
            "six answers on disk",
            log,
        )
        process.kill()
        assert process.wait() == -signal.SIGKILL
        teacher.release(serve=False)
        assert model_answers(emulator) == paid_before_kill
        assert manifest(run_dir)["status"] == "running"  # it never had the chance to say otherwise
        assert not (run_dir / "summary.json").exists()

        for name, value in live.items():
            monkeypatch.setenv(name, value)
        code = main(["run", "--resume", str(run_dir)])

    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.startswith("SUCCEEDED  killed")
    assert f"{paid_before_kill} teacher answers already paid for" in err
    # Every problem answered once across both processes, and one fine-tuning job.
    assert model_answers(emulator) == GENERATED + HELD_OUT
    assert len(emulator.fine_tuning_jobs) == 1
    lines = answer_lines(run_dir)
    assert len({line["problem_id"] for line in lines}) == len(lines) == GENERATED
    attempts = [attempt["status"] for attempt in manifest(run_dir)["attempts"]]
    assert (manifest(run_dir)["status"], attempts) == ("SUCCEEDED", ["killed", "SUCCEEDED"])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "SUCCEEDED"
    assert summary.get("error") is None  # the resumed run is not reported as the killed one's failure
    assert sum(shard["checkpointed_at_start"] for shard in summary["shards"]) == paid_before_kill


def test_ctrl_c_after_the_job_was_created_leaves_a_run_that_resumes_with_the_same_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator = knowing_emulator()
    job_checks = Gate(
        emulator.wsgi_app,
        lambda method, path: method == "GET" and path.startswith("/v1/fine_tuning/jobs/"),
        allowed=0,
    )
    problem_set, config = write_inputs(tmp_path, LIVE_OPENAI)
    run_dir = tmp_path / "runs" / "stopped"
    log = tmp_path / "first-process.log"
    with EmulatorServer(job_checks) as server:
        live = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "sk-live-test"}
        process = start_synthtune(
            run_dir, [str(problem_set), "--openai", "live", "--config", str(config)], live, log
        )
        finetune_record = run_dir / "state" / "dynamodb" / "FINETUNE.json"
        wait_for(
            lambda: job_checks.held > 0 and finetune_record.is_file(),
            process,
            "the job's first status check",
            log,
        )
        process.send_signal(signal.SIGINT)
        # Ctrl-C waits for the Lambda invocation in flight (CheckFineTune, held here) before it stops.
        wait_for(lambda: "waiting for 1 Lambda invocation" in log.read_text(), process, "the drain", log)
        job_checks.release(serve=True)
        assert process.wait(timeout=GUARD_SECONDS) == 130, log.read_text()
        printed = log.read_text()
        assert f"resume it with: synthtune run --resume {run_dir}" in printed
        assert f"{GENERATED} teacher answers paid for, in answers.jsonl" in printed

        # Consistent: every answer readable, the job on record, the execution's end written down.
        assert manifest(run_dir)["status"] == "interrupted"
        assert len(answer_lines(run_dir)) == answers_kept(run_dir) == GENERATED
        records = {item["sk"]: item for item in json.loads((run_dir / "records.json").read_text())}
        job_id = records["FINETUNE"]["job_id"]
        assert job_id in emulator.fine_tuning_jobs
        assert json.loads((run_dir / "summary.json").read_text())["execution"]["status"] == "ABORTED"
        assert not list(run_dir.rglob(".~*"))  # no half-written file

        for name, value in live.items():
            monkeypatch.setenv(name, value)
        code = main(["run", "--resume", str(run_dir)])

    _, err = capsys.readouterr()
    assert code == 0, err
    assert requests_to(emulator, "POST", "/v1/fine_tuning/jobs") == 1
    assert list(emulator.fine_tuning_jobs) == [job_id]
    assert requests_to(emulator, "POST", "/v1/files") == 2  # the training and validation files, once
    assert model_answers(emulator) == GENERATED + HELD_OUT
    records = {item["sk"]: item for item in json.loads((run_dir / "records.json").read_text())}
    assert (records["FINETUNE"]["job_id"], records["FINETUNE"]["status"]) == (job_id, "succeeded")


class StartedEmulators(list[OpenAIEmulator]):
    """Every emulator `synthtune run` starts in this process (one per run or resume), in order."""

    prepare_first: Callable[[OpenAIEmulator], None] | None = None
    """Called with the first one before it serves anything."""


@pytest.fixture
def emulators(monkeypatch: pytest.MonkeyPatch) -> StartedEmulators:
    started = StartedEmulators()

    class Recorded(OpenAIEmulator):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            started.append(self)
            if len(started) == 1 and started.prepare_first is not None:
                started.prepare_first(self)

    monkeypatch.setattr(emulator_package, "OpenAIEmulator", Recorded)
    return started


def test_a_budget_stop_keeps_its_answers_and_a_raised_budget_finishes_the_run(
    tmp_path: Path, emulators: StartedEmulators, capsys: pytest.CaptureFixture[str]
) -> None:
    # Long answers allowed: a request's worst case is so large that only two fit the budget at once,
    # while the estimate (short answers) passes Prepare's check. The models are Bedrock's (the defaults).
    config = RunConfig.model_validate({**COUNTED, "max_output_tokens": 16_000})
    problems = parse_problem_set(jsonl(SMALL_SET).splitlines(), "test", "jsonl")
    split = split_problems(problems, config.holdout_fraction, config.validation_fraction, config.split_seed)
    worst = worst_case_solve_usd(config.teacher_model, split.train[0].question, 16_000, 1)
    budget = round(2.5 * worst, 4)
    estimate = estimate_run_cost(config, [*split.train, *split.validation], split.holdout)
    assert estimate is not None and estimate.total_usd < budget
    problem_set, config_file = write_inputs(
        tmp_path, {**COUNTED, "max_output_tokens": 16_000, "budget_usd": budget}
    )
    run_dir = tmp_path / "budget"

    code = main(
        ["run", str(problem_set), "--config", str(config_file), "--out", str(tmp_path), "--run-id", "budget"]
    )

    _, err = capsys.readouterr()
    assert code == 1, err
    assert "error: BudgetExceeded" in err
    assert f"synthtune run --resume {run_dir} --budget-usd <more>" in err
    lines = answer_lines(run_dir)
    assert 0 < len(lines) < GENERATED
    # Every answer the provider was paid for is in the run directory, readable.
    assert model_answers(emulators[0], "bedrock") == len(lines)
    by_id = {problem.id: problem for problem in problems}
    for line in lines:
        assert line["question"] == by_id[line["problem_id"]].question
        assert line["final_answer"] and line["usage"]["requests"] == 1 and line["cost_usd"] > 0
    assert manifest(run_dir)["status"] == "FAILED"

    code = main(["run", "--resume", str(run_dir), "--budget-usd", "5"])

    _, err = capsys.readouterr()
    assert code == 0, err
    assert len(emulators) == 2
    assert sum(model_answers(emulator, "bedrock") for emulator in emulators) == GENERATED + HELD_OUT
    assert model_answers(emulators[1], "bedrock") == GENERATED - len(lines) + HELD_OUT
    assert manifest(run_dir)["config"]["budget_usd"] == 5.0
    assert [attempt["status"] for attempt in manifest(run_dir)["attempts"]] == ["FAILED", "SUCCEEDED"]
    assert len(answer_lines(run_dir)) == GENERATED


def test_a_run_that_failed_after_its_job_was_created_cancels_it_and_its_resume_trains_a_second(
    tmp_path: Path, emulators: StartedEmulators
) -> None:
    # The first emulator refuses the job's first status check: CheckFineTune fails, and so does the run,
    # whose failure cancels the job so that it stops billing.
    emulators.prepare_first = lambda first: first.inject_errors(
        1, status=400, path_prefix="/v1/fine_tuning/jobs/"
    )
    problem_set, config_file = write_inputs(
        tmp_path,
        {**COUNTED, **OPENAI_MODELS, "judge_model": None, "benchmark_contestants": ["base", "fine_tuned"]},
    )
    run_dir = tmp_path / "crashed"

    code = main(
        ["run", str(problem_set), "--config", str(config_file), "--out", str(tmp_path), "--run-id", "crashed"]
    )

    assert code == 1
    first = emulators[0]
    assert requests_to(first, "POST", "/v1/fine_tuning/jobs") == 1
    (first_job,) = first.fine_tuning_jobs.values()
    assert first_job["status"] == "cancelled"

    code = main(["run", "--resume", str(run_dir)])

    assert code == 0
    second = emulators[1]
    # The second emulator knew the cancelled job from the run directory: the resumed run trains once more,
    # as its second job, on the files it had uploaded, and that job's model answers the benchmark.
    assert requests_to(second, "POST", "/v1/fine_tuning/jobs") == 1
    assert requests_to(second, "POST", "/v1/files") == 0
    jobs = second.fine_tuning_jobs
    assert [job["status"] for job in jobs.values()] == ["cancelled", "succeeded"]
    assert model_answers(first) == GENERATED
    assert model_answers(second) == 2 * HELD_OUT
    summary = json.loads((run_dir / "summary.json").read_text())
    assert {score["contestant"] for score in summary["scores"]} == {"base", "fine_tuned"}
    assert summary["fine_tune"]["attempt"] == 1
    # Both jobs are in the costs, the cancelled one at what the ledger settled it.
    training = [line["item"] for line in summary["costs"]["lines"] if line["item"].startswith("fine-tuning")]
    assert training == ["fine-tuning (tokens x epochs), job 1 cancelled", "fine-tuning"]


def stopped_run(tmp_path: Path, status: str = "FAILED", config: dict[str, Any] | None = None) -> Path:
    """A run directory as a stopped run leaves it (its run.json; what else it holds is not read here)."""
    directory = RunDirectory(tmp_path / "runs" / "stopped")
    (directory.state / "s3" / "problem-sets").mkdir(parents=True)
    (directory.state / "s3" / "problem-sets" / "small.jsonl").write_bytes(jsonl(SMALL_SET))
    directory.write_manifest(
        RunManifest(
            run_id="stopped",
            problem_set="small.jsonl",
            problem_set_key="problem-sets/small.jsonl",
            config=config,
            openai="emulator",
            bedrock="emulator",
            status=status,  # type: ignore[arg-type]
        )
    )
    return directory.path


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--config", "{config}"], "shard_size cannot change when a run resumes (answers are kept by shard"),
        (["--openai", "live"], "--openai live: this run was started with --openai emulator"),
        (["events/problem-set.sample.jsonl"], "drop PROBLEM_SET"),
        (["--run-id", "other"], "drop --run-id"),
    ],
)
def test_a_resume_that_would_change_what_was_paid_for_is_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    run_dir = stopped_run(tmp_path, config={"shard_size": 8, "budget_usd": 1.0})
    config = tmp_path / "changes.json"
    config.write_text(json.dumps({"shard_size": 10, "budget_usd": 2.0}))
    before = (run_dir / "run.json").read_bytes()

    code = main(["run", "--resume", str(run_dir), *[a.format(config=config) for a in arguments]])

    assert code == 2
    assert message in capsys.readouterr().err
    assert (run_dir / "run.json").read_bytes() == before
    assert not (run_dir / "state" / "dynamodb").exists()


def test_a_succeeded_run_has_nothing_to_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = stopped_run(tmp_path, status="SUCCEEDED")

    assert main(["run", "--resume", str(run_dir)]) == 2
    assert "the run already SUCCEEDED; there is nothing to resume" in capsys.readouterr().err


def test_a_directory_without_a_run_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--resume", str(tmp_path)]) == 2
    assert "no run.json, so not a run directory" in capsys.readouterr().err
    assert main(["run", "--resume", str(tmp_path / "missing")]) == 2
    assert "no such run directory" in capsys.readouterr().err


def test_a_run_another_process_is_working_on_cannot_be_resumed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = stopped_run(tmp_path, status="running")

    with RunDirectory(run_dir).locked():
        code = main(["run", "--resume", str(run_dir)])

    assert code == 2
    assert f"synthtune process {os.getpid()} is working on this run" in capsys.readouterr().err
    assert manifest(run_dir)["attempts"] == []  # nothing recorded by the refused process


def test_a_new_run_into_a_run_directory_points_at_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = stopped_run(tmp_path)

    code = main(
        ["run", "events/problem-set.sample.jsonl", "--out", str(run_dir.parent), "--run-id", "stopped"]
    )

    assert code == 2
    assert f"or go on with that run: synthtune run --resume {run_dir}" in capsys.readouterr().err


def test_run_needs_a_problem_set_or_a_run_to_resume(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run"]) == 2
    assert "give the PROBLEM_SET to run, or --resume RUN_DIR" in capsys.readouterr().err


def test_the_help_explains_resuming(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--resume RUN_DIR" in text
    assert "pays for nothing already answered" in text
    assert "--budget-usd USD" in text
