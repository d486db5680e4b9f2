"""Bedrock on the emulator's one app and port: endpoints for boto3, the region, unknown operations,
authentication, the request log, the admin state, reset, and the `synthtune emulator` command."""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING

import httpx2
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from moto import mock_aws
from openai import OpenAI

from synthtune_cli.clock import VirtualClock
from synthtune_cli.emulator import EmulatorServer, OpenAIEmulator
from synthtune_cli.emulator.command import add_emulator_arguments, connection_lines, run_emulator
from tests.emulator.world import (
    ARITHMETIC,
    BUCKET,
    NO_RETRIES,
    ROLE_ARN,
    RunCustomization,
    aws_session,
    conversation_jsonl,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

GOOD_DATA = conversation_jsonl((item.question, item.answer) for item in ARITHMETIC[:10])


def test_one_server_speaks_openai_and_both_bedrock_services(
    aws: EmulatorServer, bedrock_runtime: BaseClient, emulator: OpenAIEmulator
) -> None:
    assert aws.bedrock_environment() == {
        "AWS_ENDPOINT_URL_BEDROCK": aws.root_url,
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": aws.root_url,
    }
    assert aws.base_url == aws.root_url + "/v1"
    openai_reply = OpenAI(base_url=aws.base_url, api_key="anything", max_retries=0).chat.completions.create(
        model="gpt-4.1", temperature=0, messages=[{"role": "user", "content": ARITHMETIC[0].question}]
    )
    bedrock_reply = bedrock_runtime.converse(
        modelId="amazon.nova-pro-v1:0",
        messages=[{"role": "user", "content": [{"text": ARITHMETIC[0].question}]}],
        inferenceConfig={"temperature": 0},
    )

    assert (
        openai_reply.choices[0].message.content and bedrock_reply["output"]["message"]["content"][0]["text"]
    )
    assert [(request.method, request.path, request.status) for request in emulator.requests] == [
        ("POST", "/v1/chat/completions", 200),
        ("POST", "/model/amazon.nova-pro-v1:0/converse", 200),
    ]
    request_id = bedrock_reply["ResponseMetadata"]["RequestId"]
    assert re.fullmatch(r"[a-z0-9]{8}-[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{12}", request_id)


def test_unknown_operations_and_unsigned_requests(aws: EmulatorServer, emulator: OpenAIEmulator) -> None:
    signed = {"Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/bedrock/aws4_request"}

    unknown = httpx2.get(aws.root_url + "/evaluation-jobs", headers=signed)
    wrong_method = httpx2.put(aws.root_url + "/custom-models", headers=signed)
    unsigned = httpx2.get(aws.root_url + "/foundation-models")

    assert unknown.status_code == 404 and unknown.headers["x-amzn-ErrorType"] == "UnknownOperationException"
    assert "GET /evaluation-jobs" in unknown.json()["message"]
    assert wrong_method.status_code == 404
    assert (unsigned.status_code, unsigned.headers["x-amzn-ErrorType"]) == (
        403,
        "MissingAuthenticationTokenException",
    )
    bearer = httpx2.get(
        aws.root_url + "/foundation-models", headers={"Authorization": "Bearer bedrock-api-key"}
    )
    assert bearer.status_code == 200 and bearer.json()["modelSummaries"]


def test_the_region_shapes_every_arn(clock: VirtualClock) -> None:
    emulator = OpenAIEmulator(clock=clock, region="eu-west-1", s3_client=lambda: aws_session().client("s3"))
    with mock_aws(), emulator.serve() as server:
        s3 = aws_session().client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="train.jsonl", Body=GOOD_DATA)
        bedrock = aws_session().client("bedrock", endpoint_url=server.root_url, config=NO_RETRIES)
        arn = bedrock.create_model_customization_job(
            jobName="eu-job",
            customModelName="eu-model",
            roleArn=ROLE_ARN,
            baseModelIdentifier="arn:aws:bedrock:eu-west-1::foundation-model/amazon.nova-lite-v1:0:300k",
            trainingDataConfig={"s3Uri": f"s3://{BUCKET}/train.jsonl"},
            outputDataConfig={"s3Uri": f"s3://{BUCKET}/out"},
        )["jobArn"]
        details = bedrock.get_foundation_model(modelIdentifier="amazon.nova-lite-v1:0")["modelDetails"]

    assert arn.startswith(
        "arn:aws:bedrock:eu-west-1:123456789012:model-customization-job/amazon.nova-lite-v1:0:300k/"
    )
    assert details["modelArn"] == "arn:aws:bedrock:eu-west-1::foundation-model/amazon.nova-lite-v1:0"
    assert emulator.region == "eu-west-1"
    with pytest.raises(ValueError, match="region"):
        OpenAIEmulator(region="Mars")


