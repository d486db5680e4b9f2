"""The pipeline state machine's wiring: substitutions, permissions, logging and the S3-upload trigger."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from synthtune.contracts.workflow import FailureEvent, StartRequest
from synthtune.records.layout import PROBLEM_SET_PREFIX
from synthtune_cli.template import resources_of_type

PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")

# An "Object Created" event as S3 sends it to EventBridge, trimmed to what the rule reads.
OBJECT_CREATED_EVENT: dict[str, Any] = {
    "version": "0",
    "source": "aws.s3",
    "detail-type": "Object Created",
    "region": "us-east-1",
    "detail": {
        "bucket": {"name": "synthtune-data-example"},
        "object": {
            "key": 'problem-sets/arithmetic "v2".jsonl',
            "size": 1024,
            "etag": "b1946ac92492d2347c6235b4d2611184",
            "version-id": "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
            "sequencer": "00617F08299329D189",
        },
        "reason": "PutObject",
    },
}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(state_machine: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        statement
        for policy in state_machine["Properties"]["Policies"]
        if "Statement" in policy
        for statement in policy["Statement"]
    ]


def _statement_for(state_machine: dict[str, Any], action: str) -> dict[str, Any]:
    matching = [s for s in _statements(state_machine) if action in _as_list(s["Action"])]
    assert len(matching) == 1, f"expected one statement granting {action}, found {matching}"
    return matching[0]


def _json_path(document: dict[str, Any], path: str) -> Any:
    """Resolve a simple $.a.b.c path, the only form the rule's InputPathsMap uses."""
    assert path.startswith("$."), path
    value: Any = document
    for key in path[2:].split("."):
        value = value[key]
    return value


def _event_rule(state_machine: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = state_machine["Properties"]["Events"]["ProblemSetUploaded"]
    assert event["Type"] == "EventBridgeRule"
    properties: dict[str, Any] = event["Properties"]
    return properties


def test_every_placeholder_has_a_substitution_and_every_substitution_is_used(
    state_machine: dict[str, Any], asl_path: Path
) -> None:
    if not asl_path.exists():
        pytest.skip(f"{asl_path} is not written yet; placeholders are checked once it exists")
    placeholders = set(PLACEHOLDER.findall(asl_path.read_text(encoding="utf-8")))
    substitutions = set(state_machine["Properties"]["DefinitionSubstitutions"])
    assert placeholders - substitutions == set(), "placeholders with no DefinitionSubstitution"
    assert substitutions - placeholders == set(), "DefinitionSubstitutions the definition never uses"


def test_definition_is_json_without_hard_coded_function_arns(asl_path: Path) -> None:
    if not asl_path.exists():
        pytest.skip(f"{asl_path} is not written yet")
    text = asl_path.read_text(encoding="utf-8")
    json.loads(text)
    # A hard-coded function ARN would bypass the template and point at one account's functions.
    assert re.search(r"arn:aws[\w-]*:lambda:", text) is None


def test_substitutions_name_every_function(
    state_machine: dict[str, Any], functions: dict[str, dict[str, Any]]
) -> None:
    substitutions = state_machine["Properties"]["DefinitionSubstitutions"]
    expected: dict[str, Any] = {
        f"{function_id}Arn": {"Fn::GetAtt": [function_id, "Arn"]} for function_id in functions
    }
    assert substitutions == expected


def test_can_invoke_every_function_it_names(state_machine: dict[str, Any]) -> None:
    named = [
        value
        for value in state_machine["Properties"]["DefinitionSubstitutions"].values()
        if "Fn::GetAtt" in value
    ]
    invoke = _statement_for(state_machine, "lambda:InvokeFunction")
    assert named
    assert sorted(map(json.dumps, _as_list(invoke["Resource"]))) == sorted(map(json.dumps, named))


def test_can_read_the_shard_manifest_and_nothing_else_of_the_bucket(state_machine: dict[str, Any]) -> None:
    read = _statement_for(state_machine, "s3:GetObject")
    assert _as_list(read["Action"]) == ["s3:GetObject"]
    assert read["Resource"] == {"Fn::Sub": "${DataBucket.Arn}/runs/*/shards/manifest.json"}


def test_distributed_map_may_run_child_executions_of_itself(state_machine: dict[str, Any]) -> None:
    name = state_machine["Properties"]["Name"]["Fn::Sub"]
    assert name == "${AWS::StackName}-pipeline"
    arn_prefix = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}"

    start = _statement_for(state_machine, "states:StartExecution")
    assert start["Effect"] == "Allow"
    assert start["Resource"] == {"Fn::Sub": f"{arn_prefix}:stateMachine:{name}"}

    control = _statement_for(state_machine, "states:DescribeExecution")
    assert control["Effect"] == "Allow"
    assert set(_as_list(control["Action"])) == {"states:DescribeExecution", "states:StopExecution"}
    assert control["Resource"] == {"Fn::Sub": f"{arn_prefix}:execution:{name}/*"}


