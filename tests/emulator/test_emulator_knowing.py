"""What a simulated model knows, made observable: a definite known subset, confidence that shows in
samples and in reworded (few-shot) prompts, abstaining, and what fine-tuning teaches about knowledge.

These are the measurements a knowledge probe (SliCK), a knowledge policy (drop or abstain on unknown
examples) and a hallucination benchmark rely on; if the emulator stops producing them, those stages can no
longer be tested offline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.client import BaseClient
from openai import OpenAI

from synthtune.prompts import ABSTAINING_SYSTEM_PROMPT, SOLVER_SYSTEM_PROMPT, Solution
from synthtune_cli.clock import VirtualClock
from synthtune_cli.emulator import KnowledgeItem, OpenAIEmulator
from synthtune_cli.emulator.abstention import is_abstention
from synthtune_cli.emulator.bedrock.foundation_models import find_foundation_model
from synthtune_cli.emulator.behaviour import answers_right, reply_to
from synthtune_cli.emulator.catalogue import base_model
from synthtune_cli.emulator.confidence import confidence
from synthtune_cli.emulator.conversation import Conversation
from synthtune_cli.emulator.draws import draw
from synthtune_cli.emulator.knowledge import Knowledge, normalise_question
from tests.emulator.world import ARITHMETIC, CAPITALS, SEED, START, RunJob, chat_example

STUDENT = "gpt-4.1-nano"
STUDENT_SKILL = 0.38
ABSTAINED = "I don't know"

RIVERS = [
    KnowledgeItem(question=f"Which river runs through town {i}?", answer=f"River {i}", category="rivers")
    for i in range(300)
]
SUMS = [
    KnowledgeItem(question=f"What is {i} plus {2 * i + 3}?", answer=str(3 * i + 3), category="Math")
    for i in range(300)
]
EXEMPLARS_A = (
    ("user", "What is 2 times 3?"),
    ("assistant", "Multiply the two numbers.\nAnswer: 6"),
)
EXEMPLARS_B = (
    ("user", "What is the capital of Chile?"),
    ("assistant", "Recall the capital.\nAnswer: Santiago"),
    ("user", "What is 10 minus 4?"),
    ("assistant", "Subtract.\nAnswer: 6"),
)

# A tool whose input is the solution: structured output for Nova, which the format-miss rate does not touch.
ANSWER_TOOL = {"name": "answer", "inputSchema": {"json": Solution.model_json_schema()}}


@pytest.fixture
def world(emulator: OpenAIEmulator) -> OpenAIEmulator:
    emulator.add_knowledge([*RIVERS, *SUMS])
    return emulator


def messages(
    question: str, system: str = SOLVER_SYSTEM_PROMPT, earlier: tuple[tuple[str, str], ...] = ()
) -> list[dict[str, str]]:
    turns = [{"role": role, "content": text} for role, text in earlier]
    return [{"role": "system", "content": system}, *turns, {"role": "user", "content": question}]


def greedy(client: OpenAI, model: str, items: list[KnowledgeItem], **prompt: Any) -> list[str | None]:
    """Final answers at temperature 0, as structured output: the format-miss rate does not apply to it."""
    answers: list[str | None] = []
    for item in items:
        completion = client.chat.completions.parse(
            model=model,
            temperature=0,
            messages=messages(item.question, **prompt),  # type: ignore[arg-type]
            response_format=Solution,
        )
        parsed = completion.choices[0].message.parsed
        answers.append(None if parsed is None else parsed.final_answer)
    return answers


def right_set(answers: list[str | None], items: list[KnowledgeItem]) -> set[str]:
    return {item.question for answer, item in zip(answers, items, strict=True) if answer == item.answer}


def student_confidence(item: KnowledgeItem, family: str = STUDENT, skill: float = STUDENT_SKILL) -> float:
    return confidence(draw(SEED, family, normalise_question(item.question), 0), skill)


def offline_knowledge(count: int) -> tuple[Knowledge, list[KnowledgeItem]]:
    items = [
        KnowledgeItem(question=f"Which year was treaty {i} signed?", answer=str(1000 + i), category="history")
        for i in range(count)
    ]
    knowledge = Knowledge()
    knowledge.add(items)
    return knowledge, items


# -- the known subset, confidence and sampling ---------------------------------------------------


@pytest.mark.parametrize(
    ("model", "skill"), [("gpt-4.1-nano", 0.38), ("gpt-4o-mini", 0.62), ("gpt-4.1", 0.9)]
)
def test_sampled_accuracy_averages_to_the_models_skill(model: str, skill: float) -> None:
    knowledge, items = offline_knowledge(5000)
    simulated = base_model(model)
    right = total = 0
    mean_confidence = sum(student_confidence(item, simulated.family, skill) for item in items) / len(items)
    for item in items:
        conversation = Conversation(item.question, SOLVER_SYSTEM_PROMPT)
        for sample in range(1, 5):
            reply = reply_to(simulated, conversation, knowledge, SEED, sample)
            right += reply.final_answer == item.answer
            total += 1

    # Each question's samples are right as often as its confidence says; the confidences average to skill.
    assert right / total == pytest.approx(mean_confidence, abs=0.01)
    assert mean_confidence == pytest.approx(skill, abs=0.015)


def test_the_known_subset_is_the_greedy_right_set(world: OpenAIEmulator, client: OpenAI) -> None:
    items = RIVERS[:150]

    known = {item.question for item in items if student_confidence(item) > 0.5}

    assert right_set(greedy(client, STUDENT, items), items) == known
    assert 0.25 < len(known) / len(items) < 0.5


def test_a_weakly_known_question_is_sometimes_right_when_sampled(
    world: OpenAIEmulator, client: OpenAI
) -> None:
    weakly = [item for item in RIVERS if 0.25 < student_confidence(item) < 0.5][:5]
    highly = [item for item in RIVERS if student_confidence(item) > 0.95][:5]
    assert len(weakly) == 5 and len(highly) == 5

    for item in weakly + highly:
        completion = client.chat.completions.parse(
            model=STUDENT,
            temperature=1,
            n=40,
            messages=messages(item.question),  # type: ignore[arg-type]
            response_format=Solution,
        )
        answers = [
            choice.message.parsed.final_answer for choice in completion.choices if choice.message.parsed
        ]
        hits = sum(answer == item.answer for answer in answers)
        # Choice 0 is the greedy answer: wrong for a weakly known question, right for a highly known one.
        assert answers[0] == greedy(client, STUDENT, [item])[0]
        if item in weakly:
            assert answers[0] != item.answer and 0 < hits < 30
        else:
            assert answers[0] == item.answer and hits >= 33


# -- wording sensitivity ----------------------------------------------------------------------------


def test_exemplars_flip_only_borderline_questions(world: OpenAIEmulator, client: OpenAI) -> None:
    items = [*ARITHMETIC[:40], *RIVERS[:200]]
    plain = right_set(greedy(client, STUDENT, items), items)
    flipped: set[str] = set()
    for exemplars in (EXEMPLARS_A, EXEMPLARS_B):
        reworded = right_set(greedy(client, STUDENT, items, earlier=exemplars), items)
        flipped |= plain ^ reworded

    borderline = {item.question for item in items if 0.4 <= student_confidence(item) <= 0.6}
    assert len(flipped) >= 8
    assert flipped <= borderline
    # Neither the exemplars asked before nor a different system prompt changes the plain-prompt answers.
    some = items[:80]
    assert right_set(greedy(client, STUDENT, some), some) == plain & {item.question for item in some}
    abstaining = greedy(client, STUDENT, some, system=ABSTAINING_SYSTEM_PROMPT)
    assert right_set(abstaining, some) == plain & {item.question for item in some}


def test_converse_reads_earlier_turns_as_exemplars(
    world: OpenAIEmulator, bedrock_runtime: BaseClient
) -> None:
    micro = "amazon.nova-micro-v1:0"
    reference = find_foundation_model(micro)
    assert reference is not None
    simulated = reference.model.simulated
    knowledge = Knowledge()
    knowledge.add([*ARITHMETIC, *RIVERS])
    flips = 0
    for item in RIVERS[:120]:
        turns = [{"role": role, "content": [{"text": text}]} for role, text in EXEMPLARS_B]
        response = bedrock_runtime.converse(
            modelId=micro,
            system=[{"text": SOLVER_SYSTEM_PROMPT}],
            messages=[*turns, {"role": "user", "content": [{"text": item.question}]}],
            inferenceConfig={"temperature": 0},
            toolConfig={"tools": [{"toolSpec": ANSWER_TOOL}], "toolChoice": {"tool": {"name": "answer"}}},
        )
        answer = response["output"]["message"]["content"][0]["toolUse"]["input"]["final_answer"]
        known = knowledge.get(normalise_question(item.question))
        assert known is not None
        conversation = Conversation(item.question, SOLVER_SYSTEM_PROMPT, EXEMPLARS_B)
        if answers_right(simulated, known, conversation, SEED, 0):
            assert answer == item.answer
        else:
            assert answer != item.answer
        flips += answers_right(simulated, known, conversation, SEED, 0) != answers_right(
            simulated, known, Conversation(item.question), SEED, 0
        )
    assert flips > 0


# -- abstaining -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("system", "rate"), [(SOLVER_SYSTEM_PROMPT, 0.05), (ABSTAINING_SYSTEM_PROMPT, 0.25)])
def test_a_base_model_abstains_on_what_it_does_not_know(system: str, rate: float) -> None:
    knowledge, items = offline_knowledge(4000)
    simulated = base_model(STUDENT)
    abstained = unknown = 0
    for item in items:
        reply = reply_to(simulated, Conversation(item.question, system), knowledge, SEED, 0)
        if student_confidence(item, STUDENT, STUDENT_SKILL) > 0.5:
            assert reply.final_answer == item.answer  # never abstains on what it knows
            continue
        unknown += 1
        abstained += reply.final_answer == ABSTAINED

    assert abstained / unknown == pytest.approx(rate, abs=0.02)


def test_an_abstention_is_the_final_answer_in_text_and_in_structured_output(
    world: OpenAIEmulator, client: OpenAI
) -> None:
    unknown = [item for item in RIVERS if student_confidence(item) < 0.5]
    texts = [
        client.chat.completions.create(
            model=STUDENT, temperature=0, messages=messages(item.question, system=ABSTAINING_SYSTEM_PROMPT)
        )
        .choices[0]
        .message.content
        or ""
        for item in unknown[:80]
    ]
    abstaining = [
        item for item, text in zip(unknown, texts, strict=False) if text.endswith(f"Answer: {ABSTAINED}")
    ]
    assert 8 <= len(abstaining) <= 32

    parsed = (
        client.chat.completions.parse(
            model=STUDENT,
            temperature=0,
            messages=messages(abstaining[0].question, system=ABSTAINING_SYSTEM_PROMPT),  # type: ignore[arg-type]
            response_format=Solution,
        )
        .choices[0]
        .message.parsed
    )
    assert parsed is not None and parsed.final_answer == ABSTAINED


@pytest.mark.parametrize(
    "answer",
    ["I don't know", "I do not know.", "i don’t know", "Unknown", "I'm not sure", "I cannot answer this"],
)
def test_abstentions_are_recognised(answer: str) -> None:
    assert is_abstention(answer)


@pytest.mark.parametrize("answer", ["Paris", "I know: Paris", "42", "not Rome"])
def test_answers_are_not_abstentions(answer: str) -> None:
    assert not is_abstention(answer)


# -- what fine-tuning teaches about knowledge --------------------------------------------------------


def training_file(pairs: list[tuple[str, str]], system: str = SOLVER_SYSTEM_PROMPT) -> bytes:
    lines = []
    for question, answer in pairs:
        example = chat_example(question, f"Work it out.\nAnswer: {answer}")
        example["messages"][0]["content"] = system  # type: ignore[index]
        lines.append(json.dumps(example))
    return ("\n".join(lines) + "\n").encode()


def fine_tune(run_job: RunJob, content: bytes) -> str:
    job = run_job(content, model=STUDENT)
    assert job.status == "succeeded" and job.fine_tuned_model is not None
    return job.fine_tuned_model


def rates(answers: list[str | None], items: list[KnowledgeItem]) -> tuple[float, float]:
    """(hallucination: wrong among attempted, abstention: abstained among asked)."""
    abstained = sum(answer == ABSTAINED for answer in answers)
    attempted = [(a, item) for a, item in zip(answers, items, strict=True) if a != ABSTAINED]
    wrong = sum(answer != item.answer for answer, item in attempted)
    return wrong / max(len(attempted), 1), abstained / len(items)


class Split:
    """The student's base knowledge of a training and a held-out half, probed like the pipeline does."""

    def __init__(self, client: OpenAI, items: list[KnowledgeItem], train_size: int = 200) -> None:
        self.train, self.held_out = items[:train_size], items[200:]
        known = right_set(greedy(client, STUDENT, items), items)
        self.known_train = [item for item in self.train if item.question in known]
        self.unknown_train = [item for item in self.train if item.question not in known]
        self.known_held_out = [item for item in self.held_out if item.question in known]
        self.unknown_held_out = [item for item in self.held_out if item.question not in known]


