"""A finished run's report material built by hand (records, benchmark answers, loss curve, dataset card),
and report.html read back with html.parser: for the report tests."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from synthtune.contracts.config import Contestant, RunConfig
from synthtune.contracts.usage import Usage
from synthtune.stages.benchmark import BenchmarkAnswer, contestant_score

RUN = "run-report"
TEACHER = "gpt-4.1-2025-04-14"
STUDENT = "gpt-4.1-mini-2025-04-14"
FINE_TUNED = "ft:gpt-4.1-mini-2025-04-14:synthtune:run-report"
JUDGE = "gpt-4.1-nano-2025-04-14"
MODELS = {"base": STUDENT, "fine_tuned": FINE_TUNED, "teacher": TEACHER}
HOSTILE = '<script>alert("x")</script><img src="https://example.com/x.png"> & <style>@import url(//x)</style>'
"""Text a model might write: it must reach the page as text, never as markup."""


def answer(contestant: Contestant, index: int, outcome: str, category: str) -> BenchmarkAnswer:
    right = outcome == "correct"
    final = None if outcome in {"no_answer", "abstained"} else ("42" if right else f"wrong {index}")
    return BenchmarkAnswer(
        problem_id=f"{category}-{index:03d}",
        category=category,
        question=f"Question {index} ({category})? {HOSTILE if index == 0 else ''}",
        reference="42",
        reply=f"Step one.\nAnswer: {final} {HOSTILE}" if final is not None else "",
        final_answer=final,
        correct=right,
        outcome=outcome,  # type: ignore[arg-type]
        grade_method="match" if right else "mismatch",
        finish_reason="stop",
        usage={
            MODELS[contestant]: Usage(requests=1, input_tokens=100, output_tokens=40),
            JUDGE: Usage(requests=1, input_tokens=60, output_tokens=5),
        },
    )


def answers(
    base: list[str], fine_tuned: list[str], teacher: list[str] | None = None, categories: int = 2
) -> dict[Contestant, list[BenchmarkAnswer]]:
    """Each contestant's answers, one outcome per problem, problems spread over `categories`."""
    names = ["logic", "math", "riddles"][:categories]
    given: dict[Contestant, list[str]] = {"base": base, "fine_tuned": fine_tuned}
    if teacher is not None:
        given["teacher"] = teacher
    return {
        contestant: [
            answer(contestant, i, outcome, names[i % len(names)]) for i, outcome in enumerate(outcomes)
        ]
        for contestant, outcomes in given.items()
    }


