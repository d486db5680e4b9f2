"""Fine-tuning jobs through the openai SDK, on a virtual clock: validation, lifecycle, events, results."""

from __future__ import annotations

import csv
import io
import json
import re

import openai
import pytest
from openai import OpenAI

from synthtune_cli.clock import VirtualClock
from synthtune_cli.emulator import OpenAIEmulator
from synthtune_cli.emulator.finetuning import auto_epochs
from tests.emulator.world import ARITHMETIC, START, RunJob, chat_example, training_jsonl

GOOD_DATA = training_jsonl((item.question, item.answer) for item in ARITHMETIC[:20])


def upload(client: OpenAI, content: bytes = GOOD_DATA, purpose: str = "fine-tune") -> str:
    return client.files.create(file=("data.jsonl", content), purpose=purpose).id


def test_lifecycle_follows_the_clock(client: OpenAI, clock: VirtualClock, emulator: OpenAIEmulator) -> None:
    job = client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=upload(client), suffix="math")
    assert (job.status, job.model, job.created_at) == (
        "validating_files",
        "gpt-4o-mini-2024-07-18",
        int(START),
    )
    assert job.hyperparameters.n_epochs == "auto" and job.fine_tuned_model is None

    clock.advance(29.9)
    assert client.fine_tuning.jobs.retrieve(job.id).status == "validating_files"
    clock.advance(0.1)
    queued = client.fine_tuning.jobs.retrieve(job.id)
    assert queued.status == "queued"
    assert queued.hyperparameters.n_epochs == 5  # auto: 20 examples x 5 epochs reaches the 100 minimum
    clock.advance(60)
    running = client.fine_tuning.jobs.retrieve(job.id)
    assert running.status == "running"
    # 20 short examples train in well under the 120 s minimum.
    assert running.estimated_finish == int(START) + 30 + 60 + 120
    clock.advance(119)
    assert client.fine_tuning.jobs.retrieve(job.id).status == "running"
    assert not [model.id for model in client.models.list() if model.id.startswith("ft:")]
    clock.advance(1)
    done = client.fine_tuning.jobs.retrieve(job.id)

    assert done.status == "succeeded" and done.finished_at == int(START) + 210
    assert done.fine_tuned_model is not None
    assert re.fullmatch(
        r"ft:gpt-4o-mini-2024-07-18:synthtune-emulator:math:[a-z0-9]{8}", done.fine_tuned_model
    )
    assert done.trained_tokens is not None and done.trained_tokens > 0
    assert done.fine_tuned_model in {model.id for model in client.models.list()}
    assert emulator.fine_tuning_jobs[job.id]["status"] == "succeeded"
    rows = list(csv.reader(io.StringIO(client.files.content(done.result_files[0]).text)))
    assert rows[0] == ["step", "train_loss", "train_accuracy", "valid_loss"]
    assert len(rows) == 1 + 5 * 20  # batch size 1: a step per example per epoch
    reply = client.chat.completions.create(
        model=done.fine_tuned_model, messages=[{"role": "user", "content": ARITHMETIC[0].question}]
    )
    assert reply.model == done.fine_tuned_model


