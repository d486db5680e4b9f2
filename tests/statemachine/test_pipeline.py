"""The real statemachine/pipeline.asl.json, executed on moto with the handlers in-process: one test per path.

Every run uses the OpenAI emulator on loopback and a virtual clock, so Wait states and retry intervals
cost no real time while the poll loop still turns as it would in the cloud.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from synthtune.records.layout import RunLayout
from synthtune_cli.emulator import OpenAIEmulator
from synthtune_cli.offline import OfflineStack
from synthtune_cli.template import load_template
from tests.support import FAST_CONFIG, OPENAI_MODELS, event, execute, jsonl, sample_rows

SMALL_SET = sample_rows(per_category=8)  # 24 problems: 5 held out, enough left to fine-tune on
PROVIDERS = {"openai": OPENAI_MODELS, "bedrock": {}}
"""Each provider's models (the defaults are Bedrock's)."""


def fine_tune_statuses(execution: Any) -> list[str]:
    statuses = []
    for history_event in execution.history:
        details = history_event.get("stateExitedEventDetails")
        if details and details["name"] in {"StartFineTune", "CheckFineTune"}:
            statuses.append(json.loads(details["output"])["finetune"]["status"])
    return statuses


def render_input_transformer(s3_event: dict[str, Any]) -> dict[str, Any]:
    """What EventBridge hands the state machine for an S3 upload, from template.yaml's InputTransformer."""
    machine = load_template()["Resources"]["PipelineStateMachine"]
    transformer = machine["Properties"]["Events"]["ProblemSetUploaded"]["Properties"]["InputTransformer"]
    rendered = transformer["InputTemplate"]
    for name, path in transformer["InputPathsMap"].items():
        value: Any = s3_event
        for part in path.removeprefix("$.").split("."):
            value = value[part]
        rendered = rendered.replace(f"<{name}>", json.dumps(value))
    return dict(json.loads(rendered))


def created(emulator: OpenAIEmulator, path: str) -> int:
    """Creates the emulator carried out (whatever the caller was told), e.g. of deployments."""
    return sum(
        1
        for request in emulator.requests
        if request.method == "POST" and request.path == path and request.status < 300
    )


DEPLOYMENTS = "/model-customization/custom-model-deployments"


def test_happy_path_on_bedrock_from_an_s3_upload_event(stack: OfflineStack, emulator: OpenAIEmulator) -> None:
    s3_event = event("s3-object-created.json")
    s3_event["detail"]["bucket"]["name"] = stack.bucket
    s3_event["detail"]["object"]["key"] = "problem-sets/uploaded.jsonl"
    stack.upload("problem-sets/uploaded.jsonl", jsonl(SMALL_SET))

    execution = execute(
        stack,
        SMALL_SET,
        key="problem-sets/uploaded.jsonl",
        execution_input=render_input_transformer(s3_event),
    )

    assert execution.status == "SUCCEEDED", execution.description.get("cause")
    output = execution.output
    assert set(output["accuracy"]) == {"base", "fine_tuned", "teacher"}
    assert output["summary"]["key"] == RunLayout("test-run").summary
    run = execution.records["RUN"]
    assert (run["status"], run["stage"], run["splits"]) == (
        "SUCCEEDED",
        "done",
        {"train": 17, "validation": 2, "holdout": 5},
    )
    # Every train/validation problem was answered once by the teacher, in one of the shards.
    shards = [item for sk, item in execution.records.items() if sk.startswith("SHARD#")]
    assert sum(shard["problems"] for shard in shards) == 19
    # Bedrock read the run's dataset in its own format, from the run's prefix.
    dataset = execution.records["DATASET"]
    assert dataset["format"] == "bedrock-conversation-2024"
    train = stack.download(dataset["train_key"])
    assert train is not None
    examples = [json.loads(line) for line in train.splitlines()]
    assert len(examples) == dataset["train_examples"] >= 8
    assert all([m["role"] for m in example["messages"]] == ["user", "assistant"] for example in examples)
    assert all(
        re.search(r"\nAnswer: .+$", example["messages"][1]["content"][0]["text"]) for example in examples
    )
    # One fine-tuning job, and the model that was benchmarked is the one it produced.
    (job,) = emulator.customization_jobs.values()
    assert job["trainingDataConfig"]["s3Uri"] == f"s3://{stack.bucket}/{dataset['train_key']}"
    finetune = execution.records["FINETUNE"]
    assert finetune["backend"] == "bedrock"
    assert finetune["fine_tuned_model"] == f"bedrock/{job['outputModelArn']}"
    # One deployment, created for the benchmark and deleted after it: nothing left that could bill.
    assert created(emulator, DEPLOYMENTS) == 1
    assert emulator.custom_model_deployments == {}
    assert execution.records["SERVING"]["status"] == "released"
    # The loss per step, from the job's metrics in S3, is in the run.
    curve = (stack.download(RunLayout("test-run").training_metrics) or b"").decode()
    assert curve.startswith("step,epoch,training_loss,validation_loss\n")
    summary = json.loads(stack.download(RunLayout("test-run").summary) or b"{}")
    assert summary["status"] == "SUCCEEDED"
    assert summary["fine_tune"]["backend"] == "bedrock"
    assert summary["fine_tune"]["training_loss"] == pytest.approx(float(curve.splitlines()[-1].split(",")[2]))
    assert summary["cost_usd"] > 0
    assert not [request for request in emulator.requests if request.path.startswith("/v1/")]  # no OpenAI
    report = (stack.download(RunLayout("test-run").report) or b"").decode()
    assert "## Serving" in report
    assert "deleted after the benchmark" in report


