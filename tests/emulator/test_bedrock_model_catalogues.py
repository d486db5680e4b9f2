"""What each provider's model listing tells a caller about lifecycles: Bedrock's foundation models (with
customisation support and inference types) and OpenAI's `shutdown_date`."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from openai import OpenAI

from tests.emulator.world import ARITHMETIC, RunJob, training_jsonl


def test_nova_premier_is_legacy_with_its_end_of_life(bedrock: BaseClient) -> None:
    details = bedrock.get_foundation_model(modelIdentifier="amazon.nova-premier-v1:0")["modelDetails"]

    assert details["modelArn"] == "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-premier-v1:0"
    lifecycle = details["modelLifecycle"]
    assert lifecycle["status"] == "LEGACY"
    assert lifecycle["endOfLifeTime"] == datetime(2026, 9, 14, tzinfo=UTC)
    assert lifecycle["legacyTime"] == datetime(2026, 3, 13, tzinfo=UTC)


def test_fine_tunable_models_and_their_customisation_variants(bedrock: BaseClient) -> None:
    micro = bedrock.get_foundation_model(modelIdentifier="amazon.nova-micro-v1:0")["modelDetails"]
    variant = bedrock.get_foundation_model(
        modelIdentifier="arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-micro-v1:0:128k"
    )["modelDetails"]

    assert (micro["modelLifecycle"]["status"], micro["customizationsSupported"]) == (
        "ACTIVE",
        ["FINE_TUNING"],
    )
    assert micro["inferenceTypesSupported"] == ["ON_DEMAND"]
    assert (variant["modelId"], variant["inferenceTypesSupported"]) == (
        "amazon.nova-micro-v1:0:128k",
        ["PROVISIONED"],
    )
    fine_tunable = {
        summary["modelId"]
        for summary in bedrock.list_foundation_models(byCustomizationType="FINE_TUNING")["modelSummaries"]
    }
    assert {
        "amazon.nova-micro-v1:0:128k",
        "amazon.nova-lite-v1:0:300k",
        "amazon.nova-pro-v1:0:300k",
        "amazon.nova-2-lite-v1:0:256k",
        "meta.llama3-1-8b-instruct-v1:0:128k",
        "meta.llama3-1-70b-instruct-v1:0:128k",
    } < fine_tunable
    assert not any(model_id.startswith(("anthropic.", "openai.")) for model_id in fine_tunable)


def test_foundation_models_filter_by_provider_and_inference_type(bedrock: BaseClient) -> None:
    anthropic = bedrock.list_foundation_models(byProvider="anthropic")["modelSummaries"]
    profile_only = bedrock.list_foundation_models(byInferenceType="INFERENCE_PROFILE")["modelSummaries"]

    assert {summary["modelId"] for summary in anthropic} == {
        "anthropic.claude-haiku-4-5-20251001-v1:0",
        "anthropic.claude-sonnet-4-5-20250929-v1:0",
    }
    assert "amazon.nova-2-lite-v1:0" in {summary["modelId"] for summary in profile_only}
    with pytest.raises(ClientError) as unknown:
        bedrock.get_foundation_model(modelIdentifier="amazon.nova-nano-v9:0")
    assert unknown.value.response["Error"]["Code"] == "ValidationException"


def test_openai_models_carry_their_shutdown_date(client: OpenAI, run_job: RunJob) -> None:
    listed = {model.id: model.shutdown_date for model in client.models.list()}

    assert listed["gpt-4.1-nano"] == listed["gpt-4.1-nano-2025-04-14"] == "2026-10-23"
    assert listed["gpt-3.5-turbo"] == listed["o4-mini"] == "2026-10-23"
    assert listed["gpt-5"] == listed["gpt-5-nano"] == listed["o3"] == "2026-12-11"
    assert listed["gpt-4o-2024-08-06"] == listed["gpt-4.1-mini"] == "2027-01-14"
    assert client.models.retrieve("gpt-4o-mini").shutdown_date == "2027-01-14"
    job = run_job(
        training_jsonl((item.question, item.answer) for item in ARITHMETIC[:10]), model="gpt-4.1-mini"
    )
    assert job.fine_tuned_model is not None
    assert client.models.retrieve(job.fine_tuned_model).shutdown_date == "2027-01-14"
    # The emulator reports the date and keeps serving: it simulates, it does not enforce.
    reply = client.chat.completions.create(
        model="gpt-4.1-nano", messages=[{"role": "user", "content": ARITHMETIC[0].question}]
    )
    assert reply.choices[0].message.content
