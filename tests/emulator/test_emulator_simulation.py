"""The simulation's building blocks: answer equality, wrong answers, question matching, schemas, learning."""

from __future__ import annotations

import math

import pytest

from synthtune_cli.emulator import KnowledgeItem
from synthtune_cli.emulator.answers import answers_match, wrong_answer
from synthtune_cli.emulator.behaviour import Reply
from synthtune_cli.emulator.catalogue import base_format_miss_rate, base_model, base_skill, family_of
from synthtune_cli.emulator.knowledge import Knowledge, hidden_reference, normalise_question
from synthtune_cli.emulator.learning import TrainingAssessment, fine_tuned
from synthtune_cli.emulator.structured import SchemaError, fill_schema
from synthtune_cli.emulator.training_data import split_answer


@pytest.mark.parametrize(
    ("candidate", "reference"),
    [
        ("1,000", "1000"),
        ("-3", "−3"),
        ("0.5", "1/2"),
        ("50%", "50 %"),
        ("An apple", "apple"),
        ("U.S.A.", "USA"),
    ],
)
def test_answers_that_match(candidate: str, reference: str) -> None:
    assert answers_match(candidate, reference)


@pytest.mark.parametrize(
    ("candidate", "reference"), [("1001", "1000"), ("", "0"), ("Rome", "Paris"), ("5 kg", "5 km"), ("", "")]
)
def test_answers_that_differ(candidate: str, reference: str) -> None:
    assert not answers_match(candidate, reference)


@pytest.mark.parametrize("reference", ["0", "1", "1,000", "$2.50", "12 km", "-7", "1/3"])
def test_numeric_wrong_answers_are_wrong_and_keep_their_form(reference: str) -> None:
    for draw_key in range(20):
        wrong = wrong_answer(reference, [], "seed", draw_key)
        assert not answers_match(wrong, reference)
        if reference.startswith("$"):
            assert wrong.startswith("$") and wrong.count(".") == 1 and len(wrong.split(".")[1]) == 2
        if reference.endswith(" km"):
            assert wrong.endswith(" km")


def test_text_wrong_answers_come_from_the_same_category() -> None:
    pool = ["Paris", "Madrid", "Rome", "paris."]

    wrongs = {wrong_answer("Paris", pool, "seed", key) for key in range(30)}

    assert wrongs == {"Madrid", "Rome"}
    assert wrong_answer("Paris", ["Paris"], "seed", 1) == "I am not sure"


def test_question_normalisation_and_resolution() -> None:
    knowledge = Knowledge()
    knowledge.add(
        [
            KnowledgeItem(question="  What is   the capital of France? ", answer="Paris", category="geo"),
            KnowledgeItem(question="What is the capital", answer="?", category="geo"),
            KnowledgeItem(question="cat", answer="animal"),
            KnowledgeItem(question="How many sides has a hexagon?"),
        ]
    )

    assert normalise_question("¿WHAT is the Capital of France?!") == "what is the capital of france"
    assert knowledge.resolve("what is THE capital of france") == "what is the capital of france"
    # The longest known question inside a wrapped prompt wins.
    assert (
        knowledge.resolve("Solve: What is the capital of France? Think.") == "what is the capital of france"
    )
    # Only whole words count.
    assert knowledge.resolve("How do I concatenate strings?") == "how do i concatenate strings"
    hexagon = knowledge.get("how many sides has a hexagon")
    assert hexagon is not None and hexagon.reference == hidden_reference(hexagon.key)
    assert hexagon.reference.isdigit()


def test_skills_and_format_rates_by_name() -> None:
    assert family_of("ft:gpt-4.1-mini-2025-04-14:synthtune-emulator::abcd1234") == "gpt-4.1-mini"
    assert [base_skill(name) for name in ("gpt-5-nano", "o4-mini", "gpt-4.1", "gpt-4o-2024-08-06")] == [
        0.93,
        0.93,
        0.9,
        0.9,
    ]
    assert [base_skill(name) for name in ("gpt-4o-mini", "gpt-4.1-nano", "gpt-3.5-turbo", "llama")] == [
        0.62,
        0.38,
        0.45,
        0.5,
    ]
    assert [base_format_miss_rate(name) for name in ("gpt-4.1-nano", "gpt-4o-mini", "gpt-4.1")] == [
        0.15,
        0.05,
        0.01,
    ]


