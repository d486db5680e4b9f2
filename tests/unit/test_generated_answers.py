import datetime as dt

import pytest

from synthtune.contracts.config import GenerationConfig, RunConfig
from synthtune.contracts.errors import InvalidConfig
from synthtune.contracts.problems import Problem
from synthtune.contracts.usage import CallCost, Usage
from synthtune.money.usage import inference_cost_usd
from synthtune.prompts import Solution
from synthtune.providers.ports import Sample, SolveResult
from synthtune.quality.grading import Grade
from synthtune.stages.generate import (
    Checkpoint,
    call_cost,
    graded_answer,
    majority_vote,
    summarise_calls,
)
from synthtune.stages.plan import check_run_config
from synthtune_cli.providers import local_providers

TEACHER = "gpt-4.1-2025-04-14"
JUDGE = "gpt-4.1-mini-2025-04-14"
USAGE = Usage(requests=1, input_tokens=200, output_tokens=300)
PROBLEM = Problem(id="p1", question="What is 2 plus 2?", answer="4", split="validation", category="math")


def said(final_answer: str) -> Sample:
    return Sample(solution=Solution(steps=["2 + 2 = 4"], final_answer=final_answer), finish_reason="stop")


TRUNCATED = Sample(solution=None, finish_reason="length")
REFUSED = Sample(solution=None, finish_reason="stop", refusal="I can't help with that.")


@pytest.mark.parametrize(
    ("samples", "kept", "agreement"),
    [
        ([said("4"), said("4.0"), said("5")], "4", 2 / 3),
        ([said("5"), said("4")], "5", 1 / 2),  # a tie goes to the earliest answer
        ([said("5"), said("4"), said("4")], "4", 2 / 3),
        ([TRUNCATED, said("7"), said("7")], "7", 2 / 3),  # unusable samples still count in the share
        ([said("  "), said("Paris"), said("paris."), said("Lyon")], "Paris", 2 / 4),
        ([said("1/2"), said("0.5"), said("0.50")], "1/2", 1.0),
    ],
)
def test_majority_vote_keeps_the_earliest_answer_of_the_largest_group(
    samples: list[Sample], kept: str, agreement: float
) -> None:
    chosen, share = majority_vote(samples)
    assert chosen is not None and chosen.solution is not None
    assert chosen.solution.final_answer == kept
    assert chosen is next(s for s in samples if s.solution and s.solution.final_answer == kept)
    assert share == pytest.approx(agreement)


def test_majority_vote_without_a_usable_sample() -> None:
    assert majority_vote([TRUNCATED, REFUSED, said("")]) == (None, None)
    assert majority_vote([]) == (None, None)


def checkpoint(
    *samples: Sample, source: str = "online", grade: Grade | None = None, judge: list[CallCost] | None = None
) -> Checkpoint:
    return Checkpoint.model_validate(
        {
            "problem_id": PROBLEM.id,
            "source": source,
            "result": SolveResult(model=TEACHER, samples=list(samples), usage=USAGE),
            "grade": grade,
            "judge_calls": judge or [],
        }
    )


def test_a_graded_answer_records_its_samples_grade_and_cost() -> None:
    judge_usage = Usage(requests=1, input_tokens=90, output_tokens=20)
    judge_calls = [call_cost("judge", JUDGE, judge_usage)]
    grade = Grade(correct=True, method="judge", explanation="same value")
    answer = graded_answer(
        PROBLEM, checkpoint(said("four"), said("5"), said("4"), grade=grade, judge=judge_calls)
    )
    assert answer.status == "verified"
    assert answer.final_answer == "four"
    assert answer.grade_method == "judge"
    assert answer.split == "validation"
    # "four" and "4" are one answer: two of the three samples agree.
    assert (answer.samples, answer.sample_answers) == (3, ["four", "5", "4"])
    assert answer.agreement == pytest.approx(2 / 3)
    assert answer.usage == {TEACHER: USAGE, JUDGE: judge_usage}
    assert answer.cost_usd == pytest.approx(
        (inference_cost_usd(TEACHER, USAGE) or 0) + (inference_cost_usd(JUDGE, judge_usage) or 0)
    )
    rejected = graded_answer(PROBLEM, checkpoint(said("5"), grade=Grade(correct=False, method="mismatch")))
    assert (rejected.status, rejected.final_answer) == ("rejected", "5")
    unverified = graded_answer(PROBLEM, checkpoint(said("4")))
    assert (unverified.status, unverified.grade_method) == ("unverified", None)