def test_happy_path_on_openai(stack: OfflineStack, emulator: OpenAIEmulator) -> None:
    execution = execute(stack, SMALL_SET, config={**FAST_CONFIG, **OPENAI_MODELS})

    assert execution.status == "SUCCEEDED", execution.description.get("cause")
    train = stack.download(RunLayout("test-run").train)
    assert train is not None
    examples = [json.loads(line) for line in train.splitlines()]
    assert len(examples) == execution.records["DATASET"]["train_examples"] >= 10
    assert all(
        [m["role"] for m in example["messages"]] == ["system", "user", "assistant"] for example in examples
    )
    (job,) = emulator.fine_tuning_jobs.values()
    assert execution.records["FINETUNE"]["fine_tuned_model"] == job["fine_tuned_model"]
    assert execution.records["SERVING"]["kind"] == "none"  # OpenAI serves a fine-tune under its own name
    summary = json.loads(stack.download(RunLayout("test-run").summary) or b"{}")
    assert summary["fine_tune"]["backend"] == "openai"
    assert stack.download(RunLayout("test-run").training_metrics) is not None
    assert not [request for request in emulator.requests if not request.path.startswith("/v1/")]  # no Bedrock


def test_poll_loop_goes_round_until_the_job_succeeds(stack: OfflineStack, emulator: OpenAIEmulator) -> None:
    emulator.configure(validation_seconds=120, queue_seconds=300, min_training_seconds=900)

    execution = execute(stack, SMALL_SET, config={**FAST_CONFIG, "poll_interval_seconds": 100})

    assert execution.status == "SUCCEEDED", execution.description.get("cause")
    statuses = fine_tune_statuses(execution)
    assert statuses[0] == "validating_files"
    assert statuses[-1] == "succeeded"
    assert {"validating_files", "queued", "running"} <= set(statuses)
    # 120 + 300 + 900 emulated seconds of job, polled every 100 s: at least 13 checks.
    assert execution.entered("CheckFineTune") >= 13
    assert execution.entered("WaitForFineTune") == execution.entered("CheckFineTune")


def test_invalid_problem_set_fails_before_any_model_call(
    stack: OfflineStack, emulator: OpenAIEmulator
) -> None:
    rows: list[dict[str, Any]] = [
        *SMALL_SET[:3],
        {"question": "What is 1+1?", "anwser": "2"},
        {"answer": "x"},
    ]

    execution = execute(stack, rows)

    assert execution.status == "FAILED"
    assert execution.description["error"] == "InvalidProblemSet"
    cause = execution.description["cause"]
    assert "line 4: unknown field 'anwser'" in cause
    assert "line 5: field 'question' is required" in cause
    assert emulator.requests == []  # nothing was spent
    run = execution.records["RUN"]
    assert (run["status"], run["failed_state"], run["error"]) == ("FAILED", "Prepare", "InvalidProblemSet")
    assert run["cause"] == cause
    assert execution.entered("Generate") == 0


def test_invalid_execution_input_is_recorded(stack: OfflineStack) -> None:
    execution = execute(stack, SMALL_SET, execution_input={"bucket": stack.bucket})

    assert execution.status == "FAILED"
    assert execution.description["error"] == "InvalidConfig"
    assert "execution input: key: Field required" in execution.description["cause"]
    assert execution.records["RUN"]["failed_state"] == "Prepare"


def test_fine_tune_failure_keeps_partial_results(stack: OfflineStack, emulator: OpenAIEmulator) -> None:
    emulator.configure(fine_tune_failure="Simulated GPU failure")

    execution = execute(stack, SMALL_SET, config=FAST_CONFIG)

    assert execution.status == "FAILED"
    assert execution.description["error"] == "FineTuneFailed"
    assert "ended failed" in execution.description["cause"]
    assert "Simulated GPU failure" in execution.description["cause"]
    run = execution.records["RUN"]
    assert (run["status"], run["failed_state"], run["fine_tune_status"]) == (
        "FAILED",
        "CheckFineTune",
        "failed",
    )
    # What was already paid for is still there: the teacher's answers and the assembled dataset.
    assert stack.download(RunLayout("test-run").train) is not None
    assert execution.records["DATASET"]["train_examples"] > 0
    assert execution.entered("Benchmark") == 0


