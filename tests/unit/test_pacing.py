import logging
from collections.abc import Callable, Sequence

import pytest

from synthtune.contracts.errors import (
    EndpointUnreachable,
    ModelRequestRejected,
    ModelUnavailable,
    RateLimited,
)
from synthtune.contracts.usage import Usage
from synthtune.engine.paced import PacedChat
from synthtune.engine.pacing import OutOfTime, RateLimitGate, call_paced
from synthtune.money.estimate import probe_prompt_tokens
from synthtune.prompts import SOLVER_SYSTEM_PROMPT, Exemplar, Solution, Verdict
from synthtune.providers.openai.headers import backpressure_from_headers, parse_duration
from synthtune.providers.ports import Backpressure, Replies, Reply, ReplyText, Sample, SolveResult
from tests.support import FakeClock


def gate_on(clock: FakeClock, *, deadline: float | None = None, jitter: float = 0.0) -> RateLimitGate:
    return RateLimitGate(
        deadline=deadline, monotonic=clock.monotonic, sleep=clock.sleep, jitter=lambda: jitter
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("20ms", 0.02),
        ("1.5s", 1.5),
        ("6m0s", 360.0),
        ("1h2m3s", 3723.0),
        ("2m", 120.0),
        (" 7s ", 7.0),
        ("1m500ms", 60.5),
    ],
)
def test_parse_duration_reads_openai_reset_headers(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", [None, "", "soon", "5", "-1s", "1s later", "1h 2m", "1x", "s"])
def test_parse_duration_refuses_what_it_cannot_read(text: str | None) -> None:
    assert parse_duration(text) is None


def test_headers_are_read_case_insensitively_and_retry_after_ms_wins() -> None:
    headers = backpressure_from_headers(
        {
            "Retry-After-Ms": "250",
            "Retry-After": "7",
            "X-RateLimit-Remaining-Requests": "0",
            "x-ratelimit-remaining-tokens": "12000",
            "X-RATELIMIT-RESET-REQUESTS": "1.5s",
            "x-ratelimit-reset-tokens": "6m0s",
        }
    )
    assert headers == Backpressure(
        retry_after_seconds=0.25,
        remaining_requests=0,
        remaining_tokens=12000,
        reset_requests_seconds=1.5,
        reset_tokens_seconds=360.0,
    )
    assert backpressure_from_headers({"RETRY-AFTER": "7"}).retry_after_seconds == 7.0
    # An HTTP date or a junk value is no advice at all, and does not hide retry-after.
    assert backpressure_from_headers({"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}) == Backpressure()
    assert backpressure_from_headers({"retry-after-ms": "soon", "retry-after": "3"}).retry_after_seconds == 3
    assert backpressure_from_headers({"x-ratelimit-remaining-requests": "many"}).remaining_requests is None


def test_wait_after_429_prefers_retry_after_then_the_exhausted_windows_reset() -> None:
    both = {"reset_requests_seconds": 1.5, "reset_tokens_seconds": 20.0}
    assert Backpressure(retry_after_seconds=4.0, remaining_requests=0, **both).wait_after_429() == 4.0
    # Only the requests window is used up: its reset is the advice, not the tokens window's.
    assert Backpressure(remaining_requests=0, remaining_tokens=5000, **both).wait_after_429() == 1.5
    assert Backpressure(remaining_requests=10, remaining_tokens=0, **both).wait_after_429() == 20.0
    assert Backpressure(remaining_requests=0, remaining_tokens=0, **both).wait_after_429() == 20.0
    # No remaining count sent: the window that has a reset is taken as the one used up.
    assert Backpressure(reset_requests_seconds=2.0).wait_after_429() == 2.0
    assert Backpressure(remaining_requests=3, remaining_tokens=10, **both).wait_after_429() is None
    assert Backpressure().wait_after_429() is None


def test_wait_before_next_holds_only_for_a_used_up_window() -> None:
    requests_used_up = Backpressure(remaining_requests=0, reset_requests_seconds=2.5)
    assert requests_used_up.wait_before_next(tokens_per_request=100) == 2.5
    assert Backpressure(remaining_requests=1, reset_requests_seconds=2.5).wait_before_next(100) == 0.0
    tokens = {"remaining_requests": 50, "reset_requests_seconds": 1.0, "reset_tokens_seconds": 9.0}
    assert Backpressure(remaining_tokens=400, **tokens).wait_before_next(tokens_per_request=500) == 9.0
    assert Backpressure(remaining_tokens=500, **tokens).wait_before_next(tokens_per_request=500) == 0.0
    both = Backpressure(
        remaining_requests=0, reset_requests_seconds=1.0, remaining_tokens=0, reset_tokens_seconds=9.0
    )
    assert both.wait_before_next(tokens_per_request=10) == 9.0
    assert Backpressure().wait_before_next(tokens_per_request=10) == 0.0
    # With no token need given, an empty tokens window still holds: any request needs some.
    assert Backpressure(remaining_tokens=0, reset_tokens_seconds=9.0).wait_before_next(0) == 9.0


def test_an_open_gate_lets_requests_through_without_sleeping() -> None:
    clock = FakeClock()
    gate = gate_on(clock, deadline=clock.now + 60)
    gate.wait_turn(must_finish_within=30)
    assert clock.sleeps == []
    assert gate.holds == 0
    assert gate.remaining() == 60


def test_a_hold_is_extended_by_a_later_one_and_never_shortened() -> None:
    clock = FakeClock()
    gate = gate_on(clock, jitter=0.5)
    gate.hold(10, rate_limited=True)
    gate.hold(3, rate_limited=True)  # ends sooner: changes nothing
    assert gate.holds == 1
    gate.wait_turn()
    # Until the 10 s hold ends, plus half of its jitter window (20% of the hold).
    assert clock.sleeps == [pytest.approx(10 + 0.5 * 2)]
    gate.wait_turn()
    assert len(clock.sleeps) == 1  # open again

    gate.hold(5, rate_limited=True)
    clock.now += 2
    gate.hold(8, rate_limited=True)  # ends 5 s after the first would have
    assert gate.holds == 3
    gate.wait_turn()
    assert clock.sleeps[-1] == pytest.approx(8 + 0.5 * 8 * 0.2)


@pytest.mark.parametrize("jitter", [0.0, 0.37, 0.999])
def test_waiters_come_back_within_the_jitter_window(jitter: float) -> None:
    clock = FakeClock()
    gate = gate_on(clock, jitter=jitter)
    gate.hold(20, rate_limited=True)
    gate.wait_turn()
    (slept,) = clock.sleeps
    assert 20 <= slept <= 20 * 1.2
    assert slept == pytest.approx(20 + jitter * 4)
    # A short hold still spreads its waiters over at least 50 ms.
    short = FakeClock()
    gate = gate_on(short, jitter=jitter)
    gate.hold(0.01, rate_limited=True)
    gate.wait_turn()
    assert short.sleeps == [pytest.approx(0.01 + jitter * 0.05)]


def test_waiters_draw_their_own_jitter() -> None:
    clock = FakeClock()
    draws = iter([0.1, 0.9])
    gate = RateLimitGate(monotonic=clock.monotonic, sleep=clock.sleep, jitter=lambda: next(draws))
    gate.hold(10, rate_limited=True)
    start = clock.now
    gate.wait_turn()
    first = clock.sleeps[-1]
    clock.now = start  # a second waiter that arrived at the same instant
    gate.wait_turn()
    assert clock.sleeps[-1] - first == pytest.approx(0.8 * 2)


def test_a_429_hold_that_outlasts_the_deadline_stops_at_once_as_rate_limited() -> None:
    clock = FakeClock()
    gate = gate_on(clock, deadline=clock.now + 30)
    gate.hold(60, rate_limited=True)
    with pytest.raises(OutOfTime) as stopped:
        gate.wait_turn(must_finish_within=5)
    assert stopped.value.rate_limited is True
    assert clock.sleeps == []  # no time is wasted on a wait that cannot end in time
    # The hold fits, but not with the request's own time after it: still the 429's fault.
    gate = gate_on(clock, deadline=clock.now + 30)
    gate.hold(10, rate_limited=True)
    with pytest.raises(OutOfTime) as stopped:
        gate.wait_turn(must_finish_within=25)
    assert stopped.value.rate_limited is True


def test_only_time_running_short_is_not_rate_limited() -> None:
    clock = FakeClock()
    gate = gate_on(clock, deadline=clock.now + 30)
    gate.wait_turn(must_finish_within=30)
    with pytest.raises(OutOfTime) as stopped:
        gate.wait_turn(must_finish_within=31)
    assert stopped.value.rate_limited is False
    # A 429 hold that has already ended is not why time is short.
    gate.hold(5, rate_limited=True)
    gate.wait_turn(must_finish_within=10)  # now 5 s in, 25 s left
    with pytest.raises(OutOfTime) as stopped:
        gate.wait_turn(must_finish_within=26)
    assert stopped.value.rate_limited is False


def test_a_gate_without_deadline_never_runs_out_of_time() -> None:
    clock = FakeClock()
    gate = gate_on(clock)
    gate.hold(86_400, rate_limited=True)
    gate.wait_turn(must_finish_within=10_000)
    assert clock.sleeps == [86_400]
    assert gate.remaining() is None


def test_backoff_ceiling_doubles_and_is_capped() -> None:
    clock = FakeClock()
    gate = gate_on(clock, jitter=1.0)
    for attempt in range(1, 9):
        gate.backoff(attempt)
    assert clock.sleeps == [1, 2, 4, 8, 16, 30, 30, 30]
    half = FakeClock()
    gate = gate_on(half, jitter=0.5)
    gate.backoff(3)
    assert half.sleeps == [2.0]  # full jitter: anywhere up to the ceiling


def test_backoff_that_would_outlast_the_deadline_stops_without_sleeping() -> None:
    clock = FakeClock()
    gate = gate_on(clock, deadline=clock.now + 3, jitter=1.0)
    gate.backoff(2)  # 2 s of the 3 left
    with pytest.raises(OutOfTime) as stopped:
        gate.backoff(2)  # 2 s of the 1 left
    assert stopped.value.rate_limited is False
    assert clock.sleeps == [2]


class ScriptedRequest:
    """A request that raises the scripted errors in turn, then returns "ok"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def paced(
    gate: RateLimitGate,
    request: Callable[[], str],
    *,
    max_attempts: int = 3,
    headers: Backpressure | None = None,
    must_finish_within: float = 0.0,
) -> str:
    return call_paced(
        gate,
        request,
        max_attempts=max_attempts,
        must_finish_within=must_finish_within,
        backpressure_of=lambda _: headers,
        tokens_per_request=100,
    )


def test_call_paced_retries_429s_after_the_providers_advice() -> None:
    clock = FakeClock()
    gate = gate_on(clock)
    request = ScriptedRequest(RateLimited("429", retry_after_seconds=7), RateLimited("429", 3))
    assert paced(gate, request) == "ok"
    assert request.calls == 3
    assert clock.sleeps == [7, 3]
    assert gate.holds == 2


def test_call_paced_waits_a_second_when_a_429_gives_no_advice() -> None:
    clock = FakeClock()
    gate = gate_on(clock)
    assert paced(gate, ScriptedRequest(RateLimited("429"))) == "ok"
    assert clock.sleeps == [1.0]


def test_unadvised_429s_in_a_row_hold_twice_as_long_each_time_and_a_success_resets_it() -> None:
    # Bedrock's throttling says nothing of when to come back: back off instead of hammering the quota.
    clock = FakeClock()
    gate = gate_on(clock)
    assert paced(gate, ScriptedRequest(*[RateLimited("429")] * 8)) == "ok"
    assert clock.sleeps == [1, 2, 4, 8, 16, 32, 60, 60]
    assert paced(gate, ScriptedRequest(RateLimited("429"))) == "ok"
    assert clock.sleeps[-1] == 1


def test_429s_do_not_use_up_the_attempts() -> None:
    clock = FakeClock()
    request = ScriptedRequest(*(RateLimited("429", 1.0) for _ in range(6)))
    assert paced(gate_on(clock), request, max_attempts=1) == "ok"
    assert request.calls == 7


def test_a_429_storm_past_the_deadline_stops_as_rate_limited() -> None:
    clock = FakeClock()
    gate = gate_on(clock, deadline=clock.now + 100)
    request = ScriptedRequest(*(RateLimited("429", 20.0) for _ in range(50)))
    with pytest.raises(OutOfTime) as stopped:
        paced(gate, request, must_finish_within=30)
    assert stopped.value.rate_limited is True
    assert clock.now <= 1000 + 100 - 30
    assert request.calls == 4  # sent at 0, 20, 40, 60 s; the next would end after the deadline


def test_call_paced_retries_unavailable_up_to_max_attempts_then_raises() -> None:
    clock = FakeClock()
    gate = gate_on(clock, jitter=1.0)
    request = ScriptedRequest(*(ModelUnavailable(f"APITimeoutError {i}") for i in range(10)))
    with pytest.raises(ModelUnavailable, match="APITimeoutError 2"):
        paced(gate, request, max_attempts=3)
    assert request.calls == 3
    assert clock.sleeps == [1, 2]  # backed off after the first two, not after the last
    assert gate.holds == 0  # a 5xx or timeout holds back this request only

    recovered = ScriptedRequest(ModelUnavailable("HTTP 503"), ModelUnavailable("HTTP 502"))
    assert paced(gate_on(FakeClock()), recovered, max_attempts=3) == "ok"
    assert recovered.calls == 3


@pytest.mark.parametrize(
    "error",
    [
        ModelRequestRejected("HTTP 400"),
        EndpointUnreachable("cannot reach POST http://127.0.0.1:9/v1/chat/completions: connection refused"),
        RuntimeError("bug"),
    ],
)
def test_call_paced_never_retries_other_errors(error: Exception) -> None:
    clock = FakeClock()
    request = ScriptedRequest(error)
    with pytest.raises(type(error)):
        paced(gate_on(clock), request, max_attempts=5)
    assert request.calls == 1
    assert clock.sleeps == []


def test_each_wait_for_trouble_is_logged_before_it_starts_with_what_how_long_and_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    logged: list[logging.LogRecord] = []

    def sleep(seconds: float) -> None:
        # What a reader of the log sees while the request waits: the line is already there.
        logged[:] = caplog.records
        clock.sleep(seconds)

    gate = RateLimitGate(monotonic=clock.monotonic, sleep=sleep, jitter=lambda: 0.5)
    request = ScriptedRequest(
        RateLimited("gpt-4.1 solving a problem: rate limited (slow down)", retry_after_seconds=20.0),
        RateLimited("gpt-4.1 solving a problem: rate limited (one more)", retry_after_seconds=0.5),
        ModelUnavailable("gpt-4.1 solving a problem: HTTP 503 from POST http://127.0.0.1:8787/v1/x"),
    )
    with caplog.at_level(logging.INFO):
        assert paced(gate, request, max_attempts=3) == "ok"

    assert [(line.levelname, line.getMessage()) for line in logged] == [
        ("INFO", "rate limited: holding this invocation's requests"),
        ("WARNING", "model unavailable: retrying"),
    ]  # the half-second hold is pacing, not news
    hold, backoff = (vars(line) for line in logged)
    assert hold["wait_seconds"] == 20.0
    assert hold["reason"] == "gpt-4.1 solving a problem: rate limited (slow down)"
    assert (backoff["attempt"], backoff["max_attempts"], backoff["wait_seconds"]) == (1, 3, 0.5)
    assert "HTTP 503 from POST http://127.0.0.1:8787" in backoff["reason"]


def test_a_request_given_up_on_is_logged_as_an_error(caplog: pytest.LogCaptureFixture) -> None:
    request = ScriptedRequest(ModelUnavailable("HTTP 502 (Bad Gateway)"))
    with pytest.raises(ModelUnavailable):
        paced(gate_on(FakeClock()), request, max_attempts=1)
    (line,) = caplog.records
    assert (line.levelname, line.getMessage(), vars(line)["reason"]) == (
        "ERROR",
        "model unavailable: giving up on this request",
        "HTTP 502 (Bad Gateway)",
    )


def test_a_success_that_used_up_the_window_closes_the_gate_until_it_resets() -> None:
    clock = FakeClock()
    gate = gate_on(clock)
    used_up = Backpressure(remaining_requests=0, reset_requests_seconds=2.5)
    assert paced(gate, ScriptedRequest(), headers=used_up) == "ok"
    assert gate.holds == 1
    assert clock.sleeps == []  # the request that saw it is not held back itself
    assert paced(gate, ScriptedRequest(), headers=Backpressure(remaining_requests=5)) == "ok"
    assert clock.sleeps == [2.5]  # the next one waits for the reset
    assert gate.holds == 1


class HeaderTeacher:
    """A teacher whose every reply reports the given rate-limit headers."""

    def __init__(self, headers: Backpressure) -> None:
        self.headers = headers
        self.probed: list[tuple[str, tuple[Exemplar, ...], float, int, int]] = []
        self.answered_with: list[str] = []

    def solve(
        self, model: str, question: str, *, temperature: float, max_tokens: int, samples: int = 1
    ) -> SolveResult:
        sample = Sample(solution=Solution(steps=["2 + 2 = 4"], final_answer="4"), finish_reason="stop")
        return SolveResult(model=model, samples=[sample], usage=Usage(requests=1), backpressure=self.headers)

    def answer(
        self,
        model: str,
        question: str,
        *,
        max_tokens: int,
        endpoint: str | None = None,
        system: str = SOLVER_SYSTEM_PROMPT,
    ) -> Reply:
        self.answered_with.append(system)
        return Reply(
            model=model,
            text="Answer: 4",
            finish_reason="stop",
            usage=Usage(requests=1),
            backpressure=self.headers,
        )

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
        self.probed.append((system, tuple(exemplars), temperature, max_tokens, samples))
        text = ReplyText(text="Answer: 4", finish_reason="stop")
        return Replies(
            model=model, replies=[text] * samples, usage=Usage(requests=1), backpressure=self.headers
        )

    def judge(self, model: str, question: str, reference: str, candidate: str) -> tuple[Verdict, Usage]:
        raise NotImplementedError

    def samples_per_request(self, model: str) -> int:
        return 128


def solve_through_paced_chat(headers: Backpressure) -> RateLimitGate:
    clock = FakeClock()
    gate = gate_on(clock)
    chat = PacedChat(HeaderTeacher(headers), gate, max_attempts=3, request_timeout=30)
    chat.solve("gpt-4.1-2025-04-14", "What is 2 plus 2?", temperature=0.0, max_tokens=64)
    return gate


@pytest.mark.parametrize(
    ("headers", "holds"),
    [
        (Backpressure(remaining_requests=0, reset_requests_seconds=2.0), 1),
        (Backpressure(remaining_requests=3, reset_requests_seconds=2.0), 0),
        # The tokens window is used up, or has less left than this request may use (prompt + 64).
        (Backpressure(remaining_tokens=0, reset_tokens_seconds=6.0), 1),
        (Backpressure(remaining_tokens=64, reset_tokens_seconds=6.0), 1),
        (Backpressure(remaining_tokens=100_000, reset_tokens_seconds=6.0), 0),
    ],
)
def test_the_paced_teacher_holds_when_a_window_is_used_up(headers: Backpressure, holds: int) -> None:
    assert solve_through_paced_chat(headers).holds == holds


PROBED = "gpt-4.1-nano-2025-04-14"
EXEMPLARS = (
    Exemplar(question="What is 3 plus 5?", reply="Answer: 8"),
    Exemplar(question="Name the capital of France.", reply="Answer: Paris"),
)


@pytest.mark.parametrize("margin", [-1, 0])
def test_a_paced_probe_counts_its_prompt_and_every_samples_tokens_against_the_window(margin: int) -> None:
    # A probe of 4 samples may use its prompt (with the exemplars) plus 4 x 64 tokens of the window.
    needed = probe_prompt_tokens(PROBED, "What is 2 plus 2?", SOLVER_SYSTEM_PROMPT, EXEMPLARS) + 4 * 64
    headers = Backpressure(remaining_tokens=needed + margin, reset_tokens_seconds=6.0)
    clock = FakeClock()
    gate = gate_on(clock)
    teacher = HeaderTeacher(headers)
    asked = PacedChat(teacher, gate, max_attempts=3, request_timeout=30).replies(
        PROBED,
        "What is 2 plus 2?",
        system=SOLVER_SYSTEM_PROMPT,
        exemplars=EXEMPLARS,
        temperature=0.7,
        max_tokens=64,
        samples=4,
    )
    assert len(asked.replies) == 4
    assert teacher.probed == [(SOLVER_SYSTEM_PROMPT, EXEMPLARS, 0.7, 64, 4)]  # passed through as given
    assert gate.holds == (1 if margin < 0 else 0)


def test_a_paced_answer_passes_its_system_prompt_and_reads_the_backpressure() -> None:
    clock = FakeClock()
    gate = gate_on(clock)
    teacher = HeaderTeacher(Backpressure(remaining_requests=0, reset_requests_seconds=2.0))
    chat = PacedChat(teacher, gate, max_attempts=3, request_timeout=30)
    chat.answer(PROBED, "What is 2 plus 2?", max_tokens=64, system="Answer tersely.")
    assert teacher.answered_with == ["Answer tersely."]
    assert gate.holds == 1
