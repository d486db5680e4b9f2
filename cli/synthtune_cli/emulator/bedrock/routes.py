"""Bedrock's HTTP routes (control plane `bedrock` and runtime `bedrock-runtime`) on the emulator's app.

boto3 reaches them through `AWS_ENDPOINT_URL_BEDROCK` and `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`, both the
emulator's root URL: the two services' paths do not overlap, so one app serves both. botocore
percent-encodes identifiers in paths (an ARN's `:` and `/`); the WSGI server decodes them, and the `path`
converters below take identifiers that contain slashes. Any SigV4 (or Bedrock API key) Authorization
header is accepted and not verified.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from synthtune_cli.emulator.bedrock.converse import converse
from synthtune_cli.emulator.bedrock.foundation_models import catalogue_summaries, find_foundation_model
from synthtune_cli.emulator.bedrock.protocol import (
    BedrockError,
    ListQuery,
    json_response,
    read_body,
    validation_error,
    with_next_token,
)
from synthtune_cli.emulator.state import BilledRequest, mark_lost

if TYPE_CHECKING:
    from synthtune_cli.emulator.bedrock.account import BedrockAccount
    from synthtune_cli.emulator.state import EmulatorState

Handler = Callable[[Request, dict[str, str]], Response]

_JOBS = "/model-customization-jobs"
_MODELS = "/custom-models"
_DEPLOYMENTS = "/model-customization/custom-model-deployments"
# Each endpoint is the operation's name in botocore's service model.
_ROUTES = Map(
    [
        Rule(_JOBS, methods=["POST"], endpoint="CreateModelCustomizationJob"),
        Rule(_JOBS, methods=["GET"], endpoint="ListModelCustomizationJobs"),
        Rule(f"{_JOBS}/<path:identifier>", methods=["GET"], endpoint="GetModelCustomizationJob"),
        Rule(f"{_JOBS}/<path:identifier>/stop", methods=["POST"], endpoint="StopModelCustomizationJob"),
        Rule(_MODELS, methods=["GET"], endpoint="ListCustomModels"),
        Rule(f"{_MODELS}/<path:identifier>", methods=["GET"], endpoint="GetCustomModel"),
        Rule(f"{_MODELS}/<path:identifier>", methods=["DELETE"], endpoint="DeleteCustomModel"),
        Rule(_DEPLOYMENTS, methods=["POST"], endpoint="CreateCustomModelDeployment"),
        Rule(_DEPLOYMENTS, methods=["GET"], endpoint="ListCustomModelDeployments"),
        Rule(f"{_DEPLOYMENTS}/<path:identifier>", methods=["GET"], endpoint="GetCustomModelDeployment"),
        Rule(f"{_DEPLOYMENTS}/<path:identifier>", methods=["DELETE"], endpoint="DeleteCustomModelDeployment"),
        Rule("/provisioned-model-throughput", methods=["POST"], endpoint="CreateProvisionedModelThroughput"),
        Rule("/provisioned-model-throughputs", methods=["GET"], endpoint="ListProvisionedModelThroughputs"),
        Rule(
            "/provisioned-model-throughput/<path:identifier>",
            methods=["GET"],
            endpoint="GetProvisionedModelThroughput",
        ),
        Rule(
            "/provisioned-model-throughput/<path:identifier>",
            methods=["DELETE"],
            endpoint="DeleteProvisionedModelThroughput",
        ),
        Rule("/foundation-models", methods=["GET"], endpoint="ListFoundationModels"),
        Rule("/foundation-models/<path:identifier>", methods=["GET"], endpoint="GetFoundationModel"),
        Rule("/model/<path:identifier>/converse", methods=["POST"], endpoint="Converse"),
    ],
    strict_slashes=False,
    merge_slashes=False,
)
_AUTHORIZATION_SCHEMES = ("AWS4-HMAC-SHA256 ", "Bearer ")
# Injected faults take the code Bedrock gives each status; any other 5xx is a 503, as on AWS.
_FAULT_CODES = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    409: "ConflictException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}

_FAULT_MESSAGES = {
    "ThrottlingException": "Too many requests, please wait before trying again.",
    "InternalServerException": "The service encountered an internal error.",
    "ServiceUnavailableException": "The service is unavailable. Try again later.",
}


class BedrockApi:
    """Answers every request that is not OpenAI's (/v1) or the admin API's (/_emulator)."""

    def __init__(self, state: EmulatorState) -> None:
        self._state = state
        self._handlers: dict[str, Handler] = {
            "CreateModelCustomizationJob": self._create_job,
            "ListModelCustomizationJobs": self._list_jobs,
            "GetModelCustomizationJob": self._get_job,
            "StopModelCustomizationJob": self._stop_job,
            "ListCustomModels": self._list_models,
            "GetCustomModel": self._get_model,
            "DeleteCustomModel": self._delete_model,
            "CreateCustomModelDeployment": self._create_deployment,
            "ListCustomModelDeployments": self._list_deployments,
            "GetCustomModelDeployment": self._get_deployment,
            "DeleteCustomModelDeployment": self._delete_deployment,
            "CreateProvisionedModelThroughput": self._create_provisioned,
            "ListProvisionedModelThroughputs": self._list_provisioned,
            "GetProvisionedModelThroughput": self._get_provisioned,
            "DeleteProvisionedModelThroughput": self._delete_provisioned,
            "ListFoundationModels": self._list_foundation_models,
            "GetFoundationModel": self._get_foundation_model,
            "Converse": self._converse,
        }

    @property
    def _account(self) -> BedrockAccount:
        return self._state.bedrock

    def respond(self, request: Request) -> Response:
        if not request.headers.get("Authorization", "").startswith(_AUTHORIZATION_SCHEMES):
            raise BedrockError(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
        with self._state.lock:
            fault = self._state.faults.next_fault(request.path, self._state.knobs, self._state.seed)
            if fault is not None:
                raise fault_error(fault.status)
            handler, arguments = self._route(request)
            self._state.refresh()
            billed_before = len(self._state.billed)
            response = handler(request, arguments)
            lost = self._state.faults.next_loss(request.method, request.path)
            if lost is not None:
                mark_lost(self._state.billed, billed_before)
                raise fault_error(lost)  # the work is done; the caller never learns of it
            latency = self._state.knobs.latency_seconds
        # As on the OpenAI side: refusals return at once, answers after the simulated latency, slept outside
        # the lock so slow requests overlap.
        self._state.clock.sleep(latency)
        return response

    def _route(self, request: Request) -> tuple[Handler, dict[str, str]]:
        adapter = _ROUTES.bind_to_environ(request.environ)
        try:
            endpoint, arguments = adapter.match()
        except (NotFound, MethodNotAllowed) as error:
            raise BedrockError(
                404,
                "UnknownOperationException",
                f"The emulator has no Bedrock operation at {request.method} {request.path}: it is not one, "
                "or not one the emulator emulates (see its README).",
            ) from error
        return self._handlers[str(endpoint)], {key: str(value) for key, value in arguments.items()}

    @property
    def _now(self) -> float:
        return self._state.clock.now()

    # -- customisation jobs -----------------------------------------------------------------------

    def _create_job(self, request: Request, arguments: dict[str, str]) -> Response:
        arn = self._account.jobs.create(read_body(request), self._now, self._state.knobs)
        return json_response({"jobArn": arn}, 201)

    def _list_jobs(self, request: Request, arguments: dict[str, str]) -> Response:
        page, next_token = self._account.jobs.page(ListQuery.from_request(request), self._now)
        return json_response(with_next_token({"modelCustomizationJobSummaries": page}, next_token))

    def _get_job(self, request: Request, arguments: dict[str, str]) -> Response:
        return json_response(self._account.jobs.get(arguments["identifier"], self._now))

    def _stop_job(self, request: Request, arguments: dict[str, str]) -> Response:
        self._account.jobs.stop(arguments["identifier"], self._now, self._state.knobs)
        return json_response({})

    # -- custom models ----------------------------------------------------------------------------

    def _list_models(self, request: Request, arguments: dict[str, str]) -> Response:
        base_arn = request.args.get("baseModelArnEquals")
        foundation_arn = request.args.get("foundationModelArnEquals")
        models = [
            model
            for model in self._account.custom_models.all()
            if (base_arn is None or model.base_model_arn == base_arn)
            and (
                foundation_arn is None
                or foundation_arn
                in (model.base_model_arn, self._account.arns.foundation_model(model.base.model_id))
            )
        ]
        query = ListQuery.from_request(request, status="modelStatus")
        page, next_token = query.page([model.listing() for model in models])
        return json_response(with_next_token({"modelSummaries": page}, next_token))

    def _get_model(self, request: Request, arguments: dict[str, str]) -> Response:
        return json_response(self._account.custom_models.get(arguments["identifier"]).to_api())

    def _delete_model(self, request: Request, arguments: dict[str, str]) -> Response:
        self._account.custom_models.delete(arguments["identifier"])
        return json_response({})

    # -- deployments ------------------------------------------------------------------------------

    def _create_deployment(self, request: Request, arguments: dict[str, str]) -> Response:
        arn = self._account.deployments.create(read_body(request), self._now, self._state.knobs)
        return json_response({"customModelDeploymentArn": arn}, 202)

    def _list_deployments(self, request: Request, arguments: dict[str, str]) -> Response:
        query = ListQuery.from_request(request, after="createdAfter", before="createdBefore")
        page, next_token = self._account.deployments.page(query, request.args.get("modelArnEquals"))
        return json_response(with_next_token({"modelDeploymentSummaries": page}, next_token))

    def _get_deployment(self, request: Request, arguments: dict[str, str]) -> Response:
        return json_response(self._account.deployments.get(arguments["identifier"]))

    def _delete_deployment(self, request: Request, arguments: dict[str, str]) -> Response:
        self._account.deployments.delete(arguments["identifier"])
        return json_response({})

    # -- Provisioned Throughput -------------------------------------------------------------------

    def _create_provisioned(self, request: Request, arguments: dict[str, str]) -> Response:
        arn = self._account.provisioned.create(read_body(request), self._now, self._state.knobs)
        return json_response({"provisionedModelArn": arn}, 201)

    def _list_provisioned(self, request: Request, arguments: dict[str, str]) -> Response:
        query = ListQuery.from_request(request)
        page, next_token = self._account.provisioned.page(query, request.args.get("modelArnEquals"))
        return json_response(with_next_token({"provisionedModelSummaries": page}, next_token))

    def _get_provisioned(self, request: Request, arguments: dict[str, str]) -> Response:
        return json_response(self._account.provisioned.get(arguments["identifier"]))

    def _delete_provisioned(self, request: Request, arguments: dict[str, str]) -> Response:
        self._account.provisioned.delete(arguments["identifier"])
        return json_response({})

    # -- foundation models ------------------------------------------------------------------------

    def _list_foundation_models(self, request: Request, arguments: dict[str, str]) -> Response:
        filters: list[tuple[str, Callable[[dict[str, Any], str], bool]]] = [
            ("byProvider", lambda summary, value: summary["providerName"].casefold() == value.casefold()),
            ("byCustomizationType", lambda summary, value: value in summary["customizationsSupported"]),
            ("byOutputModality", lambda summary, value: value in summary["outputModalities"]),
            ("byInferenceType", lambda summary, value: value in summary["inferenceTypesSupported"]),
        ]
        summaries = catalogue_summaries(self._account.arns)
        for name, keep in filters:
            value = request.args.get(name)
            if value is not None:
                summaries = [summary for summary in summaries if keep(summary, value)]
        return json_response({"modelSummaries": summaries})

    def _get_foundation_model(self, request: Request, arguments: dict[str, str]) -> Response:
        identifier = arguments["identifier"]
        reference = find_foundation_model(identifier)
        if reference is None or reference.via_profile:
            raise validation_error(
                "Could not resolve the foundation model from the provided model identifier."
            )
        model, arns = reference.model, self._account.arns
        details = (
            model.customization_summary(arns) if reference.customization_variant else model.summary(arns)
        )
        return json_response({"modelDetails": details})

    # -- runtime ----------------------------------------------------------------------------------

    def _converse(self, request: Request, arguments: dict[str, str]) -> Response:
        response = converse(
            self._account,
            arguments["identifier"],
            read_body(request),
            knowledge=self._state.knowledge,
            seed=self._state.seed,
            knobs=self._state.knobs,
            now=self._now,
        )
        usage = response["usage"]
        self._state.billed.append(
            BilledRequest("bedrock", arguments["identifier"], usage["inputTokens"], usage["outputTokens"])
        )
        return json_response(response)


def fault_error(status: int) -> BedrockError:
    """An injected fault (`inject_errors`, `error_rate`) as Bedrock would answer it."""
    if status > 500:
        status = 503
    code = _FAULT_CODES.get(status, "ValidationException")
    message = _FAULT_MESSAGES.get(code, f"Injected error {status}.")
    return BedrockError(status, code, f"{message} (injected by the emulator)")
