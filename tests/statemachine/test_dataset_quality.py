"""The dataset quality gates through the real state machine: a problem set seeded with duplicates,
near-duplicates and held-out look-alikes, answered by an emulated teacher that gets some answers wrong,
yields a dataset with none of them, a card that accounts for every drop, and files that pass the checks.
"""

from __future__ import annotations

import json
from typing import Any

from synthtune.prompts import parse_final_answer
from synthtune.providers.openai.format import validate_chat_file
from synthtune.quality.contamination import ContaminationIndex
from synthtune.quality.dedup import question_words
from synthtune.quality.grading import answers_match
from synthtune.records.layout import RunLayout
from synthtune.stages.assemble.card import DatasetCard
from synthtune_cli.offline import OfflineStack
from tests.support import FAST_CONFIG, execute, sample_rows

LAYOUT = RunLayout("quality-run")


def seeded_problem_set() -> tuple[list[dict[str, Any]], dict[str, set[str]]]:
    """The sample set, with the ids of the rows that must not be trained on, by what they are."""
    rows = [dict(row) for row in sample_rows()]
    by_id = {row["id"]: row for row in rows}
    seeded: dict[str, set[str]] = {"duplicate": set(), "near_duplicate": set(), "contaminated": set()}
    extra = []
    for number, original in enumerate(("riddle-001", "math-002", "logic-003")):
        by_id[original]["split"] = "train"
        extra.append(
            {**by_id[original], "id": f"dup-{number}", "question": "  " + by_id[original]["question"].upper()}
        )
        seeded["duplicate"].add(f"dup-{number}")
    for number, original in enumerate(("riddle-004", "math-005", "logic-006")):
        by_id[original]["split"] = "train"
        extra.append(
            {**by_id[original], "id": f"near-{number}", "question": "Please: " + by_id[original]["question"]}
        )
        seeded["near_duplicate"].add(f"near-{number}")
    for number, original in enumerate(("riddle-007", "math-008", "logic-009")):
        by_id[original]["split"] = "holdout"
        extra.append(
            {
                **by_id[original],
                "id": f"lookalike-{number}",
                "split": "train",
                "question": f"A puzzle from a quiz book. {by_id[original]['question']} Explain briefly.",
            }
        )
        seeded["contaminated"].add(f"lookalike-{number}")
    return rows + extra, seeded


def jsonl_rows(stack: OfflineStack, key: str) -> list[dict[str, Any]]:
    body = stack.download(key)
    assert body is not None, key
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def test_a_seeded_problem_set_yields_a_clean_dataset(stack: OfflineStack) -> None:
    rows, seeded = seeded_problem_set()
    # Every policy keeps what the student knows: keep_all, so that each seeded row meets the gate it is for
    # (an unknown original dropped before the duplicate gate would leave its copy nothing to duplicate).
    config = {**FAST_CONFIG, "judge_model": None, "dataset": {"knowledge_policy": "keep_all"}}
    execution = execute(stack, rows, run_id="quality-run", config=config)
    assert execution.status == "SUCCEEDED", execution.description.get("cause")

    card = DatasetCard.model_validate(json.loads(stack.download(LAYOUT.dataset_card) or b"{}"))
    dropped = {row["problem_id"]: row for row in jsonl_rows(stack, LAYOUT.dropped)}
    generated = execution.records["RUN"]["splits"]
    # Every problem sent to the teacher is an example or exactly one logged drop.
    assert card.accounted
    assert card.considered == generated["train"] + generated["validation"] == len(rows) - generated["holdout"]
    assert len(dropped) == card.dropped_total
    assert {drop.reason: drop.count for drop in card.dropped} == execution.records["DATASET"]["dropped"]

    # The teacher's wrong answers were dropped: it was wrong at least once, and no kept answer is wrong.
    assert any(row["reason"] == "wrong_answer" for row in dropped.values())
    references = {row["question"]: row["answer"] for row in rows}
    train = jsonl_rows(stack, LAYOUT.train)
    validation = jsonl_rows(stack, LAYOUT.validation)
    for example in train + validation:
        question, reply = example["messages"][1]["content"], example["messages"][2]["content"]
        final = parse_final_answer(reply)
        assert final is not None
        assert answers_match(references[question], final) != "mismatch", (question, final)

    # Each seeded row is dropped for what it is (or, if the teacher got its original wrong, as wrong).
    for reason, ids in seeded.items():
        for problem_id in ids:
            assert dropped[problem_id]["reason"] in {reason, "wrong_answer"}, dropped[problem_id]
        assert any(dropped[problem_id]["reason"] == reason for problem_id in ids), reason

    # No two kept questions are the same, and none shares 13 words with a held-out problem.
    questions = [example["messages"][1]["content"] for example in train + validation]
    assert len({" ".join(question_words(q)) for q in questions}) == len(questions)
    holdout = ContaminationIndex(
        ((row["id"], row["question"]) for row in jsonl_rows(stack, LAYOUT.holdout)), n=13
    )
    assert not [q for q in questions if holdout.match(q) is not None]

    # The files pass OpenAI's format checks, and the exports hold the same examples.
    for key in (LAYOUT.train, LAYOUT.validation):
        body = stack.download(key) or b""
        report = validate_chat_file(body.splitlines(), key, card.student_model, card.max_example_tokens)
        assert report.valid, report.issues
    assert len(jsonl_rows(stack, LAYOUT.export("bedrock", "train"))) == len(train)
    assert len(jsonl_rows(stack, LAYOUT.export("huggingface", "validation"))) == len(validation)
    markdown = (stack.download(LAYOUT.dataset_card_markdown) or b"").decode()
    assert "`duplicate`" in markdown
    assert "`contaminated`" in markdown
