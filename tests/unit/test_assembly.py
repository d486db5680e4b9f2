"""Assemble over crafted shards: every gate drops what it should, the card accounts for every problem,
and the files pass OpenAI's format checks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from synthtune.contracts.config import RunConfig
from synthtune.contracts.errors import InvalidDataset
from synthtune.contracts.problems import Problem, SplitCounts
from synthtune.contracts.workflow import AssembleInput, GenerationPlan, RunRef, S3Location, ShardRef
from synthtune.providers.openai.format import validate_chat_file
from synthtune.providers.registry import dataset_format
from synthtune.records.artifacts import ArtifactStore
from synthtune.records.items import DATASET_SK
from synthtune.records.layout import RunLayout
from synthtune.records.runs import RunStore
from synthtune.stages.assemble import assemble as assemble_module
from synthtune.stages.assemble.assemble import assemble_dataset
from synthtune.stages.assemble.card import DatasetCard
from synthtune.stages.assemble.examples import ChatExample, ChatMessage
from synthtune.stages.generate import GeneratedAnswer
from tests.support import OPENAI_MODELS

RUN_ID = "assembly-test"
LAYOUT = RunLayout(RUN_ID)

FARMER = (
    "A farmer takes {n} sheep to market along a narrow mountain road, and on the way a storm scatters "
    "the flock so that only a third of them arrive with him at the market square before noon. How many "
    "sheep reach the market with the farmer?"
)
HELD_OUT = (
    "A train leaves the station at nine in the morning travelling at sixty miles per hour toward a city "
    "two hundred and forty miles away. At what time does it arrive?"
)


def answer(problem_id: str, question: str, final: str = "7", **changes: Any) -> GeneratedAnswer:
    fields: dict[str, Any] = {
        "problem_id": problem_id,
        "split": "train",
        "category": "math",
        "question": question,
        "reference": final,
        "status": "verified",
        "steps": [f"Work it out for {problem_id}.", f"The result is {final}."],
        "final_answer": final,
        "grade_method": "numeric",
        "finish_reason": "stop",
        "usage": {},
    }
    return GeneratedAnswer(**{**fields, **changes})


def good(count: int, start: int = 0, **changes: Any) -> list[GeneratedAnswer]:
    return [
        answer(f"good-{n}", f"What is {n} plus {n + 1000}, written in digits?", str(2 * n + 1000), **changes)
        for n in range(start, start + count)
    ]


def seeded_answers() -> tuple[list[GeneratedAnswer], dict[str, str]]:
    """Twelve good train and two good validation answers, and one of each kind that must not be kept."""
    keep = good(12) + good(2, start=100, split="validation", category="riddle")
    bad = {
        "wrong": answer("wrong", "What is 13 squared?", "170", status="rejected", reference="169"),
        "duplicate": answer("duplicate", "what is 3 PLUS 1003 ,  written in digits", "1006"),
        "near": answer("near", FARMER.format(n=30).replace("narrow", "winding"), "10"),
        "lookalike": answer("lookalike", f"Think carefully. {HELD_OUT} Show your work.", "1 pm"),
        "refusal": answer(
            "refusal",
            "Who will win the next election?",
            "I cannot answer that",
            status="unverified",
            reference=None,
            final_answer="I'm sorry, but I can't help with predictions.",
        ),
        "hedge": answer(
            "hedge",
            "How many moons will Mars have in 2100?",
            "2",
            status="unverified",
            reference=None,
            final_answer="Probably 2",
        ),
        "truncated": answer("truncated", "List every prime below a million.", "many", finish_reason="length"),
        "failed": answer(
            "failed",
            "What is the last digit of pi?",
            "none",
            status="failed",
            failure="refused",
            steps=[],
            final_answer=None,
        ),
        "no_steps": answer("no_steps", "What is 2 plus 2?", "4", steps=[]),
        "too_long": answer("too_long", "Recite the long proof.", "QED", steps=["word " * 400]),
    }
    near_original = answer("farmer", FARMER.format(n=30), "10")
    return [*keep[:6], near_original, *bad.values(), *keep[6:]], {k: v.problem_id for k, v in bad.items()}


REASONS = {
    "wrong": "wrong_answer",
    "duplicate": "duplicate",
    "near": "near_duplicate",
    "lookalike": "contaminated",
    "refusal": "refusal",
    "hedge": "hedging",
    "truncated": "teacher_truncated",
    "failed": "teacher_refused",
    "no_steps": "empty_reasoning",
    "too_long": "too_long",
}


def write_run(data: ArtifactStore, shards: list[list[GeneratedAnswer]], **config: Any) -> AssembleInput:
    refs = []
    for index, answers in enumerate(shards):
        data.write_jsonl(LAYOUT.shard_output(index), answers)
        refs.append(ShardRef(index=index, problem_count=len(answers)))
    data.write_json(LAYOUT.manifest, [ref.model_dump() for ref in refs])
    data.write_jsonl(
        LAYOUT.holdout, [Problem(id="train-trip", question=HELD_OUT, answer="1 pm", split="holdout")]
    )
    total = sum(len(answers) for answers in shards)
    run = RunRef(
        run_id=RUN_ID,
        bucket=data.bucket,
        problem_set=S3Location(bucket=data.bucket, key="problem-sets/seeded.jsonl"),
        config=RunConfig.model_validate({"dataset": {"max_example_tokens": 300}, **config}),
    )
    plan = GenerationPlan(
        manifest_key=LAYOUT.manifest,
        shard_count=len(shards),
        problem_count=total,
        splits=SplitCounts(train=total, validation=0, holdout=1),
    )
    return AssembleInput(run=run, generation=plan)


def lines(data: ArtifactStore, key: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.iter_lines(key) if line.strip()]


def test_a_seeded_problem_set_yields_a_clean_dataset_and_a_card_that_accounts_for_it(
    data: ArtifactStore, runs: RunStore
) -> None:
    answers, bad_ids = seeded_answers()
    task = write_run(data, [answers[:10], answers[10:]])

    summary = assemble_dataset(task, data=data, runs=runs, formats=dataset_format)

    train, validation = lines(data, LAYOUT.train), lines(data, LAYOUT.validation)
    questions = {example["messages"][1]["content"] for example in train + validation}
    assert questions == {a.question for a in answers if a.problem_id.startswith(("good", "farmer"))}
    assert (summary.train_examples, summary.validation_examples) == (13, 2)

    dropped = {row["problem_id"]: row for row in lines(data, LAYOUT.dropped)}
    assert {pid: row["reason"] for pid, row in dropped.items()} == {bad_ids[k]: r for k, r in REASONS.items()}
    assert "of good-3" in dropped["duplicate"]["detail"]
    assert "of farmer" in dropped["near"]["detail"]
    assert "train-trip" in dropped["lookalike"]["detail"]
    assert "'170'" in dropped["wrong"]["detail"]
    assert summary.dropped == dict.fromkeys(REASONS.values(), 1)

    card = DatasetCard.model_validate(data.read_json(LAYOUT.dataset_card))
    assert card.accounted
    assert card.considered == len(answers) == task.generation.problem_count
    assert {drop.reason: drop.count for drop in card.dropped} == summary.dropped
    assert card.categories["riddle"].validation == 2
    assert card.categories["math"].train == 13
    assert sum(card.categories["math"].dropped.values()) == len(REASONS)
    assert card.training.billed_tokens_per_epoch == summary.train_tokens > 0
    assert card.training.billed_tokens == summary.train_tokens * card.training.epochs
    assert summary.estimated_training_usd == card.training.estimated_usd
    assert card.training.estimated_usd is not None and card.training.estimated_usd > 0
    assert all(report.valid for report in card.format_checks)

    markdown = b"".join(data.iter_lines(LAYOUT.dataset_card_markdown)).decode()
    for reason in REASONS.values():
        assert f"`{reason}`" in markdown

    for key in (LAYOUT.train, LAYOUT.validation):
        report = validate_chat_file(data.iter_lines(key), key, task.run.config.student_model, 65_536)
        assert report.valid, report.issues
    bedrock = lines(data, LAYOUT.export("bedrock", "train"))
    huggingface = lines(data, LAYOUT.export("huggingface", "validation"))
    assert len(bedrock) == 13
    assert {row["schemaVersion"] for row in bedrock} == {"bedrock-conversation-2024"}
    assert huggingface == [{"messages": example["messages"]} for example in validation]


def test_exports_can_be_turned_off(data: ArtifactStore, runs: RunStore) -> None:
    task = write_run(data, [good(12)], dataset={"exports": []}, **OPENAI_MODELS)
    summary = assemble_dataset(task, data=data, runs=runs, formats=dataset_format)
    assert summary.validation_key is None
    assert not data.exists(LAYOUT.export("bedrock", "train"))


def test_a_bedrock_student_trains_on_its_own_format_whatever_the_exports(
    data: ArtifactStore, runs: RunStore
) -> None:
    task = write_run(data, [good(12)], dataset={"exports": []})
    summary = assemble_dataset(task, data=data, runs=runs, formats=dataset_format)
    assert (summary.format, summary.train_key) == (
        "bedrock-conversation-2024",
        LAYOUT.export("bedrock", "train"),
    )
    records = lines(data, summary.train_key)
    assert len(records) == summary.train_examples == 12
    assert all(record["schemaVersion"] == "bedrock-conversation-2024" for record in records)
    assert [message["role"] for message in records[0]["messages"]] == ["user", "assistant"]
    assert lines(data, LAYOUT.train)[0]["messages"][0]["role"] == "system"  # the run's own chat file too
    assert not data.exists(LAYOUT.export("huggingface", "train"))


def test_a_reserved_keyword_drops_the_example_for_a_bedrock_student(
    data: ArtifactStore, runs: RunStore
) -> None:
    reserved = answer("reserved", "Assistant: what is 40 plus 2?", "42", reference="42")
    summary = assemble_dataset(
        write_run(data, [[*good(12), reserved]]), data=data, runs=runs, formats=dataset_format
    )
    assert summary.dropped == {"format_rule": 1}
    (dropped,) = lines(data, LAYOUT.dropped)
    assert dropped["reason"] == "format_rule"
    assert "'Assistant:'" in dropped["detail"]
    # An OpenAI student has no such rule: the same answer is an example.
    openai = assemble_dataset(
        write_run(data, [[*good(12), reserved]], **OPENAI_MODELS),
        data=data,
        runs=runs,
        formats=dataset_format,
    )
    assert openai.dropped == {}


def test_self_consistency_keeps_only_agreed_answers_without_a_reference(
    data: ArtifactStore, runs: RunStore
) -> None:
    agreed = [
        answer(
            f"agreed-{n}",
            f"Name a prime number above {n * 10}.",
            str(n),
            status="unverified",
            reference=None,
            samples=5,
            agreement=0.8,
        )
        for n in range(12)
    ]
    split_vote = answer(
        "split", "Name a colour.", "red", status="unverified", reference=None, samples=5, agreement=0.4
    )
    config = {"dataset": {"min_agreement": 0.6}, "generation": {"samples": 5}, "teacher_temperature": 0.7}
    summary = assemble_dataset(
        write_run(data, [[*agreed, split_vote]], **config), data=data, runs=runs, formats=dataset_format
    )
    assert summary.dropped == {"low_agreement": 1}
    assert summary.train_examples == 12


@pytest.mark.parametrize(
    ("models", "fewest"), [(OPENAI_MODELS, 10), ({}, 8)], ids=["openai-needs-10", "nova-micro-needs-8"]
)
def test_too_few_examples_fail_the_run_after_writing_the_card(
    data: ArtifactStore, runs: RunStore, models: dict[str, Any], fewest: int
) -> None:
    answers = [
        *good(fewest - 1),
        answer("wrong", "What is 13 squared?", "170", status="rejected", reference="169"),
    ]
    with pytest.raises(
        InvalidDataset, match=rf"only {fewest - 1} training examples survived .* 1 wrong_answer"
    ):
        assemble_dataset(write_run(data, [answers], **models), data=data, runs=runs, formats=dataset_format)
    card = DatasetCard.model_validate(data.read_json(LAYOUT.dataset_card))
    assert card.accounted
    assert card.train_examples == fewest - 1
    assert runs.get(RUN_ID, DATASET_SK) is not None


def test_a_file_that_fails_the_format_checks_fails_the_run_before_upload(
    data: ArtifactStore, runs: RunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def without_the_answer(answer: GeneratedAnswer, **_: object) -> ChatExample:
        return ChatExample(messages=[ChatMessage(role="user", content=answer.question)])

    monkeypatch.setattr(assemble_module, "training_example", without_the_answer)
    with pytest.raises(InvalidDataset) as failure:
        assemble_dataset(
            write_run(data, [good(12)], **OPENAI_MODELS), data=data, runs=runs, formats=dataset_format
        )
    message = str(failure.value)
    assert "openai-chat format checks" in message
    assert LAYOUT.train in message
    assert "line 1" in message
    assert "assistant" in message


def test_a_bedrock_file_that_breaks_a_nova_rule_fails_the_run_naming_file_line_and_rule(
    data: ArtifactStore, runs: RunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def without_the_answer(answer: GeneratedAnswer, **_: object) -> ChatExample:
        return ChatExample(messages=[ChatMessage(role="user", content=answer.question)])

    monkeypatch.setattr(assemble_module, "training_example", without_the_answer)
    with pytest.raises(InvalidDataset) as failure:
        assemble_dataset(write_run(data, [good(12)]), data=data, runs=runs, formats=dataset_format)
    message = str(failure.value)
    assert "bedrock-conversation-2024 format checks" in message
    assert LAYOUT.export("bedrock", "train") in message
    assert "line 1: the last message is the user's; it must be the assistant's" in message
