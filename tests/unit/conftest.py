"""Fixtures for the unit tests that need S3 or DynamoDB: moto's `mock_aws`, set up as template.yaml does."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from synthtune.records.artifacts import ArtifactStore
from synthtune.records.runs import RunStore
from synthtune_cli.template import load_template

REGION = "us-east-1"
BUCKET = "synthtune-unit-data"
TABLE = "synthtune-unit-runs"


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def runs(aws: None) -> RunStore:
    """The runs table, keyed as template.yaml's RunsTable is."""
    properties = load_template()["Resources"]["RunsTable"]["Properties"]
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=properties["KeySchema"],
        AttributeDefinitions=properties["AttributeDefinitions"],
        BillingMode="PAY_PER_REQUEST",
    )
    return RunStore(TABLE, dynamodb)


@pytest.fixture
def data(aws: None) -> ArtifactStore:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    return ArtifactStore(BUCKET, s3)
