"""The report's view of the held-out probe: benchmark.json's numbers by knowledge category on a crafted set
of answers, report.md and report.html with and without holdout_knowledge.jsonl, and the probe's cost lines
(nothing crashing on a purpose the report does not know)."""

from __future__ import annotations

from typing import Any, Literal

import pytest

from synthtune.contracts.config import Contestant
from synthtune.contracts.usage import CallCost, Usage
from synthtune.money.ledger import SpendRecord
from synthtune.quality.knowledge import KNOWLEDGE_CATEGORIES, KnowledgeCategory
from synthtune.records.items import shard_sk
from synthtune.stages.benchmark import BenchmarkAnswer, HoldoutKnowledge
from synthtune.stages.report import (
    KNOWLEDGE_TITLE,
    ReportContents,
    benchmark_document,
    render_report,
    report_contents,
    summarise_run,
)
from synthtune.stages.report_page import render_report_html
from tests.support_report import JUDGE, RUN, STUDENT, Page, answer, records

Outcome = Literal["correct", "wrong", "abstained", "no_answer"]

# Twelve held-out problems: three of each knowledge category, by what the base student knew.
KNOWLEDGE: list[KnowledgeCategory] = [category for category in KNOWLEDGE_CATEGORIES for _ in range(3)]
OUTCOMES: dict[Contestant, list[Outcome]] = {
    # highly_known     maybe_known                      weakly_known                     unknown
    "base": ["correct"] * 3 + ["correct", "wrong", "abstained"] + ["wrong", "wrong", "no_answer"]
    + ["abstained"] * 3,
    # Fine-tuning helped on what the student half knew, and taught it to guess on what it did not know.
    "fine_tuned": ["correct"] * 3 + ["correct"] * 3 + ["correct", "wrong", "wrong"] + ["wrong"] * 3,
    "teacher": ["correct"] * 12,
}  # fmt: skip


def crafted_answers() -> dict[Contestant, list[BenchmarkAnswer]]:
    return {
        contestant: [answer(contestant, index, outcome, "trivia") for index, outcome in enumerate(outcomes)]
        for contestant, outcomes in OUTCOMES.items()
    }


def knowledge_lines() -> list[HoldoutKnowledge]:
    return [
        HoldoutKnowledge(
            problem_id=f"trivia-{index:03d}",
            category="trivia",
            knowledge=category,
            greedy_correct={"highly_known": 2, "maybe_known": 1}.get(category, 0),
            greedy=2,
            sampled_correct=1 if category == "weakly_known" else 0,
            sampled=4,
            agreement=0.5,
            answers=["42", "wrong"],
        )
        for index, category in enumerate(KNOWLEDGE)
    ]


def contents(
    knowledge: list[HoldoutKnowledge] | None, items: list[dict[str, Any]] | None = None
) -> ReportContents:
    given = crafted_answers()
    summary = summarise_run(RUN, items if items is not None else records(given))
    return report_contents(summary, given, None, None, knowledge)


def document(report: ReportContents) -> dict[str, Any]:
    return benchmark_document(
        report,
        held_out=12,
        base_model=STUDENT,
        answers_keys={contestant: f"runs/{RUN}/benchmark/{contestant}.jsonl" for contestant in OUTCOMES},
    )


