"""The held-out probe, at the domain level: after the base student's benchmark (and only the base
student's), what it knew of each held-out problem is probed, written to holdout_knowledge.jsonl, paid for
on its score and, while the iteration has no score, on the ledger as unfinished; a retried iteration asks
for no probe answer twice. Every contestant is asked with the system prompt the student was trained with.
Time is a fake clock; nothing sleeps."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from synthtune.contracts.config import Contestant, RunConfig
from synthtune.contracts.errors import BenchmarkIncomplete
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
from synthtune.money.ledger import spend_records
from synthtune.prompts import ABSTAINING_SYSTEM_PROMPT, SOLVER_SYSTEM_PROMPT, Exemplar, Verdict
from synthtune.providers.ports import Replies, Reply, ReplyText, SolveResult
from synthtune.records.artifacts import ArtifactStore
from synthtune.records.layout import RunLayout
from synthtune.records.runs import RunStore
from synthtune.stages.benchmark import HoldoutKnowledge, probe_checkpoints, run_benchmark
from tests.support import OPENAI_MODELS, FakeClock

RUN = "run-holdout-probe"
STUDENT = str(OPENAI_MODELS["student_model"])
TEACHER = str(OPENAI_MODELS["teacher_model"])
JUDGE = str(OPENAI_MODELS["judge_model"])
FINE_TUNED = f"ft:{STUDENT}:synthtune:{RUN}"
ANSWER_USAGE = Usage(requests=1, input_tokens=120, output_tokens=40)
PROBE_USAGE = Usage(requests=1, input_tokens=200, output_tokens=30)
PROBE = {"greedy": 2, "samples": 3, "temperature": 0.8, "exemplars": 1}
"""Two greedy answers (the second with one exemplar) and three sampled ones, one request each."""

Fault = Callable[[str, int], Exception | None]
"""(question, how many probe requests were sent for it) -> what to raise instead of replying."""


def no_fault(question: str, sent: int) -> Exception | None:
    return None


class Student:
    """The base student (and any contestant) as a table: what it knows, by question.

    - "known": right every time;
    - "plain": right greedily with the training prompt alone, wrong with exemplars (maybe_known);
    - "sampled": wrong greedily, right when sampled (weakly_known);
    - "guess": always wrong (unknown).
    """

    def __init__(self, knows: dict[str, str], answers: dict[str, str], *, fault: Fault = no_fault) -> None:
        self.knows = knows
        self.right = answers
        self.fault = fault
        self.clock: FakeClock | None = None
        self.latency = 0.0
        self.answered: Counter[str] = Counter()
        self.probed: Counter[tuple[str, str]] = Counter()
        self.sent: Counter[str] = Counter()
        self.systems: set[str] = set()
        self.judged = 0
        self._lock = threading.Lock()

    def _final(self, question: str, *, greedy: bool, exemplars: int) -> str:
        kind = self.knows[question]
        right = (
            kind == "known"
            or (kind == "plain" and greedy and not exemplars)
            or (kind == "sampled" and not greedy)
        )
        return self.right[question] if right else "a confident guess"

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
            self.answered[question] += 1
            self.systems.add(system)
        final = self._final(question, greedy=True, exemplars=0)
        return Reply(model=model, text=f"Think.\nAnswer: {final}", finish_reason="stop", usage=ANSWER_USAGE)

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
        with self._lock:
            self.sent[question] += 1
            error = self.fault(question, self.sent[question])
        if self.clock is not None:
            self.clock.sleep(self.latency)
        if error is not None:
            raise error
        greedy = temperature == 0
        with self._lock:
            self.systems.add(system)
            self.probed[question, "greedy" if greedy else "sampled"] += samples
        final = self._final(question, greedy=greedy, exemplars=len(exemplars))
        text = ReplyText(text=f"Think.\nAnswer: {final}", finish_reason="stop")
        return Replies(model=model, replies=[text] * samples, usage=PROBE_USAGE)

    def judge(self, model: str, question: str, reference: str, candidate: str) -> tuple[Verdict, Usage]:
        with self._lock:
            self.judged += 1
        return Verdict(correct=False, explanation="different"), Usage(requests=1, input_tokens=50)

    def solve(self, *args: object, **kwargs: object) -> SolveResult:
        raise AssertionError("the benchmark does not solve")

    def samples_per_request(self, model: str) -> int:
        return 1


PROBLEMS = [
    Problem(id="capital", question="What is the capital of France?", answer="Paris", category="geography"),
    Problem(id="year", question="In which year did the Berlin Wall fall?", answer="1989", category="history"),
    Problem(id="element", question="Which element has symbol W?", answer="Tungsten", category="science"),
    Problem(
        id="village", question="Who was mayor of Ooltewah in 1911?", answer="J. Smith", category="trivia"
    ),
]
KNOWS = {
    PROBLEMS[0].question: "known",
    PROBLEMS[1].question: "plain",
    PROBLEMS[2].question: "sampled",
    PROBLEMS[3].question: "guess",
}
EXPECTED = {"capital": "highly_known", "year": "maybe_known", "element": "weakly_known", "village": "unknown"}


def usage_times(usage: Usage, times: int) -> Usage:
    total = Usage()
    for _ in range(times):
        total += usage
    return total


PROBED = Counter(
    {(p.question, mode): 2 if mode == "greedy" else 3 for p in PROBLEMS for mode in ("greedy", "sampled")}
)
"""Each held-out problem's probe answers: two greedy, three sampled."""


