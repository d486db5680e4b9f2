"""Bedrock model customisation jobs through boto3, data in moto's S3, on a virtual clock: the lifecycle, the
custom model and metrics files, idempotency, Bedrock's field checks and data rules, stop and failure."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import TYPE_CHECKING, Any

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from synthtune_cli.clock import VirtualClock
from synthtune_cli.emulator import OpenAIEmulator
from synthtune_cli.emulator.bedrock.training_data import read_conversations
from synthtune_cli.emulator.training_data import TrainingDataError
from tests.emulator.world import (
    ARITHMETIC,
    BUCKET,
    ROLE_ARN,
    START,
    RunCustomization,
    conversation,
    conversation_jsonl,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

GOOD_DATA = conversation_jsonl((item.question, item.answer) for item in ARITHMETIC[:20])
JOB_ARN = re.compile(
    r"arn:aws:bedrock:us-east-1:123456789012:model-customization-job/amazon\.nova-micro-v1:0:128k/[a-z0-9]{12}"
)
MODEL_ARN = re.compile(
    r"arn:aws:bedrock:us-east-1:123456789012:custom-model/amazon\.nova-micro-v1:0:128k/[a-z0-9]{12}"
)


def error_of(call: Any, **arguments: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as raised:
        call(**arguments)
    return dict(raised.value.response["Error"])


def create(bedrock: BaseClient, s3: S3Client, data: bytes = GOOD_DATA, **overrides: Any) -> str:
    s3.put_object(Bucket=BUCKET, Key="data/train.jsonl", Body=data)
    request: dict[str, Any] = {
        "jobName": "distil-math",
        "customModelName": "math-student",
        "roleArn": ROLE_ARN,
        "baseModelIdentifier": "amazon.nova-micro-v1:0:128k",
        "trainingDataConfig": {"s3Uri": f"s3://{BUCKET}/data/train.jsonl"},
        "outputDataConfig": {"s3Uri": f"s3://{BUCKET}/output/"},
        **overrides,
    }
    return str(bedrock.create_model_customization_job(**request)["jobArn"])


def stages(job: dict[str, Any]) -> tuple[str, str, str]:
    details = job["statusDetails"]
    return (
        details["validationDetails"]["status"],
        details["dataProcessingDetails"]["status"],
        details["trainingDetails"]["status"],
    )


def read_csv(s3: S3Client, key: str) -> list[list[str]]:
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
    return list(csv.reader(io.StringIO(body)))


def test_lifecycle_ends_in_a_custom_model_and_metrics_files(
    bedrock: BaseClient, s3: S3Client, clock: VirtualClock, emulator: OpenAIEmulator
) -> None:
    s3.put_object(
        Bucket=BUCKET, Key="data/valid.jsonl", Body=conversation_jsonl([("What is 1 times 8?", "8")])
    )
    arn = create(
        bedrock,
        s3,
        hyperParameters={"epochCount": "3"},
        validationDataConfig={"validators": [{"s3Uri": f"s3://{BUCKET}/data/valid.jsonl"}]},
    )
    assert JOB_ARN.fullmatch(arn)

    job = bedrock.get_model_customization_job(jobIdentifier=arn)
    assert (job["status"], stages(job)) == ("InProgress", ("InProgress", "NotStarted", "NotStarted"))
    assert job["creationTime"].timestamp() == START and "outputModelArn" not in job
    assert job["hyperParameters"] == {
        "epochCount": "3",
        "learningRate": "0.00001",
        "learningRateWarmupSteps": "10",
    }
    clock.advance(30)  # validation_seconds
    assert stages(bedrock.get_model_customization_job(jobIdentifier=arn)) == (
        "Completed",
        "InProgress",
        "NotStarted",
    )
    clock.advance(60)  # queue_seconds: data processing
    assert stages(bedrock.get_model_customization_job(jobIdentifier=arn)) == (
        "Completed",
        "Completed",
        "InProgress",
    )
    assert bedrock.list_custom_models()["modelSummaries"] == []
    clock.advance(119.9)  # 20 short records train in well under the 120 s minimum
    assert bedrock.get_model_customization_job(jobIdentifier=arn)["status"] == "InProgress"
    clock.advance(0.1)
    done = bedrock.get_model_customization_job(jobIdentifier=arn)

    assert (done["status"], stages(done)) == ("Completed", ("Completed", "Completed", "Completed"))
    assert done["endTime"].timestamp() == START + 210
    assert MODEL_ARN.fullmatch(done["outputModelArn"]) and done["outputModelName"] == "math-student"
    assert 0 < done["trainingMetrics"]["trainingLoss"] < 1
    assert done["validationMetrics"][0]["validationLoss"] > done["trainingMetrics"]["trainingLoss"]
    model = bedrock.get_custom_model(modelIdentifier="math-student")
    assert (model["modelArn"], model["modelStatus"], model["jobArn"]) == (
        done["outputModelArn"],
        "Active",
        arn,
    )
    assert model["baseModelArn"] == "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-micro-v1:0:128k"
    assert emulator.customization_jobs[arn]["status"] == "Completed"
    assert list(emulator.custom_models) == [done["outputModelArn"]]

    prefix = f"output/model-customization-job-{arn.rsplit('/', 1)[1]}"
    training = read_csv(s3, f"{prefix}/training_artifacts/step_wise_training_metrics.csv")
    assert training[0] == ["step_number", "epoch_number", "training_loss", "perplexity"]
    assert len(training) == 1 + 3 * 20  # batch size 1: a step per record per epoch
    assert [row[:2] for row in (training[1], training[-1])] == [["0", "0"], ["59", "2"]]
    assert float(training[-1][2]) == done["trainingMetrics"]["trainingLoss"]
    assert float(training[1][2]) > float(training[-1][2])
    validation = read_csv(
        s3, f"{prefix}/validation_artifacts/post_fine_tuning_validation/validation_metrics.csv"
    )
    assert validation[0] == ["step_number", "epoch_number", "validation_loss", "perplexity"]
    assert [row[:2] for row in validation[1:]] == [["19", "0"], ["39", "1"], ["59", "2"]]


def test_a_job_is_found_by_name_or_arn_and_listed_with_filters_and_pages(
    bedrock: BaseClient, s3: S3Client, run_customization: RunCustomization
) -> None:
    finished = [run_customization(GOOD_DATA) for _ in range(3)]
    running = create(bedrock, s3, jobName="still-running", customModelName="later")

    assert bedrock.get_model_customization_job(jobIdentifier="job-2")["jobArn"] == finished[1]["jobArn"]
    assert bedrock.get_model_customization_job(jobIdentifier=running)["jobName"] == "still-running"
    assert error_of(bedrock.get_model_customization_job, jobIdentifier="nope")["Code"] == (
        "ResourceNotFoundException"
    )
    newest_first = bedrock.list_model_customization_jobs()["modelCustomizationJobSummaries"]
    assert [job["jobName"] for job in newest_first] == ["still-running", "job-3", "job-2", "job-1"]
    completed = bedrock.list_model_customization_jobs(statusEquals="Completed", sortOrder="Ascending")
    assert [job["jobName"] for job in completed["modelCustomizationJobSummaries"]] == [
        "job-1",
        "job-2",
        "job-3",
    ]
    assert completed["modelCustomizationJobSummaries"][0]["customModelArn"] == finished[0]["outputModelArn"]
    named = bedrock.list_model_customization_jobs(nameContains="running")["modelCustomizationJobSummaries"]
    assert [job["jobName"] for job in named] == ["still-running"]
    first = bedrock.list_model_customization_jobs(maxResults=3)
    second = bedrock.list_model_customization_jobs(maxResults=3, nextToken=first["nextToken"])
    assert len(first["modelCustomizationJobSummaries"]) == 3 and "nextToken" not in second
    assert [job["jobName"] for job in second["modelCustomizationJobSummaries"]] == ["job-1"]
    assert len(bedrock.list_custom_models(sortOrder="Ascending")["modelSummaries"]) == 3


def test_a_client_request_token_makes_create_idempotent_and_a_reused_name_conflicts(
    bedrock: BaseClient, s3: S3Client, emulator: OpenAIEmulator
) -> None:
    first = create(bedrock, s3, clientRequestToken="run-42-finetune")
    again = create(bedrock, s3, clientRequestToken="run-42-finetune")

    assert again == first and len(emulator.customization_jobs) == 1
    for token in ({}, {"clientRequestToken": "another-token"}):
        conflict = error_of(bedrock.create_model_customization_job, **_request(**token))
        assert conflict["Code"] == "ConflictException"
        assert "job name is currently in use" in conflict["Message"]
    renamed = error_of(
        bedrock.create_model_customization_job,
        **_request(jobName="other-name", clientRequestToken="run-42-finetune"),
    )
    assert renamed["Code"] == "ConflictException" and "run-42-finetune" in renamed["Message"]
    model_taken = error_of(bedrock.create_model_customization_job, **_request(jobName="other-name"))
    assert model_taken["Code"] == "ConflictException" and "math-student" in model_taken["Message"]
    assert len(emulator.customization_jobs) == 1


def _request(**overrides: Any) -> dict[str, Any]:
    return {
        "jobName": "distil-math",
        "customModelName": "math-student",
        "roleArn": ROLE_ARN,
        "baseModelIdentifier": "amazon.nova-micro-v1:0:128k",
        "trainingDataConfig": {"s3Uri": f"s3://{BUCKET}/data/train.jsonl"},
        "outputDataConfig": {"s3Uri": f"s3://{BUCKET}/output/"},
        **overrides,
    }


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"jobName": "bad_name"}, "jobName"),
        ({"jobName": "j" * 64}, "jobName"),
        ({"customModelName": "bad.name"}, "customModelName"),
        ({"roleArn": "arn:aws:iam::123456789012:user/someone"}, "roleArn"),
        ({"baseModelIdentifier": "amazon.nova-micro-v1:0"}, "amazon.nova-micro-v1:0"),
        (
            {"baseModelIdentifier": "anthropic.claude-haiku-4-5-20251001-v1:0"},
            "not supported for fine-tuning",
        ),
        ({"customizationType": "CONTINUED_PRE_TRAINING"}, "customizationType"),
        ({"hyperParameters": {"batchSize": "1"}}, "batchSize"),
        ({"hyperParameters": {"epochCount": "6"}}, "epochCount"),
        ({"hyperParameters": {"epochCount": "two"}}, "epochCount"),
        ({"hyperParameters": {"learningRate": "0.001"}}, "learningRate"),
        ({"hyperParameters": {"learningRateWarmupSteps": "101"}}, "learningRateWarmupSteps"),
        ({"trainingDataConfig": {"s3Uri": "s3://Bad_Bucket/x.jsonl"}}, "trainingDataConfig.s3Uri"),
        (
            {
                "baseModelIdentifier": "amazon.nova-2-lite-v1:0:256k",
                "validationDataConfig": {"validators": [{"s3Uri": f"s3://{BUCKET}/v.jsonl"}]},
            },
            "validationDataConfig",
        ),
    ],
)
def test_bad_requests_are_refused_with_a_message_naming_the_field(
    bedrock: BaseClient, emulator: OpenAIEmulator, overrides: dict[str, Any], named: str
) -> None:
    refused = error_of(bedrock.create_model_customization_job, **_request(**overrides))

    assert refused["Code"] == "ValidationException"
    assert named in refused["Message"]
    assert emulator.customization_jobs == {}


def test_llama_takes_its_own_hyperparameters(run_customization: RunCustomization) -> None:
    job = run_customization(
        GOOD_DATA, base="meta.llama3-1-8b-instruct-v1:0:128k", hyperParameters={"batchSize": "1"}
    )

    assert job["status"] == "Completed"
    assert job["hyperParameters"] == {"epochCount": "5", "batchSize": "1", "learningRate": "0.0001"}
    assert ":custom-model/meta.llama3-1-8b-instruct-v1:0:128k/" in job["outputModelArn"]


def record(messages: list[dict[str, Any]], **fields: Any) -> str:
    return json.dumps({"schemaVersion": "bedrock-conversation-2024", "messages": messages, **fields})


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"text": text}]}


def assistant(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": [{"text": text}]}


def with_bad_line(line: str) -> bytes:
    """Nine good records, then `line` as line 10."""
    good = [json.dumps(conversation(item.question, f"Answer: {item.answer}")) for item in ARITHMETIC[:9]]
    return ("\n".join([*good, line]) + "\n").encode()


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        ("{not json", "line 10: not valid JSON"),
        (json.dumps({"messages": [user("q"), assistant("a")]}), 'line 10: "schemaVersion" is missing'),
        (record([assistant("a")]), "line 10, message 0: expected a user message"),
        (record([user("q"), user("q again"), assistant("a")]), "line 10, message 1: expected a assistant"),
        (record([user("q"), assistant("a"), user("q")]), "line 10: the last message must be the assistant's"),
        (record([{"role": "system", "content": [{"text": "s"}]}, user("q")]), "role 'system' is not user"),
        (record([user("q"), assistant("a")], system="Solve."), '"system" must be a list'),
        (record([user("q"), {"role": "assistant", "content": [{"image": {}}]}]), "the emulator reads text"),
        *(
            (record([user(f"Say {word} please"), assistant("ok")]), f"reserved string {word!r}")
            for word in ("User:", "Bot:", "Assistant:", "System:", "<image>", "<video>", "[EOS]")
        ),
        (record([user("q"), assistant("a")], system=[{"text": "You are the Bot: answer."}]), "'Bot:'"),
    ],
)
def test_each_data_rule_fails_the_job_at_validation_naming_the_line(
    run_customization: RunCustomization, line: str, rule: str
) -> None:
    job = run_customization(with_bad_line(line))

    assert job["status"] == "Failed" and stages(job) == ("Failed", "NotStarted", "NotStarted")
    assert job["endTime"].timestamp() == START + 30  # validation_seconds
    assert rule in job["failureMessage"]
    assert f"s3://{BUCKET}/data/train-1.jsonl" in job["failureMessage"]
    assert "outputModelArn" not in job


@pytest.mark.parametrize(
    ("base", "records", "message"),
    [
        ("amazon.nova-micro-v1:0:128k", 7, "the file has 7 record(s); at least 8 are required"),
        ("amazon.nova-2-lite-v1:0:256k", 100, "the file has 100 record(s); at least 200 are required"),
    ],
)
def test_too_few_records_fail_the_job(
    run_customization: RunCustomization, base: str, records: int, message: str
) -> None:
    data = conversation_jsonl((item.question, item.answer) for item in ARITHMETIC[:records])

    job = run_customization(data, base=base)

    assert job["status"] == "Failed" and message in job["failureMessage"]


def test_nova_2_lite_trains_on_200_records(run_customization: RunCustomization) -> None:
    pairs = [(item.question, item.answer) for item in ARITHMETIC] * 2

    job = run_customization(conversation_jsonl(pairs[:200]), base="amazon.nova-2-lite-v1:0:256k")

    assert job["status"] == "Completed"
    assert ":custom-model/amazon.nova-2-lite-v1:0:256k/" in job["outputModelArn"]


def test_a_missing_training_object_fails_at_validation_not_at_create(
    bedrock: BaseClient, s3: S3Client, clock: VirtualClock
) -> None:
    arn = bedrock.create_model_customization_job(
        **_request(trainingDataConfig={"s3Uri": f"s3://{BUCKET}/data/missing.jsonl"})
    )["jobArn"]

    assert bedrock.get_model_customization_job(jobIdentifier=arn)["status"] == "InProgress"
    clock.advance(30)
    job = bedrock.get_model_customization_job(jobIdentifier=arn)
    assert job["status"] == "Failed"
    assert (
        f"s3://{BUCKET}/data/missing.jsonl" in job["failureMessage"] and "NoSuchKey" in job["failureMessage"]
    )


def test_a_bad_validation_file_fails_the_job_naming_that_file(run_customization: RunCustomization) -> None:
    job = run_customization(GOOD_DATA, validation=b'{"schemaVersion": "x", "messages": []}\n')

    assert job["status"] == "Failed"
    assert "data/valid-1.jsonl: line 1" in job["failureMessage"]


def test_stop_moves_a_training_job_through_stopping_to_stopped(
    bedrock: BaseClient, s3: S3Client, clock: VirtualClock, emulator: OpenAIEmulator
) -> None:
    arn = create(bedrock, s3)
    clock.advance(100)  # training

    bedrock.stop_model_customization_job(jobIdentifier="distil-math")
    stopping = bedrock.get_model_customization_job(jobIdentifier=arn)
    assert (stopping["status"], stages(stopping)) == ("Stopping", ("Completed", "Completed", "Stopping"))
    bedrock.stop_model_customization_job(jobIdentifier=arn)  # again while stopping: nothing changes
    clock.advance(10)  # customization_stopping_seconds
    stopped = bedrock.get_model_customization_job(jobIdentifier=arn)

    assert (stopped["status"], stages(stopped)) == ("Stopped", ("Completed", "Completed", "Stopped"))
    assert stopped["endTime"].timestamp() == START + 110
    clock.advance(1000)  # past the planned finish: a stopped job stays stopped and makes no model
    assert bedrock.get_model_customization_job(jobIdentifier=arn)["status"] == "Stopped"
    assert emulator.custom_models == {}
    refused = error_of(bedrock.stop_model_customization_job, jobIdentifier=arn)
    assert refused["Code"] == "ValidationException" and "Stopped" in refused["Message"]


def test_the_failure_knob_fails_a_training_job(
    run_customization: RunCustomization, emulator: OpenAIEmulator
) -> None:
    emulator.configure(fine_tune_failure="Simulated capacity error")

    job = run_customization(GOOD_DATA)

    assert (job["status"], job["failureMessage"]) == ("Failed", "Simulated capacity error")
    assert stages(job) == ("Completed", "Completed", "Failed")
    assert emulator.custom_models == {}


def test_wrong_training_data_ends_at_a_higher_loss(run_customization: RunCustomization) -> None:
    right = run_customization(GOOD_DATA)
    wrong = run_customization(
        conversation_jsonl((item.question, str(int(item.answer) + 1)) for item in ARITHMETIC[:20])
    )

    assert wrong["trainingMetrics"]["trainingLoss"] > right["trainingMetrics"]["trainingLoss"] + 0.5


def test_more_than_20000_records_is_too_many() -> None:
    line = json.dumps(conversation("What is 1 times 8?", "Answer: 8")).encode()

    with pytest.raises(TrainingDataError, match="the file has 20001 records; at most 20000 are allowed"):
        read_conversations(b"\n".join([line] * 20_001), 8, 20_000)
    assert len(read_conversations(b"\n".join([line] * 20_000), 8, 20_000)) == 20_000