def test_admin_state_counts_bedrock_objects_and_reset_forgets_them(
    aws: EmulatorServer,
    bedrock: BaseClient,
    run_customization: RunCustomization,
    emulator: OpenAIEmulator,
    clock: VirtualClock,
) -> None:
    model_arn = run_customization(GOOD_DATA)["outputModelArn"]
    bedrock.create_custom_model_deployment(modelDeploymentName="student", modelArn=model_arn)
    bedrock.create_provisioned_model_throughput(
        modelUnits=1, provisionedModelName="student", modelId=model_arn
    )

    counts = httpx2.get(aws.root_url + "/_emulator/state").json()["counts"]
    assert {
        key: counts[key]
        for key in (
            "customization_jobs",
            "custom_models",
            "custom_model_deployments",
            "provisioned_throughputs",
        )
    } == {
        "customization_jobs": 1,
        "custom_models": 1,
        "custom_model_deployments": 1,
        "provisioned_throughputs": 1,
    }

    emulator.reset()

    assert emulator.customization_jobs == emulator.custom_models == {}
    assert emulator.custom_model_deployments == emulator.provisioned_throughputs == {}
    with pytest.raises(ClientError) as gone:
        bedrock.get_custom_model(modelIdentifier=model_arn)
    assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_the_command_takes_a_region_and_prints_the_bedrock_endpoints(
    server: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    add_emulator_arguments(parser)

    assert parser.parse_args([]).region == "us-east-1"
    assert parser.parse_args(["--region", "us-west-2"]).region == "us-west-2"
    lines = connection_lines(server, "us-west-2")
    assert f"  AWS_ENDPOINT_URL_BEDROCK={server.root_url}" in lines
    assert f"  AWS_ENDPOINT_URL_BEDROCK_RUNTIME={server.root_url}" in lines
    assert any(f"OPENAI_BASE_URL={server.base_url}" in line for line in lines)
    assert run_emulator(parser.parse_args(["--region", "moon-base"])) == 2
    assert "moon-base" in capsys.readouterr().err


def test_the_s3_client_is_made_when_a_job_first_needs_it_and_then_kept(clock: VirtualClock) -> None:
    made: list[str] = []

    def factory() -> S3Client:
        made.append("s3")
        return aws_session().client("s3")

    emulator = OpenAIEmulator(clock=clock, s3_client=factory)
    emulator.openai_client(max_retries=0).models.list()
    assert made == []

    with mock_aws(), emulator.serve() as server:
        s3 = aws_session().client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="train.jsonl", Body=GOOD_DATA)
        bedrock = aws_session().client("bedrock", endpoint_url=server.root_url, config=NO_RETRIES)
        for number in (1, 2):
            bedrock.create_model_customization_job(
                jobName=f"job-{number}",
                customModelName=f"model-{number}",
                roleArn=ROLE_ARN,
                baseModelIdentifier="amazon.nova-micro-v1:0:128k",
                trainingDataConfig={"s3Uri": f"s3://{BUCKET}/train.jsonl"},
                outputDataConfig={"s3Uri": f"s3://{BUCKET}/out"},
            )

    assert made == ["s3"]