def test_only_log_delivery_is_granted_on_every_resource(state_machine: dict[str, Any]) -> None:
    # CloudWatch Logs delivery actions take no resource ARN; nothing else may be unscoped.
    for statement in _statements(state_machine):
        if statement["Resource"] == "*":
            assert all(action.startswith("logs:") for action in _as_list(statement["Action"])), statement


def test_is_standard_traced_and_logs_errors_without_execution_data(
    template: dict[str, Any], state_machine: dict[str, Any]
) -> None:
    properties = state_machine["Properties"]
    assert properties["Type"] == "STANDARD"
    assert properties["Tracing"] == {"Enabled": True}
    logging = properties["Logging"]
    assert logging["Level"] == "ERROR"
    assert logging["IncludeExecutionData"] is False
    (destination,) = logging["Destinations"]
    log_group_id = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    log_group = template["Resources"][log_group_id]
    assert log_group["Type"] == "AWS::Logs::LogGroup"
    assert log_group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def _resolved(node: Any, references: dict[str, str]) -> Any:
    """The pattern as deployed: each {"Ref": name} replaced by the value CloudFormation would give it."""
    if isinstance(node, dict) and set(node) == {"Ref"}:
        return references[node["Ref"]]
    if isinstance(node, dict):
        return {key: _resolved(value, references) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolved(value, references) for value in node]
    return node


def _matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """EventBridge's pattern matching as moto's rules apply it (its TestEventPattern is a stub)."""
    from moto.events.models import EventPattern

    return bool(EventPattern.load(json.dumps(pattern)).matches_event(event))


def _object_created(key: str, size: int, bucket: str = "synthtune-data-example") -> dict[str, Any]:
    event = copy.deepcopy(OBJECT_CREATED_EVENT)
    event["detail"]["bucket"]["name"] = bucket
    event["detail"]["object"].update(key=key, size=size)
    return event


@pytest.mark.parametrize(
    ("key", "size", "bucket", "starts"),
    [
        ("problem-sets/arithmetic.jsonl", 1024, "synthtune-data-example", True),
        ("problem-sets/team/riddles.json", 10, "synthtune-data-example", True),
        ("problem-sets/logic.csv", 10, "synthtune-data-example", True),
        ("problem-sets/LOGIC.CSV", 10, "synthtune-data-example", True),
        ("problem-sets/", 0, "synthtune-data-example", False),  # a folder made in the console
        ("problem-sets/empty.jsonl", 0, "synthtune-data-example", False),
        ("problem-sets/notes.txt", 10, "synthtune-data-example", False),
        ("problem-sets/set.jsonl.bak", 10, "synthtune-data-example", False),
        ("inputs/arithmetic.jsonl", 1024, "synthtune-data-example", False),
        ("problem-sets/arithmetic.jsonl", 1024, "someone-elses-bucket", False),
    ],
)
def test_problem_set_upload_rule_starts_runs_only_for_problem_sets_under_the_prefix(
    state_machine: dict[str, Any], key: str, size: int, bucket: str, starts: bool
) -> None:
    pattern = _resolved(_event_rule(state_machine)["Pattern"], {"DataBucket": "synthtune-data-example"})
    assert _matches(pattern, _object_created(key, size, bucket)) is starts