def student(fault: Fault = no_fault) -> Student:
    return Student(KNOWS, {p.question: str(p.answer) for p in PROBLEMS}, fault=fault)


def task_for(data: ArtifactStore, contestant: Contestant, **config: Any) -> BenchmarkTask:
    settings: dict[str, Any] = {
        **OPENAI_MODELS,
        "judge_model": None,
        "request_concurrency": 1,
        "dataset": {"probe": PROBE},
        **config,
    }
    run = RunRef(
        run_id=RUN,
        bucket=data.bucket,
        problem_set=S3Location(bucket=data.bucket, key="problem-sets/test.jsonl"),
        config=RunConfig.model_validate(settings),
    )
    data.write_jsonl(RunLayout(RUN).holdout, PROBLEMS)
    return BenchmarkTask(
        run=run,
        benchmark=BenchmarkPlan(problem_count=len(PROBLEMS), contestants=["base", "fine_tuned", "teacher"]),
        finetune=FineTuneState(
            backend="openai",
            job_id="ftjob-1",
            status="succeeded",
            base_model=STUDENT,
            fine_tuned_model=FINE_TUNED,
        ),
        contestant=contestant,
    )


def benchmark(
    task: BenchmarkTask,
    chat: Student,
    *,
    data: ArtifactStore,
    runs: RunStore,
    gate: RateLimitGate | None = None,
) -> ContestantScore:
    clock = FakeClock(start=5000.0)
    gate = gate or RateLimitGate(monotonic=clock.monotonic, sleep=clock.sleep, jitter=lambda: 0.5)
    return run_benchmark(task, data=data, runs=runs, chat=chat, gate=gate)


def holdout_knowledge(data: ArtifactStore) -> list[HoldoutKnowledge]:
    return list(data.read_jsonl(RunLayout(RUN).holdout_knowledge, HoldoutKnowledge))


def test_the_base_contestant_probes_every_held_out_problem_after_its_answers(
    data: ArtifactStore, runs: RunStore
) -> None:
    chat = student()
    score = benchmark(task_for(data, "base"), chat, data=data, runs=runs)

    lines = holdout_knowledge(data)
    assert [line.problem_id for line in lines] == [p.id for p in PROBLEMS]
    assert {line.problem_id: line.knowledge for line in lines} == EXPECTED
    assert {line.problem_id: line.category for line in lines} == {p.id: p.category for p in PROBLEMS}
    village = lines[3]
    assert (village.greedy, village.greedy_correct, village.sampled, village.sampled_correct) == (2, 0, 3, 0)
    assert village.answers == ["a confident guess"] * 5
    assert village.agreement == 1.0
    # Two greedy answers and three sampled, one request each; every answer graded by matching alone.
    assert chat.probed == PROBED
    assert sum(chat.sent.values()) == 5 * len(PROBLEMS)
    assert chat.judged == 0
    # Its own answers are scored as ever; the probe is paid on the score, apart from them.
    assert score.usage == {STUDENT: usage_times(ANSWER_USAGE, len(PROBLEMS))}
    assert score.probe_usage == {STUDENT: usage_times(PROBE_USAGE, 5 * len(PROBLEMS))}
    assert spend_records(runs.items(RUN)) == []
    assert probe_checkpoints(data, RunLayout(RUN)).count() == len(PROBLEMS)


@pytest.mark.parametrize("contestant", ["fine_tuned", "teacher"])
def test_no_other_contestant_probes(data: ArtifactStore, runs: RunStore, contestant: Contestant) -> None:
    chat = student()
    score = benchmark(task_for(data, contestant), chat, data=data, runs=runs)

    assert score.total == len(PROBLEMS)
    assert chat.sent == Counter()
    assert score.probe_usage == {}
    assert not data.exists(RunLayout(RUN).holdout_knowledge)
    assert probe_checkpoints(data, RunLayout(RUN)).count() == 0


