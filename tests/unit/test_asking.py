"""The engine that asks a model many problems (`engine.asking`, `engine.checkpoints`), on its own: what it
checkpoints, what a retry asks again, how it stops when time runs out, what it pays through the ledger.
Time is a fake clock; nothing sleeps."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence

import pytest
from pydantic import BaseModel

from synthtune.contracts.config import RunConfig
from synthtune.contracts.errors import BudgetExceeded, ModelUnavailable, RateLimited
from synthtune.contracts.usage import Usage
from synthtune.engine.asking import Progress, RequestPolicy, Unfinished, ask_many
from synthtune.engine.checkpoints import CheckpointStore
from synthtune.engine.pacing import RateLimitGate
from synthtune.money.estimate import worst_case_answer_usd
from synthtune.money.ledger import CostLedger, spend_records
from synthtune.prompts import SOLVER_SYSTEM_PROMPT, Exemplar, Verdict
from synthtune.providers.ports import ChatPort, Replies, Reply, ReplyText, SolveResult
from synthtune.records.artifacts import ArtifactStore
from synthtune.records.runs import RunStore
from tests.support import FakeClock

RUN = "run-asking"
MODEL = "gpt-4.1-mini-2025-04-14"
USAGE = Usage(requests=1, input_tokens=100, output_tokens=20)
POLICY = RequestPolicy(in_flight=3, max_attempts=2, timeout_seconds=30.0)
PREFIX = f"runs/{RUN}/probe/"


class Saved(BaseModel):
    question: str
    text: str | None


class CountingChat:
    """Answers every question with its length; fails a question's first `failures` tries with `error`;
    counts tries and paid answers per question; each answer takes `latency` on `clock`."""

    def __init__(
        self,
        *,
        failures: int = 0,
        error: Exception | None = None,
        clock: FakeClock | None = None,
        latency: float = 0.0,
    ) -> None:
        self.failures = failures
        self.error = error
        self.clock = clock
        self.latency = latency
        self.tries: Counter[str] = Counter()
        self.paid: Counter[str] = Counter()
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
            self.tries[question] += 1
            failing = self.error is not None and self.tries[question] <= self.failures
        if self.clock is not None:
            self.clock.sleep(self.latency)
        if failing:
            assert self.error is not None
            raise self.error
        with self._lock:
            self.paid[question] += 1
        return Reply(model=model, text=f"Answer: {len(question)}", finish_reason="stop", usage=USAGE)

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
        raise AssertionError("not asked here")

    def judge(self, model: str, question: str, reference: str, candidate: str) -> tuple[Verdict, Usage]:
        raise AssertionError("not asked here")

    def samples_per_request(self, model: str) -> int:
        return 1


def ask_and_save(question: str, progress: Progress[Saved], chat: ChatPort) -> str | None:
    if progress.saved is None:
        reply = chat.answer(MODEL, question, max_tokens=50)
        progress.save(Saved(question=question, text=reply.text))
    assert progress.saved is not None
    return progress.saved.text


def store(data: ArtifactStore) -> CheckpointStore[Saved]:
    return CheckpointStore(data, PREFIX, lambda position: f"{PREFIX}{position:05d}.json", Saved)


def questions(count: int) -> list[str]:
    return [f"question {'?' * n}" for n in range(count)]


def ask(
    data: ArtifactStore,
    runs: RunStore,
    chat: ChatPort,
    problems: list[str],
    *,
    gate: RateLimitGate | None = None,
    budget_usd: float | None = None,
    policy: RequestPolicy = POLICY,
) -> list[str | None]:
    clock = FakeClock()
    return ask_many(
        problems,
        ask_and_save,
        checkpoints=store(data),
        chat=chat,
        ledger=CostLedger(runs, RUN, budget_usd),
        spender="benchmark: base",
        gate=gate or RateLimitGate(monotonic=clock.monotonic, sleep=clock.sleep, jitter=lambda: 0.5),
        policy=policy,
        name="probe",
    ).results


def test_the_store_keeps_one_checkpoint_per_position_and_reads_back_only_its_own(data: ArtifactStore) -> None:
    checkpoints = store(data)
    checkpoints.save(3, Saved(question="a", text="1"))
    checkpoints.save(0, Saved(question="b", text=None))
    checkpoints.save(3, Saved(question="a", text="2"))  # rewritten, not added
    data.write_json(f"{PREFIX}notes.json", {"not": "a checkpoint"})
    data.write_json(f"runs/{RUN}/probe-other/00001.json", {"question": "c", "text": None})

    assert checkpoints.load() == {0: Saved(question="b", text=None), 3: Saved(question="a", text="2")}
    assert checkpoints.count() == 2


def test_every_problem_is_answered_in_order_and_checkpointed(data: ArtifactStore, runs: RunStore) -> None:
    problems = questions(7)
    chat = CountingChat()

    assert ask(data, runs, chat, problems) == [f"Answer: {len(q)}" for q in problems]

    assert chat.paid == Counter(problems)
    assert {p: c.question for p, c in store(data).load().items()} == dict(enumerate(problems))


def test_a_retry_resumes_from_the_checkpoints_and_pays_for_nothing_twice(
    data: ArtifactStore, runs: RunStore
) -> None:
    problems = questions(6)
    for position in (0, 2, 5):
        store(data).save(position, Saved(question=problems[position], text="kept"))
    chat = CountingChat()

    results = ask(data, runs, chat, problems)

    assert [results[position] for position in (0, 2, 5)] == ["kept"] * 3
    assert chat.paid == Counter(problems[position] for position in (1, 3, 4))


def test_5xx_are_retried_per_request_and_a_problem_out_of_tries_fails_the_call(
    data: ArtifactStore, runs: RunStore
) -> None:
    # One request at a time: moto applies concurrent updates of one item non-atomically (DynamoDB does not).
    policy = RequestPolicy(in_flight=1, max_attempts=2, timeout_seconds=30.0)
    problems = questions(4)
    flaky = CountingChat(failures=1, error=ModelUnavailable("HTTP 502"))
    assert ask(data, runs, flaky, problems, policy=policy) == [f"Answer: {len(q)}" for q in problems]
    assert flaky.tries == Counter(dict.fromkeys(problems, 2))
    assert flaky.paid == Counter(problems)

    down = CountingChat(failures=2, error=ModelUnavailable("HTTP 502"))
    with pytest.raises(ModelUnavailable):
        ask(
            data, runs, down, questions(8), policy=policy
        )  # two tries each (the policy's max_attempts), then it fails
    assert set(down.tries) <= set(questions(8)[4:])  # the first four were checkpointed above
    assert not down.paid
    # Each 502 may have been billed: the ledger counts every try at its worst case.
    (lost,) = spend_records(runs.items(RUN))
    assert (lost.kind, lost.spender, lost.purpose) == ("paid_but_lost", "benchmark: base", "answer")
    assert lost.usage.requests == len(problems) + sum(down.tries.values())


def test_out_of_time_stops_with_what_was_checkpointed(data: ArtifactStore, runs: RunStore) -> None:
    problems = questions(6)
    clock = FakeClock()
    slow = CountingChat(clock=clock, latency=10.0)
    gate = RateLimitGate(deadline=clock.now + 45, monotonic=clock.monotonic, sleep=clock.sleep)
    one_at_a_time = RequestPolicy(in_flight=1, max_attempts=1, timeout_seconds=10.0)

    with pytest.raises(Unfinished) as stopped:
        ask(data, runs, slow, problems, gate=gate, policy=one_at_a_time)

    # Sent at 0, 10, 20 and 30 s; at 40 s a 10 s request would end past the 45 s deadline.
    assert (stopped.value.checkpointed, stopped.value.total, stopped.value.rate_limited) == (4, 6, False)
    rest = CountingChat()
    ask(data, runs, rest, problems)
    assert slow.paid + rest.paid == Counter(problems)


def test_rate_limited_past_the_deadline_says_so(data: ArtifactStore, runs: RunStore) -> None:
    clock = FakeClock()
    storm = CountingChat(failures=1_000, error=RateLimited("429", retry_after_seconds=60.0))
    gate = RateLimitGate(deadline=clock.now + 30, monotonic=clock.monotonic, sleep=clock.sleep)

    with pytest.raises(Unfinished) as stopped:
        ask(data, runs, storm, questions(3), gate=gate)

    assert stopped.value.rate_limited
    assert stopped.value.checkpointed == 0
    assert spend_records(runs.items(RUN)) == []  # a 429 is not billed


def test_the_budget_refuses_a_request_before_it_is_sent_and_keeps_what_was_answered(
    data: ArtifactStore, runs: RunStore
) -> None:
    problems = questions(5)
    worst = worst_case_answer_usd(MODEL, problems[0], 50)
    assert worst is not None
    chat = CountingChat()
    one_at_a_time = RequestPolicy(in_flight=1, max_attempts=1, timeout_seconds=10.0)

    # Room for two worst cases at once: each answer settles far below its reservation, so more fit.
    with pytest.raises(BudgetExceeded):
        ask(data, runs, chat, [*problems, *questions(400)[5:]], budget_usd=2.5 * worst, policy=one_at_a_time)

    answered = sum(chat.paid.values())
    assert answered >= 2
    assert sum(chat.tries.values()) == answered  # the refused request was never sent
    assert store(data).count() == answered
    run = runs.get(RUN)
    assert run is not None
    assert run["spent_usd"] <= 2.5 * worst


def test_the_policy_comes_from_the_run_config() -> None:
    config = RunConfig.model_validate(
        {"request_concurrency": 7, "generation": {"max_attempts": 3, "request_timeout_seconds": 45}}
    )
    assert RequestPolicy.of(config) == RequestPolicy(in_flight=7, max_attempts=3, timeout_seconds=45.0)
