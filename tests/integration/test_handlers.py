"""Handlers invoked one at a time through moto's Lambda API, on the offline stack and the emulator."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from pydantic import BaseModel

from synthtune.contracts.config import RunConfig
from synthtune.contracts.workflow import (
    AssembleInput,
    BatchTask,
    BenchmarkTask,
    FailureEvent,
    FailureInput,
    FineTuneCheck,
    FineTuneInput,
    PrepareInput,
    ReportInput,
    ServingTask,
    ShardTask,
)
from synthtune.records.items import FINETUNE_SK, run_pk
from synthtune.records.layout import RunLayout
from synthtune.stages.assemble.gates import DROP_REASONS
from synthtune_cli.emulator import OpenAIEmulator
from synthtune_cli.offline import TABLE_NAME, OfflineStack
from tests.support import OPENAI_MODELS, event, jsonl, sample_rows


class FunctionError(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message


def invoke(stack: OfflineStack, function: str, payload: dict[str, Any]) -> dict[str, Any]:
    response = stack.client("lambda").invoke(FunctionName=function, Payload=json.dumps(payload).encode())
    body = json.loads(response["Payload"].read())
    if response.get("FunctionError"):
        raise FunctionError(body["errorType"], body["errorMessage"])
    return dict(body)


def prepare(
    stack: OfflineStack, rows: list[dict[str, Any]], run_id: str = "run-1", **config: Any
) -> dict[str, Any]:
    key = f"problem-sets/{run_id}.jsonl"
    stack.upload(key, jsonl(rows))
    return invoke(stack, "PrepareFunction", {"run_id": run_id, "input": {"key": key, "config": config}})


def generate_all(stack: OfflineStack, prepared: dict[str, Any]) -> None:
    for shard in json.loads(stack.download(prepared["generation"]["manifest_key"]) or b"[]"):
        invoke(stack, "GenerateShardFunction", {"run": prepared["run"], "shard": shard})


@pytest.mark.parametrize(
    ("file", "contract"),
    [
        ("prepare.json", PrepareInput),
        ("generate_shard.json", ShardTask),
        ("submit_batch.json", BatchTask),
        ("check_batch.json", BatchTask),
        ("assemble.json", AssembleInput),
        ("start_fine_tune.json", FineTuneInput),
        ("check_fine_tune.json", FineTuneCheck),
        ("cancel_fine_tune.json", FineTuneCheck),
        ("prepare_serving.json", ServingTask),
        ("check_serving.json", ServingTask),
        ("release_serving.json", ServingTask),
        ("benchmark.json", BenchmarkTask),
        ("report.json", ReportInput),
        ("record_failure.json", FailureInput),
        ("record_failure.json", FailureEvent),
        ("execution_ended.json", FailureEvent),
    ],
)
def test_sample_events_match_the_contracts(file: str, contract: type[BaseModel]) -> None:
    contract.model_validate(event(file))


def test_prepare_shards_and_holds_out(stack: OfflineStack) -> None:
    prepared = prepare(stack, sample_rows(), shard_size=20)

    layout = RunLayout("run-1")
    manifest = json.loads(stack.download(layout.manifest) or b"[]")
    assert manifest == [
        {"index": 0, "problem_count": 20},
        {"index": 1, "problem_count": 20},
        {"index": 2, "problem_count": 8},
    ]
    assert prepared["generation"]["splits"] == {"train": 43, "validation": 5, "holdout": 12}
    holdout = (stack.download(layout.holdout) or b"").splitlines()
    assert len(holdout) == 12
    shard_ids = {
        json.loads(line)["id"]
        for index in range(3)
        for line in (stack.download(layout.shard_input(index)) or b"").splitlines()
    }
    assert shard_ids.isdisjoint(json.loads(line)["id"] for line in holdout)
    assert prepared["run"]["config"]["shard_size"] == 20


def test_prepare_reads_csv_and_url_encoded_keys(stack: OfflineStack) -> None:
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=["id", "question", "answer", "category"])
    writer.writeheader()
    writer.writerows(sample_rows())
    stack.upload("problem-sets/my set.csv", table.getvalue().encode())

    # S3 event payloads carry the key URL-encoded.
    prepared = invoke(
        stack, "PrepareFunction", {"run_id": "csv-run", "input": {"key": "problem-sets/my+set.csv"}}
    )

    assert prepared["run"]["problem_set"]["key"] == "problem-sets/my set.csv"
    assert prepared["generation"]["problem_count"] == 48


def test_prepare_rejects_a_set_too_small_to_fine_tune(stack: OfflineStack) -> None:
    with pytest.raises(FunctionError) as raised:
        prepare(stack, sample_rows(per_category=3))
    assert raised.value.error_type == "InvalidProblemSet"
    assert "fine-tuning bedrock/amazon.nova-micro-v1:0 needs at least 8" in raised.value.message


def test_generate_shard_verifies_every_answer(stack: OfflineStack) -> None:
    prepared = prepare(stack, sample_rows(), shard_size=48)
    shard = {"index": 0, "problem_count": 48}

    result = invoke(stack, "GenerateShardFunction", {"run": prepared["run"], "shard": shard})

    answers = [
        json.loads(line) for line in (stack.download(RunLayout("run-1").shard_output(0)) or b"").splitlines()
    ]
    assert len(answers) == result["problems"] == 48
    assert result["verified"] == sum(answer["status"] == "verified" for answer in answers)
    assert result["rejected"] == sum(answer["status"] == "rejected" for answer in answers) > 0
    for answer in answers:
        assert answer["reference"] is not None
        assert answer["steps"]
        assert answer["usage"][RunConfig().teacher_model]["requests"] == 1
    shard_item = stack.records("run-1")[-1]
    assert shard_item["sk"] == "SHARD#00000"
    assert shard_item["verified"] == result["verified"]


def test_start_fine_tune_never_creates_a_second_openai_job(
    stack: OfflineStack, emulator: OpenAIEmulator
) -> None:
    prepared = prepare(stack, sample_rows(), **OPENAI_MODELS)
    generate_all(stack, prepared)
    dataset = invoke(
        stack, "AssembleFunction", {"run": prepared["run"], "generation": prepared["generation"]}
    )
    start = {"run": prepared["run"], "dataset": dataset}

    first = invoke(stack, "StartFineTuneFunction", start)
    again = invoke(stack, "StartFineTuneFunction", start)
    # A Lambda that died after OpenAI accepted the job never recorded it: the job is found by its metadata.
    forget_the_job(stack)
    after_crash = invoke(stack, "StartFineTuneFunction", start)

    assert first["job_id"] == again["job_id"] == after_crash["job_id"]
    assert len(emulator.fine_tuning_jobs) == 1
    training_file = emulator.fine_tuning_jobs[first["job_id"]]["training_file"]
    uploaded = emulator.files[training_file]
    assert len(uploaded.content.splitlines()) == dataset["train_examples"]


def test_start_fine_tune_never_creates_a_second_bedrock_job(
    stack: OfflineStack, emulator: OpenAIEmulator
) -> None:
    prepared = prepare(stack, sample_rows())
    generate_all(stack, prepared)
    dataset = invoke(
        stack, "AssembleFunction", {"run": prepared["run"], "generation": prepared["generation"]}
    )
    start = {"run": prepared["run"], "dataset": dataset}

    first = invoke(stack, "StartFineTuneFunction", start)
    again = invoke(stack, "StartFineTuneFunction", start)
    # A Lambda that died after Bedrock accepted the job: the job is found by the name the run gives it.
    forget_the_job(stack)
    after_crash = invoke(stack, "StartFineTuneFunction", start)

    assert first["backend"] == "bedrock"
    assert first["job_id"] == again["job_id"] == after_crash["job_id"]
    (job,) = emulator.customization_jobs.values()
    assert job["jobName"] == "synthtune-job-run-1"
    assert job["baseModelArn"].endswith("amazon.nova-micro-v1:0:128k")
    # Bedrock reads the run's own file, in its format, from the run's dataset prefix.
    assert job["trainingDataConfig"]["s3Uri"] == f"s3://{stack.bucket}/{dataset['train_key']}"
    assert dataset["train_key"] == RunLayout("run-1").export("bedrock", "train")
    assert job["outputDataConfig"]["s3Uri"] == f"s3://{stack.bucket}/{RunLayout('run-1').finetune_output}"


def forget_the_job(stack: OfflineStack) -> None:
    stack.client("dynamodb").delete_item(
        TableName=TABLE_NAME, Key={"pk": {"S": run_pk("run-1")}, "sk": {"S": FINETUNE_SK}}
    )


def test_handlers_log_with_the_run_id_and_emit_metrics(
    stack: OfflineStack, capsys: pytest.CaptureFixture[str]
) -> None:
    prepare(stack, sample_rows(), run_id="logged-run")

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    logs = [line for line in lines if "message" in line]
    metrics = [line for line in lines if "_aws" in line]
    assert any(log["message"] == "run prepared" and log["correlation_id"] == "logged-run" for log in logs)
    assert all(log["function_name"] == "PrepareFunction" for log in logs)
    (emf,) = metrics
    names = {metric["Name"] for metric in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert names == {"ProblemsPrepared", "ShardsPlanned"}
    assert emf["ProblemsPrepared"] == [48.0]


def test_record_failure_keeps_the_message_not_the_stack_trace(stack: OfflineStack) -> None:
    record = invoke(stack, "RecordFailureFunction", event("record_failure.json"))

    assert record["state"] == "Prepare"
    assert record["error"] == "InvalidProblemSet"
    assert record["cause"].endswith("line 3: field 'question' is required and must not be empty")
    (run,) = stack.records("sample-run")
    assert (run["status"], run["failed_state"], run["cause"]) == ("FAILED", "Prepare", record["cause"])


def test_a_failed_cleanup_is_told_with_the_failure_it_followed(stack: OfflineStack) -> None:
    # The benchmark failed, and deleting the deployment afterwards failed too: the run records the
    # benchmark's error, and says the deployment may still exist and how to delete it.
    failure = {
        "ReleaseAfterFailure": {"Error": "ModelUnavailable", "Cause": "deleting deployment arn:x: throttled"},
        "Benchmark": {"Error": "ModelRequestRejected", "Cause": "the fine-tuned model refused"},
    }
    record = invoke(stack, "RecordFailureFunction", {"run_id": "run-9", "failure": failure})

    assert (record["state"], record["error"]) == ("Benchmark", "ModelRequestRejected")
    assert record["cause"].startswith("the fine-tuned model refused\nThen deleting")
    assert "ModelUnavailable: deleting deployment arn:x: throttled" in record["cause"]
    assert "delete-custom-model-deployment" in record["cause"]


def test_prepare_names_a_missing_problem_set(stack: OfflineStack) -> None:
    with pytest.raises(
        FunctionError, match=r"s3://synthtune-local-data/problem-sets/missing.jsonl does not exist"
    ):
        invoke(stack, "PrepareFunction", {"run_id": "r", "input": {"key": "problem-sets/missing.jsonl"}})
    with pytest.raises(FunctionError, match=r"s3://someone-elses-bucket/x.jsonl does not exist"):
        invoke(
            stack,
            "PrepareFunction",
            {"run_id": "r", "input": {"bucket": "someone-elses-bucket", "key": "x.jsonl"}},
        )


def test_record_failure_of_generate_names_each_failed_shard(
    stack: OfflineStack, emulator: OpenAIEmulator
) -> None:
    # What AWS reports when a Distributed Map iteration fails (moto never fails a Map, see test_pipeline).
    failure = {
        "Generate": {
            "Error": "States.ExceedToleratedFailureThreshold",
            "Cause": "The specified tolerated failure threshold was exceeded",
        }
    }
    prepared = prepare(stack, sample_rows(), run_id="map-run", teacher_model="gpt-4.1-2025-04-14")
    # The teacher was there when Prepare looked it up, and is gone when the shards ask it.
    emulator.inject_errors(count=10_000, status=404, path_prefix="/v1/chat/completions")
    with pytest.raises(FunctionError, match=r"gpt-4\.1-2025-04-14 solving a problem: HTTP 404"):
        generate_all(stack, prepared)

    record = invoke(stack, "RecordFailureFunction", {"run_id": "map-run", "failure": failure})

    assert record["error"] == "States.ExceedToleratedFailureThreshold"
    assert record["cause"].splitlines()[0] == "The specified tolerated failure threshold was exceeded"
    assert (
        record["cause"]
        .splitlines()[1]
        .startswith("shard 0: ModelRequestRejected: gpt-4.1-2025-04-14 solving a problem")
    )


def test_assemble_refuses_a_dataset_too_small_to_fine_tune(stack: OfflineStack) -> None:
    # A weak teacher gets most answers wrong; what is left is below OpenAI's minimum of 10 examples.
    prepared = prepare(
        stack, sample_rows(per_category=6), **{**OPENAI_MODELS, "teacher_model": "gpt-4.1-nano-2025-04-14"}
    )
    generate_all(stack, prepared)

    with pytest.raises(FunctionError) as raised:
        invoke(stack, "AssembleFunction", {"run": prepared["run"], "generation": prepared["generation"]})

    assert raised.value.error_type == "InvalidDataset"
    assert "needs at least 10" in raised.value.message
    assert "wrong_answer" in raised.value.message
    # Nothing reaches the fine-tuning provider, but what was assembled is kept for inspection.
    card = json.loads(stack.download(RunLayout("run-1").dataset_card) or b"{}")
    assert card["train_examples"] == 9
    assert card["dropped"] == [
        {"reason": "wrong_answer", "count": 5, "meaning": DROP_REASONS["wrong_answer"]}
    ]
