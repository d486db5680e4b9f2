"""Custom model deployments: a Nova Micro, Lite or Pro custom model served on demand, per token.

A deployment is Creating for `deployment_seconds` after it is created, then Active (or Failed, when the
knob `deployment_failure` is set while it is still Creating, like `fine_tune_failure` for jobs). Converse
takes the deployment's ARN as its model id and answers as the custom model; before the deployment is
Active it answers ModelNotReadyException, after it is deleted ResourceNotFoundException.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from synthtune_cli.emulator.bedrock.custom_models import CustomModels
from synthtune_cli.emulator.bedrock.foundation_models import FoundationModel
from synthtune_cli.emulator.bedrock.protocol import (
    RESOURCE_NAME,
    Arns,
    BedrockError,
    Listing,
    ListQuery,
    checked_name,
    client_request_token,
    conflict,
    iso_time,
    not_found,
    optional_string,
    required_string,
    validation_error,
)
from synthtune_cli.emulator.catalogue import SimulatedModel
from synthtune_cli.emulator.draws import IdFactory
from synthtune_cli.emulator.knobs import EmulatorKnobs


def model_not_ready(message: str) -> BedrockError:
    # The one Bedrock runtime error its model marks retryable: SDKs retry it on their own.
    return BedrockError(429, "ModelNotReadyException", message)


@dataclass
class _Deployment:
    arn: str
    name: str
    model_arn: str
    description: str | None
    token: str | None
    created_at: float
    ready_at: float
    status: str = "Creating"
    updated_at: float | None = None
    failure_message: str | None = None


class Deployments:
    """Deployments by ARN, in creation order. Not thread-safe: the emulator's state lock guards it."""

    def __init__(self, arns: Arns, ids: IdFactory, models: CustomModels) -> None:
        self._arns = arns
        self._ids = ids
        self._models = models
        self._deployments: dict[str, _Deployment] = {}

    def __len__(self) -> int:
        return len(self._deployments)

    def clear(self) -> None:
        self._deployments.clear()

    def create(self, body: Mapping[str, Any], now: float, knobs: EmulatorKnobs) -> str:
        """Deploy a custom model (or find the deployment this request's token made); returns its ARN."""
        name = checked_name(
            required_string(body, "modelDeploymentName"), "modelDeploymentName", RESOURCE_NAME
        )
        model = self._models.get(required_string(body, "modelArn"))
        description = optional_string(body, "description")
        token = client_request_token(body)
        customization = model.base.customization
        if customization is None or not customization.on_demand_deployment:
            raise validation_error(
                f"On-demand deployment is not supported for this model ({model.base.name}); "
                "use Provisioned Throughput."
            )
        if token is not None:
            earlier = next((item for item in self._deployments.values() if item.token == token), None)
            if earlier is not None:
                if earlier.name != name:
                    raise conflict(
                        f"The clientRequestToken {token} was already used to create the deployment "
                        f"{earlier.name}."
                    )
                return earlier.arn
        if any(item.name == name for item in self._deployments.values()):
            raise conflict(f"A custom model deployment named {name} already exists.")
        deployment = _Deployment(
            arn=self._arns.deployment(self._ids.bare("custom-model-deployment")),
            name=name,
            model_arn=model.arn,
            description=description,
            token=token,
            created_at=now,
            ready_at=now + knobs.deployment_seconds,
        )
        self._deployments[deployment.arn] = deployment
        self._advance(deployment, now, knobs)
        return deployment.arn

    def refresh(self, now: float, knobs: EmulatorKnobs) -> None:
        for deployment in self._deployments.values():
            self._advance(deployment, now, knobs)

    def _advance(self, deployment: _Deployment, now: float, knobs: EmulatorKnobs) -> None:
        if deployment.status != "Creating":
            return
        if knobs.deployment_failure is not None:
            deployment.status, deployment.failure_message = "Failed", knobs.deployment_failure
            deployment.updated_at = min(now, deployment.ready_at)
        elif now >= deployment.ready_at:
            deployment.status, deployment.updated_at = "Active", deployment.ready_at

    def serving(self, arn: str) -> tuple[FoundationModel, SimulatedModel]:
        """The model a Converse request to this deployment is answered by, or the error it gets."""
        deployment = self._get(arn)
        if deployment.status == "Creating":
            raise model_not_ready(
                f"The custom model deployment {deployment.name} is still being created. "
                "Wait until its status is Active and try again."
            )
        if deployment.status == "Failed":
            raise validation_error(
                f"The custom model deployment {deployment.name} failed: {deployment.failure_message}"
            )
        model = self._models.find(deployment.model_arn)
        if model is None:
            raise not_found(f"The custom model {deployment.model_arn} of this deployment no longer exists.")
        return model.base, model.simulated

    def get(self, identifier: str) -> dict[str, Any]:
        return self._to_api(self._get(identifier))

    def delete(self, identifier: str) -> None:
        del self._deployments[self._get(identifier).arn]

    def page(self, query: ListQuery, model_arn: str | None) -> tuple[list[dict[str, Any]], str | None]:
        listings = [
            self._listing(deployment)
            for deployment in self._deployments.values()
            if model_arn is None or deployment.model_arn == model_arn
        ]
        return query.page(listings)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {arn: self._to_api(deployment) for arn, deployment in self._deployments.items()}

    def _get(self, identifier: str) -> _Deployment:
        deployment = self._deployments.get(identifier) or next(
            (item for item in self._deployments.values() if item.name == identifier), None
        )
        if deployment is None:
            raise not_found(f"Could not find a custom model deployment with identifier {identifier}.")
        return deployment

    def _to_api(self, deployment: _Deployment) -> dict[str, Any]:
        body: dict[str, Any] = {
            "customModelDeploymentArn": deployment.arn,
            "modelDeploymentName": deployment.name,
            "modelArn": deployment.model_arn,
            "createdAt": iso_time(deployment.created_at),
            "status": deployment.status,
            "lastUpdatedAt": iso_time(deployment.updated_at or deployment.created_at),
        }
        if deployment.description is not None:
            body["description"] = deployment.description
        if deployment.failure_message is not None:
            body["failureMessage"] = deployment.failure_message
        return body

    def _listing(self, deployment: _Deployment) -> Listing:
        summary: dict[str, Any] = {
            "customModelDeploymentArn": deployment.arn,
            "customModelDeploymentName": deployment.name,
            "modelArn": deployment.model_arn,
            "createdAt": iso_time(deployment.created_at),
            "status": deployment.status,
            "lastUpdatedAt": iso_time(deployment.updated_at or deployment.created_at),
        }
        if deployment.failure_message is not None:
            summary["failureMessage"] = deployment.failure_message
        return Listing(deployment.name, deployment.status, deployment.created_at, summary)