def test_problem_set_upload_rule_watches_the_prefix_users_are_told_of(
    template: dict[str, Any], state_machine: dict[str, Any]
) -> None:
    # The bucket must send its events to EventBridge for the rule to see anything.
    bucket = template["Resources"]["DataBucket"]["Properties"]
    assert bucket["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"] is True
    # The output users are told to upload to is the prefix every key the rule matches starts with.
    keys = _event_rule(state_machine)["Pattern"]["detail"]["object"]["key"]
    assert {key["wildcard"].split("*")[0] for key in keys} == {PROBLEM_SET_PREFIX}
    assert template["Outputs"]["ProblemSetUploadPrefix"]["Value"] == {
        "Fn::Sub": f"s3://${{DataBucket}}/{PROBLEM_SET_PREFIX}"
    }


def test_problem_set_upload_starts_an_execution_with_bucket_key_and_the_objects_version(
    state_machine: dict[str, Any],
) -> None:
    transformer = _event_rule(state_machine)["InputTransformer"]

    # Render the template as EventBridge does: each <name> becomes the JSON value at its path.
    rendered = transformer["InputTemplate"]
    for name, path in transformer["InputPathsMap"].items():
        rendered = rendered.replace(f"<{name}>", json.dumps(_json_path(OBJECT_CREATED_EVENT, path)))
    start = StartRequest.model_validate(json.loads(rendered))
    assert (start.bucket, start.key) == ("synthtune-data-example", 'problem-sets/arithmetic "v2".jsonl')
    assert start.object is not None
    assert (start.object.etag, start.object.version_id, start.object.sequencer, start.object.size) == (
        "b1946ac92492d2347c6235b4d2611184",
        "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
        "00617F08299329D189",
        1024,
    )
    assert start.rerun is False