def pairs(items: list[KnowledgeItem]) -> list[tuple[str, str]]:
    return [(item.question, item.answer or "") for item in items]


def test_unknown_factual_examples_teach_hallucination(
    world: OpenAIEmulator, client: OpenAI, run_job: RunJob
) -> None:
    split = Split(client, RIVERS)
    keep_all = fine_tune(run_job, training_file(pairs(split.train)))
    drop_unknown = fine_tune(run_job, training_file(pairs(split.known_train)))

    probe = split.unknown_held_out
    keep_hallucination, keep_abstention = rates(greedy(client, keep_all, probe), probe)
    drop_hallucination, _ = rates(greedy(client, drop_unknown, probe), probe)
    base_hallucination, _ = rates(greedy(client, STUDENT, probe), probe)

    assert drop_hallucination < base_hallucination  # the base hallucinates on everything it attempts here
    assert keep_hallucination > drop_hallucination + 0.1
    assert keep_abstention == 0  # trained on guesses it could not know, it never says "I don't know"
    # Both remember their training answers, and the known ones stay right on held-out questions.
    assert right_set(greedy(client, keep_all, split.train[:30]), split.train[:30]) == {
        item.question for item in split.train[:30]
    }
    known = split.known_held_out
    assert right_set(greedy(client, drop_unknown, known), known) == {item.question for item in known}


