"""What the report counts beyond the stages' own results: replies paid for and lost, and the answers a
benchmark contestant without a score yet keeps in its checkpoints."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from synthtune.contracts.config import RunConfig
from synthtune.contracts.errors import ModelRequestRejected, ModelUnavailable
from synthtune.contracts.problems import Problem
from synthtune.contracts.usage import CallCost, Usage
from synthtune.contracts.workflow import BenchmarkPlan, BenchmarkTask, FineTuneState, RunRef, S3Location
from synthtune.engine.pacing import RateLimitGate
from synthtune.money.ledger import CostLedger, SpendRecord, spend_records
from synthtune.money.usage import inference_cost_usd
from synthtune.prompts import SOLVER_SYSTEM_PROMPT, Exemplar, Verdict
from synthtune.providers.ports import Replies, Reply, ReplyText, SolveResult
from synthtune.records.artifacts import ArtifactStore
from synthtune.records.items import RUN_SK, ShardDone, score_sk, shard_sk
from synthtune.records.layout import RunLayout
from synthtune.records.runs import RunStore
from synthtune.stages.benchmark import run_benchmark
from synthtune.stages.generate import call_cost
from synthtune.stages.report import render_report, report_contents, summarise_run
from tests.support import FakeClock

RUN = "run-spend"
TEACHER = "gpt-4.1-2025-04-14"
STUDENT = "gpt-4.1-mini-2025-04-14"
USAGE = Usage(requests=1, input_tokens=100, output_tokens=50)


class FailingAfter:
    """A chat that answers `answers` questions, then fails every request with `error`."""

    def __init__(self, answers: int, error: Exception) -> None:
        self.left = answers
        self.error = error

    def answer(
        self,
        model: str,
        question: str,
        *,
        max_tokens: int,
        endpoint: str | None = None,
        system: str = SOLVER_SYSTEM_PROMPT,
    ) -> Reply:
        if self.left <= 0:
            raise self.error
        self.left -= 1
        return Reply(model=model, text="Answer: 4", finish_reason="stop", usage=USAGE)

    def replies(
        self,
        model: str,
        question: str,
        *,
        system: str,
        exemplars: Sequence[Exemplar] = (),
        temperature: float,
        max_tokens: int,
        samples: int = 1,
    ) -> Replies:
        reply = self.answer(model, question, max_tokens=max_tokens, system=system)
        text = ReplyText(text=reply.text, finish_reason=reply.finish_reason, refusal=reply.refusal)
        return Replies(model=model, replies=[text] * samples, usage=reply.usage)

    def solve(self, *args: object, **kwargs: object) -> SolveResult:
        raise AssertionError("the benchmark does not solve")

    def judge(self, model: str, question: str, reference: str, candidate: str) -> tuple[Verdict, Usage]:
        raise AssertionError("no judge in this run")

    def samples_per_request(self, model: str) -> int:
        return 1


def benchmark_task(data: ArtifactStore) -> BenchmarkTask:
    config = RunConfig.model_validate(
        {"teacher_model": TEACHER, "student_model": STUDENT, "judge_model": None, "request_concurrency": 1}
    )
    run = RunRef(
        run_id=RUN,
        bucket=data.bucket,
        problem_set=S3Location(bucket=data.bucket, key="problem-sets/test.jsonl"),
        config=config,
    )
    problems = [Problem(id=f"p{n}", question=f"What is {n} plus 2?", answer=str(n + 2)) for n in range(6)]
    data.write_jsonl(RunLayout(RUN).holdout, problems)
    return BenchmarkTask(
        run=run,
        benchmark=BenchmarkPlan(problem_count=6, contestants=["teacher"]),
        finetune=FineTuneState(backend="openai", job_id="ftjob-1", status="succeeded", base_model=STUDENT),
        contestant="teacher",
    )


def test_a_failed_benchmark_attempt_keeps_what_it_paid_for_on_the_ledger_until_its_retry_scores(
    data: ArtifactStore, runs: RunStore
) -> None:
    task = benchmark_task(data)
    with pytest.raises(ModelRequestRejected):
        run_benchmark(task, data=data, runs=runs, chat=FailingAfter(4, ModelRequestRejected("HTTP 400")))

    (unfinished,) = spend_records(runs.items(RUN))
    assert (unfinished.kind, unfinished.spender, unfinished.purpose, unfinished.model) == (
        "unfinished",
        "benchmark: teacher",
        "answer",
        TEACHER,
    )
    assert unfinished.usage == Usage(requests=4, input_tokens=400, output_tokens=200)
    assert runs.get(RUN, score_sk("teacher")) is None  # the attempt scored nothing
    failed = summarise_run(RUN, runs.items(RUN))
    assert failed.answered.requests == 4  # a run failing here still counts them

    retry = FailingAfter(6, ModelRequestRejected("HTTP 400"))
    score = run_benchmark(task, data=data, runs=runs, chat=retry)

    assert retry.left == 4  # the retry asked only the 2 problems without a checkpoint
    assert score.usage == {TEACHER: Usage(requests=6, input_tokens=600, output_tokens=300)}
    assert spend_records(runs.items(RUN)) == []  # the score counts all six now
    summary = summarise_run(RUN, runs.items(RUN))
    assert summary.answered.requests == 6
    assert summary.cost_usd == pytest.approx(inference_cost_usd(TEACHER, score.usage[TEACHER]))


def test_a_benchmark_request_lost_for_every_attempt_is_paid_but_lost_each_time(
    data: ArtifactStore, runs: RunStore
) -> None:
    task = benchmark_task(data)
    clock = FakeClock()
    gate = RateLimitGate(monotonic=clock.monotonic, sleep=clock.sleep, jitter=lambda: 0.5)
    with pytest.raises(ModelUnavailable):
        run_benchmark(
            task, data=data, runs=runs, chat=FailingAfter(0, ModelUnavailable("HTTP 502")), gate=gate
        )

    (lost,) = spend_records(runs.items(RUN))
    assert (lost.kind, lost.spender) == ("paid_but_lost", "benchmark: teacher")
    # Every try of every problem sent before the failure stopped the contestant (the worker may have
    # taken the next problem already): each one counted.
    attempts = task.run.config.generation.max_attempts
    assert lost.usage.requests >= attempts and lost.usage.requests % attempts == 0
    assert len(clock.sleeps) >= attempts - 1  # paced and retried by the engine, not by an SDK


def _shard_done(problems: int, calls: list[CallCost]) -> ShardDone:
    return ShardDone(
        index=0, problems=problems, answered=problems, verified=problems, rejected=0, failed=0, calls=calls
    )


def test_the_report_separates_answered_requests_from_paid_but_lost_ones(runs: RunStore) -> None:
    runs.update(RUN, status="SUCCEEDED", config={"budget_usd": None})
    teacher_call = call_cost("solve", TEACHER, Usage(requests=10, input_tokens=1000, output_tokens=500))
    runs.put(RUN, shard_sk(0), _shard_done(problems=10, calls=[teacher_call]))
    ledger = CostLedger(runs, RUN, budget_usd=None)
    worst = Usage(requests=1, input_tokens=150, output_tokens=1024)
    for _ in range(2):
        ledger.settle_lost(
            0.0,
            SpendRecord(
                kind="paid_but_lost",
                spender="generation",
                purpose="solve",
                model=TEACHER,
                usage=worst,
                usd=inference_cost_usd(TEACHER, worst),
            ),
        )
    ledger.record(
        SpendRecord(
            kind="discarded",
            spender="benchmark: base",
            purpose="answer",
            model=STUDENT,
            usage=USAGE,
            usd=inference_cost_usd(STUDENT, USAGE),
        )
    )

    summary = summarise_run(RUN, runs.items(RUN))

    lost_usd = 2 * (inference_cost_usd(TEACHER, worst) or 0.0)
    answered_usd = (teacher_call.usd or 0.0) + (inference_cost_usd(STUDENT, USAGE) or 0.0)
    assert summary.answered.requests == 11
    assert summary.answered.usd == pytest.approx(answered_usd)
    assert summary.paid_but_lost.requests == 2
    assert summary.paid_but_lost.usd == pytest.approx(lost_usd)
    assert summary.cost_usd == pytest.approx(answered_usd + lost_usd)
    items = {line.item: line for line in summary.costs.lines}
    assert items["generation: teacher, paid but lost (worst case)"].paid_but_lost
    assert items["generation: teacher, paid but lost (worst case)"].usage == worst + worst
    assert not items["benchmark: base, answers of an attempt that failed"].paid_but_lost
    document = summary.model_dump(mode="json")
    assert document["paid_but_lost"] == {"requests": 2, "usd": pytest.approx(lost_usd)}
    report = render_report(report_contents(summary))
    assert "| generation: teacher, paid but lost (worst case) | `gpt-4.1-2025-04-14` | 2 |" in report
    assert "Model requests answered: 11" in report
    assert "Paid but lost: 2 requests whose reply never arrived" in report
    assert runs.get(RUN, RUN_SK) is not None


def test_a_run_without_lost_replies_says_nothing_of_them(runs: RunStore) -> None:
    runs.update(RUN, status="SUCCEEDED")
    teacher_call = call_cost("solve", TEACHER, USAGE)
    runs.put(RUN, shard_sk(0), _shard_done(problems=1, calls=[teacher_call]))

    summary = summarise_run(RUN, runs.items(RUN))

    assert (summary.answered.requests, summary.paid_but_lost.requests) == (1, 0)
    assert "Paid but lost" not in render_report(report_contents(summary))
