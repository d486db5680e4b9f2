"""One run per version of a problem set, through the real state machine, counted at the emulated provider.

S3 may deliver its "Object Created" event twice, and a user may upload under problem-sets/ (which starts a
run) and also start one by hand, as the README's recipe does: either way the object is paid for once. The
second execution ends at once, Succeeded, saying which run handles the problem set; a start for something
that is no problem set (a folder made in the console, an empty or a text file) is refused before any work.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from synthtune.records.items import problem_set_pk
from synthtune_cli.emulator import OpenAIEmulator
from synthtune_cli.offline import OfflineStack
from synthtune_cli.template import load_template
from tests.support import FAST_CONFIG, Execution, event, jsonl, sample_rows

SMALL_SET = sample_rows(per_category=8)  # 24 problems: 19 to generate, 5 held out
KEY = "problem-sets/uploaded.jsonl"


def upload_event(stack: OfflineStack, key: str = KEY) -> dict[str, Any]:
    """The execution input EventBridge makes of S3's event for `key` (template.yaml's InputTransformer)."""
    s3_event = event("s3-object-created.json")
    stored = stack.client("s3").head_object(Bucket=stack.bucket, Key=key)
    s3_event["detail"]["bucket"]["name"] = stack.bucket
    s3_event["detail"]["object"].update(key=key, size=stored["ContentLength"], etag=stored["ETag"].strip('"'))
    properties = load_template()["Resources"]["PipelineStateMachine"]["Properties"]
    transformer = properties["Events"]["ProblemSetUploaded"]["Properties"]["InputTransformer"]
    rendered = transformer["InputTemplate"]
    for name, path in transformer["InputPathsMap"].items():
        value: Any = s3_event
        for part in path.removeprefix("$.").split("."):
            value = value[part]
        rendered = rendered.replace(f"<{name}>", json.dumps(value))
    return dict(json.loads(rendered))


def run_both(stack: OfflineStack, starts: dict[str, dict[str, Any]]) -> dict[str, Execution]:
    """Start every execution at once, then wait for each."""
    arns = {name: stack.start_execution(name, execution_input) for name, execution_input in starts.items()}
    finished = {}
    for name, arn in arns.items():
        description = stack.wait(arn, timeout_seconds=120)
        finished[name] = Execution(
            run_id=name,
            arn=arn,
            description=description,
            history=stack.history(arn),
            records={item["sk"]: item for item in stack.records(name)},
        )
    return finished


def teacher_requests(emulator: OpenAIEmulator) -> int:
    """Requests the teacher (Nova 2 Lite, the default) answered: generation and its benchmark turn."""
    return sum(
        1
        for request in emulator.requests
        if request.method == "POST" and "nova-2-lite" in request.path and request.status < 300
    )


def test_an_upload_and_a_start_by_hand_for_it_make_one_run(
    stack: OfflineStack, emulator: OpenAIEmulator
) -> None:
    stack.upload(KEY, jsonl(SMALL_SET))
    by_hand = {**event("start-execution.json"), "key": KEY}  # the README's recipe
    by_hand["config"] = {**by_hand["config"], **FAST_CONFIG, "holdout_fraction": 0.2}

    runs = run_both(stack, {"uploaded": upload_event(stack), "by-hand": by_hand})

    assert {execution.status for execution in runs.values()} == {"SUCCEEDED"}
    (duplicate,) = [execution for execution in runs.values() if execution.output.get("status") == "DUPLICATE"]
    (real,) = [execution for execution in runs.values() if execution is not duplicate]
    assert duplicate.output["duplicate_of"] == real.run_id
    assert f"already handled by run {real.run_id}" in duplicate.output["message"]
    assert duplicate.entered("AlreadyHandled") == 1
    assert duplicate.entered("Generate") == 0
    assert duplicate.records["RUN"]["status"] == "DUPLICATE"
    assert set(duplicate.records) == {"RUN"}  # nothing prepared, nothing spent
    assert set(real.output["accuracy"]) == {"base", "fine_tuned", "teacher"}
    # Counted at the provider: the teacher answered each problem once, and one job was made.
    splits = real.records["RUN"]["splits"]
    assert teacher_requests(emulator) == splits["train"] + splits["validation"] + splits["holdout"]
    assert len(emulator.customization_jobs) == 1


def test_a_repeated_upload_event_makes_one_run(stack: OfflineStack, emulator: OpenAIEmulator) -> None:
    stack.upload(KEY, jsonl(SMALL_SET))
    start = upload_event(stack)

    runs = run_both(stack, {"event": start, "event-again": start})

    assert [execution.output.get("status") for execution in runs.values()].count("DUPLICATE") == 1
    assert len(emulator.customization_jobs) == 1


def test_a_new_version_of_the_problem_set_is_a_new_run_and_rerun_runs_the_same_one_again(
    stack: OfflineStack, emulator: OpenAIEmulator
) -> None:
    stack.upload(KEY, jsonl(SMALL_SET))
    first = run_both(stack, {"first": upload_event(stack)})["first"]
    stack.upload(KEY, jsonl(list(reversed(SMALL_SET))))  # new content, new ETag

    runs = run_both(stack, {"new-version": upload_event(stack), "same-again": {"key": KEY}})
    rerun = run_both(stack, {"rerun": {"key": KEY, "config": FAST_CONFIG, "rerun": True}})["rerun"]

    assert first.status == "SUCCEEDED"
    # The new version runs once (whichever start came first); rerun runs it once more, on purpose.
    statuses = sorted(str(execution.output.get("status")) for execution in runs.values())
    assert statuses == ["DUPLICATE", "SUCCEEDED"]
    assert rerun.status == "SUCCEEDED"
    assert rerun.output.get("status") == "SUCCEEDED"
    assert len(emulator.customization_jobs) == 3
    claims = stack.client("dynamodb").query(
        TableName=stack.table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": problem_set_pk(f"s3://{stack.bucket}/{KEY}")}},
    )["Items"]
    assert len(claims) == 2  # one per version


def test_a_problem_set_whose_run_failed_can_be_started_again(
    stack: OfflineStack, emulator: OpenAIEmulator
) -> None:
    stack.upload(KEY, jsonl(SMALL_SET))
    refused = {"key": KEY, "config": {"student_model": "bedrock/us.amazon.nova-2-lite-v1:0"}}
    failed = run_both(stack, {"failed": refused})["failed"]
    assert (failed.status, failed.description["error"]) == ("FAILED", "InvalidConfig")

    again = run_both(stack, {"again": {"key": KEY, "config": FAST_CONFIG}})["again"]

    assert again.status == "SUCCEEDED", again.description.get("cause")
    assert again.output.get("status") != "DUPLICATE"


@pytest.mark.parametrize(
    ("key", "body", "says"),
    [
        ("problem-sets/", b"", "is a folder, not a problem set"),
        ("problem-sets/empty.jsonl", b"", "is empty (0 bytes)"),
        ("problem-sets/notes.txt", b"remember the milk\n", "cannot tell the format from the file name"),
    ],
)
def test_what_is_no_problem_set_is_refused_before_any_work(
    stack: OfflineStack, emulator: OpenAIEmulator, key: str, body: bytes, says: str
) -> None:
    # The rule never starts these (tests/infra); a start by hand, or an old rule, still must not run.
    stack.upload(key, body)

    execution = run_both(stack, {"refused": upload_event(stack, key)})["refused"]

    assert execution.status == "FAILED"
    assert execution.description["error"] == "InvalidProblemSet"
    assert says in execution.description["cause"]
    assert emulator.requests == []
    assert execution.records["RUN"]["status"] == "FAILED"