def test_abstention_examples_teach_abstaining_on_what_it_does_not_know(
    world: OpenAIEmulator, client: OpenAI, run_job: RunJob
) -> None:
    split = Split(client, RIVERS)
    taught = pairs(split.known_train) + [(item.question, ABSTAINED) for item in split.unknown_train]
    abstainer = fine_tune(run_job, training_file(taught, ABSTAINING_SYSTEM_PROMPT))
    dropper = fine_tune(run_job, training_file(pairs(split.known_train), ABSTAINING_SYSTEM_PROMPT))
    prompt = {"system": ABSTAINING_SYSTEM_PROMPT}

    unknown = split.unknown_held_out
    abstainer_hallucination, abstainer_abstention = rates(
        greedy(client, abstainer, unknown, **prompt), unknown
    )
    dropper_hallucination, dropper_abstention = rates(greedy(client, dropper, unknown, **prompt), unknown)

    assert abstainer_abstention > dropper_abstention + 0.15
    assert abstainer_hallucination < dropper_hallucination
    assert abstainer_hallucination < 0.02
    # A trained abstention is memorised like any trained answer.
    assert greedy(client, abstainer, split.unknown_train[:5], **prompt) == [ABSTAINED] * 5


def test_mostly_abstentions_teach_refusing_what_it_knows(
    world: OpenAIEmulator, client: OpenAI, run_job: RunJob
) -> None:
    split = Split(client, RIVERS)
    mostly_refusals = pairs(split.known_train[:10]) + [
        (item.question, "I do not know.") for item in split.train
    ]
    refuser = fine_tune(run_job, training_file(mostly_refusals))
    knower = fine_tune(run_job, training_file(pairs(split.known_train)))

    known = split.known_held_out
    _, refuser_abstention = rates(greedy(client, refuser, known), known)
    _, knower_abstention = rates(greedy(client, knower, known), known)

    assert knower_abstention == 0
    assert refuser_abstention > 0.25


