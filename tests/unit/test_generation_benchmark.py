"""The Generate benchmark's arithmetic and inputs (benchmarks/generation.py); nothing here is timed."""

from __future__ import annotations

import math

import pytest

from benchmarks.generation import (
    DEFAULT_SCENARIOS,
    Scenario,
    _parser,
    ceiling_per_second,
    scenarios_from,
    word_problems,
)


def test_ceiling_is_the_rate_limit_when_requests_in_flight_could_go_faster() -> None:
    # 10 shards × 4 in flight at 300 ms could send 133/s; 600 rpm allows 10/s.
    scenario = Scenario(problems=1000, latency_seconds=0.3, requests_per_minute=600)
    assert ceiling_per_second(scenario) == pytest.approx(10.0)


def test_ceiling_without_a_limit_is_in_flight_over_latency() -> None:
    scenario = Scenario(problems=1000, latency_seconds=0.3, requests_per_minute=None, max_concurrency=3)
    assert ceiling_per_second(scenario) == pytest.approx(3 * 4 / 0.3)


def test_in_flight_counts_only_the_shards_and_problems_there_are() -> None:
    # 30 problems make 2 shards (not max_concurrency's 10), and a shard of 25 has at most 25 in flight.
    scenario = Scenario(problems=30, latency_seconds=0.5, requests_per_minute=None, request_concurrency=40)
    assert scenario.shards == 2
    assert ceiling_per_second(scenario) == pytest.approx(2 * 25 / 0.5)


def test_ceiling_with_a_token_limit_uses_the_tokens_each_request_took() -> None:
    scenario = Scenario(problems=1000, latency_seconds=0.3, requests_per_minute=600, tokens_per_minute=60_000)
    assert ceiling_per_second(scenario, tokens_per_request=500) == pytest.approx(2.0)
    assert ceiling_per_second(scenario, tokens_per_request=None) == pytest.approx(10.0)


def test_no_latency_and_no_limit_has_no_ceiling() -> None:
    scenario = Scenario(problems=10, latency_seconds=0.0, requests_per_minute=None)
    assert ceiling_per_second(scenario) == math.inf


def test_problems_are_distinct_reproducible_and_answered() -> None:
    problems = word_problems(1000)
    assert len({p.question for p in problems}) == len({p.id for p in problems}) == 1000
    assert problems == word_problems(1000)
    assert all(p.answer is not None and p.answer.isdigit() for p in problems)


def test_no_options_run_the_defaults_and_any_option_runs_one_scenario() -> None:
    assert scenarios_from(_parser().parse_args([])) == list(DEFAULT_SCENARIOS)
    (scenario,) = scenarios_from(_parser().parse_args(["--rpm", "0", "--shards", "8"]))
    assert scenario.requests_per_minute is None
    assert scenario.shard_size == 125  # 1,000 problems in 8 shards
    assert scenario.latency_seconds == DEFAULT_SCENARIOS[0].latency_seconds
