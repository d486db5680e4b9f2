import boto3
import pytest
from botocore.stub import Stubber

from synthtune.contracts.errors import InvalidProblemSet
from synthtune.records.artifacts import ArtifactStore
from synthtune.stages.prepare import _resolve_problem_set


def test_an_unreadable_problem_set_says_where_problem_sets_must_live() -> None:
    s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(s3) as stubber:
        stubber.add_client_error("head_object", service_error_code="403", http_status_code=403)
        with pytest.raises(
            InvalidProblemSet, match=r"cannot read s3://other/p.jsonl \(403\).*data bucket only"
        ):
            _resolve_problem_set(ArtifactStore("other", s3), "p.jsonl")
