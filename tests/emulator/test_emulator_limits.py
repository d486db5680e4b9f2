"""Rate limits, latency and injected faults, on the emulator's virtual clock."""

from __future__ import annotations

import contextlib

import openai
import pytest
from openai import OpenAI

from synthtune_cli.clock import VirtualClock
from synthtune_cli.emulator import EmulatorKnobs, OpenAIEmulator
from tests.emulator.world import CAPITALS, SEED, START

MESSAGES = [{"role": "user", "content": "What is the capital of Peru?"}]


def chat(client: OpenAI) -> openai.types.chat.ChatCompletion:
    return client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES)


def test_requests_per_minute_429_then_recovers(
    client: OpenAI, clock: VirtualClock, emulator: OpenAIEmulator
) -> None:
    emulator.configure(requests_per_minute=3)
    remaining = []
    for _ in range(3):
        raw = client.chat.completions.with_raw_response.create(model="gpt-4.1-mini", messages=MESSAGES)
        assert raw.headers["x-ratelimit-limit-requests"] == "3"
        remaining.append(raw.headers["x-ratelimit-remaining-requests"])
        clock.advance(10)
    assert remaining == ["2", "1", "0"]

    with pytest.raises(openai.RateLimitError) as error:
        chat(client)

    response = error.value.response
    assert error.value.body == {  # the first request leaves the window at START + 60; now is START + 30
        "message": error.value.body["message"],
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    assert response.headers["retry-after"] == "30"
    assert response.headers["retry-after-ms"] == "30000"
    assert response.headers["x-ratelimit-remaining-requests"] == "0"
    assert response.headers["x-ratelimit-reset-requests"] == "30s"
    assert "Limit 3, Used 3, Requested 1" in str(error.value.body)

    clock.advance(29.5)
    with pytest.raises(openai.RateLimitError) as again:
        chat(client)
    assert again.value.response.headers["retry-after-ms"] == "500"
    assert again.value.response.headers["retry-after"] == "1"
    clock.advance(0.5)
    assert chat(client).choices


def test_tokens_per_minute_429_names_tokens(
    client: OpenAI, clock: VirtualClock, emulator: OpenAIEmulator
) -> None:
    emulator.configure(tokens_per_minute=150)
    first = client.chat.completions.with_raw_response.create(model="gpt-4.1-mini", messages=MESSAGES)
    usage = first.parse().usage
    assert usage is not None
    assert int(first.headers["x-ratelimit-remaining-tokens"]) == 150 - usage.total_tokens

    with pytest.raises(openai.RateLimitError) as error:
        client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES, max_tokens=100)
    assert error.value.body["type"] == "tokens"
    assert error.value.response.headers["x-ratelimit-limit-tokens"] == "150"
    clock.advance(60)
    assert chat(client).choices


def test_requests_other_than_chat_are_not_rate_limited(client: OpenAI, emulator: OpenAIEmulator) -> None:
    emulator.configure(requests_per_minute=1)

    chat(client)
    for _ in range(5):
        client.models.list()

    with pytest.raises(openai.RateLimitError):
        chat(client)


def test_latency_is_slept_on_the_emulator_clock(
    client: OpenAI, clock: VirtualClock, emulator: OpenAIEmulator
) -> None:
    emulator.configure(latency_seconds=2.5)

    chat(client)
    client.models.list()

    assert clock.now() == START + 5


def test_injected_errors_fail_the_next_matching_requests_then_stop(
    client: OpenAI, emulator: OpenAIEmulator
) -> None:
    emulator.inject_errors(2, status=503, path_prefix="/v1/chat/")

    assert client.models.list().data  # another path is not affected
    for _ in range(2):
        with pytest.raises(openai.InternalServerError) as error:
            chat(client)
        assert error.value.status_code == 503 and error.value.body["type"] == "server_error"
    assert chat(client).choices
    statuses = [request.status for request in emulator.requests if request.path == "/v1/chat/completions"]
    assert statuses == [503, 503, 200]


def test_injected_429_and_4xx(client: OpenAI, emulator: OpenAIEmulator) -> None:
    emulator.inject_errors(1, status=429)
    emulator.inject_errors(1, status=400)

    with pytest.raises(openai.RateLimitError):
        chat(client)
    with pytest.raises(openai.BadRequestError):
        chat(client)
    assert chat(client).choices


def test_sdk_retries_an_injected_error(emulator: OpenAIEmulator) -> None:
    emulator.inject_errors(1, status=500)
    client = emulator.openai_client(max_retries=1)

    assert chat(client).choices
    assert [request.status for request in emulator.requests] == [500, 200]


def test_error_rate_is_a_seeded_sequence(clock: VirtualClock) -> None:
    def outcomes(seed: int) -> list[int]:
        emulator = OpenAIEmulator(
            clock=clock, knobs=EmulatorKnobs(error_rate=0.3, error_status=502), seed=seed
        )
        client = emulator.openai_client(max_retries=0)
        for _ in range(30):
            with contextlib.suppress(openai.InternalServerError):
                client.models.list()
        return [request.status for request in emulator.requests]

    first = outcomes(SEED)

    assert first == outcomes(SEED)
    assert first != outcomes(SEED + 1)
    assert 4 <= first.count(502) <= 16 and set(first) == {200, 502}


def test_injection_arguments_are_checked(emulator: OpenAIEmulator) -> None:
    with pytest.raises(ValueError, match="status"):
        emulator.inject_errors(1, status=200)
    with pytest.raises(ValueError, match="count"):
        emulator.inject_errors(-1)


