"""Which AWS requests each principal of the stack makes, recorded while the real state machine runs offline,
and the IAM permissions each request needs.

Every botocore call in this process passes through `BaseClient._make_api_call`; `record_aws_calls` wraps it
and notes who made the call:
- a Lambda function, while its handler runs (a context variable set around the handler and carried into the
  threads it starts through `ThreadPoolExecutor.submit`, s3transfer's included);
- `BedrockCustomizationRole`, for the S3 client the emulator's customisation jobs use: in AWS, Bedrock reads
  the dataset and writes the job's output as that role;
- `PipelineStateMachine`, for any other call made off the test's own thread: moto's interpreter invoking the
  functions and reading the Distributed Map's items.
The test's own calls (uploads, polling, reading results) are not recorded.

`iam_requests` then turns each call into the IAM actions and resources AWS authorises it against, from the
Service Authorization Reference: S3 PutObject is s3:PutObject on the object's ARN; a multipart upload's calls
need s3:PutObject and, because the writer aborts the upload when it fails, s3:AbortMultipartUpload; Converse
is bedrock:InvokeModel on the model, the inference profile and every Region the profile routes to. A call
with no mapping here fails the test, naming it, rather than passing unchecked.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from unittest import mock

import boto3.s3.transfer
from botocore.client import BaseClient

from synthtune_cli.offline import ACCOUNT_ID, OfflineStack

STATE_MACHINE = "PipelineStateMachine"
BEDROCK_SERVICE_ROLE = "BedrockCustomizationRole"

_principal: contextvars.ContextVar[str | None] = contextvars.ContextVar("aws_principal", default=None)


@dataclass(frozen=True)
class AwsCall:
    principal: str
    service: str
    operation: str
    region: str
    parameters: dict[str, Any]
    scenario: str

    def __str__(self) -> str:
        return f"{self.service}:{self.operation} in {self.scenario}"


@dataclass(frozen=True)
class IamRequest:
    """One authorisation AWS makes for a call: an action on a resource, with the condition keys it sets."""

    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        where = "".join(f" with {key}={value!r}" for key, value in self.context)
        return f"{self.action} on {self.resource}{where}"


class CallRecorder:
    """The calls made while `record_aws_calls` is active, each with its principal and scenario."""

    def __init__(self) -> None:
        self.calls: list[AwsCall] = []
        self.scenario = ""
        self._lock = threading.Lock()
        self._owner = threading.get_ident()
        self._client_principals: dict[int, str] = {}
        self._last_function: str | None = None

    def client_for(self, principal: str, client: Any) -> Any:
        """Attribute every call `client` makes to `principal` (a service acting with its own role)."""
        self._client_principals[id(client)] = principal
        return client

    def _enter(self, function: str) -> None:
        """A handler of `function` starts: if another function ran last, forget the secrets it cached.

        In AWS each function has its own execution environments, so an API key one function read from
        Secrets Manager is not in another's cache; offline they share one process, and Powertools' cache
        would hide the read of every function after the first.
        """
        from aws_lambda_powertools.utilities import parameters

        with self._lock:
            if self._last_function not in (None, function):
                parameters.clear_caches()  # type: ignore[no-untyped-call]
            self._last_function = function

    def _record(self, client: BaseClient, operation: str, parameters: dict[str, Any]) -> None:
        principal = self._client_principals.get(id(client)) or _principal.get()
        if principal is None:
            if threading.get_ident() == self._owner:
                return  # the test's own upload, poll or read
            principal = STATE_MACHINE
        call = AwsCall(
            principal=principal,
            service=client.meta.service_model.service_name,
            operation=operation,
            region=client.meta.region_name or "",
            parameters=dict(parameters),
            scenario=self.scenario,
        )
        with self._lock:
            self.calls.append(call)


class _MultipartAlways(boto3.s3.transfer.TransferConfig):
    """boto3's managed transfers as they are for a large file: multipart from the first byte."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**{"multipart_threshold": 1, **options})


