"""The benchmark's judge calls are their own cost line, also when the judge is a contestant's own model."""

from __future__ import annotations

from synthtune.contracts.usage import Usage
from synthtune.contracts.workflow import ContestantScore
from synthtune.stages.report import summarise_run

TEACHER = "gpt-4.1-2025-04-14"


def score_item(judge_usage: dict[str, Usage]) -> dict[str, object]:
    # The teacher answered 10 problems and, as the judge, graded 4 of them: one model, two purposes.
    judged = judge_usage.get(TEACHER, Usage())
    usage = {TEACHER: Usage(requests=10, input_tokens=1_000, output_tokens=500) + judged}
    score = ContestantScore(
        contestant="teacher",
        model=TEACHER,
        total=10,
        correct=8,
        accuracy=0.8,
        answered=10,
        usage=usage,
        judge_usage=judge_usage,
    )
    return {"pk": "RUN#r", "sk": "SCORE#teacher", **score.model_dump(mode="json")}


def run_items(judge_usage: dict[str, Usage]) -> list[dict[str, object]]:
    run = {"pk": "RUN#r", "sk": "RUN", "status": "SUCCEEDED", "config": {"judge_model": TEACHER}}
    return [run, score_item(judge_usage)]


def test_the_judge_is_its_own_line_even_as_a_contestants_model() -> None:
    judged = Usage(requests=4, input_tokens=400, output_tokens=40)

    lines = summarise_run("r", run_items({TEACHER: judged})).costs.lines

    by_item = {line.item: line.usage for line in lines if line.model == TEACHER}
    assert by_item == {
        "benchmark: teacher": Usage(requests=10, input_tokens=1_000, output_tokens=500),
        "benchmark: judge": judged,
    }


def test_an_older_run_without_the_judges_part_says_the_line_holds_both() -> None:
    lines = summarise_run("r", run_items({})).costs.lines

    (line,) = [line for line in lines if line.model == TEACHER]
    assert line.item == "benchmark: teacher (and the judge's calls: the same model)"
