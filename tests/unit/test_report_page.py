"""report.html, report.md and benchmark.json, drawn from one ReportContents: the page read back with
html.parser (its charts inline, nothing fetched, model text escaped, the simulated banner exactly when a
model was simulated) and the three agreeing on the numbers."""

from __future__ import annotations

import json

import pytest

from synthtune.contracts.config import RunConfig
from synthtune.stages.prepare import simulated_models
from synthtune.stages.report import (
    SIMULATED_HEADLINE,
    ReportContents,
    benchmark_document,
    interval_text,
    read_training_curve,
    render_report,
    report_contents,
    summarise_run,
)
from synthtune.stages.report_page import render_report_html
from synthtune.verdict.statistics import mcnemar_p_value, wilson_interval
from tests.support_report import CARD, CURVE, HOSTILE, JUDGE, RUN, Page, answers, records

FORBIDDEN_ELEMENTS = {
    "script",
    "link",
    "img",
    "iframe",
    "object",
    "embed",
    "base",
    "audio",
    "video",
    "source",
}

# 24 problems: the fine-tuned student fixes 9 of the base model's wrong answers and breaks 1 right one.
BASE = ["correct"] * 9 + ["wrong"] * 12 + ["no_answer", "abstained", "wrong"]
TUNED = ["correct"] * 8 + ["wrong"] + ["correct"] * 8 + ["wrong"] * 4 + ["no_answer", "wrong", "correct"]
TEACHER = ["correct"] * 20 + ["wrong"] * 4


def contents(simulated: list[str] | None = None) -> ReportContents:
    given = answers(BASE, TUNED, TEACHER, categories=3)
    summary = summarise_run(RUN, records(given, simulated=simulated))
    return report_contents(summary, given, read_training_curve(CURVE), CARD)


def test_every_chart_is_inline_svg_and_nothing_is_fetched() -> None:
    html = render_report_html(contents())
    page = Page.parse(html)

    assert page.charts == {
        "chart-accuracy": 1,
        "chart-categories": 1,
        "chart-trade-off": 1,
        "chart-loss": 1,
    }
    assert page.external_references() == []
    assert not {tag for tag, _ in page.tags} & FORBIDDEN_ELEMENTS
    assert "@import" not in "".join(page.styles)
    # Several charts share the page: no id twice.
    ids = page.ids()
    assert len(ids) == len(set(ids))
    # The verdict comes first, the sections in the order a reader needs them.
    sections = [str(attributes["id"]) for tag, attributes in page.tags if tag == "section"]
    assert sections == [
        "verdict",
        "accuracy",
        "categories",
        "knowledge",
        "training",
        "cost",
        "changes",
        "dataset",
    ]


def test_model_written_text_is_escaped() -> None:
    html = render_report_html(contents())
    page = Page.parse(html)

    assert not {tag for tag, _ in page.tags} & FORBIDDEN_ELEMENTS
    assert HOSTILE not in html
    # It is all there, as text.
    assert any(HOSTILE in text for text in page.text)


@pytest.mark.parametrize("simulated", [None, [], ["gpt-4.1-2025-04-14", "gpt-4.1-mini-2025-04-14"]])
def test_the_simulated_banner_is_there_exactly_when_a_model_was_simulated(
    simulated: list[str] | None,
) -> None:
    report = contents(simulated=simulated)
    html, markdown = render_report_html(report), render_report(report)
    page = Page.parse(html)
    banners = [attributes for _, attributes in page.tags if attributes.get("id") == "simulated"]

    if simulated:
        assert len(banners) == 1
        # At the top: before the verdict, right after the page's header.
        assert page.ids().index("simulated") < page.ids().index("verdict")
        assert all(model in html for model in simulated)
        assert markdown.split("\n## ", 1)[0].count(SIMULATED_HEADLINE) == 1
    else:
        assert banners == []
        assert SIMULATED_HEADLINE not in html
        assert SIMULATED_HEADLINE not in markdown


def test_simulated_models_are_the_runs_models_on_emulated_providers() -> None:
    config = RunConfig(
        teacher_model="gpt-4.1-2025-04-14",
        student_model="bedrock/amazon.nova-micro-v1:0",
        judge_model="gpt-4.1-mini-2025-04-14",
    )
    assert simulated_models(config, frozenset({"openai", "bedrock"})) == [
        "bedrock/amazon.nova-micro-v1:0",
        "gpt-4.1-2025-04-14",
        "gpt-4.1-mini-2025-04-14",
    ]
    assert simulated_models(config, frozenset({"bedrock"})) == ["bedrock/amazon.nova-micro-v1:0"]
    assert simulated_models(config, frozenset()) == []


