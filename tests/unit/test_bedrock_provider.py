"""The Bedrock provider's translations, one by one: Converse replies into neutral completions, Bedrock's
errors into the workflow's names, job statuses and metrics files into the run's, names from run ids.

boto3 clients are driven by botocore's Stubber: no network, the real request and response shapes.
"""

from __future__ import annotations

import re
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.stub import ANY, Stubber

from synthtune.contracts.config import FineTuneHyperparameters
from synthtune.contracts.errors import (
    EndpointUnreachable,
    ModelRequestRejected,
    ModelUnavailable,
    RateLimited,
)
from synthtune.contracts.usage import Usage
from synthtune.contracts.workflow import FineTuneState, S3Location
from synthtune.prompts import SOLVER_SYSTEM_PROMPT
from synthtune.providers.bedrock.chat import SOLUTION_TOOL, VERDICT_TOOL, BedrockChat
from synthtune.providers.bedrock.finetune import BedrockFineTuning
from synthtune.providers.bedrock.names import MAX_NAME_LENGTH, request_token, resource_name
from synthtune.providers.ports import FineTuneRequest

NOVA = "bedrock/amazon.nova-micro-v1:0"
JOB_ARN = (
    "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/amazon.nova-micro-v1:0:128k/abc123def456"
)
URL = "http://127.0.0.1:9/model/x/converse"
MODEL_ARN = "arn:aws:bedrock:us-east-1:123456789012:custom-model/amazon.nova-micro-v1:0:128k/xyz789uvw012"


def client(service: str) -> Any:
    return boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def converse_reply(content: list[dict[str, Any]], stop: str = "end_turn", **usage: int) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": {"inputTokens": 40, "outputTokens": 12, "totalTokens": 52, **usage},
        "metrics": {"latencyMs": 90},
    }


def test_a_solution_comes_back_through_the_forced_tool() -> None:
    runtime = client("bedrock-runtime")
    with Stubber(runtime) as stubber:
        stubber.add_response(
            "converse",
            converse_reply(
                [
                    {
                        "toolUse": {
                            "toolUseId": "t1",
                            "name": SOLUTION_TOOL,
                            "input": {"steps": ["2+2"], "final_answer": "4"},
                        }
                    }
                ],
                stop="tool_use",
            ),
            {
                "modelId": "amazon.nova-micro-v1:0",
                "system": [{"text": SOLVER_SYSTEM_PROMPT}],
                "messages": [{"role": "user", "content": [{"text": "What is 2+2?"}]}],
                "inferenceConfig": {"maxTokens": 300, "temperature": 0.7},
                "toolConfig": ANY,
            },
        )
        result = BedrockChat(runtime).solve(NOVA, "What is 2+2?", temperature=0.7, max_tokens=300)
    (sample,) = result.samples
    assert sample.solution is not None and sample.solution.final_answer == "4"
    assert (result.model, sample.finish_reason) == (NOVA, "stop")
    assert result.usage == Usage(requests=1, input_tokens=40, output_tokens=12)
    assert result.backpressure is None  # Bedrock says nothing of its windows


@pytest.mark.parametrize(
    ("content", "stop", "finish"),
    [
        ([{"text": "2 plus 2 is"}], "max_tokens", "length"),
        ([{"text": "I can't"}], "guardrail_intervened", "content_filter"),
        ([{"text": "not the tool"}], "end_turn", "invalid_json"),
        (
            [{"toolUse": {"toolUseId": "t", "name": SOLUTION_TOOL, "input": {"steps": "no"}}}],
            "tool_use",
            "invalid_json",
        ),
    ],
)
def test_an_unusable_solution_is_a_sample_without_one(
    content: list[dict[str, Any]], stop: str, finish: str
) -> None:
    runtime = client("bedrock-runtime")
    with Stubber(runtime) as stubber:
        stubber.add_response("converse", converse_reply(content, stop=stop))
        result = BedrockChat(runtime).solve(NOVA, "What is 2+2?", temperature=0.0, max_tokens=5)
    assert [(sample.solution, sample.finish_reason) for sample in result.samples] == [(None, finish)]
    assert result.usage.requests == 1  # still billed