def test_a_shorter_rate_limit_window_enforces_a_scaled_limit_with_truthful_headers(
    client: OpenAI, clock: VirtualClock, emulator: OpenAIEmulator
) -> None:
    # 120 requests per minute enforced per second: 2 per sliding second.
    emulator.configure(requests_per_minute=120, rate_limit_window_seconds=1.0)
    remaining = []
    for _ in range(2):
        raw = client.chat.completions.with_raw_response.create(model="gpt-4.1-mini", messages=MESSAGES)
        assert raw.headers["x-ratelimit-limit-requests"] == "120"  # still the per-minute figure
        remaining.append(raw.headers["x-ratelimit-remaining-requests"])
        clock.advance(0.25)
    assert remaining == ["1", "0"]

    with pytest.raises(openai.RateLimitError) as error:
        chat(client)  # at START + 0.5: the first request leaves the 1 s window at START + 1

    headers = error.value.response.headers
    assert (headers["retry-after-ms"], headers["retry-after"]) == ("500", "1")
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-reset-requests"] == "500ms"
    assert "Limit 120, enforced as 2 per 1s, Used 2, Requested 1" in error.value.body["message"]
    clock.advance(int(headers["retry-after-ms"]) / 1000)
    raw = client.chat.completions.with_raw_response.create(model="gpt-4.1-mini", messages=MESSAGES)
    assert raw.headers["x-ratelimit-remaining-requests"] == "0"  # the second request is still in the window
    assert raw.headers["x-ratelimit-reset-requests"] == "250ms"
    clock.advance(0.25)
    assert chat(client).choices


def test_the_window_scales_the_token_limit_and_keeps_at_least_one_request(
    client: OpenAI, clock: VirtualClock, emulator: OpenAIEmulator
) -> None:
    emulator.configure(requests_per_minute=3, tokens_per_minute=6000, rate_limit_window_seconds=1.0)
    raw = client.chat.completions.with_raw_response.create(model="gpt-4.1-mini", messages=MESSAGES)
    usage = raw.parse().usage
    assert usage is not None
    # 6000 tokens per minute over 1 s is 100; 3 requests per minute over 1 s rounds up to 1.
    assert raw.headers["x-ratelimit-limit-tokens"] == "6000"
    assert int(raw.headers["x-ratelimit-remaining-tokens"]) == 100 - usage.total_tokens
    assert raw.headers["x-ratelimit-remaining-requests"] == "0"
    with pytest.raises(openai.RateLimitError) as second:
        chat(client)  # a per-minute window would have held 3 requests
    assert second.value.body["type"] == "requests"

    clock.advance(1)
    with pytest.raises(openai.RateLimitError) as too_large:
        client.chat.completions.create(model="gpt-4.1-mini", messages=MESSAGES, max_tokens=200)
    assert too_large.value.body["type"] == "tokens"
    assert "Request too large" in too_large.value.body["message"]
    assert chat(client).choices  # the rejected requests were not counted


def test_the_window_knob_is_checked(emulator: OpenAIEmulator) -> None:
    for bad in (0, -1, 61):
        with pytest.raises(ValueError, match="rate_limit_window_seconds"):
            emulator.configure(rate_limit_window_seconds=bad)
    assert emulator.configure(rate_limit_window_seconds=0.5).rate_limit_window_seconds == 0.5


def test_a_lost_fraction_is_a_seeded_sequence_of_billed_answers(clock: VirtualClock) -> None:
    def lost(seed: int) -> tuple[list[int], list[bool]]:
        emulator = OpenAIEmulator(clock=clock)
        emulator.add_knowledge(CAPITALS)
        emulator.lose_fraction(0.25, seed=seed, path_prefix="/v1/chat/completions")
        client = emulator.openai_client(max_retries=0)
        for _ in range(40):
            with contextlib.suppress(openai.InternalServerError):
                chat(client)
        client.models.list()  # a GET, and another path: never lost
        assert emulator.requests[-1].status == 200
        return [request.status for request in emulator.requests[:-1]], [b.lost for b in emulator.billed]

    statuses, billed_lost = lost(SEED)

    assert (statuses, billed_lost) == lost(SEED)
    assert statuses != lost(SEED + 1)[0]
    assert 4 <= statuses.count(502) <= 18 and set(statuses) == {200, 502}
    # Every request was carried out and billed; the lost ones are those answered 502.
    assert billed_lost == [status == 502 for status in statuses]


def test_billed_requests_carry_the_usage_the_answers_reported(emulator: OpenAIEmulator) -> None:
    client = emulator.openai_client(max_retries=0)
    answered = chat(client)
    emulator.lose_responses(1, path_prefix="/v1/chat/completions")
    with pytest.raises(openai.InternalServerError):
        chat(client)
    emulator.inject_errors(1, status=503, path_prefix="/v1/chat/completions")
    with pytest.raises(openai.InternalServerError):
        chat(client)  # refused on arrival: nothing done, nothing billed

    first, second = emulator.billed
    assert answered.usage is not None
    assert first == (
        "openai",
        answered.model,
        answered.usage.prompt_tokens,
        answered.usage.completion_tokens,
        False,
    )
    assert (second.model, second.input_tokens, second.lost) == (answered.model, first.input_tokens, True)
    emulator.lose_fraction(0.5, path_prefix="/v1/chat/completions")
    assert emulator.reset() is None and emulator.billed == []
    assert chat(client).choices  # the fraction went with the reset


def test_lose_fraction_arguments_are_checked(emulator: OpenAIEmulator) -> None:
    with pytest.raises(ValueError, match="fraction"):
        emulator.lose_fraction(1.5)
    with pytest.raises(ValueError, match="status"):
        emulator.lose_fraction(0.5, status=200)
