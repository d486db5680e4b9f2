"""Generation under faults, through the real state machine: 429 storms, 5xx that kill shards halfway,
the budget, and batch mode's expiry and resubmission — on OpenAI and on Amazon Bedrock.

The invariant each test checks: every generated problem is in the shards' answers exactly once, and
the emulator served exactly one successful teacher request per problem — nothing was paid for twice.
Judge calls are off (judge_model null) and only the base student is benchmarked, so every successful
model request the emulator served (a chat completion, a Converse call) is either a teacher answer or one
benchmark answer.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from synthtune.contracts.config import RunConfig
from synthtune.contracts.problems import parse_problem_set
from synthtune.money.estimate import estimate_run_cost, worst_case_solve_usd
from synthtune.records.layout import RunLayout
from synthtune.split import split_problems
from synthtune_cli.emulator import OpenAIEmulator
from synthtune_cli.offline import OfflineStack
from tests.support import FAST_CONFIG, OPENAI_MODELS, Execution, execute, jsonl, sample_rows

SMALL_SET = sample_rows(per_category=8)  # 24 problems: 19 generated (3 shards of 8), 5 held out
GENERATED, HELD_OUT = 19, 5
COUNTED = {
    **FAST_CONFIG,
    "judge_model": None,
    "benchmark_contestants": ["base"],
    "dataset": {"probe": {"enabled": False}, "knowledge_policy": "keep_all"},
}
"""Runs whose model requests are counted one per problem: the student's probe (whose own resume is
tested in tests/unit/test_generation_resume.py and test_benchmark_faults.py) is off."""
PROVIDERS = {"openai": {**OPENAI_MODELS, "judge_model": None}, "bedrock": {}}
"""Each provider's models for the runs that compare them (the defaults are Bedrock's)."""


def answered_problem_ids(stack: OfflineStack, execution: Execution) -> list[str]:
    ids: list[str] = []
    for sk in execution.records:
        if sk.startswith("SHARD#"):
            body = stack.download(RunLayout(execution.run_id).shard_output(int(sk.split("#")[1]))) or b""
            ids += [json.loads(line)["problem_id"] for line in body.splitlines()]
    return ids


def chat_completions(emulator: OpenAIEmulator, status: int, provider: str = "openai") -> int:
    """Model requests the emulator answered with `status`: OpenAI's chat completions or Bedrock's Converse."""
    return sum(
        1
        for request in emulator.requests
        if request.method == "POST"
        and request.status == status
        and (
            request.path == "/v1/chat/completions"
            if provider == "openai"
            else request.path.startswith("/model/") and request.path.endswith("/converse")
        )
    )


def shards(execution: Execution) -> list[dict[str, Any]]:
    return [item for sk, item in execution.records.items() if sk.startswith("SHARD#")]


def assert_every_problem_answered_once(stack: OfflineStack, execution: Execution) -> None:
    ids = answered_problem_ids(stack, execution)
    assert len(ids) == GENERATED
    assert len(set(ids)) == GENERATED


@pytest.mark.parametrize(("provider", "most_refusals"), [("openai", 6), ("bedrock", 60)])
def test_a_429_storm_is_paced_and_nothing_is_paid_twice(
    stack: OfflineStack, emulator: OpenAIEmulator, provider: str, most_refusals: int
) -> None:
    # 6 requests a minute against 3 shards x 4 requests in flight: 19 answers need 3+ minutes.
    emulator.configure(requests_per_minute=6)
    started = emulator.clock.now()

    execution = execute(stack, SMALL_SET, config={**COUNTED, **PROVIDERS[provider]})

    assert execution.status == "SUCCEEDED", execution.description.get("cause")
    assert_every_problem_answered_once(stack, execution)
    # Paced, not hammered: OpenAI's refusals say how long to wait (and successes when the window is used
    # up); Bedrock's ThrottlingException says nothing, so each refusal in a row holds twice as long.
    refused = chat_completions(emulator, 429, provider)
    assert 0 < refused <= most_refusals
    assert emulator.clock.now() - started >= 180
    assert chat_completions(emulator, 200, provider) == GENERATED + HELD_OUT
    teacher = RunConfig.model_validate(PROVIDERS[provider]).teacher_model
    assert sum(shard["usage"][teacher]["requests"] for shard in shards(execution)) == GENERATED


@pytest.mark.parametrize("provider", ["openai", "bedrock"])
def test_shards_killed_halfway_by_5xx_resume_from_their_checkpoints(
    stack: OfflineStack, emulator: OpenAIEmulator, provider: str
) -> None:
    # One try per request: a 500 fails the whole shard, and Step Functions' retry must resume it.
    emulator.configure(error_rate=0.15, error_status=500)

    execution = execute(
        stack, SMALL_SET, config={**COUNTED, **PROVIDERS[provider], "generation": {"max_attempts": 1}}
    )

    assert execution.status == "SUCCEEDED", execution.description.get("cause")
    assert chat_completions(emulator, 500, provider) > 0
    assert_every_problem_answered_once(stack, execution)
    # Shards died with answers checkpointed, and their retries started from those answers.
    assert any(shard["checkpointed_at_start"] > 0 for shard in shards(execution))
    assert chat_completions(emulator, 200, provider) == GENERATED + HELD_OUT


def test_an_estimate_over_budget_stops_the_run_before_any_call(
    stack: OfflineStack, emulator: OpenAIEmulator
) -> None:
    execution = execute(stack, SMALL_SET, config={**COUNTED, "budget_usd": 0.001})

    assert execution.status == "FAILED"
    assert execution.description["error"] == "BudgetExceeded"
    assert "expected to cost" in execution.description["cause"]
    assert "Nothing has been spent" in execution.description["cause"]
    assert execution.records["RUN"]["error"] == "BudgetExceeded"
    assert not emulator.requests  # no model was asked anything


def test_the_budget_stops_generation_before_it_is_passed(
    stack: OfflineStack, emulator: OpenAIEmulator
) -> None:
    # Long allowed answers: each request's worst case is a large share of the budget, while the
    # expected cost (short answers) passes Prepare's check.
    config = RunConfig.model_validate({**COUNTED, "max_output_tokens": 16_000})
    problems = parse_problem_set(jsonl(SMALL_SET).splitlines(), "test", "jsonl")
    split = split_problems(problems, config.holdout_fraction, config.validation_fraction, config.split_seed)
    estimate = estimate_run_cost(config, [*split.train, *split.validation], split.holdout)
    assert estimate is not None
    budget = round(estimate.total_usd * 1.5, 4)
    worst = worst_case_solve_usd(config.teacher_model, split.train[0].question, 16_000, 1)
    assert worst * GENERATED > budget  # the reservations must run out before the problems do

    execution = execute(
        stack, SMALL_SET, config={**COUNTED, "max_output_tokens": 16_000, "budget_usd": budget}
    )

    assert execution.status == "FAILED"
    assert execution.description["error"] == "BudgetExceeded"
    assert "budget_usd" in execution.description["cause"]
    run = execution.records["RUN"]
    assert run["error"] == "BudgetExceeded"
    assert run["spent_usd"] <= budget
    assert sum(shard.get("cost_usd", 0.0) for shard in shards(execution)) <= budget
    assert execution.entered("StartFineTune") == 0


def test_batch_mode_answers_through_the_batch_api_at_half_price(
    stack: OfflineStack, emulator: OpenAIEmulator
) -> None:
    execution = execute(
        stack,
        SMALL_SET,
        config={**COUNTED, **OPENAI_MODELS, "judge_model": None, "generation": {"mode": "batch"}},
    )

    assert execution.status == "SUCCEEDED", execution.description.get("cause")
    assert_every_problem_answered_once(stack, execution)
    (batch,) = emulator.batches.values()
    assert batch["request_counts"]["total"] == GENERATED
    assert chat_completions(emulator, 200) == HELD_OUT  # the teacher answered only through the batch
    calls = [call for shard in shards(execution) for call in shard["calls"]]
    assert {(call["purpose"], call["batch"]) for call in calls} == {("solve", True)}
    assert execution.entered("CheckBatch") >= 1


def test_an_expired_batch_keeps_its_answers_and_resubmits_only_the_rest(
    stack: OfflineStack, emulator: OpenAIEmulator
) -> None:
    # 2 s per request, expiring 30 s after creation (10 s validating): about 10 of 19 are answered.
    emulator.configure(batch_seconds_per_request=2.0, batch_min_seconds=0.0, batch_expire_after_seconds=30.0)

    execution = execute(
        stack,
        SMALL_SET,
        config={
            **COUNTED,
            **PROVIDERS["openai"],
            "generation": {"mode": "batch", "batch_poll_interval_seconds": 10},
        },
    )

    assert execution.status == "SUCCEEDED", execution.description.get("cause")
    first, second = sorted(emulator.batches.values(), key=lambda batch: batch["created_at"])
    assert first["status"] == "expired"
    done_first = first["request_counts"]["completed"]
    assert 0 < done_first < GENERATED
    assert second["request_counts"]["total"] == GENERATED - done_first
    assert second["status"] == "completed"
    assert_every_problem_answered_once(stack, execution)
    assert execution.entered("SubmitBatch") == 2


def test_a_batch_that_completes_without_a_success_fails_the_run(
    stack: OfflineStack, emulator: OpenAIEmulator
) -> None:
    emulator.configure(batch_line_error_rate=1.0)

    execution = execute(
        stack,
        SMALL_SET,
        config={**COUNTED, **OPENAI_MODELS, "judge_model": None, "generation": {"mode": "batch"}},
    )

    assert execution.status == "FAILED"
    assert execution.description["error"] == "BatchFailed"
    assert f"none of its {GENERATED} requests succeeded" in execution.description["cause"]
    assert execution.records["RUN"]["failed_state"] == "CheckBatch"
    assert execution.entered("Generate") == 0


def test_more_shards_than_the_map_result_can_hold_are_refused_up_front(
    stack: OfflineStack, emulator: OpenAIEmulator
) -> None:
    rows = [{"question": f"What is {n} plus {n}?", "answer": str(2 * n)} for n in range(12_600)]

    execution = execute(stack, rows, config={**COUNTED, "shard_size": 1})

    assert execution.status == "FAILED"
    assert execution.description["error"] == "InvalidConfig"
    assert "10,080 shards; at most 10,000" in execution.description["cause"]
    assert "set shard_size to at least 2" in execution.description["cause"]
    assert not emulator.requests


def test_batch_mode_with_a_bedrock_teacher_is_refused_before_anything_is_spent(
    stack: OfflineStack, emulator: OpenAIEmulator
) -> None:
    execution = execute(stack, SMALL_SET, config={**COUNTED, "generation": {"mode": "batch"}})

    assert execution.status == "FAILED"
    assert execution.description["error"] == "InvalidConfig"
    assert "uses batches only on openai" in execution.description["cause"]
    assert not emulator.requests