@pytest.mark.parametrize("provider", ["openai", "bedrock"])
def test_fine_tune_that_outlasts_max_wait_is_cancelled(
    stack: OfflineStack, emulator: OpenAIEmulator, provider: str
) -> None:
    emulator.configure(min_training_seconds=10_000)

    execution = execute(
        stack,
        SMALL_SET,
        config={**FAST_CONFIG, **PROVIDERS[provider], "poll_interval_seconds": 300, "max_wait_seconds": 1200},
    )

    assert execution.status == "FAILED"
    assert execution.description["error"] == "FineTuneTimedOut"
    assert "did not finish within 1200 seconds" in execution.description["cause"]
    assert execution.entered("CheckFineTune") == 4
    assert execution.entered("CancelFineTune") == 1
    if provider == "openai":
        (job,) = emulator.fine_tuning_jobs.values()
        assert job["status"] == "cancelled"
    else:
        (job,) = emulator.customization_jobs.values()
        assert job["status"] in {"Stopping", "Stopped"}
    assert execution.records["RUN"]["failed_state"] == "WaitForFineTune"


def test_transient_provider_errors_are_retried_without_a_second_job(
    stack: OfflineStack, emulator: OpenAIEmulator
) -> None:
    # The SDK does not retry here (OPENAI_MAX_RETRIES=0), so the workflow's Retry must.
    emulator.inject_errors(count=2, status=503, path_prefix="/v1/fine_tuning/jobs")

    execution = execute(stack, SMALL_SET, config={**FAST_CONFIG, **OPENAI_MODELS})

    assert execution.status == "SUCCEEDED", execution.description.get("cause")
    assert execution.lambda_failures().count("ModelUnavailable") == 2
    assert len(emulator.fine_tuning_jobs) == 1


@pytest.mark.parametrize(
    ("provider", "create_path"),
    [("openai", "/v1/fine_tuning/jobs"), ("bedrock", "/model-customization-jobs")],
)
def test_a_job_created_but_its_response_lost_is_found_not_made_twice(
    stack: OfflineStack, emulator: OpenAIEmulator, provider: str, create_path: str
) -> None:
    # The provider creates the job and the answer never arrives: counted at the provider, still one job.
    emulator.lose_responses(count=1, status=502, path_prefix=create_path, method="POST")

    execution = execute(stack, SMALL_SET, config={**FAST_CONFIG, **PROVIDERS[provider]})

    assert execution.status == "SUCCEEDED", execution.description.get("cause")
    jobs = emulator.fine_tuning_jobs if provider == "openai" else emulator.customization_jobs
    assert len(jobs) == 1
    assert execution.records["FINETUNE"]["job_id"] in jobs


@pytest.mark.parametrize(
    ("provider", "model_path"), [("openai", "/v1/chat/completions"), ("bedrock", "/model/")]
)
def test_rate_limited_shard_is_retried_and_every_problem_answered_once(
    stack: OfflineStack, emulator: OpenAIEmulator, provider: str, model_path: str
) -> None:
    emulator.inject_errors(count=1, status=429, path_prefix=model_path)

    execution = execute(stack, SMALL_SET, config={**FAST_CONFIG, **PROVIDERS[provider]})

    assert execution.status == "SUCCEEDED", execution.description.get("cause")
    shards = [item for sk, item in execution.records.items() if sk.startswith("SHARD#")]
    assert len(shards) == 3
    assert sum(shard["problems"] for shard in shards) == 19
    answered: list[str] = []
    for index in range(3):
        body = stack.download(RunLayout("test-run").shard_output(index)) or b""
        answered += [json.loads(line)["problem_id"] for line in body.splitlines()]
    assert sorted(answered) == sorted({*answered})
    assert len(answered) == 19
    assert [request.status for request in emulator.requests].count(429) == 1


def test_a_shard_that_cannot_succeed_fails_the_run_and_says_why(
    stack: OfflineStack, emulator: OpenAIEmulator
) -> None:
    # The teacher is there when Prepare looks it up, and gone when the shards ask it.
    emulator.inject_errors(count=10_000, status=404, path_prefix="/v1/chat/completions")
    execution = execute(stack, SMALL_SET, config={**FAST_CONFIG, "teacher_model": "gpt-4.1-2025-04-14"})

    assert execution.status == "FAILED"
    # In AWS the Distributed Map fails here (States.ExceedToleratedFailureThreshold); moto's never
    # fails a Map, so Assemble's check that every shard has answers is what stops the run offline.
    # Either way, the cause names each shard's own error.
    assert execution.description["error"] in {
        "States.ExceedToleratedFailureThreshold",
        "GenerationIncomplete",
    }
    cause = execution.description["cause"]
    assert "3 of 3 shards have no answers" in cause
    for index in range(3):
        assert f"shard {index}: ModelRequestRejected: gpt-4.1-2025-04-14 solving a problem: HTTP 404" in cause
    shards = [item for sk, item in execution.records.items() if sk.startswith("SHARD#")]
    assert [shard["status"] for shard in shards] == ["failed"] * 3
    assert execution.entered("StartFineTune") == 0