def test_a_model_that_answers_in_json_text_is_read_anyway() -> None:
    runtime = client("bedrock-runtime")
    with Stubber(runtime) as stubber:
        stubber.add_response("converse", converse_reply([{"text": '{"steps": ["x"], "final_answer": "7"}'}]))
        result = BedrockChat(runtime).solve(NOVA, "q", temperature=0.0, max_tokens=50)
    assert result.samples[0].solution is not None and result.samples[0].solution.final_answer == "7"


def test_an_answer_goes_to_the_endpoint_and_is_recorded_under_the_model() -> None:
    deployment = "arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/abcdefghijkl"
    runtime = client("bedrock-runtime")
    with Stubber(runtime) as stubber:
        stubber.add_response(
            "converse",
            converse_reply([{"text": "2 + 2 = 4\nAnswer: 4"}], cacheReadInputTokens=30),
            {
                "modelId": deployment,
                "system": ANY,
                "messages": ANY,
                "inferenceConfig": {"maxTokens": 100, "temperature": 0.0},
            },
        )
        reply = BedrockChat(runtime).answer(
            f"bedrock/{MODEL_ARN}", "What is 2+2?", max_tokens=100, endpoint=deployment
        )
    assert (reply.model, reply.text, reply.finish_reason) == (
        f"bedrock/{MODEL_ARN}",
        "2 + 2 = 4\nAnswer: 4",
        "stop",
    )
    # Cache reads are input tokens too (at their own price).
    assert reply.usage == Usage(requests=1, input_tokens=70, cached_input_tokens=30, output_tokens=12)


def test_a_judge_without_a_verdict_counts_as_not_shown_equal() -> None:
    runtime = client("bedrock-runtime")
    with Stubber(runtime) as stubber:
        stubber.add_response(
            "converse",
            converse_reply(
                [
                    {
                        "toolUse": {
                            "toolUseId": "t",
                            "name": VERDICT_TOOL,
                            "input": {"correct": True, "explanation": "same"},
                        }
                    }
                ],
                stop="tool_use",
            ),
        )
        stubber.add_response("converse", converse_reply([{"text": "hmm"}]))
        chat = BedrockChat(runtime)
        assert chat.judge(NOVA, "q", "4", "four")[0].correct
        verdict, usage = chat.judge(NOVA, "q", "4", "five")
    assert not verdict.correct
    assert usage.requests == 1


def test_converse_has_no_n_so_one_sample_per_request() -> None:
    assert BedrockChat(client("bedrock-runtime")).samples_per_request(NOVA) == 1


@pytest.mark.parametrize(
    ("code", "status", "error", "words"),
    [
        ("ThrottlingException", 429, RateLimited, "rate limited by Amazon Bedrock"),
        ("ServiceUnavailableException", 503, ModelUnavailable, "ServiceUnavailableException"),
        ("ModelNotReadyException", 429, ModelUnavailable, "ModelNotReadyException"),
        ("ModelTimeoutException", 408, ModelUnavailable, "ModelTimeoutException"),
        ("InternalServerException", 500, ModelUnavailable, "InternalServerException"),
        ("AccessDeniedException", 403, ModelRequestRejected, "Model access"),
        ("ValidationException", 400, ModelRequestRejected, "ValidationException"),
        ("ResourceNotFoundException", 404, ModelRequestRejected, "ResourceNotFoundException"),
        ("ServiceQuotaExceededException", 400, ModelRequestRejected, "Service Quotas"),
    ],
)
def test_each_bedrock_error_has_its_workflow_name(
    code: str, status: int, error: type[Exception], words: str
) -> None:
    runtime = client("bedrock-runtime")
    with Stubber(runtime) as stubber:
        stubber.add_client_error(
            "converse", service_error_code=code, service_message="said Bedrock", http_status_code=status
        )
        with pytest.raises(error) as raised:
            BedrockChat(runtime).answer(NOVA, "q", max_tokens=10)
    assert words in str(raised.value)
    assert "said Bedrock" in str(raised.value)


def test_an_unreachable_endpoint_fails_at_once_naming_it() -> None:
    runtime = client("bedrock-runtime")

    def unreachable(**_: object) -> None:
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9/model/x/converse")

    runtime.converse = unreachable
    with pytest.raises(EndpointUnreachable, match=re.escape(f"cannot reach {URL}")):
        BedrockChat(runtime).answer(NOVA, "q", max_tokens=10)