def test_the_base_contestant_does_not_probe_when_probing_is_off(data: ArtifactStore, runs: RunStore) -> None:
    chat = student()
    task = task_for(data, "base", dataset={"probe": {"enabled": False}, "knowledge_policy": "keep_all"})
    score = benchmark(task, chat, data=data, runs=runs)

    assert chat.sent == Counter()
    assert score.probe_usage == {}
    assert not data.exists(RunLayout(RUN).holdout_knowledge)


@pytest.mark.parametrize(
    ("policy", "system"), [("keep_all", SOLVER_SYSTEM_PROMPT), ("abstain_unknown", ABSTAINING_SYSTEM_PROMPT)]
)
@pytest.mark.parametrize("contestant", ["base", "fine_tuned", "teacher"])
def test_every_contestant_and_the_probe_are_asked_with_the_training_system_prompt(
    data: ArtifactStore, runs: RunStore, contestant: Contestant, policy: str, system: str
) -> None:
    chat = student()
    task = task_for(data, contestant, dataset={"probe": PROBE, "knowledge_policy": policy})
    benchmark(task, chat, data=data, runs=runs)

    assert chat.systems == {system}


def test_a_base_iteration_that_crashes_mid_probe_keeps_its_spending_and_its_retry_pays_nothing_twice(
    data: ArtifactStore, runs: RunStore
) -> None:
    task = task_for(data, "base", judge_model=JUDGE)
    village = PROBLEMS[3].question
    crashing = student(
        fault=lambda question, sent: (
            RuntimeError("sandbox crashed") if question == village and sent == 3 else None
        )
    )
    with pytest.raises(RuntimeError, match="sandbox crashed"):
        benchmark(task, crashing, data=data, runs=runs)

    # The answers are written, the probe is not; what the checkpoints hold is on the ledger as unfinished.
    assert data.exists(RunLayout(RUN).benchmark_answers("base"))
    assert not data.exists(RunLayout(RUN).holdout_knowledge)
    unfinished = {
        (record.purpose, record.model): record.usage.requests
        for record in spend_records(runs.items(RUN))
        if record.kind == "unfinished"
    }
    probe_requests_paid = sum(crashing.sent.values()) - 1  # the crashed request itself was not answered
    assert unfinished[("answer", STUDENT)] == len(PROBLEMS)
    assert unfinished[("probe", STUDENT)] == probe_requests_paid
    assert all(record.spender == "benchmark: base" for record in spend_records(runs.items(RUN)))

    healthy = student()
    score = benchmark(task, healthy, data=data, runs=runs)

    assert healthy.answered == Counter()  # every answer was checkpointed before the probe began
    total = crashing.probed + healthy.probed
    assert total == PROBED
    assert {line.problem_id: line.knowledge for line in holdout_knowledge(data)} == EXPECTED
    # The score counts every probe request, the crashed attempt's too; the ledger's unfinished lines are gone.
    assert score.probe_usage[STUDENT] == usage_times(PROBE_USAGE, 5 * len(PROBLEMS))
    # Each verdict was paid once, and is counted once: on the answers, or on the probe.
    judged = score.usage[JUDGE].requests + score.probe_usage[JUDGE].requests
    assert judged == crashing.judged + healthy.judged > 0
    # What is left on the ledger is the crashed request, which may have been billed.
    (lost,) = spend_records(runs.items(RUN))
    assert (lost.kind, lost.spender, lost.purpose, lost.usage.requests) == (
        "paid_but_lost",
        "benchmark: base",
        "probe",
        1,
    )


def test_out_of_time_mid_probe_stops_as_benchmark_incomplete_and_the_retry_resumes(
    data: ArtifactStore, runs: RunStore
) -> None:
    task = task_for(data, "base", generation={"request_timeout_seconds": 30})
    clock = FakeClock(start=5000.0)
    slow = student()
    slow.clock, slow.latency = clock, 10.0
    gate = RateLimitGate(deadline=clock.now + 75, monotonic=clock.monotonic, sleep=clock.sleep)

    with pytest.raises(BenchmarkIncomplete, match="the held-out probe has 1 of 4 problems probed") as stopped:
        benchmark(task, slow, data=data, runs=runs, gate=gate)
    assert "its answers are written" in str(stopped.value)
    (unfinished,) = [r for r in spend_records(runs.items(RUN)) if r.purpose == "probe"]
    assert (unfinished.kind, unfinished.spender, unfinished.usage.requests) == (
        "unfinished",
        "benchmark: base",
        sum(slow.sent.values()),
    )

    fast = student()
    score = benchmark(task, fast, data=data, runs=runs)
    assert slow.probed + fast.probed == PROBED
    assert score.probe_usage[STUDENT].requests == 5 * len(PROBLEMS)
    assert spend_records(runs.items(RUN)) == []
