"""Fixtures for the emulator's tests: a virtual clock, a small world of questions, SDK clients, and for
Bedrock moto's S3 with boto3 clients pointed at the emulator on a loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from botocore.client import BaseClient
from moto import mock_aws
from openai import OpenAI
from openai.types.fine_tuning import FineTuningJob

from synthtune_cli.clock import VirtualClock
from synthtune_cli.emulator import EmulatorServer, OpenAIEmulator
from tests.emulator.world import (
    ARITHMETIC,
    BEDROCK_FINAL_STATUSES,
    BUCKET,
    CAPITALS,
    FINAL_STATUSES,
    NO_RETRIES,
    ROLE_ARN,
    SEED,
    START,
    RunCustomization,
    RunJob,
    aws_session,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


@pytest.fixture
def emulator(clock: VirtualClock) -> OpenAIEmulator:
    emulator = OpenAIEmulator(clock=clock, seed=SEED, s3_client=lambda: aws_session().client("s3"))
    emulator.add_knowledge([*ARITHMETIC, *CAPITALS])
    return emulator


@pytest.fixture
def client(emulator: OpenAIEmulator) -> OpenAI:
    # No SDK retries: they sleep in real time, and the tests want to see each error.
    return emulator.openai_client(max_retries=0)


@pytest.fixture
def server(emulator: OpenAIEmulator) -> Iterator[EmulatorServer]:
    with emulator.serve() as server:
        yield server


@pytest.fixture
def run_job(client: OpenAI, clock: VirtualClock) -> RunJob:
    """Upload `content`, start a job on `model` and step the clock until the job ends."""

    def run(content: bytes, model: str = "gpt-4.1-nano", **create: object) -> FineTuningJob:
        uploaded = client.files.create(file=("train.jsonl", content), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(model=model, training_file=uploaded.id, **create)
        for _ in range(1000):
            if job.status in FINAL_STATUSES:
                return job
            clock.advance(30)
            job = client.fine_tuning.jobs.retrieve(job.id)
        raise AssertionError(f"job {job.id} still {job.status} after 1000 polls")

    return run


@pytest.fixture
def aws(emulator: OpenAIEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorServer]:
    """moto's S3 in this process, and the emulator on loopback with boto3's Bedrock endpoints set to it."""
    with mock_aws(), emulator.serve() as server:
        for name, value in server.bedrock_environment().items():
            monkeypatch.setenv(name, value)
        yield server


@pytest.fixture
def s3(aws: EmulatorServer) -> S3Client:
    client = aws_session().client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def bedrock(aws: EmulatorServer) -> BaseClient:
    return aws_session().client("bedrock", config=NO_RETRIES)


@pytest.fixture
def bedrock_runtime(aws: EmulatorServer) -> BaseClient:
    return aws_session().client("bedrock-runtime", config=NO_RETRIES)


@pytest.fixture
def run_customization(s3: S3Client, bedrock: BaseClient, clock: VirtualClock) -> RunCustomization:
    """Put `training` in S3, start a Nova Micro job on it (by default) and step the clock until it ends."""
    counter = iter(range(1, 1000))

    def run(
        training: bytes,
        base: str = "amazon.nova-micro-v1:0:128k",
        validation: bytes | None = None,
        **create: Any,
    ) -> dict[str, Any]:
        number = next(counter)
        s3.put_object(Bucket=BUCKET, Key=f"data/train-{number}.jsonl", Body=training)
        if validation is not None:
            s3.put_object(Bucket=BUCKET, Key=f"data/valid-{number}.jsonl", Body=validation)
            create["validationDataConfig"] = {
                "validators": [{"s3Uri": f"s3://{BUCKET}/data/valid-{number}.jsonl"}]
            }
        arn = bedrock.create_model_customization_job(
            jobName=f"job-{number}",
            customModelName=f"model-{number}",
            roleArn=ROLE_ARN,
            baseModelIdentifier=base,
            trainingDataConfig={"s3Uri": f"s3://{BUCKET}/data/train-{number}.jsonl"},
            outputDataConfig={"s3Uri": f"s3://{BUCKET}/output/"},
            **create,
        )["jobArn"]
        for _ in range(1000):
            job: dict[str, Any] = bedrock.get_model_customization_job(jobIdentifier=arn)
            if job["status"] in BEDROCK_FINAL_STATUSES:
                return job
            clock.advance(30)
        raise AssertionError(f"job {arn} still {job['status']} after 1000 polls")

    return run
