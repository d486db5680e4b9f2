"""Where the data and the API key live: the bucket and its access logs, the table, the secret, the dead-letter
queues (uploads that did not start a run, run ends that were not recorded), and what the outputs expose."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from synthtune_cli.template import resources_of_type

RETAIN = {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
# Each dead-letter queue and the EventBridge rule SAM makes of the event whose dead letters it keeps.
DEAD_LETTERS = pytest.mark.parametrize(
    ("queue_id", "rule_id"),
    [
        ("ProblemSetUploadedDeadLetterQueue", "PipelineStateMachineProblemSetUploaded"),
        ("ExecutionEndedDeadLetterQueue", "RecordFailureFunctionExecutionEnded"),
    ],
)
SECRET_LIKE_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|CREDENTIAL", re.IGNORECASE)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_bucket_is_encrypted_private_and_retained(template: dict[str, Any]) -> None:
    bucket = template["Resources"]["DataBucket"]
    assert {key: bucket.get(key) for key in RETAIN} == RETAIN
    properties = bucket["Properties"]
    assert "BucketName" not in properties, "a fixed name would collide across stacks and accounts"

    (encryption,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    algorithm = encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
    assert algorithm in {"AES256", "aws:kms"}
    if algorithm == "aws:kms":
        assert encryption.get("BucketKeyEnabled") is True

    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert properties["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}


def test_bucket_aborts_incomplete_multipart_uploads(template: dict[str, Any]) -> None:
    rules = template["Resources"]["DataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert any(
        rule["Status"] == "Enabled" and rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
        for rule in rules
    )


def test_bucket_refuses_requests_without_tls(template: dict[str, Any]) -> None:
    policies = [
        policy
        for policy in resources_of_type(template, "AWS::S3::BucketPolicy").values()
        if policy["Properties"]["Bucket"] == {"Ref": "DataBucket"}
    ]
    assert len(policies) == 1
    statements = policies[0]["Properties"]["PolicyDocument"]["Statement"]
    tls_only = [
        statement
        for statement in statements
        if statement["Effect"] == "Deny"
        and str(statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")).lower() == "false"
    ]
    assert len(tls_only) == 1, "one Deny statement conditioned on aws:SecureTransport false"
    (statement,) = tls_only
    assert statement["Principal"] == "*"
    assert _as_list(statement["Action"]) == ["s3:*"]
    assert sorted(map(json.dumps, _as_list(statement["Resource"]))) == sorted(
        map(json.dumps, [{"Fn::GetAtt": ["DataBucket", "Arn"]}, {"Fn::Sub": "${DataBucket.Arn}/*"}])
    )


def test_runs_table_is_on_demand_keyed_by_pk_and_sk_encrypted_and_recoverable(
    template: dict[str, Any],
) -> None:
    table = template["Resources"]["RunsTable"]
    assert table["Type"] == "AWS::DynamoDB::Table"
    assert {key: table.get(key) for key in RETAIN} == RETAIN
    properties = table["Properties"]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert "ProvisionedThroughput" not in properties
    assert properties["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert sorted(properties["AttributeDefinitions"], key=lambda attribute: attribute["AttributeName"]) == [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
    ]
    assert properties["SSESpecification"]["SSEEnabled"] is True
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_secret_holds_a_generated_placeholder_never_the_key(template: dict[str, Any]) -> None:
    secret = template["Resources"]["OpenAIApiKeySecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    properties = secret["Properties"]
    assert "SecretString" not in properties
    assert "GenerateSecretString" in properties
    assert properties["Name"] == {"Fn::Sub": "${AWS::StackName}/openai-api-key"}
    assert "aws secretsmanager put-secret-value" in json.dumps(properties["Description"])


def test_no_environment_variable_holds_a_key(
    template: dict[str, Any], translated_template: dict[str, Any]
) -> None:
    environments = [template["Globals"]["Function"]["Environment"]["Variables"]] + [
        function["Properties"].get("Environment", {}).get("Variables", {})
        for function in resources_of_type(translated_template, "AWS::Lambda::Function").values()
    ]
    for variables in environments:
        for name, value in variables.items():
            if SECRET_LIKE_NAME.search(name):
                # Only a pointer to the secret, which the function reads at run time.
                assert name.endswith("_ARN"), name
                assert value == {"Ref": "OpenAIApiKeySecret"}, name
            serialized = json.dumps(value)
            assert "resolve:secretsmanager" not in serialized, name
            assert "sk-" not in serialized, name


def test_template_never_contains_an_openai_key(template: dict[str, Any]) -> None:
    serialized = json.dumps(template)
    assert re.search(r"sk-[A-Za-z0-9_-]{16,}", serialized) is None
    # A dynamic reference would copy the key into whatever property holds it.
    assert "resolve:secretsmanager" not in serialized
    # A key passed as a parameter would sit in the stack's parameters and change sets.
    assert [name for name in template["Parameters"] if SECRET_LIKE_NAME.search(name)] == []


def test_outputs_name_what_the_cli_needs(template: dict[str, Any]) -> None:
    assert {name: output["Value"] for name, output in template["Outputs"].items()} == {
        "StateMachineArn": {"Ref": "PipelineStateMachine"},
        "DataBucketName": {"Ref": "DataBucket"},
        "ProblemSetUploadPrefix": {"Fn::Sub": "s3://${DataBucket}/problem-sets/"},
        "RunsTableName": {"Ref": "RunsTable"},
        "OpenAIApiKeySecretArn": {"Ref": "OpenAIApiKeySecret"},
        "BedrockCustomizationRoleArn": {"Fn::GetAtt": ["BedrockCustomizationRole", "Arn"]},
    }


def test_bucket_is_versioned_and_old_versions_expire(template: dict[str, Any]) -> None:
    properties = template["Resources"]["DataBucket"]["Properties"]
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    expiring = [
        rule
        for rule in properties["LifecycleConfiguration"]["Rules"]
        if rule["Status"] == "Enabled" and "NoncurrentVersionExpiration" in rule
    ]
    assert len(expiring) == 1, (
        "one rule expiring noncurrent versions, so rewritten JSONL does not cost forever"
    )
    assert 1 <= expiring[0]["NoncurrentVersionExpiration"]["NoncurrentDays"] <= 90
    assert expiring[0].get("Prefix", "") == "" and "Filter" not in expiring[0], "the whole bucket"


def test_bucket_access_is_logged_to_a_bucket_only_log_delivery_writes(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    logging = resources["DataBucket"]["Properties"]["LoggingConfiguration"]
    assert logging["DestinationBucketName"] == {"Ref": "AccessLogBucket"}
    prefix = logging["LogFilePrefix"]
    assert prefix.endswith("/")

    log_bucket = resources["AccessLogBucket"]
    assert {key: log_bucket.get(key) for key in RETAIN} == RETAIN
    properties = log_bucket["Properties"]
    assert "BucketName" not in properties
    # S3 delivers access logs to SSE-S3 buckets only.
    (encryption,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert properties["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert "LoggingConfiguration" not in properties, "a log bucket logging to itself would log forever"
    expirations = [
        rule for rule in properties["LifecycleConfiguration"]["Rules"] if "ExpirationInDays" in rule
    ]
    assert [rule["ExpirationInDays"] for rule in expirations] == [{"Ref": "LogRetentionDays"}]

    (policy,) = [
        policy
        for policy in resources_of_type(template, "AWS::S3::BucketPolicy").values()
        if policy["Properties"]["Bucket"] == {"Ref": "AccessLogBucket"}
    ]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    (allow,) = [statement for statement in statements if statement["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert _as_list(allow["Action"]) == ["s3:PutObject"]
    assert allow["Resource"] == {"Fn::Sub": f"${{AccessLogBucket.Arn}}/{prefix}*"}
    assert allow["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    denies = [statement for statement in statements if statement["Effect"] == "Deny"]
    assert [statement["Condition"] for statement in denies] == [{"Bool": {"aws:SecureTransport": "false"}}]
    # Logging is switched on once log delivery may write.
    assert resources["DataBucket"]["DependsOn"] == "AccessLogBucketPolicy"


@DEAD_LETTERS
def test_dead_letter_queue_is_encrypted_with_a_key_eventbridge_may_use(
    template: dict[str, Any], queue_id: str, rule_id: str
) -> None:
    resources = template["Resources"]
    queue = resources[queue_id]
    assert queue["Type"] == "AWS::SQS::Queue"
    assert queue["Properties"]["KmsMasterKeyId"] == {"Ref": "DeadLetterKey"}
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600

    key = resources["DeadLetterKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    statements = {statement["Sid"]: statement for statement in key["KeyPolicy"]["Statement"]}
    events = statements["EventBridgeEncrypts"]
    assert events["Principal"] == {"Service": "events.amazonaws.com"}
    assert set(_as_list(events["Action"])) == {"kms:GenerateDataKey", "kms:Decrypt"}
    assert events["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert set(statements) == {"AccountAdministers", "EventBridgeEncrypts"}

    (policy,) = [
        policy
        for policy in resources_of_type(template, "AWS::SQS::QueuePolicy").values()
        if {"Ref": queue_id} in policy["Properties"]["Queues"]
    ]
    (send,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert send["Principal"] == {"Service": "events.amazonaws.com"}
    assert _as_list(send["Action"]) == ["sqs:SendMessage"]
    # Only its own rule (SAM names it after the resource and its event).
    assert send["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]}}}


@DEAD_LETTERS
def test_a_dead_letter_raises_an_alarm(
    template: dict[str, Any], translated_template: dict[str, Any], queue_id: str, rule_id: str
) -> None:
    alarms = [
        alarm["Properties"]
        for alarm in resources_of_type(template, "AWS::CloudWatch::Alarm").values()
        if alarm["Properties"]["Dimensions"]
        == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}]
    ]
    assert len(alarms) == 1
    (alarm,) = alarms
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == {
        "Fn::If": ["NotifyOnAlarm", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]
    }
    # The rule's dead letters go to that queue, and SAM makes no queue of its own.
    queues = resources_of_type(translated_template, "AWS::SQS::Queue")
    assert set(queues) == {"ProblemSetUploadedDeadLetterQueue", "ExecutionEndedDeadLetterQueue"}
    (target,) = translated_template["Resources"][rule_id]["Properties"]["Targets"]
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}}