@contextlib.contextmanager
def record_aws_calls() -> Iterator[CallRecorder]:
    """Record every AWS call made by the stacks started inside the block.

    Uploads are made to stream the way they do on large data: the artifact store's writers send every row
    as its own part and boto3's managed transfers go multipart at once (and moto accepts parts of any size),
    so the multipart calls a function makes in production are the ones it makes here.
    """
    from moto.s3 import models as moto_s3

    from synthtune.records import artifacts

    recorder = CallRecorder()
    make_api_call = BaseClient._make_api_call
    submit = ThreadPoolExecutor.submit
    handler_of = OfflineStack._handler
    streaming_upload_init = artifacts._StreamingUpload.__init__

    def recording_call(client: BaseClient, operation: str, parameters: dict[str, Any]) -> Any:
        recorder._record(client, operation, parameters)
        return make_api_call(client, operation, parameters)

    def submit_in_context(
        executor: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kw: Any
    ) -> Any:
        return submit(executor, contextvars.copy_context().run, fn, *args, **kw)

    def handler_as_principal(stack: OfflineStack, logical_id: str) -> Callable[[dict[str, Any], Any], Any]:
        handler = handler_of(stack, logical_id)

        def run(event: dict[str, Any], context: Any) -> Any:
            recorder._enter(logical_id)
            token = _principal.set(logical_id)
            try:
                return handler(event, context)
            finally:
                _principal.reset(token)

        return run

    def one_row_parts(upload: Any, s3: Any, bucket: str, key: str, content_type: str, part_size: int) -> None:
        streaming_upload_init(upload, s3, bucket, key, content_type, artifacts.MIN_PART_SIZE)

    with contextlib.ExitStack() as patches:
        patches.enter_context(mock.patch.object(BaseClient, "_make_api_call", recording_call))
        patches.enter_context(mock.patch.object(ThreadPoolExecutor, "submit", submit_in_context))
        patches.enter_context(mock.patch.object(OfflineStack, "_handler", handler_as_principal))
        patches.enter_context(mock.patch.object(artifacts, "MIN_PART_SIZE", 1))
        patches.enter_context(mock.patch.object(artifacts._StreamingUpload, "__init__", one_row_parts))
        patches.enter_context(mock.patch.object(boto3.s3.transfer, "TransferConfig", _MultipartAlways))
        patches.enter_context(mock.patch.object(moto_s3, "S3_UPLOAD_PART_MIN_SIZE", 0))
        yield recorder


# ------------------------------------------------------------------------------------------- IAM mapping


class UnmappedCall(LookupError):
    """A call this module cannot translate into IAM actions yet."""


def _s3(call: AwsCall) -> list[IamRequest]:
    bucket = call.parameters["Bucket"]
    bucket_arn = f"arn:aws:s3:::{bucket}"
    object_arn = f"{bucket_arn}/{call.parameters.get('Key', '')}"
    match call.operation:
        case "GetObject" | "HeadObject":
            return [IamRequest("s3:GetObject", object_arn)]
        case "PutObject":
            return [IamRequest("s3:PutObject", object_arn)]
        case "CreateMultipartUpload" | "UploadPart" | "CompleteMultipartUpload":
            # A writer that fails must be able to abort what it started, or the parts stay billed.
            return [IamRequest("s3:PutObject", object_arn), IamRequest("s3:AbortMultipartUpload", object_arn)]
        case "AbortMultipartUpload":
            return [IamRequest("s3:AbortMultipartUpload", object_arn)]
        case "DeleteObject":
            return [IamRequest("s3:DeleteObject", object_arn)]
        case "ListObjectsV2" | "ListObjects":
            prefix = call.parameters.get("Prefix", "")
            return [IamRequest("s3:ListBucket", bucket_arn, (("s3:prefix", prefix),))]
    raise UnmappedCall(call)


_DYNAMODB_TABLE_ACTIONS = frozenset(
    {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "DescribeTable"}
)
_TRANSACT_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "Get": "GetItem"}


def _dynamodb(call: AwsCall) -> list[IamRequest]:
    def table(name: str) -> str:
        return f"arn:aws:dynamodb:{call.region}:{ACCOUNT_ID}:table/{name}"

    if call.operation in _DYNAMODB_TABLE_ACTIONS:
        return [IamRequest(f"dynamodb:{call.operation}", table(call.parameters["TableName"]))]
    if call.operation in {"TransactWriteItems", "TransactGetItems"}:
        requests = []
        for item in call.parameters["TransactItems"]:
            ((kind, body),) = item.items()
            action = _TRANSACT_ACTIONS.get(kind, "ConditionCheckItem")
            requests.append(IamRequest(f"dynamodb:{action}", table(body["TableName"])))
        return requests
    raise UnmappedCall(call)


def _secretsmanager(call: AwsCall) -> list[IamRequest]:
    if call.operation == "GetSecretValue":
        return [IamRequest("secretsmanager:GetSecretValue", call.parameters["SecretId"])]
    raise UnmappedCall(call)


# The Regions each geography's cross-Region inference profiles may send a request to; IAM checks the
# foundation model in each of them. (Bedrock user guide, "Supported Regions and models for inference
# profiles".)
_PROFILE_REGIONS = {
    "us": ("us-east-1", "us-east-2", "us-west-2"),
    "eu": ("eu-central-1", "eu-west-1", "eu-west-3"),
    "apac": ("ap-northeast-1", "ap-south-1", "ap-southeast-1", "ap-southeast-2"),
    "global": ("us-east-1", "eu-west-1", "ap-northeast-1"),
}


def _bedrock_arn(call: AwsCall, kind: str, identifier: str) -> str:
    if identifier.startswith("arn:"):
        return identifier
    if kind == "foundation-model":
        return f"arn:aws:bedrock:{call.region}::foundation-model/{identifier}"
    return f"arn:aws:bedrock:{call.region}:{ACCOUNT_ID}:{kind}/{identifier}"