def test_benchmark_json_counts_each_contestant_by_held_out_knowledge() -> None:
    knowledge = document(contents(knowledge_lines()))["knowledge"]

    assert set(knowledge) == {"base", "fine_tuned", "teacher"}
    assert all(list(cells) == list(KNOWLEDGE_CATEGORIES) for cells in knowledge.values())
    base, tuned = knowledge["base"], knowledge["fine_tuned"]
    assert base["highly_known"] == {
        "n": 3,
        "correct": 3,
        "wrong": 0,
        "abstained": 0,
        "no_answer": 0,
        "accuracy": 1.0,
        "hallucination_rate": 0.0,
        "abstention_rate": 0.0,
    }
    assert base["maybe_known"]["accuracy"] == pytest.approx(1 / 3)
    assert base["maybe_known"]["hallucination_rate"] == pytest.approx(1 / 2)
    assert base["maybe_known"]["abstention_rate"] == pytest.approx(1 / 3)
    assert base["weakly_known"]["hallucination_rate"] == 1.0  # two wrong, none right; no_answer not attempted
    assert base["weakly_known"]["abstention_rate"] == 0.0
    # Nothing attempted: no hallucination rate, rather than a rate of 0.
    assert base["unknown"]["hallucination_rate"] is None
    assert base["unknown"]["abstention_rate"] == 1.0
    assert base["unknown"]["accuracy"] == 0.0
    # Fine-tuning helped on maybe_known and taught guessing on unknown.
    assert tuned["maybe_known"]["accuracy"] == 1.0
    assert tuned["weakly_known"]["hallucination_rate"] == pytest.approx(2 / 3)
    assert (tuned["unknown"]["hallucination_rate"], tuned["unknown"]["abstention_rate"]) == (1.0, 0.0)
    assert knowledge["teacher"]["unknown"]["accuracy"] == 1.0


def test_every_contestant_has_its_abstention_and_hallucination_rates_in_benchmark_json() -> None:
    scores = {score["contestant"]: score for score in document(contents(None))["scores"]}

    assert scores["base"]["abstention_rate"] == pytest.approx(4 / 12)
    assert scores["base"]["hallucination_rate"] == pytest.approx(3 / 7)
    assert scores["fine_tuned"]["hallucination_rate"] == pytest.approx(5 / 12)
    assert scores["teacher"]["hallucination_rate"] == 0.0
    assert all("abstention_rate" in score and "hallucination_rate" in score for score in scores.values())


def test_without_holdout_knowledge_there_is_no_knowledge_object() -> None:
    assert "knowledge" not in document(contents(None))
    assert "knowledge" not in document(contents([]))


def test_a_category_the_probe_did_not_find_has_no_rates() -> None:
    lines = [line for line in knowledge_lines() if line.knowledge != "weakly_known"]
    cell = document(contents(lines))["knowledge"]["base"]["weakly_known"]
    assert cell == {
        "n": 0,
        "correct": 0,
        "wrong": 0,
        "abstained": 0,
        "no_answer": 0,
        "accuracy": None,
        "hallucination_rate": None,
        "abstention_rate": None,
    }


def test_the_reports_show_the_knowledge_table_and_the_trade_off() -> None:
    report = contents(knowledge_lines())
    markdown, html = render_report(report), render_report_html(report)
    page = Page.parse(html)

    assert f"## {KNOWLEDGE_TITLE}" in markdown
    section = markdown.split(f"## {KNOWLEDGE_TITLE}", 1)[1].split("\n## ", 1)[0]
    assert "| unknown | Fine-tuned student | 3 | 0.0% | 100.0% | 0.0% |" in section
    assert "| unknown | Base student | 3 | 0.0% | – | 100.0% |" in section
    assert "| maybe_known | Base student | 3 | 33.3% | 50.0% | 33.3% |" in section
    assert "Held-out problems by what the base student knew: highly_known 3, maybe_known 3" in section

    assert page.charts["chart-trade-off"] == 1
    sections = [str(attributes["id"]) for tag, attributes in page.tags if tag == "section"]
    assert sections.index("knowledge") == sections.index("categories") + 1
    text = " ".join(page.text)
    assert KNOWLEDGE_TITLE in text
    for cell in ("Fine-tuned student", "100.0%", "33.3%"):
        assert cell in text
    # The trade-off chart labels each contestant.
    svg = html.split('id="chart-trade-off"', 1)[1].split("</figure>", 1)[0]
    assert all(label in svg for label in ("Base student", "Fine-tuned student", "Teacher"))


def test_the_reports_of_a_run_without_holdout_knowledge_still_render() -> None:
    report = contents(None)
    markdown, html = render_report(report), render_report_html(report)
    page = Page.parse(html)

    assert KNOWLEDGE_TITLE not in markdown
    assert "## Benchmark: 12 held-out problems" in markdown
    # The trade-off needs only the scores; the table says why it is not there.
    assert page.charts["chart-trade-off"] == 1
    assert "The held-out problems were not probed" in " ".join(page.text)