def test_a_refused_connection_is_named_as_such(closed_port: int) -> None:
    runtime = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=f"http://127.0.0.1:{closed_port}",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}),
    )
    with pytest.raises(EndpointUnreachable) as raised:
        BedrockChat(runtime).answer(NOVA, "q", max_tokens=10)
    message = str(raised.value)
    assert f"cannot reach http://127.0.0.1:{closed_port}/model/" in message
    assert "connection refused" in message


@pytest.mark.parametrize(
    ("error", "unknown"),
    [
        (ConnectTimeoutError(endpoint_url=URL), False),
        (ReadTimeoutError(endpoint_url=URL), True),
        (ConnectionClosedError(endpoint_url=URL), True),
    ],
)
def test_a_connection_error_says_whether_the_request_may_have_been_carried_out(
    error: Exception, unknown: bool
) -> None:
    runtime = client("bedrock-runtime")

    def failing(**_: object) -> None:
        raise error

    runtime.converse = failing
    with pytest.raises(ModelUnavailable) as raised:
        BedrockChat(runtime).answer(NOVA, "q", max_tokens=10)
    assert raised.value.outcome_unknown is unknown


@pytest.mark.parametrize(
    ("code", "status", "unknown"),
    [
        ("ModelNotReadyException", 429, False),  # refused before any work
        ("ModelTimeoutException", 408, True),
        ("ModelErrorException", 424, True),
        ("InternalServerException", 500, True),
        ("ServiceUnavailableException", 503, True),
    ],
)
def test_a_bedrock_failure_says_whether_the_model_may_have_worked(
    code: str, status: int, unknown: bool
) -> None:
    runtime = client("bedrock-runtime")
    with Stubber(runtime) as stubber:
        stubber.add_client_error("converse", service_error_code=code, http_status_code=status)
        with pytest.raises(ModelUnavailable) as raised:
            BedrockChat(runtime).answer(NOVA, "q", max_tokens=10)
    assert raised.value.outcome_unknown is unknown


def fine_tuning(control: Any, files: dict[str, str] | None = None) -> BedrockFineTuning:
    files = files or {}
    return BedrockFineTuning(
        lambda: control,
        role_arn="arn:aws:iam::123456789012:role/bedrock",
        read_text=lambda location: files[location.key],
        list_keys=lambda location: {key for key in files if key.startswith(location.key)},
    )


def job(status: str, **more: Any) -> dict[str, Any]:
    return {
        "jobArn": JOB_ARN,
        "jobName": "synthtune-job-run",
        "outputModelName": "synthtune-model-run",
        "roleArn": "arn:aws:iam::123456789012:role/bedrock",
        "status": status,
        "creationTime": "2026-12-01T00:00:00Z",
        "baseModelArn": "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-micro-v1:0:128k",
        "trainingDataConfig": {"s3Uri": "s3://bucket/runs/run/dataset/bedrock/train.jsonl"},
        "validationDataConfig": {"validators": []},
        "outputDataConfig": {"s3Uri": "s3://bucket/runs/run/finetune/output/"},
        "hyperParameters": {"epochCount": "2"},
        **more,
    }


@pytest.mark.parametrize(
    ("status", "details", "neutral"),
    [
        ("InProgress", {"validationDetails": {"status": "InProgress"}}, "validating_files"),
        ("InProgress", {"dataProcessingDetails": {"status": "InProgress"}}, "queued"),
        ("InProgress", {"trainingDetails": {"status": "InProgress"}}, "running"),
        ("Stopping", {}, "cancelling"),
        ("Completed", {}, "succeeded"),
        ("Failed", {}, "failed"),
        ("Stopped", {}, "cancelled"),
    ],
)
def test_job_statuses_in_the_pipelines_words(status: str, details: dict[str, Any], neutral: str) -> None:
    control = client("bedrock")
    extra: dict[str, Any] = {"statusDetails": details}
    if status == "Completed":
        extra["outputModelArn"] = MODEL_ARN
    if status == "Failed":
        extra["failureMessage"] = "line 3: reserved keyword"
    with Stubber(control) as stubber:
        stubber.add_response("get_model_customization_job", job(status, **extra), {"jobIdentifier": JOB_ARN})
        state = fine_tuning(control).status(
            FineTuneState(backend="bedrock", job_id=JOB_ARN, status="running", base_model=NOVA)
        )
    assert (state.status, state.epochs, state.base_model) == (neutral, 2, NOVA)
    assert state.fine_tuned_model == (f"bedrock/{MODEL_ARN}" if status == "Completed" else None)
    assert state.error == {"Failed": "line 3: reserved keyword", "Stopped": "the job was stopped"}.get(
        status, ""
    )