def test_failed_starts_are_retried_then_kept(state_machine: dict[str, Any]) -> None:
    rule = _event_rule(state_machine)
    assert rule["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert rule["RetryPolicy"]["MaximumEventAgeInSeconds"] >= 60
    assert rule["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["ProblemSetUploadedDeadLetterQueue", "Arn"]}}


def test_deployed_rule_targets_the_state_machine_with_transformer_retry_and_dead_letters(
    state_machine: dict[str, Any], translated_template: dict[str, Any]
) -> None:
    resources = translated_template["Resources"]
    (rule,) = [
        rule
        for rule in resources_of_type(translated_template, "AWS::Events::Rule").values()
        if rule["Properties"]["EventPattern"]["source"] == ["aws.s3"]
    ]
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Ref": "PipelineStateMachine"}
    assert target["InputTransformer"] == _event_rule(state_machine)["InputTransformer"]
    assert target["RetryPolicy"] == _event_rule(state_machine)["RetryPolicy"]

    queue_id = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    assert resources[queue_id]["Type"] == "AWS::SQS::Queue"
    queue_policies = [
        policy
        for policy in resources_of_type(translated_template, "AWS::SQS::QueuePolicy").values()
        if {"Ref": queue_id} in policy["Properties"]["Queues"]
    ]
    assert len(queue_policies) == 1, "EventBridge needs a queue policy to deliver dead letters"

    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    role_statements = [
        statement
        for policy in resources[role_id]["Properties"]["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
    ]
    assert any(
        "states:StartExecution" in _as_list(statement["Action"])
        and statement["Resource"] == {"Ref": "PipelineStateMachine"}
        for statement in role_statements
    )


def test_deployed_state_machine_substitutes_and_is_traced(translated_template: dict[str, Any]) -> None:
    (machine,) = resources_of_type(translated_template, "AWS::StepFunctions::StateMachine").values()
    properties = machine["Properties"]
    definition = "\n".join(properties["DefinitionString"]["Fn::Join"][1])
    assert set(PLACEHOLDER.findall(definition)) <= set(properties["DefinitionSubstitutions"])
    assert properties["TracingConfiguration"] == {"Enabled": True}
    assert properties["StateMachineType"] == "STANDARD"


PIPELINE_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:synthtune-pipeline"


def _execution_status_change(status: str, state_machine_arn: str = PIPELINE_ARN) -> dict[str, Any]:
    """A "Step Functions Execution Status Change" event as Step Functions sends it to EventBridge."""
    return {
        "version": "0",
        "source": "aws.states",
        "detail-type": "Step Functions Execution Status Change",
        "region": "us-east-1",
        "resources": [f"{state_machine_arn}:run-1"],
        "detail": {
            "executionArn": f"{state_machine_arn}:run-1".replace(":stateMachine:", ":execution:"),
            "stateMachineArn": state_machine_arn,
            "name": "run-1",
            "status": status,
            "error": "States.DataLimitExceeded" if status == "FAILED" else None,
            "cause": None,
        },
    }


def _execution_ended_rule(functions: dict[str, dict[str, Any]]) -> dict[str, Any]:
    event: dict[str, Any] = functions["RecordFailureFunction"]["Properties"]["Events"]["ExecutionEnded"]
    assert event["Type"] == "EventBridgeRule"
    properties: dict[str, Any] = event["Properties"]
    return properties


@pytest.mark.parametrize(
    ("status", "state_machine_arn", "recorded"),
    [
        ("FAILED", PIPELINE_ARN, True),
        ("TIMED_OUT", PIPELINE_ARN, True),
        ("ABORTED", PIPELINE_ARN, True),
        ("SUCCEEDED", PIPELINE_ARN, False),
        ("RUNNING", PIPELINE_ARN, False),
        # A Distributed Map's child executions run under the map run's own state machine ARN.
        ("FAILED", f"{PIPELINE_ARN}/GenerateShards", False),
    ],
)
def test_every_execution_that_ends_without_success_reaches_record_failure(
    functions: dict[str, dict[str, Any]], status: str, state_machine_arn: str, recorded: bool
) -> None:
    # States.DataLimitExceeded escapes every Catch (even States.ALL), as do executions stopped or timed out.
    pattern = _resolved(_execution_ended_rule(functions)["Pattern"], {"PipelineStateMachine": PIPELINE_ARN})
    event = _execution_status_change(status, state_machine_arn)
    assert _matches(pattern, event) is recorded
    if recorded:
        assert FailureEvent.model_validate(event).root.detail.name == "run-1"  # type: ignore[union-attr]


def test_deployed_execution_rule_invokes_record_failure_with_retry_and_dead_letters(
    functions: dict[str, dict[str, Any]], translated_template: dict[str, Any]
) -> None:
    resources = translated_template["Resources"]
    (rule,) = [
        rule
        for rule in resources_of_type(translated_template, "AWS::Events::Rule").values()
        if rule["Properties"]["EventPattern"]["source"] == ["aws.states"]
    ]
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["RecordFailureFunction", "Arn"]}
    assert "InputTransformer" not in target  # the function reads the event itself
    assert target["RetryPolicy"] == _execution_ended_rule(functions)["RetryPolicy"]
    assert resources[target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]]["Type"] == "AWS::SQS::Queue"
    permissions = [
        permission["Properties"]
        for permission in resources_of_type(translated_template, "AWS::Lambda::Permission").values()
        if permission["Properties"]["FunctionName"] == {"Ref": "RecordFailureFunction"}
    ]
    assert [permission["Principal"] for permission in permissions] == ["events.amazonaws.com"]