def test_trained_tokens_scale_with_epochs_and_set_the_running_time(
    run_job: RunJob, emulator: OpenAIEmulator
) -> None:
    one = run_job(GOOD_DATA, hyperparameters={"n_epochs": 1})
    two = run_job(
        GOOD_DATA, hyperparameters={"n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 0.5}
    )
    assert one.trained_tokens is not None and two.trained_tokens == 2 * one.trained_tokens
    assert (two.hyperparameters.batch_size, two.hyperparameters.learning_rate_multiplier) == (4, 0.5)

    emulator.configure(training_seconds_per_1k_tokens=1000.0, min_training_seconds=0)
    slow = run_job(GOOD_DATA, hyperparameters={"n_epochs": 1})
    assert slow.finished_at is not None
    assert slow.finished_at - slow.created_at == 30 + 60 + int(1000.0 * one.trained_tokens / 1000)


def test_events_appear_when_their_time_comes_newest_first(client: OpenAI, clock: VirtualClock) -> None:
    job = client.fine_tuning.jobs.create(model="gpt-4.1-mini", training_file=upload(client))
    clock.advance(30)
    client.fine_tuning.jobs.retrieve(job.id)

    early = [event.message for event in client.fine_tuning.jobs.list_events(job.id)]
    assert early[0] == "Files validated, moving job to queued state"
    assert early[1].startswith("Validating training file: file-")
    assert not any("started" in message for message in early)

    clock.advance(60 + 60)  # half way through the 120 s of training
    midway = [event.message for event in client.fine_tuning.jobs.list_events(job.id, limit=100)]
    assert "Fine-tuning job started" in midway
    steps = [message for message in midway if message.startswith("Step ")]
    assert steps and all(
        re.fullmatch(r"Step \d+/100: training loss=\d+\.\d{4}", message) for message in steps
    )
    assert "New fine-tuned model created" not in " ".join(midway)

    clock.advance(60)
    client.fine_tuning.jobs.retrieve(job.id)
    events = list(client.fine_tuning.jobs.list_events(job.id, limit=100))
    assert events[0].message == "The job has successfully completed"
    assert events[1].message.startswith("New fine-tuned model created")
    assert [event.created_at for event in events] == sorted(
        (event.created_at for event in events), reverse=True
    )
    checkpoint_events = [event.message for event in events if event.message.startswith("Checkpoint created")]
    assert checkpoint_events == [f"Checkpoint created at step {step}" for step in (100, 80, 60, 40, 20)]
    metrics = next(event for event in events if event.type == "metrics")
    assert metrics.data == {
        "step": 100,
        "train_loss": metrics.data["train_loss"],
        "train_mean_token_accuracy": metrics.data["train_mean_token_accuracy"],
        "total_steps": 100,
    }
    page = client.fine_tuning.jobs.list_events(job.id, limit=2)
    after = client.fine_tuning.jobs.list_events(job.id, limit=2, after=page.data[-1].id)
    assert [event.id for event in after.data] == [event.id for event in events[2:4]]


def test_checkpoints_per_epoch_with_validation_metrics(run_job: RunJob, client: OpenAI) -> None:
    validation = upload(client, training_jsonl((item.question, item.answer) for item in ARITHMETIC[20:25]))
    job = run_job(GOOD_DATA, validation_file=validation, hyperparameters={"n_epochs": 3})

    checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data

    assert [checkpoint.step_number for checkpoint in checkpoints] == [60, 40, 20]
    assert checkpoints[0].fine_tuned_model_checkpoint == f"{job.fine_tuned_model}:ckpt-step-60"
    assert all(checkpoint.metrics.valid_loss is not None for checkpoint in checkpoints)
    assert checkpoints[0].metrics.train_loss < checkpoints[-1].metrics.train_loss

    plain = run_job(GOOD_DATA, hyperparameters={"n_epochs": 1})
    assert client.fine_tuning.jobs.checkpoints.list(plain.id).data[0].metrics.valid_loss is None


def test_list_filters_on_metadata_and_pages(client: OpenAI) -> None:
    file_id = upload(client)
    first = client.fine_tuning.jobs.create(model="gpt-4.1-nano", training_file=file_id, metadata={"run": "a"})
    second = client.fine_tuning.jobs.create(
        model="gpt-4.1-nano", training_file=file_id, metadata={"run": "b"}
    )
    third = client.fine_tuning.jobs.create(model="gpt-4.1-nano", training_file=file_id)

    assert [job.id for job in client.fine_tuning.jobs.list(metadata={"run": "a"})] == [first.id]
    assert [job.id for job in client.fine_tuning.jobs.list()] == [third.id, second.id, first.id]
    page = client.fine_tuning.jobs.list(limit=1)
    assert [job.id for job in page.data] == [third.id] and page.has_more
    assert client.fine_tuning.jobs.retrieve(first.id).metadata == {"run": "a"}
    # The SDK documents `metadata=null` as the literal query for jobs without metadata.
    raw = client.get("/fine_tuning/jobs?metadata=null", cast_to=object)
    assert [job["id"] for job in raw["data"]] == [third.id]


def test_deleting_a_fine_tuned_model_retires_it(
    run_job: RunJob, client: OpenAI, emulator: OpenAIEmulator
) -> None:
    job = run_job(GOOD_DATA)
    model = job.fine_tuned_model
    assert model is not None
    assert client.models.retrieve(model).owned_by == "synthtune-emulator"
    assert emulator.files[job.result_files[0]].purpose == "fine-tune-results"

    deleted = client.models.delete(model)

    assert deleted.deleted and deleted.id == model
    assert model not in {listed.id for listed in client.models.list()}
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.NotFoundError):
        client.models.delete(model)
    assert len(emulator.fine_tuning_jobs) == 1