def test_the_loss_curve_comes_from_the_jobs_metrics_files() -> None:
    folder = "runs/run/finetune/output/model-customization-job-abc123def456/"
    files = {
        f"{folder}training_artifacts/step_wise_training_metrics.csv": (
            "step_number,epoch_number,training_loss,perplexity\n0,0,2.1,8.2\n1,0,1.5,4.5\n2,1,0.9,2.5\n"
        ),
        f"{folder}validation_artifacts/post_fine_tuning_validation/validation_metrics.csv": (
            "step_number,epoch_number,validation_loss,perplexity\n2,1,1.1,3.0\n"
        ),
        # Another job's metrics under the same prefix are not this job's.
        f"{folder.replace('abc123def456', 'other')}training_artifacts/step_wise_training_metrics.csv": (
            "step_number,epoch_number,training_loss,perplexity\n0,0,9.9,9.9\n"
        ),
    }
    control = client("bedrock")
    with Stubber(control) as stubber:
        stubber.add_response("get_model_customization_job", job("Completed", outputModelArn=MODEL_ARN))
        steps = fine_tuning(control, files).training_metrics(
            FineTuneState(backend="bedrock", job_id=JOB_ARN, status="succeeded", base_model=NOVA)
        )
    assert [(s.step, s.epoch, s.training_loss, s.validation_loss) for s in steps] == [
        (0, 0, 2.1, None),
        (1, 0, 1.5, None),
        (2, 1, 0.9, 1.1),
    ]


def test_hyperparameters_go_to_bedrock_under_its_names_as_strings() -> None:
    chosen = fine_tuning(client("bedrock"))._hyperparameters(
        FineTuneHyperparameters(n_epochs=3, learning_rate=2e-5, learning_rate_warmup_steps=5)
    )
    assert chosen == {"epochCount": "3", "learningRate": "2e-05", "learningRateWarmupSteps": "5"}
    assert fine_tuning(client("bedrock"))._hyperparameters(FineTuneHyperparameters()) == {}


def test_a_create_whose_name_is_taken_finds_the_job_it_made() -> None:
    control = client("bedrock")
    with Stubber(control) as stubber:
        stubber.add_client_error(
            "create_model_customization_job", service_error_code="ConflictException", http_status_code=409
        )
        stubber.add_response(
            "get_model_customization_job", job("InProgress"), {"jobIdentifier": "synthtune-job-run"}
        )
        state = fine_tuning(control).start(
            FineTuneRequest(
                run_id="run",
                base_model=NOVA,
                train=S3Location(bucket="bucket", key="runs/run/dataset/bedrock/train.jsonl"),
                validation=None,
                output=S3Location(bucket="bucket", key="runs/run/finetune/output/"),
                hyperparameters=FineTuneHyperparameters(),
                suffix="synthtune",
                train_tokens=1000,
            )
        )
    assert state.job_id == JOB_ARN


NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")


@pytest.mark.parametrize("run_id", ["run", "my_run-2026", "x" * 80, "a" * 79 + "b"])
def test_names_from_run_ids_are_valid_short_and_distinct(run_id: str) -> None:
    for kind in ("job", "model", "deployment", "throughput"):
        name = resource_name(run_id, kind)
        assert len(name) <= MAX_NAME_LENGTH
        assert NAME.match(name), name
        assert name == resource_name(run_id, kind)  # a retry computes the same
    assert resource_name("x" * 80, "job") != resource_name("x" * 79 + "y", "job")
    assert request_token(run_id, "job") == request_token(run_id, "job") != request_token(run_id, "deployment")
