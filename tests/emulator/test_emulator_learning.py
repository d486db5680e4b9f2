"""Fine-tuned models learn from the training file that reached the job, and from nothing else.

These tests are the reason the emulator simulates learning: a pipeline that loses, corrupts or
mis-formats training data must produce a visibly worse student.
"""

from __future__ import annotations

import pytest
from openai import OpenAI

from synthtune.prompts import SOLVER_SYSTEM_PROMPT, parse_final_answer
from synthtune_cli.emulator import KnowledgeItem, OpenAIEmulator
from tests.emulator.world import ARITHMETIC, CAPITALS, RunJob, training_jsonl

TRAIN, HELD_OUT = ARITHMETIC[:80], ARITHMETIC[80:]
STUDENT = "gpt-4.1-nano"


def answers(client: OpenAI, model: str, items: list[KnowledgeItem]) -> list[str | None]:
    replies = []
    for item in items:
        completion = client.chat.completions.create(
            model=model,
            temperature=0,
            messages=[
                {"role": "system", "content": SOLVER_SYSTEM_PROMPT},
                {"role": "user", "content": item.question},
            ],
        )
        replies.append(parse_final_answer(completion.choices[0].message.content))
    return replies


def accuracy(client: OpenAI, model: str, items: list[KnowledgeItem]) -> float:
    given = answers(client, model, items)
    return sum(answer == item.answer for answer, item in zip(given, items, strict=True)) / len(items)


def fine_tune(run_job: RunJob, pairs: list[tuple[str, str]]) -> str:
    job = run_job(training_jsonl(pairs), model=STUDENT)
    assert job.status == "succeeded" and job.fine_tuned_model is not None
    return job.fine_tuned_model


def final_loss(client: OpenAI, job_model: str) -> float:
    job = next(job for job in client.fine_tuning.jobs.list() if job.fine_tuned_model == job_model)
    loss = client.fine_tuning.jobs.checkpoints.list(job.id).data[0].metrics.train_loss
    assert loss is not None
    return loss


@pytest.fixture
def correct_model(run_job: RunJob) -> str:
    return fine_tune(run_job, [(item.question, item.answer) for item in TRAIN])


def test_correct_data_lifts_held_out_accuracy_and_never_breaks_a_right_answer(
    client: OpenAI, correct_model: str
) -> None:
    base = answers(client, STUDENT, HELD_OUT)
    tuned = answers(client, correct_model, HELD_OUT)
    base_accuracy = sum(a == item.answer for a, item in zip(base, HELD_OUT, strict=True)) / len(HELD_OUT)
    tuned_accuracy = sum(a == item.answer for a, item in zip(tuned, HELD_OUT, strict=True)) / len(HELD_OUT)

    assert base_accuracy < 0.5
    assert tuned_accuracy > 0.8
    for before, after, item in zip(base, tuned, HELD_OUT, strict=True):
        if before == item.answer:
            assert after == item.answer
    assert accuracy(client, correct_model, TRAIN[:20]) == 1.0


def test_wrong_data_copies_the_teachers_mistakes_and_ends_at_a_higher_loss(
    client: OpenAI, run_job: RunJob, correct_model: str
) -> None:
    wrong = [(item.question, str(int(item.answer) + 1)) for item in TRAIN]
    wrong_model = fine_tune(run_job, wrong)

    assert answers(client, wrong_model, TRAIN[:15]) == [answer for _, answer in wrong[:15]]
    assert accuracy(client, wrong_model, HELD_OUT) < accuracy(client, STUDENT, HELD_OUT)
    assert final_loss(client, wrong_model) > final_loss(client, correct_model) + 0.5


def test_losing_most_of_the_data_shows_in_the_benchmark(
    client: OpenAI, run_job: RunJob, correct_model: str
) -> None:
    lossy_model = fine_tune(run_job, [(item.question, item.answer) for item in TRAIN[:12]])

    full, lossy, base = (accuracy(client, model, HELD_OUT) for model in (correct_model, lossy_model, STUDENT))

    assert base < lossy < full
    assert final_loss(client, lossy_model) > final_loss(client, correct_model)


def test_data_without_answer_lines_teaches_no_format(client: OpenAI, run_job: RunJob) -> None:
    unformatted = training_jsonl((item.question, item.answer) for item in TRAIN).replace(b"Answer: ", b"So: ")
    job = run_job(unformatted, model=STUDENT)
    assert job.fine_tuned_model is not None

    tuned = answers(client, job.fine_tuned_model, HELD_OUT + CAPITALS)
    base = answers(client, STUDENT, HELD_OUT + CAPITALS)

    assert tuned == base  # nothing judged, nothing learned: the student is its base model
    assert None in base


def test_learning_stays_in_its_category(client: OpenAI, run_job: RunJob, emulator: OpenAIEmulator) -> None:
    rivers = [
        KnowledgeItem(
            question=f"Which river runs through town {index}?", answer=f"River {index}", category="rivers"
        )
        for index in range(60)
    ]
    emulator.add_knowledge(rivers)
    tuned = fine_tune(run_job, [(item.question, item.answer) for item in TRAIN])

    arithmetic_gain = accuracy(client, tuned, HELD_OUT) - accuracy(client, STUDENT, HELD_OUT)
    rivers_gain = accuracy(client, tuned, rivers) - accuracy(client, STUDENT, rivers)

    assert 0 <= rivers_gain < 0.2 < arithmetic_gain
