"""The emulator's memory saved to a file and given to another emulator: what a resumed local run relies on
to find the fine-tuning job (and files, custom models, deployments) a killed process created."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from botocore.client import BaseClient
from openai import OpenAI

from synthtune_cli.clock import VirtualClock
from synthtune_cli.emulator import EmulatorServer, OpenAIEmulator
from tests.emulator.world import (
    ARITHMETIC,
    BEDROCK_FINAL_STATUSES,
    BUCKET,
    FINAL_STATUSES,
    NO_RETRIES,
    ROLE_ARN,
    SEED,
    START,
    aws_session,
    conversation_jsonl,
    training_jsonl,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def test_a_restored_emulator_goes_on_with_the_fine_tuning_job(
    tmp_path: Path, client: OpenAI, clock: VirtualClock, emulator: OpenAIEmulator
) -> None:
    saved = tmp_path / "emulator.pickle"
    emulator.keep_state_in(saved)
    training = client.files.create(
        file=("train.jsonl", training_jsonl((i.question, i.answer) for i in ARITHMETIC[:20])),
        purpose="fine-tune",
    )
    job = client.fine_tuning.jobs.create(model="gpt-4.1-mini", training_file=training.id, suffix="kept")
    clock.advance(45)
    written = saved.read_bytes()
    # Answers and reads change nothing worth keeping: the file is not written again for them.
    client.chat.completions.create(
        model="gpt-4.1-mini", messages=[{"role": "user", "content": ARITHMETIC[0].question}]
    )
    client.fine_tuning.jobs.retrieve(job.id)
    assert saved.read_bytes() == written

    later = VirtualClock(START - 3600)  # a new process's clock, behind the emulated time the job lives in
    restored = OpenAIEmulator(clock=later, seed=SEED)
    restored.load_state(saved)

    assert later.now() == START  # moved up to the snapshot's time: the job's creation, not the read
    assert restored.requests == []  # the request log is the process's own
    again = restored.openai_client(max_retries=0)
    found = again.fine_tuning.jobs.retrieve(job.id)
    assert (found.id, found.training_file, found.status) == (job.id, training.id, "validating_files")
    for _ in range(1000):
        if found.status in FINAL_STATUSES:
            break
        later.advance(30)
        found = again.fine_tuning.jobs.retrieve(job.id)
    assert found.status == "succeeded"
    assert found.fine_tuned_model is not None and ":kept:" in found.fine_tuned_model
    reply = again.chat.completions.create(
        model=found.fine_tuned_model, messages=[{"role": "user", "content": ARITHMETIC[0].question}]
    )
    assert reply.choices[0].message.content
    # The id counters came back too: a new upload is not given an id the first emulator already gave.
    assert again.files.create(file=("more.jsonl", b"{}\n"), purpose="batch").id != training.id
    assert [item["id"] for item in again.fine_tuning.jobs.list().model_dump()["data"]] == [job.id]


def test_a_snapshot_of_another_kind_is_refused(tmp_path: Path, emulator: OpenAIEmulator) -> None:
    other = tmp_path / "not-a-snapshot.pickle"
    other.write_bytes(pickle.dumps({"format": 999}))

    with pytest.raises(ValueError, match="not a snapshot of this emulator's state"):
        emulator.load_state(other)


def test_a_restored_emulator_goes_on_with_the_bedrock_customisation_job(
    tmp_path: Path, s3: S3Client, bedrock: BaseClient, emulator: OpenAIEmulator
) -> None:
    saved = tmp_path / "emulator.pickle"
    emulator.keep_state_in(saved)
    data = conversation_jsonl((item.question, item.answer) for item in ARITHMETIC[:20])
    s3.put_object(Bucket=BUCKET, Key="data/train.jsonl", Body=data)
    arn = bedrock.create_model_customization_job(
        jobName="kept-job",
        customModelName="kept-model",
        roleArn=ROLE_ARN,
        baseModelIdentifier="amazon.nova-micro-v1:0:128k",
        trainingDataConfig={"s3Uri": f"s3://{BUCKET}/data/train.jsonl"},
        outputDataConfig={"s3Uri": f"s3://{BUCKET}/output/"},
    )["jobArn"]

    clock = VirtualClock(START)
    restored = OpenAIEmulator(clock=clock, seed=SEED, s3_client=lambda: aws_session().client("s3"))
    restored.load_state(saved)
    with restored.serve() as server:
        again = _bedrock_client(server)
        job = again.get_model_customization_job(jobIdentifier=arn)
        assert (job["jobName"], job["status"]) == ("kept-job", "InProgress")
        for _ in range(1000):
            if job["status"] in BEDROCK_FINAL_STATUSES:
                break
            clock.advance(30)
            job = again.get_model_customization_job(jobIdentifier=arn)

    assert job["status"] == "Completed", job.get("failureMessage")
    # The restored job wrote its metrics through the S3 client of the emulator it lives in now.
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="output/")["KeyCount"] > 0


def _bedrock_client(server: EmulatorServer) -> BaseClient:
    return aws_session().client("bedrock", endpoint_url=server.root_url, config=NO_RETRIES)
