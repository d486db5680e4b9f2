"""Exactly one of each thing a run creates, whatever the transport does, counted at the emulator.

The providers are built as the Lambdas build them, with the SDKs' retries at their deployed defaults
(`Settings`: OpenAI's max_retries 2; boto3's standard mode, 3 attempts), and the emulator carries each
create out and then loses its reply. OpenAI's SDK would send a create again with nothing to say it is the
same request; the product sends creates once and retries only through its find step. Bedrock's creates
carry the run's clientRequestToken, so botocore's own retry is answered with what the first made.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from synthtune.contracts.config import FineTuneHyperparameters, RunConfig
from synthtune.contracts.errors import ModelUnavailable
from synthtune.contracts.workflow import DatasetSummary, FineTuneCheck, FineTuneInput, RunRef, S3Location
from synthtune.money.estimate import epochs_for, fine_tuning_usd
from synthtune.money.usage import training_cost_usd
from synthtune.providers.bedrock import BedrockProvider
from synthtune.providers.bedrock.client import bedrock_client
from synthtune.providers.openai import OpenAIProvider
from synthtune.providers.openai.batch import OpenAIBatches
from synthtune.providers.openai.client import openai_client
from synthtune.providers.openai.finetune import OpenAIFineTuning
from synthtune.providers.ports import FineTuneRequest, FineTuningPort
from synthtune.providers.registry import ProviderRegistry
from synthtune.records.artifacts import ArtifactStore
from synthtune.records.runs import RunStore
from synthtune.settings import Settings
from synthtune.stages.cleanup import clean_up
from synthtune.stages.finetune import cancel_fine_tune, check_fine_tune, start_fine_tune
from synthtune_cli.clock import VirtualClock
from synthtune_cli.emulator import EmulatorServer, OpenAIEmulator
from tests.support import sample_rows

RUN = "run-once"
DEPLOYED = Settings(runs_table_name="t", data_bucket_name="b", openai_api_key_secret_arn="arn:secret")
TRAINING = "".join(
    f'{{"messages": [{{"role": "user", "content": "{row["question"]}"}}, '
    f'{{"role": "assistant", "content": "Answer: {row["answer"]}"}}]}}\n'
    for row in sample_rows()[:12]
)


def request(student: str, train: S3Location) -> FineTuneRequest:
    return FineTuneRequest(
        run_id=RUN,
        base_model=student,
        train=train,
        validation=None,
        output=S3Location(bucket=train.bucket, key=f"runs/{RUN}/finetune/output/"),
        hyperparameters=FineTuneHyperparameters(),
        suffix="synthtune",
        train_tokens=1000,
    )


@pytest.fixture
def server(emulator: OpenAIEmulator) -> Iterator[EmulatorServer]:
    openai_client.cache_clear()
    bedrock_client.cache_clear()
    with emulator.serve() as server:
        yield server
    openai_client.cache_clear()
    bedrock_client.cache_clear()


def openai_provider(server: EmulatorServer) -> OpenAIProvider:
    def download(location: S3Location, path: Path) -> None:
        path.write_text(TRAINING)

    return OpenAIProvider(
        api_key=lambda: "sk-test",
        base_url=server.base_url,
        max_retries=DEPLOYED.openai_max_retries,
        timeout_seconds=DEPLOYED.openai_timeout_seconds,
        download=download,
    )


def start_as_the_stage_does(fine_tuning: OpenAIFineTuning, request: FineTuneRequest) -> str:
    """StartFineTune's order (see stages.finetune): find the run's job, else create it."""
    found = fine_tuning.find_job(request.run_id)
    return (found or fine_tuning.start(request)).job_id


def posts(emulator: OpenAIEmulator, path: str) -> int:
    return sum(1 for served in emulator.requests if served.method == "POST" and served.path == path)


def test_a_fine_tuning_job_whose_reply_is_lost_is_created_once_and_found(
    emulator: OpenAIEmulator, server: EmulatorServer
) -> None:
    fine_tuning = openai_provider(server).fine_tuning()
    job = request("gpt-4.1-mini-2025-04-14", S3Location(bucket="data", key="train.jsonl"))
    emulator.lose_responses(1, status=502, path_prefix="/v1/fine_tuning/jobs")

    with pytest.raises(ModelUnavailable) as lost:
        start_as_the_stage_does(fine_tuning, job)
    assert lost.value.outcome_unknown
    assert posts(emulator, "/v1/fine_tuning/jobs") == 1  # the SDK did not send it again

    job_id = start_as_the_stage_does(fine_tuning, job)  # Step Functions' retry
    assert list(emulator.fine_tuning_jobs) == [job_id]
    assert posts(emulator, "/v1/fine_tuning/jobs") == 1


def test_an_upload_whose_reply_is_lost_is_used_not_made_again(
    emulator: OpenAIEmulator, server: EmulatorServer
) -> None:
    fine_tuning = openai_provider(server).fine_tuning()
    job = request("gpt-4.1-mini-2025-04-14", S3Location(bucket="data", key="train.jsonl"))
    emulator.lose_responses(1, status=502, path_prefix="/v1/files")

    with pytest.raises(ModelUnavailable):
        start_as_the_stage_does(fine_tuning, job)
    job_id = start_as_the_stage_does(fine_tuning, job)

    (uploaded,) = [stored for stored in emulator.files.values() if stored.purpose == "fine-tune"]
    assert uploaded.filename == f"synthtune-{RUN}-train.jsonl"
    assert emulator.fine_tuning_jobs[job_id]["training_file"] == uploaded.id
    assert posts(emulator, "/v1/files") == 1


@pytest.mark.parametrize("lost_path", ["/v1/batches", "/v1/files"])
def test_a_batch_whose_create_or_upload_reply_is_lost_is_created_once(
    emulator: OpenAIEmulator, server: EmulatorServer, tmp_path: Path, lost_path: str
) -> None:
    batches: OpenAIBatches = openai_provider(server).batches()
    requests = tmp_path / f"synthtune-{RUN}-batch-01-000.jsonl"
    requests.write_bytes(
        b"".join(
            batches.request_line(
                f"00000-{n:05d}",
                "gpt-4.1-2025-04-14",
                row["question"],
                temperature=0,
                max_tokens=200,
                samples=1,
            )
            for n, row in enumerate(sample_rows()[:5])
        )
    )
    metadata = {"synthtune_run_id": RUN, "round": "1", "part": "0"}
    emulator.lose_responses(1, status=502, path_prefix=lost_path)

    with pytest.raises(ModelUnavailable):
        batches.submit(requests, metadata)
    # SubmitBatch's retry: the part was recorded as sent, so it looks for the batch first.
    info = batches.find(metadata) or batches.submit(requests, metadata)

    assert list(emulator.batches) == [info.id]
    (uploaded,) = [stored for stored in emulator.files.values() if stored.purpose == "batch"]
    assert emulator.batches[info.id]["input_file_id"] == uploaded.id
    assert posts(emulator, "/v1/files") == 1
    assert posts(emulator, "/v1/batches") == 1


def bedrock_fine_tuning(data: ArtifactStore) -> FineTuningPort:
    data.write_text("train.jsonl", TRAINING, "application/jsonl")
    return BedrockProvider(
        role_arn="arn:aws:iam::123456789012:role/bedrock",
        read_text=lambda location: data.read_text(location.key),
        list_keys=lambda location: data.keys(location.key),
    ).fine_tuning()


def test_a_bedrock_job_whose_reply_is_lost_is_answered_by_botocores_retry_with_the_same_job(
    emulator: OpenAIEmulator,
    server: EmulatorServer,
    data: ArtifactStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name, value in server.bedrock_environment().items():
        monkeypatch.setenv(name, value)
    fine_tuning = bedrock_fine_tuning(data)
    emulator.lose_responses(1, status=502, path_prefix="/model-customization-jobs")

    state = fine_tuning.start(
        request("bedrock/amazon.nova-micro-v1:0", S3Location(bucket=data.bucket, key="train.jsonl"))
    )

    assert posts(emulator, "/model-customization-jobs") == 2  # botocore sent it again, with the token
    assert [job["jobArn"] for job in emulator.customization_jobs.values()] == [state.job_id]


def fine_tune_input(
    data: ArtifactStore, budget: float, student: str = "gpt-4.1-mini-2025-04-14"
) -> FineTuneInput:
    config = RunConfig.model_validate(
        {
            "teacher_model": "gpt-4.1-2025-04-14",
            "student_model": student,
            "judge_model": None,
            "budget_usd": budget,
        }
    )
    run = RunRef(
        run_id=RUN,
        bucket=data.bucket,
        problem_set=S3Location(bucket=data.bucket, key="p.jsonl"),
        config=config,
    )
    dataset = DatasetSummary(
        train_key="train.jsonl",
        validation_key=None,
        train_examples=12,
        validation_examples=0,
        train_tokens=2_000,
        dropped={},
    )
    return FineTuneInput(run=run, dataset=dataset)


def test_a_job_create_with_an_unknown_outcome_keeps_its_reservation_until_the_job_is_billed(
    emulator: OpenAIEmulator, server: EmulatorServer, data: ArtifactStore, runs: RunStore, clock: VirtualClock
) -> None:
    fine_tuning = openai_provider(server).fine_tuning()
    task = fine_tune_input(data, budget=1.0)
    reserved = fine_tuning_usd("gpt-4.1-mini-2025-04-14", 2_000, epochs_for(task.run.config.fine_tune, 12))
    assert reserved is not None
    emulator.lose_responses(1, status=502, path_prefix="/v1/fine_tuning/jobs")

    with pytest.raises(ModelUnavailable):
        start_fine_tune(task, fine_tuning=fine_tuning, runs=runs)
    # The job may exist (it does): its cost stays reserved, nothing is counted as spent yet.
    record = runs.get(RUN) or {}
    assert (record["committed_usd"], record.get("spent_usd", 0)) == (pytest.approx(reserved), 0)

    state = start_fine_tune(task, fine_tuning=fine_tuning, runs=runs)  # the retry finds the job
    assert list(emulator.fine_tuning_jobs) == [state.job_id]
    assert (runs.get(RUN) or {})["committed_usd"] == pytest.approx(reserved)  # not reserved twice

    clock.advance(100_000)
    done = check_fine_tune(
        FineTuneCheck(run=task.run, finetune=state), fine_tuning=fine_tuning, runs=runs, data=data
    )
    assert done.status == "succeeded"
    billed = training_cost_usd(
        "gpt-4.1-mini-2025-04-14", emulator.fine_tuning_jobs[state.job_id]["trained_tokens"]
    )
    record = runs.get(RUN) or {}
    # Settled by the provider's own count of what it trained on.
    assert (record["committed_usd"], record["spent_usd"]) == (pytest.approx(billed), pytest.approx(billed))


def test_a_retry_that_finds_no_job_creates_it_on_the_reservation_already_made(
    emulator: OpenAIEmulator, server: EmulatorServer, data: ArtifactStore, runs: RunStore
) -> None:
    fine_tuning = openai_provider(server).fine_tuning()
    task = fine_tune_input(data, budget=1.0)
    # The upload is carried out and its reply lost: no job was created, but StartFineTune cannot know.
    emulator.lose_responses(1, status=502, path_prefix="/v1/files")

    with pytest.raises(ModelUnavailable):
        start_fine_tune(task, fine_tuning=fine_tuning, runs=runs)
    kept = (runs.get(RUN) or {})["committed_usd"]
    start_fine_tune(task, fine_tuning=fine_tuning, runs=runs)

    assert len(emulator.fine_tuning_jobs) == 1
    assert (runs.get(RUN) or {})["committed_usd"] == pytest.approx(kept)


@pytest.mark.parametrize(
    ("student", "create_path"),
    [
        ("gpt-4.1-mini-2025-04-14", "/v1/fine_tuning/jobs"),
        ("bedrock/amazon.nova-micro-v1:0", "/model-customization-jobs"),
    ],
)
def test_a_resumed_run_whose_job_was_cancelled_trains_its_next_job_once(
    emulator: OpenAIEmulator,
    server: EmulatorServer,
    data: ArtifactStore,
    runs: RunStore,
    monkeypatch: pytest.MonkeyPatch,
    student: str,
    create_path: str,
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name, value in server.bedrock_environment().items():
        monkeypatch.setenv(name, value)
    fine_tuning = (
        bedrock_fine_tuning(data) if student.startswith("bedrock/") else openai_provider(server).fine_tuning()
    )
    task = fine_tune_input(data, budget=1.0, student=student)
    first = start_fine_tune(task, fine_tuning=fine_tuning, runs=runs)
    # The run failed and its cleanup cancelled the job; the cancelled job's worst case is what it cost.
    cancel_fine_tune(FineTuneCheck(run=task.run, finetune=first), fine_tuning=fine_tuning, runs=runs)
    first_cost = (runs.get(RUN) or {})["committed_usd"]
    # The resumed run's create is carried out and its reply lost (OpenAI; botocore resends Bedrock's).
    emulator.lose_responses(1, status=502, path_prefix=create_path)

    try:
        second = start_fine_tune(task, fine_tuning=fine_tuning, runs=runs)
    except ModelUnavailable:
        second = start_fine_tune(task, fine_tuning=fine_tuning, runs=runs)  # Step Functions' retry finds it

    assert (first.attempt, second.attempt) == (0, 1)
    assert second.job_id != first.job_id
    jobs = emulator.customization_jobs if student.startswith("bedrock/") else emulator.fine_tuning_jobs
    assert len(jobs) == 2  # the cancelled job and the next: the lost reply made no third
    found_first, found_second = fine_tuning.find_job(RUN, 0), fine_tuning.find_job(RUN, 1)
    assert found_first is not None and found_first.job_id == first.job_id
    assert found_second is not None and found_second.job_id == second.job_id
    record = runs.get(RUN) or {}
    assert record["fine_tune_attempt"] == 1
    reserved = fine_tuning_usd(student, 2_000, epochs_for(task.run.config.fine_tune, 12, student))
    assert record["committed_usd"] == pytest.approx(first_cost + (reserved or 0))


def test_a_resumed_runs_next_job_created_but_not_recorded_is_cancelled_by_its_cleanup(
    emulator: OpenAIEmulator, server: EmulatorServer, data: ArtifactStore, runs: RunStore
) -> None:
    provider = openai_provider(server)
    fine_tuning = provider.fine_tuning()
    task = fine_tune_input(data, budget=1.0)
    first = start_fine_tune(task, fine_tuning=fine_tuning, runs=runs)
    cancel_fine_tune(FineTuneCheck(run=task.run, finetune=first), fine_tuning=fine_tuning, runs=runs)
    first_cost = (runs.get(RUN) or {})["committed_usd"]
    assert first_cost > 0  # a cancelled job that reports no tokens costs its worst case
    # Resumed, StartFineTune creates the next job and times out before recording it; the run fails.
    emulator.lose_responses(1, status=502, path_prefix="/v1/fine_tuning/jobs")
    with pytest.raises(ModelUnavailable):
        start_fine_tune(task, fine_tuning=fine_tuning, runs=runs)
    runs.update(RUN, config=task.run.config.model_dump(), problem_set=task.run.problem_set.model_dump())

    cleanup = clean_up(RUN, runs=runs, providers=ProviderRegistry({"openai": provider}), bucket=data.bucket)

    (step,) = cleanup.steps
    second = fine_tuning.find_job(RUN, 1)
    assert second is not None and second.job_id != first.job_id
    assert (step.resource, step.id, step.outcome) == ("fine_tune_job", second.job_id, "cancelled")
    assert {job["status"] for job in emulator.fine_tuning_jobs.values()} == {"cancelled"}
    # The unrecorded job's billed tokens are unknown: it keeps its whole reservation, never settles at $0.
    reserved = fine_tuning_usd("gpt-4.1-mini-2025-04-14", 2_000, epochs_for(task.run.config.fine_tune, 12))
    record = runs.get(RUN) or {}
    assert record["spent_usd"] == pytest.approx(first_cost + (reserved or 0))