def test_cancel_from_any_unfinished_status(client: OpenAI, clock: VirtualClock) -> None:
    file_id = upload(client)
    validating = client.fine_tuning.jobs.create(model="gpt-4.1-nano", training_file=file_id)
    assert client.fine_tuning.jobs.cancel(validating.id).status == "cancelled"
    running = client.fine_tuning.jobs.create(model="gpt-4.1-nano", training_file=file_id)
    clock.advance(50)
    queued = client.fine_tuning.jobs.create(model="gpt-4.1-nano", training_file=file_id)
    clock.advance(50)
    assert client.fine_tuning.jobs.retrieve(running.id).status == "running"
    assert client.fine_tuning.jobs.retrieve(queued.id).status == "queued"

    cancelled = [client.fine_tuning.jobs.cancel(job.id) for job in (running, queued)]
    clock.advance(1000)

    assert [job.status for job in cancelled] == ["cancelled", "cancelled"]
    assert cancelled[0].finished_at == int(START) + 100
    for job in (validating, running, queued):
        after = client.fine_tuning.jobs.retrieve(job.id)
        assert (after.status, after.fine_tuned_model) == ("cancelled", None)
        assert client.fine_tuning.jobs.list_events(job.id).data[0].message == "Fine-tuning job cancelled."
    with pytest.raises(openai.BadRequestError, match="cannot be cancelled"):
        client.fine_tuning.jobs.cancel(running.id)


def bad_file(line: str, position: int = 3) -> bytes:
    lines = [json.dumps(chat_example(item.question, f"Answer: {item.answer}")) for item in ARITHMETIC[:12]]
    lines.insert(position - 1, line)
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (bad_file("{not json"), "line 3: not valid JSON"),
        (
            bad_file(json.dumps({"prompt": "x", "completion": "y"}), 5),
            'line 5: "messages" must be a non-empty list',
        ),
        (
            bad_file(
                json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "tool", "content": "a"}]})
            ),
            "line 3, message 1: role 'tool'",
        ),
        (
            bad_file(json.dumps({"messages": [{"role": "user", "content": "q"}]}), 7),
            "line 7: no assistant message",
        ),
        (
            bad_file(
                json.dumps(
                    {"messages": [{"role": "user", "content": ["q"]}, {"role": "assistant", "content": "a"}]}
                )
            ),
            'line 3, message 0: "content" must be a string',
        ),
        (training_jsonl([("q", "a")] * 9), "9 example(s); at least 10"),
    ],
)
def test_invalid_training_file_fails_during_validation(
    client: OpenAI, clock: VirtualClock, content: bytes, expected: str
) -> None:
    job = client.fine_tuning.jobs.create(model="gpt-4.1-nano", training_file=upload(client, content))
    clock.advance(29)
    assert client.fine_tuning.jobs.retrieve(job.id).status == "validating_files"
    clock.advance(1)

    failed = client.fine_tuning.jobs.retrieve(job.id)

    assert failed.status == "failed" and failed.finished_at == int(START) + 30
    assert failed.error is not None
    assert (failed.error.code, failed.error.param) == ("invalid_training_file", "training_file")
    assert expected in failed.error.message
    events = client.fine_tuning.jobs.list_events(job.id).data
    assert events[0].level == "error" and expected in events[0].message
    assert client.fine_tuning.jobs.checkpoints.list(job.id).data == []