def _invoked_model(call: AwsCall, model_id: str) -> list[str]:
    """The resources InvokeModel is authorised on for a model id: a profile and its models, or the model."""
    geography, _, model = model_id.partition(".")
    if not model_id.startswith("arn:") and geography in _PROFILE_REGIONS:
        return [
            _bedrock_arn(call, "inference-profile", model_id),
            *(
                f"arn:aws:bedrock:{region}::foundation-model/{model}"
                for region in _PROFILE_REGIONS[geography]
            ),
        ]
    if not model_id.startswith("arn:") and "." in model and geography.isalpha() and len(geography) <= 2:
        raise UnmappedCall(f"{call}: inference profile geography {geography!r} has no Region list here")
    return [_bedrock_arn(call, "foundation-model", model_id)]


def _tag_requests(call: AwsCall, resources: dict[str, str]) -> list[IamRequest]:
    """Tags given at creation need bedrock:TagResource on the resource they are given to."""
    return [
        IamRequest("bedrock:TagResource", resource)
        for parameter, resource in resources.items()
        if call.parameters.get(parameter)
    ]


def _bedrock(call: AwsCall) -> list[IamRequest]:
    p = call.parameters
    action = f"bedrock:{call.operation}"
    match call.operation:
        case "CreateModelCustomizationJob":
            job = _bedrock_arn(call, "model-customization-job", p["jobName"])
            model = _bedrock_arn(call, "custom-model", p["customModelName"])
            return [
                IamRequest(action, job),
                IamRequest(action, _bedrock_arn(call, "foundation-model", p["baseModelIdentifier"])),
                IamRequest(action, model),
                *_tag_requests(call, {"jobTags": job, "customModelTags": model}),
                IamRequest("iam:PassRole", p["roleArn"], (("iam:PassedToService", "bedrock.amazonaws.com"),)),
            ]
        case "GetModelCustomizationJob" | "StopModelCustomizationJob":
            return [IamRequest(action, _bedrock_arn(call, "model-customization-job", p["jobIdentifier"]))]
        case "CreateCustomModelDeployment":
            deployment = _bedrock_arn(call, "custom-model-deployment", p["modelDeploymentName"])
            return [
                IamRequest(action, _bedrock_arn(call, "custom-model", p["modelArn"])),
                IamRequest(action, deployment),
                *_tag_requests(call, {"tags": deployment}),
            ]
        case "GetCustomModelDeployment" | "DeleteCustomModelDeployment":
            identifier = p["customModelDeploymentIdentifier"]
            return [IamRequest(action, _bedrock_arn(call, "custom-model-deployment", identifier))]
        case "CreateProvisionedModelThroughput":
            throughput = _bedrock_arn(call, "provisioned-model", p["provisionedModelName"])
            model = p["modelId"]
            kind = "custom-model" if ":custom-model/" in model else "foundation-model"
            return [
                IamRequest(action, _bedrock_arn(call, kind, model)),
                IamRequest(action, throughput),
                *_tag_requests(call, {"tags": throughput}),
            ]
        case "GetProvisionedModelThroughput" | "DeleteProvisionedModelThroughput":
            return [IamRequest(action, _bedrock_arn(call, "provisioned-model", p["provisionedModelId"]))]
        case "GetFoundationModel":
            return [IamRequest(action, _bedrock_arn(call, "foundation-model", p["modelIdentifier"]))]
        case "ListFoundationModels":
            return [IamRequest(action, "*")]  # no resource type: IAM authorises it on "*" only
    raise UnmappedCall(call)


def _bedrock_runtime(call: AwsCall) -> list[IamRequest]:
    actions = {"Converse": "bedrock:InvokeModel", "ConverseStream": "bedrock:InvokeModelWithResponseStream"}
    if call.operation in actions:
        return [
            IamRequest(actions[call.operation], arn)
            for arn in _invoked_model(call, call.parameters["modelId"])
        ]
    raise UnmappedCall(call)


def _lambda(call: AwsCall) -> list[IamRequest]:
    if call.operation == "Invoke":
        name = call.parameters["FunctionName"]
        arn = (
            name if name.startswith("arn:") else f"arn:aws:lambda:{call.region}:{ACCOUNT_ID}:function:{name}"
        )
        return [IamRequest("lambda:InvokeFunction", arn)]
    raise UnmappedCall(call)


_SERVICES: dict[str, Callable[[AwsCall], list[IamRequest]]] = {
    "s3": _s3,
    "dynamodb": _dynamodb,
    "secretsmanager": _secretsmanager,
    "bedrock": _bedrock,
    "bedrock-runtime": _bedrock_runtime,
    "lambda": _lambda,
}


def iam_requests(call: AwsCall) -> list[IamRequest]:
    """What IAM authorises `call` against; UnmappedCall for a service or operation not mapped above."""
    if call.service not in _SERVICES:
        raise UnmappedCall(call)
    return _SERVICES[call.service](call)