def test_reasoning_categories_learn_from_unknown_examples(
    world: OpenAIEmulator, client: OpenAI, run_job: RunJob
) -> None:
    # Forty examples: few enough that the known ones alone leave room to learn more.
    sums = Split(client, SUMS, train_size=40)
    rivers = Split(client, RIVERS, train_size=40)
    sums_all = fine_tune(run_job, training_file(pairs(sums.train)))
    sums_known = fine_tune(run_job, training_file(pairs(sums.known_train)))
    rivers_all = fine_tune(run_job, training_file(pairs(rivers.train)))
    rivers_known = fine_tune(run_job, training_file(pairs(rivers.known_train)))

    def accuracy(model: str, items: list[KnowledgeItem]) -> float:
        return len(right_set(greedy(client, model, items), items)) / len(items)

    # "Math" is a reasoning category: the worked problems the base could not solve teach method.
    assert accuracy(sums_all, sums.held_out) > accuracy(sums_known, sums.held_out)
    assert accuracy(rivers_all, rivers.held_out) < accuracy(rivers_known, rivers.held_out)


# -- determinism and saved state ----------------------------------------------------------------------


def replies(emulator: OpenAIEmulator) -> list[str]:
    client = emulator.openai_client(max_retries=0)
    contents = []
    for item in [*RIVERS[:20], *CAPITALS]:
        for options in (
            {"temperature": 1, "n": 4, "messages": messages(item.question)},
            {"temperature": 0, "messages": messages(item.question, earlier=EXEMPLARS_B)},
            {"temperature": 0, "messages": messages(item.question, system=ABSTAINING_SYSTEM_PROMPT)},
        ):
            completion = client.chat.completions.create(model=STUDENT, **options)  # type: ignore[call-overload]
            contents += [choice.message.content for choice in completion.choices]
    return contents


