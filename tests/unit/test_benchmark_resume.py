"""Benchmark at the domain level: each contestant's answers and verdicts checkpointed, a retried contestant
resuming without paying twice, the budget, and each answer's outcome. Time is a fake clock; nothing sleeps."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence

import pytest

from synthtune.contracts.config import RunConfig
from synthtune.contracts.errors import BenchmarkIncomplete, BudgetExceeded, RateLimited
from synthtune.contracts.problems import Problem
from synthtune.contracts.usage import Usage
from synthtune.contracts.workflow import (
    BenchmarkPlan,
    BenchmarkTask,
    ContestantScore,
    FineTuneState,
    RunRef,
    S3Location,
)
from synthtune.engine.pacing import RateLimitGate
from synthtune.money.estimate import worst_case_answer_usd
from synthtune.money.ledger import spend_records
from synthtune.money.usage import inference_cost_usd
from synthtune.prompts import SOLVER_SYSTEM_PROMPT, Exemplar, Verdict
from synthtune.providers.ports import Replies, Reply, ReplyText, SolveResult
from synthtune.records.artifacts import ArtifactStore
from synthtune.records.items import score_sk
from synthtune.records.layout import RunLayout
from synthtune.records.runs import RunStore
from synthtune.stages.benchmark import BenchmarkAnswer, contestant_checkpoints, run_benchmark
from tests.support import OPENAI_MODELS, FakeClock

RUN = "run-benchmark"
TEACHER = str(OPENAI_MODELS["teacher_model"])
JUDGE = str(OPENAI_MODELS["judge_model"])
ANSWER_USAGE = Usage(requests=1, input_tokens=120, output_tokens=40)
JUDGE_USAGE = Usage(requests=1, input_tokens=90, output_tokens=20)

Fault = Callable[[str, int], Exception | None]
"""(question, how many times it was asked) -> what to raise instead of answering."""


def no_fault(question: str, attempt: int) -> Exception | None:
    return None


class ScriptedContestant:
    """Replies from a table (the reply text, and optionally its stop reason), failing where the test says;
    counts what was asked, paid for and judged."""

    def __init__(
        self,
        replies: dict[str, str | tuple[str | None, str]],
        *,
        fault: Fault = no_fault,
        clock: FakeClock | None = None,
        latency: float = 0.0,
        verdict: bool = False,
    ) -> None:
        self.scripted = replies
        self.fault = fault
        self.clock = clock
        self.latency = latency
        self.verdict = verdict
        self.asked: Counter[str] = Counter()
        self.paid: Counter[str] = Counter()
        self.judged: Counter[str] = Counter()
        self.probed: Counter[str] = Counter()
        self.models: list[str] = []
        self._lock = threading.Lock()

    def answer(
        self,
        model: str,
        question: str,
        *,
        max_tokens: int,
        endpoint: str | None = None,
        system: str = SOLVER_SYSTEM_PROMPT,
    ) -> Reply:
        with self._lock:
            self.asked[question] += 1
            error = self.fault(question, self.asked[question])
        if self.clock is not None:
            self.clock.sleep(self.latency)
        if error is not None:
            raise error
        scripted = self.scripted[question]
        text, finish_reason = scripted if isinstance(scripted, tuple) else (scripted, "stop")
        with self._lock:
            self.paid[question] += 1
            self.models.append(model)
        refusal = "I can't help with that." if finish_reason == "refusal" else None
        return Reply(model=model, text=text, finish_reason=finish_reason, usage=ANSWER_USAGE, refusal=refusal)

    def judge(self, model: str, question: str, reference: str, candidate: str) -> tuple[Verdict, Usage]:
        with self._lock:
            self.judged[question] += 1
        return Verdict(correct=self.verdict, explanation="the judge's view"), JUDGE_USAGE

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
        # A probe of the base student (after its benchmark): the scripted reply, counted on its own.
        scripted = self.scripted[question]
        text, finish_reason = scripted if isinstance(scripted, tuple) else (scripted, "stop")
        with self._lock:
            self.probed[question] += 1
        one = ReplyText(text=text, finish_reason=finish_reason)
        return Replies(model=model, replies=[one] * samples, usage=ANSWER_USAGE)

    def solve(self, *args: object, **kwargs: object) -> SolveResult:
        raise AssertionError("the benchmark does not solve")

    def samples_per_request(self, model: str) -> int:
        return 1


def arithmetic(count: int) -> list[Problem]:
    return [
        Problem(id=f"p{i}", question=f"What is {i} plus {i}?", answer=str(2 * i), category="arithmetic")
        for i in range(count)
    ]


def right_replies(problems: list[Problem]) -> dict[str, str | tuple[str | None, str]]:
    return {p.question: f"Add the two.\nAnswer: {p.answer}" for p in problems}


def benchmark_task(data: ArtifactStore, problems: list[Problem], **config: object) -> BenchmarkTask:
    settings: dict[str, object] = {**OPENAI_MODELS, "judge_model": None, "request_concurrency": 1, **config}
    run = RunRef(
        run_id=RUN,
        bucket=data.bucket,
        problem_set=S3Location(bucket=data.bucket, key="problem-sets/test.jsonl"),
        config=RunConfig.model_validate(settings),
    )
    data.write_jsonl(RunLayout(RUN).holdout, problems)
    return BenchmarkTask(
        run=run,
        benchmark=BenchmarkPlan(problem_count=len(problems), contestants=["teacher"]),
        finetune=FineTuneState(backend="openai", job_id="ftjob-1", status="succeeded", base_model=TEACHER),
        contestant="teacher",
    )


def benchmark(
    task: BenchmarkTask,
    contestant: ScriptedContestant,
    *,
    data: ArtifactStore,
    runs: RunStore,
    gate: RateLimitGate | None = None,
) -> ContestantScore:
    clock = FakeClock(start=5000.0)
    gate = gate or RateLimitGate(monotonic=clock.monotonic, sleep=clock.sleep, jitter=lambda: 0.5)
    return run_benchmark(task, data=data, runs=runs, chat=contestant, gate=gate)


def answers(data: ArtifactStore) -> list[BenchmarkAnswer]:
    return list(data.read_jsonl(RunLayout(RUN).benchmark_answers("teacher"), BenchmarkAnswer))


def checkpointed(data: ArtifactStore) -> int:
    return contestant_checkpoints(data, RunLayout(RUN), "teacher").count()


def test_a_contestant_that_crashes_resumes_from_its_checkpoints_and_pays_once(
    data: ArtifactStore, runs: RunStore
) -> None:
    problems = arithmetic(6)
    task = benchmark_task(data, problems, request_concurrency=3)
    crashing = ScriptedContestant(
        right_replies(problems),
        fault=lambda question, attempt: (
            RuntimeError("sandbox crashed") if question.startswith("What is 4") else None
        ),
    )
    with pytest.raises(RuntimeError, match="sandbox crashed"):
        benchmark(task, crashing, data=data, runs=runs)
    kept = checkpointed(data)
    assert kept == sum(crashing.paid.values()) >= 1
    assert not data.exists(RunLayout(RUN).benchmark_answers("teacher"))
    assert runs.get(RUN, score_sk("teacher")) is None

    healthy = ScriptedContestant(right_replies(problems))
    score = benchmark(task, healthy, data=data, runs=runs)

    assert crashing.paid + healthy.paid == Counter(p.question for p in problems)  # each paid exactly once
    assert sum(healthy.paid.values()) == len(problems) - kept
    assert (score.total, score.correct, score.accuracy) == (6, 6, 1.0)
    assert score.usage == {TEACHER: Usage(requests=6, input_tokens=720, output_tokens=240)}
    assert [a.problem_id for a in answers(data)] == [p.id for p in problems]
    assert all(a.outcome == "correct" for a in answers(data))
    # The score counts what the crashed attempt paid for; the crashed request itself may have been billed.
    (lost,) = spend_records(runs.items(RUN))
    assert (lost.kind, lost.usage.requests) == ("paid_but_lost", 1)


def test_a_judges_verdict_is_checkpointed_with_the_reply_and_not_paid_again(
    data: ArtifactStore, runs: RunStore
) -> None:
    problems = [Problem(id="paris", question="What is the capital of France?", answer="Paris")]
    task = benchmark_task(data, problems, judge_model=JUDGE)
    contestant = ScriptedContestant({problems[0].question: "Answer: the city of Paris"}, verdict=True)

    first = benchmark(task, contestant, data=data, runs=runs)
    again = benchmark(task, ScriptedContestant({}, verdict=False), data=data, runs=runs)  # a retry

    assert (contestant.paid, contestant.judged) == (Counter({problems[0].question: 1}),) * 2
    assert first == again
    assert again.correct == 1
    assert again.usage == {TEACHER: ANSWER_USAGE, JUDGE: JUDGE_USAGE}
    (answer,) = answers(data)
    assert (answer.grade_method, answer.outcome) == ("judge", "correct")


def test_out_of_time_stops_as_benchmark_incomplete_and_the_retry_resumes(
    data: ArtifactStore, runs: RunStore
) -> None:
    problems = arithmetic(6)
    task = benchmark_task(data, problems, generation={"request_timeout_seconds": 30})
    clock = FakeClock(start=5000.0)
    slow = ScriptedContestant(right_replies(problems), clock=clock, latency=10.0)
    gate = RateLimitGate(deadline=clock.now + 65, monotonic=clock.monotonic, sleep=clock.sleep)

    with pytest.raises(BenchmarkIncomplete) as stopped:
        benchmark(task, slow, data=data, runs=runs, gate=gate)

    assert str(stopped.value) == (
        "benchmark of the teacher contestant: 4 of 6 held-out problems answered and checkpointed; "
        "the invocation's time ran out (a retry resumes)"
    )
    (unfinished,) = spend_records(runs.items(RUN))
    assert (unfinished.kind, unfinished.spender, unfinished.usage.requests) == (
        "unfinished",
        "benchmark: teacher",
        4,
    )
    fast = ScriptedContestant(right_replies(problems))
    assert benchmark(task, fast, data=data, runs=runs).correct == 6
    assert slow.paid + fast.paid == Counter(p.question for p in problems)
    assert sum(fast.paid.values()) == 2


def test_rate_limited_past_the_deadline_stops_as_rate_limited_with_its_progress(
    data: ArtifactStore, runs: RunStore
) -> None:
    problems = arithmetic(5)
    task = benchmark_task(data, problems, generation={"request_timeout_seconds": 10})
    storm = ScriptedContestant(
        right_replies(problems),
        fault=lambda question, attempt: (
            RateLimited("429", retry_after_seconds=45.0) if question >= "What is 2" else None
        ),
    )
    clock = FakeClock(start=5000.0)
    gate = RateLimitGate(deadline=clock.now + 40, monotonic=clock.monotonic, sleep=clock.sleep)

    with pytest.raises(RateLimited, match="2 of 5 held-out problems answered and checkpointed; still rate"):
        benchmark(task, storm, data=data, runs=runs, gate=gate)

    healthy = ScriptedContestant(right_replies(problems))
    assert benchmark(task, healthy, data=data, runs=runs).total == 5
    assert storm.paid + healthy.paid == Counter(p.question for p in problems)


def test_a_checkpoint_of_another_model_is_asked_again(data: ArtifactStore, runs: RunStore) -> None:
    problems = arithmetic(2)
    task = benchmark_task(data, problems)
    benchmark(task, ScriptedContestant(right_replies(problems)), data=data, runs=runs)

    other = task.model_copy(
        update={
            "run": task.run.model_copy(
                update={"config": task.run.config.model_copy(update={"teacher_model": JUDGE})}
            )
        }
    )
    contestant = ScriptedContestant(right_replies(problems))
    score = benchmark(other, contestant, data=data, runs=runs)

    assert contestant.models == [JUDGE, JUDGE]
    assert score.usage == {JUDGE: ANSWER_USAGE + ANSWER_USAGE}


def test_the_budget_stops_the_contestant_before_it_is_passed_and_keeps_what_was_answered(
    data: ArtifactStore, runs: RunStore
) -> None:
    problems = arithmetic(20)
    worst = worst_case_answer_usd(TEACHER, problems[0].question, 1024)
    budget = round(1.5 * worst, 6)  # each answer costs a fraction of its worst case: several fit
    task = benchmark_task(data, problems, budget_usd=budget)
    contestant = ScriptedContestant(right_replies(problems))

    with pytest.raises(BudgetExceeded):
        benchmark(task, contestant, data=data, runs=runs)

    paid = sum(contestant.paid.values())
    assert 0 < paid < len(problems)
    assert sum(contestant.asked.values()) == paid  # the request that would pass the budget was never sent
    assert checkpointed(data) == paid
    run = runs.get(RUN)
    assert run is not None
    paid_usd = paid * (inference_cost_usd(TEACHER, ANSWER_USAGE) or 0.0)
    assert run["spent_usd"] == pytest.approx(paid_usd)
    assert run["spent_usd"] <= budget
    (unfinished,) = spend_records(runs.items(RUN))
    assert unfinished.usage.requests == paid
    assert unfinished.usd == pytest.approx(paid_usd)


TRUNCATED = ("Start with 3.\nThen add 4, which makes", "length")


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [
        ("3 + 4 = 7\nAnswer: 7", "correct"),
        ("3 + 4 = 8\nAnswer: 8", "wrong"),
        ("Answer: I don't know", "abstained"),
        ("I am not sure.", "abstained"),
        ("Answer: the unknown is 8", "wrong"),  # mentions the word, gives an answer
        ("", "no_answer"),
        ((None, "refusal"), "no_answer"),
        (("Answer: unknown", "content_filter"), "no_answer"),
        (TRUNCATED, "no_answer"),
        ("Three plus four is seven.", "no_answer"),  # no final answer line to grade
    ],
)
def test_each_answer_has_its_outcome(
    data: ArtifactStore, runs: RunStore, reply: str | tuple[str | None, str], outcome: str
) -> None:
    problem = Problem(id="sum", question="What is 3 plus 4?", answer="7")
    task = benchmark_task(data, [problem])
    benchmark(task, ScriptedContestant({problem.question: reply}), data=data, runs=runs)
    (answer,) = answers(data)
    assert answer.outcome == outcome
    assert answer.correct is (outcome == "correct")


def test_correct_is_decided_by_grading_even_when_the_reference_says_unknown(
    data: ArtifactStore, runs: RunStore
) -> None:
    problem = Problem(id="riddle", question="What did the witness see?", answer="Unknown")
    task = benchmark_task(data, [problem])
    benchmark(task, ScriptedContestant({problem.question: "Answer: unknown"}), data=data, runs=runs)
    (answer,) = answers(data)
    assert (answer.correct, answer.outcome) == (True, "correct")


def test_the_score_counts_outcomes_and_their_rates(data: ArtifactStore, runs: RunStore) -> None:
    problems = arithmetic(8)
    replies: dict[str, str | tuple[str | None, str]] = {
        problems[0].question: "Answer: 0",
        problems[1].question: "Answer: 2",
        problems[2].question: "Answer: 4",
        problems[3].question: "Answer: 7",  # wrong
        problems[4].question: "Answer: I do not know",
        problems[5].question: "Insufficient information.",
        problems[6].question: (None, "refusal"),
        problems[7].question: TRUNCATED,
    }
    score = benchmark(benchmark_task(data, problems), ScriptedContestant(replies), data=data, runs=runs)

    assert Counter(a.outcome for a in answers(data)) == Counter(
        {"correct": 3, "wrong": 1, "abstained": 2, "no_answer": 2}
    )
    assert (score.total, score.correct, score.abstained, score.no_answer) == (8, 3, 2, 2)
    assert score.accuracy == pytest.approx(3 / 8)
    assert score.abstention_rate == pytest.approx(2 / 8)
    assert score.hallucination_rate == pytest.approx(1 / 4)  # wrong among attempted
    assert score.answered == 5  # replies with a final answer line