def test_generalisation_formula() -> None:
    base = base_model("gpt-4.1-nano")
    assessment = TrainingAssessment(
        examples=30,
        with_answer_line=25,
        n_known_ok={"a": 16, "b": 4},
        n_unknown_ok={},
        n_bad={"b": 5, None: 1},
        n_abstain={},
        memory={},
    )

    model = fine_tuned(base, assessment)

    general = 0.1 * (1 - math.exp(-20 / 40))
    assert model.skill_for("a") == pytest.approx(0.38 + 0.15 * (1 - math.exp(-2)) + general)
    assert model.skill_for("b") == pytest.approx(0.38 + 0.15 * (1 - math.exp(-0.5)) - 0.6 * 5 / 10 + general)
    assert model.skill_for("never trained") == pytest.approx(0.38 + general)
    assert model.skill_for(None) == pytest.approx(0.38 - 0.6 * 1 / 2 + general)
    assert model.format_miss_rate == pytest.approx(0.15 * math.exp(-2.5))
    assert (model.learned_abstention, model.abstention_damping, model.over_abstention) == (0, 1, 0)
    floored = fine_tuned(base, TrainingAssessment(10, 10, {}, {}, {"a": 10}, {}, {}))
    assert floored.skill_for("a") == 0.02


def test_what_fine_tuning_teaches_about_knowledge_formula() -> None:
    base = base_model("gpt-4.1-nano")
    assessment = TrainingAssessment(
        examples=40,
        with_answer_line=40,
        n_known_ok={"geography": 6, "Maths": 6},
        n_unknown_ok={"geography": 10, "Maths": 10},
        n_bad={"geography": 2},
        n_abstain={"geography": 4, None: 2},
        memory={},
    )

    model = fine_tuned(base, assessment)

    general = 0.1 * (1 - math.exp(-32 / 40))
    factual = 0.15 * (1 - math.exp(-6 / 8)) - 0.3 * 10 / 19 - 0.6 * 2 / 19
    assert model.skill_for("geography") == pytest.approx(0.38 + factual + general)
    # "Maths" is a reasoning category: the ten examples the base could not solve teach method too.
    assert model.skill_for("Maths") == pytest.approx(0.38 + 0.45 * (1 - math.exp(-16 / 8)) + general)
    learned = 1 - math.exp(-6 / 6)
    assert model.learned_abstention == pytest.approx(learned)
    assert model.abstention_damping == pytest.approx(math.exp(-20 / 10))
    assert model.abstention_rate(False) == pytest.approx(learned + (1 - learned) * 0.05 * math.exp(-2))
    assert model.abstention_rate(True) == pytest.approx(learned + (1 - learned) * 0.25 * math.exp(-2))
    assert model.over_abstention == pytest.approx(0.5 * 6 / 40)
    assert (base.abstention_rate(False), base.abstention_rate(True)) == (0.05, 0.25)


def test_answer_line_is_read_like_the_prompts_contract() -> None:
    answered = split_answer("Step 1\n\n**Answer:** 42\n")

    assert answered is not None and answered.final_answer == "42" and answered.steps == ("Step 1",)
    assert split_answer("Step 1\nso 42") is None
    assert split_answer("Answer: 1\nFinal answer: 2").final_answer == "2"


REPLY = Reply(("first", "second"), "42")
JUDGED = Reply(("why",), "correct", verdict=True, explanation="why")


def test_schema_filling_walks_refs_arrays_and_bounds() -> None:
    schema = {
        "type": "object",
        "properties": {
            "work": {"$ref": "#/$defs/Work"},
            "ids": {"type": "array", "items": {"type": "integer", "maximum": 10}, "minItems": 2},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 1},
            "maybe": {"anyOf": [{"type": "null"}, {"type": "number"}]},
            "nothing": {"type": "null"},
            "level": {"enum": ["low", "42", "high"]},
            "fixed": {"const": "v1"},
        },
        "$defs": {
            "Work": {"allOf": [{"properties": {"final_answer": {"type": "string"}}}], "type": "object"}
        },
    }

    assert fill_schema(schema, REPLY) == {
        "work": {"final_answer": "42"},
        "ids": [10, 10],
        "tags": ["first"],
        "maybe": 42.0,
        "nothing": None,
        "level": "42",
        "fixed": "v1",
    }


def test_schema_filling_in_judge_mode() -> None:
    schema = {
        "type": "object",
        "properties": {
            "ok": {"type": "boolean"},
            "grade": {"enum": ["incorrect", "correct"]},
            "why": {"type": "string"},
            "score": {"type": "integer"},
            "notes": {"type": "array", "items": {"type": "string"}},
        },
    }

    assert fill_schema(schema, JUDGED) == {
        "ok": True,
        "grade": "correct",
        "why": "why",
        "score": 1,
        "notes": ["why"],
    }


def test_recursive_schema_terminates_and_broken_ref_is_an_error() -> None:
    tree = {
        "$ref": "#/$defs/Node",
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {
                    "label": {"type": "string"},
                    "child": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]},
                },
                "required": ["label", "child"],
            }
        },
    }

    value = fill_schema(tree, REPLY)
    depth = 0
    while value is not None:
        assert value["label"] == "42"
        value, depth = value["child"], depth + 1
    assert 1 < depth < 20
    with pytest.raises(SchemaError, match="does not resolve"):
        fill_schema({"$ref": "#/$defs/Missing"}, REPLY)