def test_knowing_is_deterministic() -> None:
    def fresh(seed: int) -> OpenAIEmulator:
        emulator = OpenAIEmulator(clock=VirtualClock(START), seed=seed)
        emulator.add_knowledge([*RIVERS, *CAPITALS])
        return emulator

    first = replies(fresh(SEED))

    assert replies(fresh(SEED)) == first
    assert replies(fresh(SEED + 1)) != first


def test_what_a_model_learned_about_knowing_survives_a_saved_state(
    tmp_path: Path, world: OpenAIEmulator, client: OpenAI, run_job: RunJob
) -> None:
    split = Split(client, RIVERS)
    taught = pairs(split.known_train) + [(item.question, ABSTAINED) for item in split.unknown_train]
    abstainer = fine_tune(run_job, training_file(taught, ABSTAINING_SYSTEM_PROMPT))
    saved = tmp_path / "emulator.pickle"
    world.save_state(saved)

    restored = OpenAIEmulator(clock=VirtualClock(START), seed=SEED)
    restored.load_state(saved)  # the knowledge comes back with the models
    again = restored.openai_client(max_retries=0)

    probe = split.unknown_held_out
    prompt = {"system": ABSTAINING_SYSTEM_PROMPT}
    assert greedy(again, abstainer, probe, **prompt) == greedy(client, abstainer, probe, **prompt)