def test_fine_tune_failure_knob_fails_running_jobs(
    client: OpenAI, clock: VirtualClock, emulator: OpenAIEmulator
) -> None:
    job = client.fine_tuning.jobs.create(model="gpt-4.1-nano", training_file=upload(client))
    clock.advance(100)
    assert client.fine_tuning.jobs.retrieve(job.id).status == "running"

    emulator.configure(fine_tune_failure="Simulated GPU failure")
    clock.advance(5)
    failed = client.fine_tuning.jobs.retrieve(job.id)

    assert failed.status == "failed" and failed.finished_at == int(START) + 105
    assert failed.error is not None and failed.error.message == "Simulated GPU failure"
    assert failed.fine_tuned_model is None and failed.result_files == []
    emulator.configure(fine_tune_failure=None)
    clock.advance(1000)
    assert client.fine_tuning.jobs.retrieve(job.id).status == "failed"
    messages = [event.message for event in client.fine_tuning.jobs.list_events(job.id, limit=100)]
    assert messages[0] == "Simulated GPU failure" and "Fine-tuning job started" in messages


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        ({"model": "gpt-5"}, "model"),
        ({"model": "o3"}, "model"),
        ({"training_file": "file-missing"}, "training_file"),
        ({"validation_file": "file-missing"}, "validation_file"),
        ({"hyperparameters": {"n_epochs": 0}}, "hyperparameters.n_epochs"),
        ({"hyperparameters": {"n_epochs": "three"}}, "hyperparameters.n_epochs"),
        ({"hyperparameters": {"batch_size": 1.5}}, "hyperparameters.batch_size"),
        ({"hyperparameters": {"learning_rate_multiplier": -1}}, "hyperparameters.learning_rate_multiplier"),
        ({"hyperparameters": {"momentum": 0.9}}, "hyperparameters.momentum"),
        (
            {"method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 99}}}},
            "method.supervised.hyperparameters.n_epochs",
        ),
        ({"method": {"type": "dpo", "dpo": {}}}, "method.type"),
        ({"suffix": "x" * 65}, "suffix"),
        ({"metadata": {f"k{index}": "v" for index in range(17)}}, "metadata"),
        ({"seed": -1}, "seed"),
    ],
)
def test_create_is_validated_like_openai(client: OpenAI, changes: dict[str, object], param: str) -> None:
    request: dict[str, object] = {"model": "gpt-4.1-nano", "training_file": upload(client), **changes}

    with pytest.raises(openai.BadRequestError) as error:
        client.fine_tuning.jobs.create(**request)

    assert error.value.param == param


def test_create_rejects_a_file_with_the_wrong_purpose_and_an_unknown_model(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="purpose 'fine-tune'"):
        client.fine_tuning.jobs.create(model="gpt-4.1-nano", training_file=upload(client, purpose="batch"))
    with pytest.raises(openai.NotFoundError):
        client.fine_tuning.jobs.create(model="gpt-7", training_file=upload(client))


def test_method_hyperparameters_are_used(run_job: RunJob) -> None:
    job = run_job(
        GOOD_DATA, method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}}
    )

    assert job.hyperparameters.n_epochs == 2
    assert job.method is not None and job.method.type == "supervised"


@pytest.mark.parametrize(
    ("examples", "epochs"), [(10, 10), (20, 5), (33, 4), (34, 3), (8000, 3), (8334, 2), (30_000, 1), (3, 25)]
)
def test_auto_epochs_follows_openais_rule(examples: int, epochs: int) -> None:
    assert auto_epochs(examples) == epochs
