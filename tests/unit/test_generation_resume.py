"""Generate's faults at the domain level: crashes, timeouts, 429 storms and the budget, each resumed from
the per-problem checkpoints without paying twice. Time is a fake clock; nothing sleeps."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence

import pytest

from synthtune.contracts.config import RunConfig
from synthtune.contracts.errors import (
    BudgetExceeded,
    GenerationIncomplete,
    ModelUnavailable,
    RateLimited,
    ShardIncomplete,
)
from synthtune.contracts.problems import Problem, SplitCounts
from synthtune.contracts.usage import Usage
from synthtune.contracts.workflow import (
    AssembleInput,
    GenerationPlan,
    RunRef,
    S3Location,
    ShardRef,
    ShardResult,
    ShardTask,
)
from synthtune.engine.pacing import RateLimitGate
from synthtune.money.estimate import worst_case_solve_usd
from synthtune.money.usage import inference_cost_usd
from synthtune.prompts import SOLVER_SYSTEM_PROMPT, Exemplar, Solution, Verdict
from synthtune.providers.ports import Replies, Reply, ReplyText, Sample, SolveResult
from synthtune.providers.registry import dataset_format
from synthtune.records.artifacts import ArtifactStore
from synthtune.records.items import shard_sk
from synthtune.records.layout import RunLayout
from synthtune.records.runs import RunStore
from synthtune.stages.assemble.assemble import assemble_dataset
from synthtune.stages.generate import GeneratedAnswer, generate_shard, load_checkpoints
from tests.support import OPENAI_MODELS, FakeClock

RUN_ID = "run-generation"
TEACHER = str(OPENAI_MODELS["teacher_model"])
JUDGE = str(OPENAI_MODELS["judge_model"])
SOLVE_USAGE = Usage(requests=1, input_tokens=150, output_tokens=60)
JUDGE_USAGE = Usage(requests=1, input_tokens=90, output_tokens=20)
PROBE_USAGE = Usage(requests=1, input_tokens=80, output_tokens=30)
SOLVE_USD = inference_cost_usd(TEACHER, SOLVE_USAGE) or 0.0

Fault = Callable[[str, int, int], Exception | None]
"""(question, this question's attempt number, the teacher's call number overall) -> what to raise."""


def no_fault(question: str, attempt: int, call: int) -> Exception | None:
    return None


class ScriptedTeacher:
    """A ChatModel answering from a table, failing where the test says, counting what was paid for."""

    def __init__(
        self,
        answers: dict[str, list[str]],
        *,
        fault: Fault = no_fault,
        clock: FakeClock | None = None,
        latency: float = 0.0,
        usage: Usage = SOLVE_USAGE,
        verdict: bool = True,
        per_request: int = 128,
    ) -> None:
        self.answers = answers
        self.fault = fault
        self.clock = clock
        self.latency = latency
        self.usage = usage
        self.verdict = verdict
        self.attempts: Counter[str] = Counter()
        self.paid: Counter[str] = Counter()
        self.judged: Counter[str] = Counter()
        self.samples_asked: list[int] = []
        self.probed: Counter[str] = Counter()
        self.per_request = per_request
        self._given: Counter[str] = Counter()
        self._calls = 0
        self._lock = threading.Lock()

    def solve(
        self, model: str, question: str, *, temperature: float, max_tokens: int, samples: int = 1
    ) -> SolveResult:
        with self._lock:
            self._calls += 1
            self.attempts[question] += 1
            error = self.fault(question, self.attempts[question], self._calls)
        if self.clock is not None:
            self.clock.sleep(self.latency)
        if error is not None:
            raise error
        assert samples <= self.per_request, f"asked for {samples} samples in one request"
        with self._lock:
            self.paid[question] += 1
            self.samples_asked.append(samples)
            given = self._given[question] if self.per_request == 1 else 0
            self._given[question] += samples
        finals = self.answers[question][given : given + samples]
        return SolveResult(
            model=model,
            samples=[
                Sample(
                    solution=Solution(steps=[f"Work out: {question}"], final_answer=final),
                    finish_reason="stop",
                )
                for final in finals
            ],
            usage=self.usage,
        )

    def answer(
        self,
        model: str,
        question: str,
        *,
        max_tokens: int,
        endpoint: str | None = None,
        system: str = SOLVER_SYSTEM_PROMPT,
    ) -> Reply:
        raise AssertionError("Generate never asks for a free-text answer")

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
        # The base student probed before Assemble: the table's first answer, counted on its own.
        assert samples <= self.per_request, f"asked for {samples} probe answers in one request"
        with self._lock:
            self.probed[question] += 1
        one = ReplyText(text=f"Answer: {self.answers[question][0]}", finish_reason="stop")
        return Replies(model=model, replies=[one] * samples, usage=PROBE_USAGE)

    def judge(self, model: str, question: str, reference: str, candidate: str) -> tuple[Verdict, Usage]:
        with self._lock:
            self.judged[question] += 1
        return Verdict(correct=self.verdict, explanation="the judge's view"), JUDGE_USAGE

    def samples_per_request(self, model: str) -> int:
        return self.per_request


def arithmetic(count: int, start: int = 0) -> list[Problem]:
    return [
        Problem(id=f"p{i}", question=f"What is {i} plus {i}?", answer=str(2 * i), split="train")
        for i in range(start, start + count)
    ]


def right_answers(problems: list[Problem]) -> dict[str, list[str]]:
    return {p.question: [p.answer or ""] for p in problems}


NO_PROBE = {"probe": {"enabled": False}, "knowledge_policy": "keep_all"}
"""These tests count the teacher's requests: the student's probe is left out unless a test asks for it."""


def run_ref(data: ArtifactStore, **config: object) -> RunRef:
    settings: dict[str, object] = {"request_concurrency": 1, **OPENAI_MODELS, "dataset": NO_PROBE, **config}
    return RunRef(
        run_id=RUN_ID,
        bucket=data.bucket,
        problem_set=S3Location(bucket=data.bucket, key="problem-sets/test.jsonl"),
        config=RunConfig.model_validate(settings),
    )


def write_shard(data: ArtifactStore, index: int, problems: list[Problem]) -> ShardRef:
    data.write_jsonl(RunLayout(RUN_ID).shard_input(index), problems)
    return ShardRef(index=index, problem_count=len(problems))


def run_shard(
    run: RunRef,
    shard: ShardRef,
    teacher: ScriptedTeacher,
    *,
    data: ArtifactStore,
    runs: RunStore,
    gate: RateLimitGate | None = None,
) -> ShardResult:
    clock = FakeClock(start=5000.0)
    gate = gate or RateLimitGate(monotonic=clock.monotonic, sleep=clock.sleep, jitter=lambda: 0.5)
    return generate_shard(ShardTask(run=run, shard=shard), data=data, runs=runs, chat=teacher, gate=gate)


def shard_answers(data: ArtifactStore, index: int) -> list[GeneratedAnswer]:
    return list(data.read_jsonl(RunLayout(RUN_ID).shard_output(index), GeneratedAnswer))


def shard_record(runs: RunStore, index: int) -> dict[str, object]:
    record = runs.get(RUN_ID, shard_sk(index))
    assert record is not None
    return record


def checkpointed(data: ArtifactStore, index: int) -> int:
    return len(load_checkpoints(data, RunLayout(RUN_ID), index))


def test_a_crashed_shard_resumes_without_paying_twice(data: ArtifactStore, runs: RunStore) -> None:
    problems = arithmetic(8)
    shard = write_shard(data, 0, problems)
    run = run_ref(data, request_concurrency=4)
    crashing = ScriptedTeacher(
        right_answers(problems),
        fault=lambda q, attempt, call: RuntimeError("teacher crashed") if call > 3 else None,
    )
    with pytest.raises(RuntimeError, match="teacher crashed"):
        run_shard(run, shard, crashing, data=data, runs=runs)
    assert sum(crashing.paid.values()) == 3
    assert not data.exists(RunLayout(RUN_ID).shard_output(0))
    failed = shard_record(runs, 0)
    assert failed["status"] == "failed"
    assert failed["error"] == "RuntimeError"
    assert failed["message"] == "teacher crashed"
    assert failed["checkpointed"] == 3
    assert failed["cost_usd"] == pytest.approx(3 * SOLVE_USD)

    healthy = ScriptedTeacher(right_answers(problems))
    result = run_shard(run, shard, healthy, data=data, runs=runs)
    assert result == ShardResult(index=0, problems=8, answered=8, verified=8, rejected=0, failed=0)
    assert crashing.paid + healthy.paid == Counter(p.question for p in problems)  # each paid exactly once
    answers = shard_answers(data, 0)
    assert [a.problem_id for a in answers] == [p.id for p in problems]
    assert all(a.status == "verified" for a in answers)
    done = shard_record(runs, 0)
    assert done["status"] == "done"
    assert done["checkpointed_at_start"] == 3
    # The shard's cost counts every answer once, the ones paid for before the crash included.
    assert done["cost_usd"] == pytest.approx(8 * SOLVE_USD)
    assert runs.get(RUN_ID) is None  # no budget: no ledger lines were written


def test_timeouts_are_retried_within_the_shard(data: ArtifactStore, runs: RunStore) -> None:
    problems = arithmetic(5)
    shard = write_shard(data, 0, problems)
    teacher = ScriptedTeacher(
        right_answers(problems),
        fault=lambda q, attempt, call: (
            ModelUnavailable("APITimeoutError: Request timed out.") if attempt == 1 else None
        ),
    )
    clock = FakeClock(start=5000.0)
    gate = RateLimitGate(monotonic=clock.monotonic, sleep=clock.sleep, jitter=lambda: 0.5)
    result = run_shard(
        run_ref(data, generation={"max_attempts": 2}), shard, teacher, data=data, runs=runs, gate=gate
    )
    assert result.answered == 5
    assert teacher.attempts == Counter({p.question: 2 for p in problems})
    assert teacher.paid == Counter({p.question: 1 for p in problems})
    assert clock.now == pytest.approx(5000.0 + 5 * 0.5)  # one backoff per problem, on the fake clock
    assert gate.holds == 0
    assert [a.problem_id for a in shard_answers(data, 0)] == [p.id for p in problems]


def test_a_shard_out_of_attempts_fails_and_each_retry_resumes(data: ArtifactStore, runs: RunStore) -> None:
    problems = arithmetic(4)
    shard = write_shard(data, 0, problems)
    run = run_ref(data, generation={"max_attempts": 1})
    teacher = ScriptedTeacher(
        right_answers(problems),
        fault=lambda q, attempt, call: (
            ModelUnavailable("APITimeoutError: Request timed out.") if attempt == 1 else None
        ),
    )
    failures: list[tuple[dict[str, object], int]] = []
    for _ in range(len(problems) + 1):  # Step Functions' retries
        try:
            run_shard(run, shard, teacher, data=data, runs=runs)
        except ModelUnavailable:
            failures.append((shard_record(runs, 0), checkpointed(data, 0)))
        else:
            break
    else:
        pytest.fail(f"the shard never finished: {failures}")
    assert failures
    for record, _ in failures:
        assert (record["status"], record["error"]) == ("failed", "ModelUnavailable")
        assert "APITimeoutError" in str(record["message"])
    progress = [count for _, count in failures]
    assert progress[0] == 0
    assert progress == sorted(set(progress))  # every retry kept what it answered and added to it
    assert teacher.paid == Counter({p.question: 1 for p in problems})
    assert [a.problem_id for a in shard_answers(data, 0)] == [p.id for p in problems]
    assert shard_record(runs, 0)["status"] == "done"


def test_a_429_storm_is_waited_out_at_the_gate(data: ArtifactStore, runs: RunStore) -> None:
    problems = arithmetic(4)
    shard = write_shard(data, 0, problems)
    teacher = ScriptedTeacher(
        right_answers(problems),
        fault=lambda q, attempt, call: RateLimited("429", retry_after_seconds=2.0) if call <= 3 else None,
    )
    clock = FakeClock(start=5000.0)
    gate = RateLimitGate(
        deadline=clock.now + 900, monotonic=clock.monotonic, sleep=clock.sleep, jitter=lambda: 0.5
    )
    result = run_shard(
        run_ref(data, generation={"max_attempts": 1}), shard, teacher, data=data, runs=runs, gate=gate
    )
    assert result.answered == 4
    assert gate.holds == 3
    assert clock.now == pytest.approx(5000.0 + 3 * (2.0 + 0.5 * 0.4))  # each hold plus its jitter
    assert sum(teacher.attempts.values()) == 4 + 3
    assert teacher.paid == Counter({p.question: 1 for p in problems})


def test_rate_limited_past_the_deadline_stops_with_its_progress_and_resumes(
    data: ArtifactStore, runs: RunStore
) -> None:
    problems = arithmetic(5)
    shard = write_shard(data, 0, problems)
    run = run_ref(data, generation={"request_timeout_seconds": 10})
    storm = ScriptedTeacher(
        right_answers(problems),
        fault=lambda q, attempt, call: RateLimited("429", retry_after_seconds=45.0) if call > 2 else None,
    )
    clock = FakeClock(start=5000.0)
    gate = RateLimitGate(
        deadline=clock.now + 40, monotonic=clock.monotonic, sleep=clock.sleep, jitter=lambda: 0.5
    )
    with pytest.raises(RateLimited) as stopped:
        run_shard(run, shard, storm, data=data, runs=runs, gate=gate)
    message = str(stopped.value)
    assert message.startswith("shard 0: 2 of 5 problems answered and checkpointed")
    assert "still rate limited" in message
    assert clock.now == 5000.0  # it gave up rather than sleep into the deadline
    record = shard_record(runs, 0)
    assert (record["status"], record["error"], record["checkpointed"]) == ("failed", "RateLimited", 2)

    healthy = ScriptedTeacher(right_answers(problems))
    assert run_shard(run, shard, healthy, data=data, runs=runs).answered == 5
    assert storm.paid + healthy.paid == Counter(p.question for p in problems)
    assert sum(healthy.paid.values()) == 3


def test_running_out_of_time_stops_as_shard_incomplete_and_resumes(
    data: ArtifactStore, runs: RunStore
) -> None:
    problems = arithmetic(6)
    shard = write_shard(data, 0, problems)
    run = run_ref(data, generation={"request_timeout_seconds": 30})
    clock = FakeClock(start=5000.0)
    slow = ScriptedTeacher(right_answers(problems), clock=clock, latency=10.0)
    gate = RateLimitGate(deadline=clock.now + 65, monotonic=clock.monotonic, sleep=clock.sleep)
    with pytest.raises(ShardIncomplete, match="shard 0: 4 of 6 problems answered and checkpointed"):
        run_shard(run, shard, slow, data=data, runs=runs, gate=gate)
    assert shard_record(runs, 0)["error"] == "ShardIncomplete"
    fast = ScriptedTeacher(right_answers(problems))
    run_shard(run, shard, fast, data=data, runs=runs)
    assert slow.paid + fast.paid == Counter(p.question for p in problems)
    assert sum(fast.paid.values()) == 2


def test_self_consistency_keeps_the_majority_answer(data: ArtifactStore, runs: RunStore) -> None:
    problem = Problem(id="four", question="What is 2 plus 2?", answer="4", split="train")
    shard = write_shard(data, 0, [problem])
    teacher = ScriptedTeacher({problem.question: ["4", "4.0", "5"]})
    run = run_ref(data, teacher_temperature=0.7, generation={"samples": 3})
    assert run_shard(run, shard, teacher, data=data, runs=runs).verified == 1
    assert teacher.samples_asked == [3]  # one request for all three samples
    (answer,) = shard_answers(data, 0)
    assert answer.final_answer == "4"
    assert answer.samples == 3
    assert answer.agreement == pytest.approx(2 / 3)
    assert answer.sample_answers == ["4", "4.0", "5"]
    assert answer.status == "verified"
    assert answer.usage == {TEACHER: SOLVE_USAGE}  # the prompt billed once for the three samples
    assert answer.cost_usd == pytest.approx(SOLVE_USD)


def test_without_n_each_sample_is_its_own_request_and_a_retry_asks_only_the_missing(
    data: ArtifactStore, runs: RunStore
) -> None:
    # Converse has no `n`: three samples are three paid requests, each checkpointed as it arrives.
    problem = Problem(id="four", question="What is 2 plus 2?", answer="4", split="train")
    shard = write_shard(data, 0, [problem])

    def third_sample_fails_once(question: str, attempt: int, call: int) -> Exception | None:
        return RuntimeError("lost") if attempt == 3 else None

    teacher = ScriptedTeacher(
        {problem.question: ["4", "5", "4"]}, per_request=1, fault=third_sample_fails_once
    )
    run = run_ref(data, teacher_temperature=0.7, generation={"samples": 3})
    with pytest.raises(RuntimeError):
        run_shard(run, shard, teacher, data=data, runs=runs)
    (saved,) = load_checkpoints(data, RunLayout(RUN_ID), 0).values()
    assert [sample.solution.final_answer for sample in saved.result.samples if sample.solution] == ["4", "5"]

    assert run_shard(run, shard, teacher, data=data, runs=runs).verified == 1  # the retry
    assert teacher.samples_asked == [1, 1, 1]  # the third only, once it could be asked
    assert teacher.paid[problem.question] == 3
    (answer,) = shard_answers(data, 0)
    assert (answer.samples, answer.final_answer, answer.sample_answers) == (3, "4", ["4", "5", "4"])
    assert answer.agreement == pytest.approx(2 / 3)
    assert answer.usage == {TEACHER: SOLVE_USAGE + SOLVE_USAGE + SOLVE_USAGE}


def test_a_judges_verdict_is_checkpointed_and_not_paid_again(data: ArtifactStore, runs: RunStore) -> None:
    problem = Problem(id="paris", question="What is the capital of France?", answer="Paris", split="train")
    shard = write_shard(data, 0, [problem])
    run = run_ref(data)
    teacher = ScriptedTeacher({problem.question: ["The city of Paris"]})
    assert run_shard(run, shard, teacher, data=data, runs=runs).verified == 1
    first = shard_answers(data, 0)
    assert teacher.judged == Counter({problem.question: 1})
    (answer,) = first
    assert answer.grade_method == "judge"
    assert answer.usage == {TEACHER: SOLVE_USAGE, JUDGE: JUDGE_USAGE}
    judge_usd = inference_cost_usd(JUDGE, JUDGE_USAGE) or 0.0
    assert answer.cost_usd == pytest.approx(SOLVE_USD + judge_usd)

    again = ScriptedTeacher({problem.question: ["The city of Paris"]}, verdict=False)
    run_shard(run, shard, again, data=data, runs=runs)
    assert sum(again.paid.values()) == 0
    assert sum(again.judged.values()) == 0  # the checkpointed verdict stands; the judge is not asked
    assert shard_answers(data, 0) == first
    assert shard_record(runs, 0)["cost_usd"] == pytest.approx(SOLVE_USD + judge_usd)


def test_the_budget_stops_the_shard_and_then_the_run(data: ArtifactStore, runs: RunStore) -> None:
    problems = arithmetic(4)
    shard = write_shard(data, 0, problems)
    max_tokens = 1024
    # Each reply costs nearly its worst case, so the budget covers one reply and not a second.
    costly = Usage(requests=1, input_tokens=0, output_tokens=max_tokens)
    one_reply = inference_cost_usd(TEACHER, costly) or 0.0
    budget = 1.5 * worst_case_solve_usd(TEACHER, problems[0].question, max_tokens, 1)
    run = run_ref(
        data, budget_usd=budget, max_output_tokens=max_tokens, generation={"tolerated_failure_percent": 100}
    )
    teacher = ScriptedTeacher(right_answers(problems), usage=costly)
    with pytest.raises(BudgetExceeded) as stopped:
        run_shard(run, shard, teacher, data=data, runs=runs)
    assert f"spent ${one_reply:.4f}" in str(stopped.value)
    assert f"budget_usd ${budget:.2f}" in str(stopped.value)
    assert sum(teacher.paid.values()) == 1
    ledger = runs.get(RUN_ID)
    assert ledger is not None
    assert ledger["spent_usd"] == pytest.approx(one_reply)
    assert ledger["committed_usd"] == pytest.approx(one_reply)  # nothing left reserved
    record = shard_record(runs, 0)
    assert (record["status"], record["error"], record["checkpointed"]) == ("failed", "BudgetExceeded", 1)

    layout = RunLayout(RUN_ID)
    data.write_json(layout.manifest, [shard.model_dump()])
    data.write_jsonl(layout.holdout, [])
    plan = GenerationPlan(
        manifest_key=layout.manifest,
        shard_count=1,
        problem_count=4,
        splits=SplitCounts(train=4, validation=0, holdout=0),
    )
    # However many failed shards are tolerated, a shard stopped by the budget stops the run.
    with pytest.raises(BudgetExceeded, match="could cost up to"):
        assemble_dataset(
            AssembleInput(run=run, generation=plan), data=data, runs=runs, formats=dataset_format
        )


def two_shards(data: ArtifactStore, runs: RunStore, tolerated: float) -> tuple[RunRef, GenerationPlan]:
    """Shard 0 (12 problems) answered; shard 1 (3 problems) failed for good."""
    run = run_ref(data, generation={"tolerated_failure_percent": tolerated})
    good, bad = arithmetic(12), arithmetic(3, start=12)
    shards = [write_shard(data, 0, good), write_shard(data, 1, bad)]
    run_shard(run, shards[0], ScriptedTeacher(right_answers(good)), data=data, runs=runs)
    broken = ScriptedTeacher(right_answers(bad), fault=lambda q, a, c: RuntimeError("teacher crashed"))
    with pytest.raises(RuntimeError):
        run_shard(run, shards[1], broken, data=data, runs=runs)
    layout = RunLayout(RUN_ID)
    data.write_json(layout.manifest, [shard.model_dump() for shard in shards])
    data.write_jsonl(layout.holdout, [])
    plan = GenerationPlan(
        manifest_key=layout.manifest,
        shard_count=2,
        problem_count=15,
        splits=SplitCounts(train=15, validation=0, holdout=0),
    )
    return run, plan


def test_assemble_goes_on_without_a_tolerated_failed_shard(data: ArtifactStore, runs: RunStore) -> None:
    run, plan = two_shards(data, runs, tolerated=50)
    summary = assemble_dataset(
        AssembleInput(run=run, generation=plan), data=data, runs=runs, formats=dataset_format
    )
    assert summary.train_examples == 12
    assert summary.dropped == {"shard_failed": 3}


def test_assemble_stops_when_failed_shards_are_not_tolerated(data: ArtifactStore, runs: RunStore) -> None:
    run, plan = two_shards(data, runs, tolerated=0)
    with pytest.raises(GenerationIncomplete) as stopped:
        assemble_dataset(
            AssembleInput(run=run, generation=plan), data=data, runs=runs, formats=dataset_format
        )
    message = str(stopped.value)
    assert "1 of 2 shards have no answers (shards 1)" in message
    assert "shard 1: RuntimeError: teacher crashed" in message


class CrashingProbe(ScriptedTeacher):
    """A student whose `crash_at`-th probe request is lost with the invocation (after it was paid for)."""

    def __init__(self, answers: dict[str, list[str]], crash_at: int) -> None:
        super().__init__(answers)
        self.crash_at = crash_at
        self.probe_requests = 0

    def replies(self, model: str, question: str, **options: object) -> Replies:
        result = super().replies(model, question, **options)  # type: ignore[arg-type]
        with self._lock:
            self.probe_requests += 1
            crash = self.probe_requests == self.crash_at
        if crash:
            raise RuntimeError("the invocation died after this probe request was paid for")
        return result


def test_a_crash_mid_probe_resumes_without_paying_any_probe_request_twice(
    data: ArtifactStore, runs: RunStore
) -> None:
    problems = arithmetic(4)
    student = CrashingProbe(right_answers(problems), crash_at=5)
    run = run_ref(data, dataset={"probe": {"greedy": 2, "samples": 4}})
    shard = write_shard(data, 0, problems)

    with pytest.raises(RuntimeError, match="invocation died"):
        run_shard(run, shard, student, data=data, runs=runs)
    run_shard(run, shard, student, data=data, runs=runs)

    # Three probe requests a problem (2 greedy, then 4 samples in one request): the lost one was asked
    # again (its reply never reached the checkpoint), no other.
    assert student.probe_requests == 3 * len(problems) + 1
    assert sum(student.paid.values()) == len(problems)  # the teacher, once a problem
    answers = shard_answers(data, 0)
    assert all(answer.knowledge is not None for answer in answers)
    assert {answer.knowledge.category for answer in answers if answer.knowledge} == {"highly_known"}
    probe_calls = [call for answer in answers for call in answer.calls if call.purpose == "probe"]
    assert sum(call.usage.requests for call in probe_calls) == 3 * len(problems)