def test_report_md_and_html_say_the_same_numbers() -> None:
    report = contents()
    html, markdown = render_report_html(report), render_report(report)
    text = " ".join(Page.parse(html).text)

    assert [comparison.a for comparison in report.comparisons] == ["fine_tuned", "fine_tuned"]
    for comparison in report.comparisons:
        assert comparison.verdict in markdown
        assert comparison.verdict in text
        assert comparison.warning is None or comparison.warning in markdown
        assert comparison.warning is None or comparison.warning in text
    for result in report.results:
        assert interval_text(result.ci95) in markdown
        assert interval_text(result.ci95) in text
        for cell in result.by_category.values():
            assert interval_text(cell.ci95) in markdown
            assert interval_text(cell.ci95) in text


def test_the_verdict_matches_the_counts() -> None:
    report = contents()
    versus_base = report.comparisons[0]
    assert (versus_base.a, versus_base.b, versus_base.n) == ("fine_tuned", "base", 24)
    assert (versus_base.a_only, versus_base.b_only) == (9, 1)
    assert versus_base.p_value == mcnemar_p_value(9, 1)
    assert versus_base.p_value < 0.05
    assert versus_base.verdict.startswith(
        "The fine-tuned student is better than the base model (+33.3 points"
    )
    versus_teacher = report.comparisons[1]
    assert versus_teacher.b == "teacher"
    assert "not distinguishable from the teacher" in versus_teacher.verdict
    # Fixed and broke: the base model's wrong answers the fine-tuned student got right, and back.
    assert (report.fixed, report.broke) == (9, 1)
    html = render_report_html(report)
    assert html.count('class="change fixed"') == 9
    assert html.count('class="change broke"') == 1


def test_benchmark_json_carries_intervals_and_comparisons() -> None:
    report = contents()
    document = json.loads(
        json.dumps(
            benchmark_document(
                report,
                held_out=24,
                base_model="gpt-4.1-mini-2025-04-14",
                answers_keys={"base": "b", "fine_tuned": "f", "teacher": "t"},
            )
        )
    )
    for score in document["scores"]:
        assert score["ci95"] == list(wilson_interval(score["correct"], score["total"]))
        for cell in score["by_category"].values():
            assert cell["ci95"] == list(wilson_interval(cell["correct"], cell["total"]))
            assert 0 <= cell["ci95"][0] <= cell["accuracy"] <= cell["ci95"][1] <= 1
    pairs = [(comparison["a"], comparison["b"]) for comparison in document["comparisons"]]
    assert pairs == [("fine_tuned", "base"), ("fine_tuned", "teacher")]
    for comparison in document["comparisons"]:
        assert {
            "a",
            "b",
            "n",
            "a_only",
            "b_only",
            "difference",
            "ci95",
            "p_value",
            "min_detectable_difference",
            "verdict",
        } <= set(comparison)
        assert comparison["ci95"][0] <= comparison["difference"] <= comparison["ci95"][1]


def test_judge_calls_are_their_own_cost_line() -> None:
    report = contents()
    items = {(line.item, line.model) for line in report.summary.costs.lines}
    assert ("benchmark: judge", JUDGE) in items
    assert not [item for item, model in items if model == JUDGE and item != "benchmark: judge"]
    (judge,) = [line for line in report.summary.costs.lines if line.item == "benchmark: judge"]
    assert judge.usage is not None
    assert judge.usage.requests == 3 * 24  # every contestant's every answer was graded once here
    assert "benchmark: judge" in render_report_html(report)
    assert "| benchmark: judge |" in render_report(report)


def test_the_loss_curve_and_the_drops_are_on_the_page() -> None:
    html = render_report_html(contents())
    text = " ".join(Page.parse(html).text)
    assert "best validation loss: 0.550" in text
    assert "wrong_answer" in text
    assert "the final answer does not match the reference answer" in text


def test_the_same_run_draws_the_same_page() -> None:
    assert render_report_html(contents()) == render_report_html(contents())


def test_a_failed_run_renders_with_what_it_has() -> None:
    summary = summarise_run(
        RUN,
        records(
            {},
            status="FAILED",
            failure={"state": "Benchmark", "error": "RateLimited", "cause": "429 <b>storm</b>"},
        ),
    )
    report = report_contents(summary)
    html, markdown = render_report_html(report), render_report(report)
    page = Page.parse(html)

    assert "## Failed in Benchmark: `RateLimited`" in markdown
    assert [attributes.get("id") for tag, attributes in page.tags if tag == "section"][:2] == [
        "failure",
        "verdict",
    ]
    assert "429 <b>storm</b>" in " ".join(page.text)
    assert "<b>storm" not in html
    assert page.external_references() == []
    assert "No verdict" in html