@pytest.mark.parametrize(
    ("samples", "failure", "finish_reason"),
    [
        ([TRUNCATED, TRUNCATED], "truncated", "length"),
        ([REFUSED], "refused", "stop"),
        ([Sample(solution=None, finish_reason="invalid_json")], "no_answer", "invalid_json"),
        ([], "no_answer", "none"),
    ],
)
def test_an_answer_without_a_usable_sample_fails_and_says_why(
    samples: list[Sample], failure: str, finish_reason: str
) -> None:
    answer = graded_answer(PROBLEM, checkpoint(*samples, grade=Grade(correct=False, method="no_answer")))
    assert (answer.status, answer.failure, answer.finish_reason) == ("failed", failure, finish_reason)
    assert answer.final_answer is None
    assert answer.agreement is None
    assert answer.cost_usd == pytest.approx(inference_cost_usd(TEACHER, USAGE) or 0)  # still paid for


def test_batch_answers_are_priced_at_the_batch_discount() -> None:
    online = graded_answer(PROBLEM, checkpoint(said("4")))
    batch = graded_answer(PROBLEM, checkpoint(said("4"), source="batch"))
    assert batch.source == "batch"
    assert batch.calls[0].batch
    assert batch.cost_usd == pytest.approx(online.cost_usd / 2)


def test_calls_are_summed_by_purpose_model_and_batch() -> None:
    one = Usage(requests=1, input_tokens=100, output_tokens=10)
    calls = [
        call_cost("solve", TEACHER, one),
        call_cost("judge", JUDGE, one),
        call_cost("solve", TEACHER, one, batch=True),
        call_cost("solve", TEACHER, one),
        call_cost("solve", "house-model", one),
        call_cost("solve", "house-model", one),
    ]
    summary = summarise_calls([calls[:3], calls[3:]])
    assert [(c.purpose, c.model, c.batch) for c in summary] == [
        ("judge", JUDGE, False),
        ("solve", TEACHER, False),
        ("solve", TEACHER, True),
        ("solve", "house-model", False),
    ]
    by_key = {(c.purpose, c.model, c.batch): c for c in summary}
    online = by_key[("solve", TEACHER, False)]
    assert online.usage == one + one
    assert online.usd == pytest.approx(2 * (inference_cost_usd(TEACHER, one) or 0))
    assert by_key[("solve", TEACHER, True)].usd == pytest.approx((inference_cost_usd(TEACHER, one) or 0) / 2)
    unpriced = by_key[("solve", "house-model", False)]
    assert (unpriced.usage.requests, unpriced.usd) == (2, None)  # unknown, not zero


def test_samples_need_a_temperature_that_lets_them_differ() -> None:
    providers = local_providers()
    today = dt.date(2026, 12, 1)
    with pytest.raises(InvalidConfig, match="samples is 3 but teacher_temperature is 0"):
        check_run_config(RunConfig(generation=GenerationConfig(samples=3)), providers, today)
    check_run_config(
        RunConfig(generation=GenerationConfig(samples=3), teacher_temperature=0.7), providers, today
    )
    check_run_config(RunConfig(generation=GenerationConfig(samples=1)), providers, today)
    # Reasoning models take no temperature and sample differently anyway.
    reasoning = RunConfig(teacher_model="gpt-5-mini", generation=GenerationConfig(samples=3))
    check_run_config(reasoning, providers, today)
