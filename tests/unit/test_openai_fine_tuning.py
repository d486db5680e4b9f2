"""OpenAI fine-tuning at the edges a user hits: the wind-down's 403, and where the data comes from."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2
import openai
import pytest

from synthtune.contracts.config import FineTuneHyperparameters
from synthtune.contracts.errors import FineTuneUnavailable, InvalidConfig
from synthtune.contracts.workflow import S3Location
from synthtune.providers.openai.finetune import OpenAIFineTuning
from synthtune.providers.ports import FineTuneRequest

REQUEST = FineTuneRequest(
    run_id="run-1",
    base_model="gpt-4.1-mini-2025-04-14",
    train=S3Location(bucket="data", key="runs/run-1/dataset/train.jsonl"),
    validation=None,
    output=S3Location(bucket="data", key="runs/run-1/finetune/output/"),
    hyperparameters=FineTuneHyperparameters(),
    suffix="synthtune",
    train_tokens=1000,
)


def test_a_403_on_job_creation_is_the_wind_down_explained(tmp_path: Path) -> None:
    seen: list[str] = []

    def api(request: httpx2.Request) -> httpx2.Response:
        seen.append(f"{request.method} {request.url.path}")
        if request.method == "GET" and request.url.path.endswith("/files"):
            return httpx2.Response(200, json={"object": "list", "data": [], "has_more": False})
        if request.url.path.endswith("/files"):
            return httpx2.Response(
                200,
                json={
                    "id": "file-1",
                    "object": "file",
                    "bytes": 10,
                    "created_at": 0,
                    "filename": "train.jsonl",
                    "purpose": "fine-tune",
                    "status": "processed",
                },
            )
        error = {
            "message": "You do not have access to fine-tuning.",
            "type": "invalid_request_error",
            "code": None,
        }
        return httpx2.Response(403, json={"error": error})

    client = openai.OpenAI(
        api_key="sk-test",
        base_url="http://openai.invalid/v1",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(api)),
    )
    downloaded: list[S3Location] = []

    def download(location: S3Location, path: Path) -> None:
        downloaded.append(location)
        path.write_text(json.dumps({"messages": []}) + "\n")

    with pytest.raises(FineTuneUnavailable) as refused:
        OpenAIFineTuning(lambda: client, download).start(REQUEST)

    message = str(refused.value)
    assert "403" in message
    assert "since 2026-07-02 only organisations that used a fine-tuned model in the last 60 days" in message
    assert "nobody may after 2027-01-06" in message
    assert "bedrock/amazon.nova-micro-v1:0" in message
    assert downloaded == [REQUEST.train]  # the run's own file, from S3
    # No earlier upload of the run's file to use: it is uploaded, then the job is refused.
    assert seen == ["GET /v1/files", "POST /v1/files", "POST /v1/fine_tuning/jobs"]


def test_bedrock_hyperparameters_are_refused_for_openai() -> None:
    tuning = OpenAIFineTuning(lambda: None, lambda location, path: None)  # type: ignore[arg-type, return-value]
    tuning.check_hyperparameters(FineTuneHyperparameters(n_epochs=4, batch_size=8), "gpt-4.1-mini-2025-04-14")
    with pytest.raises(
        InvalidConfig, match=r"fine_tune\.learning_rate_warmup_steps: OpenAI fine-tuning takes no"
    ):
        tuning.check_hyperparameters(
            FineTuneHyperparameters(learning_rate_warmup_steps=3), "gpt-4.1-mini-2025-04-14"
        )
