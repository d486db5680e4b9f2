"""Serving custom models: on-demand custom model deployments and Provisioned Throughput, through boto3.

A custom model answers only through one of them, as the model its job's training data made: it repeats its
training replies and is better than its base on the categories it was trained on.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from synthtune_cli.clock import VirtualClock
from synthtune_cli.emulator import KnowledgeItem, OpenAIEmulator
from tests.emulator.world import ARITHMETIC, RunCustomization, conversation_jsonl

TRAIN, HELD_OUT = ARITHMETIC[:80], ARITHMETIC[80:]
BASE = "amazon.nova-micro-v1:0"


def error_of(call: Any, **arguments: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as raised:
        call(**arguments)
    return {
        **raised.value.response["Error"],
        "Status": raised.value.response["ResponseMetadata"]["HTTPStatusCode"],
    }


def ask(runtime: BaseClient, model_id: str, question: str) -> str:
    response = runtime.converse(
        modelId=model_id,
        messages=[{"role": "user", "content": [{"text": question}]}],
        inferenceConfig={"temperature": 0},
    )
    return str(response["output"]["message"]["content"][0]["text"])


def accuracy(runtime: BaseClient, model_id: str, items: list[KnowledgeItem]) -> float:
    replies = [ask(runtime, model_id, item.question) for item in items]
    return sum(
        reply.endswith(f"Answer: {item.answer}") for reply, item in zip(replies, items, strict=True)
    ) / len(items)


@pytest.fixture
def custom_model(run_customization: RunCustomization) -> str:
    job = run_customization(conversation_jsonl((item.question, item.answer) for item in TRAIN))
    assert job["status"] == "Completed"
    return str(job["outputModelArn"])


def test_a_deployment_is_creating_then_active_and_answers_as_the_fine_tuned_model(
    bedrock: BaseClient,
    bedrock_runtime: BaseClient,
    clock: VirtualClock,
    emulator: OpenAIEmulator,
    custom_model: str,
) -> None:
    arn = bedrock.create_custom_model_deployment(modelDeploymentName="math-student", modelArn=custom_model)[
        "customModelDeploymentArn"
    ]

    assert (
        arn.startswith("arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/")
        and len(arn.rsplit("/", 1)[1]) == 12
    )
    creating = bedrock.get_custom_model_deployment(customModelDeploymentIdentifier="math-student")
    assert (creating["status"], creating["modelArn"]) == ("Creating", custom_model)
    not_ready = error_of(
        bedrock_runtime.converse, modelId=arn, messages=[{"role": "user", "content": [{"text": "q"}]}]
    )
    assert (not_ready["Code"], not_ready["Status"]) == ("ModelNotReadyException", 429)
    clock.advance(299)
    assert bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=arn)["status"] == "Creating"
    clock.advance(1)  # deployment_seconds
    assert emulator.custom_model_deployments[arn]["status"] == "Active"

    assert ask(bedrock_runtime, arn, TRAIN[3].question) == f"Work it out.\nAnswer: {TRAIN[3].answer}"
    base, tuned = accuracy(bedrock_runtime, BASE, HELD_OUT), accuracy(bedrock_runtime, arn, HELD_OUT)
    assert base < 0.6 < tuned


def test_deployments_are_listed_filtered_and_gone_once_deleted(
    bedrock: BaseClient,
    bedrock_runtime: BaseClient,
    clock: VirtualClock,
    emulator: OpenAIEmulator,
    custom_model: str,
) -> None:
    first = bedrock.create_custom_model_deployment(modelDeploymentName="first", modelArn=custom_model)
    clock.advance(300)
    second = bedrock.create_custom_model_deployment(
        modelDeploymentName="second", modelArn=custom_model, description="the canary"
    )

    def names(**filters: Any) -> list[str]:
        summaries = bedrock.list_custom_model_deployments(**filters)["modelDeploymentSummaries"]
        return [summary["customModelDeploymentName"] for summary in summaries]

    assert names() == ["second", "first"]
    assert names(statusEquals="Active") == ["first"]
    assert names(nameContains="sec", modelArnEquals=custom_model) == ["second"]
    assert names(modelArnEquals=custom_model.replace("/", "/x", 1)) == []
    assert (
        bedrock.get_custom_model_deployment(customModelDeploymentIdentifier="second")["description"]
        == "the canary"
    )

    bedrock.delete_custom_model_deployment(customModelDeploymentIdentifier=first["customModelDeploymentArn"])
    gone = error_of(
        bedrock.get_custom_model_deployment, customModelDeploymentIdentifier=first["customModelDeploymentArn"]
    )
    assert gone["Code"] == "ResourceNotFoundException"
    invoke = error_of(
        bedrock_runtime.converse,
        modelId=first["customModelDeploymentArn"],
        messages=[{"role": "user", "content": [{"text": "q"}]}],
    )
    assert invoke["Code"] == "ResourceNotFoundException"
    assert list(emulator.custom_model_deployments) == [second["customModelDeploymentArn"]]


def test_a_deployment_token_is_idempotent_and_a_reused_name_conflicts(
    bedrock: BaseClient, emulator: OpenAIEmulator, custom_model: str
) -> None:
    first = bedrock.create_custom_model_deployment(
        modelDeploymentName="student", modelArn=custom_model, clientRequestToken="deploy-run-42"
    )
    again = bedrock.create_custom_model_deployment(
        modelDeploymentName="student", modelArn=custom_model, clientRequestToken="deploy-run-42"
    )

    assert again["customModelDeploymentArn"] == first["customModelDeploymentArn"]
    conflict = error_of(
        bedrock.create_custom_model_deployment, modelDeploymentName="student", modelArn=custom_model
    )
    assert conflict["Code"] == "ConflictException"
    bad_name = error_of(
        bedrock.create_custom_model_deployment, modelDeploymentName="two__underscores", modelArn=custom_model
    )
    assert bad_name["Code"] == "ValidationException" and "modelDeploymentName" in bad_name["Message"]
    assert len(emulator.custom_model_deployments) == 1


def test_the_deployment_failure_knob_fails_a_creating_deployment(
    bedrock: BaseClient, bedrock_runtime: BaseClient, emulator: OpenAIEmulator, custom_model: str
) -> None:
    emulator.configure(deployment_failure="Simulated capacity shortage")

    arn = bedrock.create_custom_model_deployment(modelDeploymentName="student", modelArn=custom_model)[
        "customModelDeploymentArn"
    ]

    deployment = bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=arn)
    assert (deployment["status"], deployment["failureMessage"]) == ("Failed", "Simulated capacity shortage")
    refused = error_of(
        bedrock_runtime.converse, modelId=arn, messages=[{"role": "user", "content": [{"text": "q"}]}]
    )
    assert refused["Code"] == "ValidationException" and "Simulated capacity shortage" in refused["Message"]


def test_a_custom_model_is_served_only_through_a_deployment_or_throughput_and_not_once_deleted(
    bedrock: BaseClient, bedrock_runtime: BaseClient, emulator: OpenAIEmulator, custom_model: str
) -> None:
    message = [{"role": "user", "content": [{"text": TRAIN[0].question}]}]
    on_demand = error_of(bedrock_runtime.converse, modelId=custom_model, messages=message)
    assert on_demand["Code"] == "ValidationException" and "on-demand throughput" in on_demand["Message"]

    bedrock.delete_custom_model(modelIdentifier=custom_model)

    assert emulator.custom_models == {}
    assert (
        error_of(bedrock.get_custom_model, modelIdentifier=custom_model)["Code"]
        == "ResourceNotFoundException"
    )
    assert error_of(bedrock_runtime.converse, modelId=custom_model, messages=message)["Code"] == (
        "ResourceNotFoundException"
    )
    deploy = error_of(
        bedrock.create_custom_model_deployment, modelDeploymentName="late", modelArn=custom_model
    )
    assert deploy["Code"] == "ResourceNotFoundException"
    provision = error_of(
        bedrock.create_provisioned_model_throughput,
        modelUnits=1,
        provisionedModelName="late",
        modelId=custom_model,
    )
    assert provision["Code"] == "ResourceNotFoundException"


@pytest.mark.parametrize("base", ["meta.llama3-1-8b-instruct-v1:0:128k", "amazon.nova-2-lite-v1:0:256k"])
def test_only_nova_micro_lite_and_pro_deploy_on_demand(
    bedrock: BaseClient, run_customization: RunCustomization, base: str
) -> None:
    pairs = [(item.question, item.answer) for item in ARITHMETIC] * 2
    job = run_customization(conversation_jsonl(pairs[:200]), base=base)

    refused = error_of(
        bedrock.create_custom_model_deployment, modelDeploymentName="d", modelArn=job["outputModelArn"]
    )

    assert refused["Code"] == "ValidationException" and "use Provisioned Throughput" in refused["Message"]


def test_provisioned_throughput_serves_a_custom_model_once_in_service(
    bedrock: BaseClient,
    bedrock_runtime: BaseClient,
    clock: VirtualClock,
    emulator: OpenAIEmulator,
    run_customization: RunCustomization,
) -> None:
    job = run_customization(
        conversation_jsonl((item.question, item.answer) for item in TRAIN),
        base="meta.llama3-1-8b-instruct-v1:0:128k",
    )
    arn = bedrock.create_provisioned_model_throughput(
        modelUnits=1,
        provisionedModelName="llama-student",
        modelId=job["outputModelArn"],
        commitmentDuration="OneMonth",
    )["provisionedModelArn"]

    assert arn.startswith("arn:aws:bedrock:us-east-1:123456789012:provisioned-model/")
    creating = bedrock.get_provisioned_model_throughput(provisionedModelId="llama-student")
    assert (creating["status"], creating["modelArn"], creating["modelUnits"]) == (
        "Creating",
        job["outputModelArn"],
        1,
    )
    assert creating["foundationModelArn"].endswith("foundation-model/meta.llama3-1-8b-instruct-v1:0")
    assert (creating["commitmentExpirationTime"] - creating["creationTime"]).days == 30
    message = [{"role": "user", "content": [{"text": TRAIN[5].question}]}]
    assert (
        error_of(bedrock_runtime.converse, modelId=arn, messages=message)["Code"] == "ModelNotReadyException"
    )
    clock.advance(600)  # provisioning_seconds

    assert emulator.provisioned_throughputs[arn]["status"] == "InService"
    assert ask(bedrock_runtime, arn, TRAIN[5].question) == f"Work it out.\nAnswer: {TRAIN[5].answer}"
    assert accuracy(bedrock_runtime, arn, HELD_OUT) > accuracy(
        bedrock_runtime, "meta.llama3-1-8b-instruct-v1:0", HELD_OUT
    )
    listed = bedrock.list_provisioned_model_throughputs(statusEquals="InService")["provisionedModelSummaries"]
    assert [summary["provisionedModelArn"] for summary in listed] == [arn]

    bedrock.delete_provisioned_model_throughput(provisionedModelId=arn)
    assert error_of(bedrock.get_provisioned_model_throughput, provisionedModelId=arn)["Code"] == (
        "ResourceNotFoundException"
    )
    assert (
        error_of(bedrock_runtime.converse, modelId=arn, messages=message)["Code"]
        == "ResourceNotFoundException"
    )
    assert emulator.provisioned_throughputs == {}


def test_provisioned_throughput_on_a_foundation_model(
    bedrock: BaseClient, bedrock_runtime: BaseClient, clock: VirtualClock, emulator: OpenAIEmulator
) -> None:
    emulator.configure(provisioning_seconds=0)
    arn = bedrock.create_provisioned_model_throughput(
        modelUnits=2, provisionedModelName="pro", modelId="amazon.nova-pro-v1:0:300k"
    )["provisionedModelArn"]

    throughput = bedrock.get_provisioned_model_throughput(provisionedModelId=arn)
    assert (throughput["status"], throughput["modelUnits"]) == ("InService", 2)
    assert throughput["modelArn"].endswith("foundation-model/amazon.nova-pro-v1:0:300k")
    assert ask(bedrock_runtime, arn, ARITHMETIC[0].question) == ask(
        bedrock_runtime, "amazon.nova-pro-v1:0", ARITHMETIC[0].question
    )
    legacy = error_of(
        bedrock.create_provisioned_model_throughput,
        modelUnits=1,
        provisionedModelName="premier",
        modelId="amazon.nova-premier-v1:0",
    )
    assert legacy["Code"] == "ValidationException" and "Legacy" in legacy["Message"]
    emulator.configure(provisioning_seconds=600, provisioning_failure="No capacity")
    failed = bedrock.create_provisioned_model_throughput(
        modelUnits=1, provisionedModelName="lite", modelId="amazon.nova-lite-v1:0"
    )
    assert (
        bedrock.get_provisioned_model_throughput(provisionedModelId=failed["provisionedModelArn"])["status"]
        == "Failed"
    )


def test_changing_knobs_leaves_what_was_due_under_the_old_ones(
    bedrock: BaseClient, clock: VirtualClock, emulator: OpenAIEmulator, custom_model: str
) -> None:
    arn = bedrock.create_custom_model_deployment(modelDeploymentName="student", modelArn=custom_model)[
        "customModelDeploymentArn"
    ]
    clock.advance(301)  # Active by now, though nobody has looked

    emulator.configure(deployment_failure="Too late to fail")

    assert emulator.custom_model_deployments[arn]["status"] == "Active"