def test_a_run_without_benchmark_scores_has_no_knowledge_section() -> None:
    items = [item for item in records(crafted_answers()) if not str(item["sk"]).startswith("SCORE#")]
    report = report_contents(summarise_run(RUN, items), {}, None, None, knowledge_lines())
    html = render_report_html(report)

    assert KNOWLEDGE_TITLE not in render_report(report)
    assert 'id="knowledge"' not in html


def cost_lines(items: list[dict[str, Any]]) -> dict[tuple[str, str], Usage | None]:
    summary = summarise_run(RUN, items)
    assert render_report(report_contents(summary))  # every line renders
    return {(line.item, line.model): line.usage for line in summary.costs.lines}


def test_the_probes_are_cost_lines_of_their_own() -> None:
    given = crafted_answers()
    items = records(given)
    probe = Usage(requests=20, input_tokens=4000, output_tokens=900)
    verdicts = Usage(requests=5, input_tokens=300, output_tokens=50)
    for item in items:
        if item["sk"] == "SCORE#base":
            item["probe_usage"] = {STUDENT: probe.model_dump(), JUDGE: verdicts.model_dump()}
    calls = [
        CallCost(purpose="solve", model="gpt-4.1-2025-04-14", usage=Usage(requests=3), usd=0.01),
        CallCost(purpose="probe", model=STUDENT, usage=Usage(requests=9, input_tokens=900), usd=0.001),
        CallCost(purpose="probe", model=STUDENT, usage=Usage(requests=2), usd=0.0001, batch=True),
    ]
    items.append(
        {
            "sk": shard_sk(0),
            "status": "done",
            "index": 0,
            "problems": 3,
            "answered": 3,
            "verified": 3,
            "rejected": 0,
            "failed": 0,
            "calls": [call.model_dump(mode="json") for call in calls],
            "cost_usd": 0.0111,
        }
    )
    spends = [
        SpendRecord(kind="unfinished", spender="benchmark: base", purpose="probe", model=STUDENT,
                    usage=Usage(requests=4), usd=0.0002),
        SpendRecord(kind="paid_but_lost", spender="generation", purpose="probe", model=STUDENT,
                    usage=Usage(requests=1, output_tokens=1024), usd=0.0004),
    ]  # fmt: skip
    items += [{**spend.item().model_dump(mode="json"), "sk": spend.item().sk} for spend in spends]

    lines = cost_lines(items)

    assert lines["benchmark: base, held-out probe", STUDENT] == probe
    assert lines["benchmark: base, held-out probe (judge)", JUDGE] == verdicts
    assert lines["generation: student probe", STUDENT] == Usage(requests=9, input_tokens=900)
    assert lines["generation: student probe (Batch API)", STUDENT] == Usage(requests=2)
    assert lines["benchmark: base, held-out probe, answers of an attempt that failed", STUDENT] == Usage(
        requests=4
    )
    assert lines["generation: student probe, paid but lost (worst case)", STUDENT] == Usage(
        requests=1, output_tokens=1024
    )
    # The contestants' own lines are unchanged: the probe is not part of the base student's answers.
    assert lines["benchmark: base", STUDENT] == Usage(requests=12, input_tokens=1200, output_tokens=480)


def test_a_purpose_the_report_does_not_know_is_a_line_by_its_name() -> None:
    from synthtune.stages.report import _cost_report

    future = CallCost.model_construct(
        purpose="rewrite", model=STUDENT, usage=Usage(requests=1), usd=0.0, batch=False
    )
    spend = SpendRecord.model_construct(
        kind="unfinished",
        spender="generation",
        purpose="rewrite",
        model=STUDENT,
        usage=Usage(requests=1),
        usd=0.0,
    )
    report = _cost_report([future], None, [], spends=[spend])

    assert [line.item for line in report.lines] == [
        "generation: rewrite",
        "generation: rewrite, answers of an attempt that failed",
    ]