def records(
    by_contestant: dict[Contestant, list[BenchmarkAnswer]],
    *,
    simulated: list[str] | None = None,
    status: str = "SUCCEEDED",
    failure: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The run's DynamoDB items, as the stages write them."""
    config = RunConfig(teacher_model=TEACHER, student_model=STUDENT, judge_model=JUDGE).model_dump(
        mode="json"
    )
    run: dict[str, Any] = {
        "sk": "RUN",
        "run_id": RUN,
        "status": status,
        "started_at": "2026-12-01T09:00:00+00:00",
        "finished_at": "2026-12-01T09:30:00+00:00",
        "problem_set": {"bucket": "bucket", "key": "problem-sets/p.jsonl"},
        "config": config,
        **failure_fields(failure),
    }
    if simulated is not None:
        run["simulated_models"] = simulated
    items: list[dict[str, Any]] = [run]
    for contestant, given in by_contestant.items():
        usage: dict[str, Usage] = {}
        for item in given:
            for model, used in item.usage.items():
                usage[model] = usage.get(model, Usage()) + used
        score = contestant_score(contestant, MODELS[contestant], given, usage)
        items.append({"sk": f"SCORE#{contestant}", **score.model_dump(mode="json")})
    items.append(
        {
            "sk": "FINETUNE",
            "backend": "openai",
            "job_id": "ftjob-report",
            "status": "succeeded",
            "base_model": STUDENT,
            "fine_tuned_model": FINE_TUNED,
            "trained_tokens": 30_000,
            "training_loss": 0.4,
            "best_training_loss": 0.35,
            "validation_loss": 0.6,
            "best_validation_loss": 0.55,
            "metrics_key": f"runs/{RUN}/finetune/training_metrics.csv",
        }
    )
    items.append(
        {
            "sk": "DATASET",
            "train_key": f"runs/{RUN}/dataset/train.jsonl",
            "validation_key": f"runs/{RUN}/dataset/validation.jsonl",
            "train_examples": 40,
            "validation_examples": 5,
            "train_tokens": 10_000,
            "dropped": {"wrong_answer": 3, "duplicate": 1},
            "card_key": f"runs/{RUN}/dataset/dataset_card.json",
        }
    )
    return items


def failure_fields(failure: dict[str, str] | None) -> dict[str, str]:
    if failure is None:
        return {}
    return {"failed_state": failure["state"], "error": failure["error"], "cause": failure["cause"]}


CURVE = "step,epoch,training_loss,validation_loss\n1,1,2.0,\n2,1,1.1,1.5\n3,2,0.5,\n4,2,0.4,0.6\n"
CARD: dict[str, Any] = {
    "considered": 49,
    "train_examples": 40,
    "validation_examples": 5,
    "dropped": [
        {
            "reason": "wrong_answer",
            "count": 3,
            "meaning": "the final answer does not match the reference answer",
        },
        {"reason": "duplicate", "count": 1, "meaning": "the same question as an earlier example"},
    ],
    "categories": {
        "logic": {"considered": 25, "train": 20, "validation": 3, "dropped": {"wrong_answer": 2}},
        "math": {
            "considered": 24,
            "train": 20,
            "validation": 2,
            "dropped": {"wrong_answer": 1, "duplicate": 1},
        },
    },
}


class Page(HTMLParser):
    """report.html as html.parser sees it: elements, their attributes, and where the charts are."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.styles: list[str] = []
        self.stack: list[str] = []
        self.declarations: list[str] = []
        self.charts: dict[str, int] = {}
        """Each chart figure's id, and how many <svg> elements it holds."""
        self._figure: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        self.stack.append(tag)
        if tag == "figure" and "chart" in (attributes.get("class") or ""):
            self._figure = attributes.get("id") or "?"
            self.charts[self._figure] = 0
        if tag == "svg" and self._figure is not None:
            self.charts[self._figure] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self._figure = None
        if self.stack and self.stack[-1] == tag:
            self.stack.pop()

    def handle_decl(self, decl: str) -> None:
        self.declarations.append(decl)

    def handle_pi(self, data: str) -> None:
        self.declarations.append(data)

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1] == "style":
            self.styles.append(data)
        self.text.append(data)

    @classmethod
    def parse(cls, html: str) -> Page:
        page = cls()
        page.feed(html)
        page.close()
        return page

    def ids(self) -> list[str]:
        return [str(attributes["id"]) for _, attributes in self.tags if attributes.get("id")]

    def external_references(self) -> list[str]:
        """Anything that would make a browser fetch: a URL in src, href, xlink:href or any other
        attribute (namespace declarations aside), @import, or url() that is not a fragment."""
        found = []
        for tag, attributes in self.tags:
            for name, value in attributes.items():
                if value is None or name.startswith("xmlns"):
                    continue
                fetched = name in {"src", "href", "xlink:href", "srcset", "action", "data", "poster"}
                if (fetched and not value.startswith("#")) or re.search(
                    r"(?i)(https?:|^//|url\(\s*['\"]?(?!#))", value
                ):
                    found.append(f"<{tag} {name}={value!r}>")
        for style in self.styles:
            if re.search(r"(?i)@import|url\(\s*['\"]?(?!#)", style):
                found.append(f"<style> {style[:80]!r}")
        # An SVG's DOCTYPE names its DTD on the web.
        found += [
            f"<!{declaration}>"
            for declaration in self.declarations
            if re.search("(?i)https?:|//", declaration)
        ]
        return found
