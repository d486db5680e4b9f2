"""The pipeline state machine's wiring: substitutions, permissions, logging and the S3-upload trigger."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

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
        "object": {"key": 'problem-sets/arithmetic "v2".jsonl', "size": 1024},
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


def test_problem_set_upload_rule_matches_object_created_under_the_prefix(
    template: dict[str, Any], state_machine: dict[str, Any]
) -> None:
    pattern = _event_rule(state_machine)["Pattern"]
    assert pattern == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {
            "bucket": {"name": [{"Ref": "DataBucket"}]},
            "object": {"key": [{"prefix": "problem-sets/"}]},
        },
    }
    # The bucket must send its events to EventBridge for the rule to see anything.
    bucket = template["Resources"]["DataBucket"]["Properties"]
    assert bucket["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"] is True
    # The output users are told to upload to is the prefix the rule matches.
    prefix = pattern["detail"]["object"]["key"][0]["prefix"]
    assert template["Outputs"]["ProblemSetUploadPrefix"]["Value"] == {
        "Fn::Sub": f"s3://${{DataBucket}}/{prefix}"
    }


def test_problem_set_upload_starts_an_execution_with_bucket_and_key(state_machine: dict[str, Any]) -> None:
    transformer = _event_rule(state_machine)["InputTransformer"]
    assert transformer["InputPathsMap"] == {"bucket": "$.detail.bucket.name", "key": "$.detail.object.key"}

    # Render the template as EventBridge does: each <name> becomes the JSON value at its path.
    rendered = transformer["InputTemplate"]
    for name, path in transformer["InputPathsMap"].items():
        rendered = rendered.replace(f"<{name}>", json.dumps(_json_path(OBJECT_CREATED_EVENT, path)))
    assert json.loads(rendered) == {
        "bucket": "synthtune-data-example",
        "key": 'problem-sets/arithmetic "v2".jsonl',
    }


def test_failed_starts_are_retried_then_kept(state_machine: dict[str, Any]) -> None:
    rule = _event_rule(state_machine)
    assert rule["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert rule["RetryPolicy"]["MaximumEventAgeInSeconds"] >= 60
    assert rule["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["ProblemSetUploadedDeadLetterQueue", "Arn"]}}


def test_deployed_rule_targets_the_state_machine_with_transformer_retry_and_dead_letters(
    state_machine: dict[str, Any], translated_template: dict[str, Any]
) -> None:
    resources = translated_template["Resources"]
    (rule,) = resources_of_type(translated_template, "AWS::Events::Rule").values()
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
