"""Provisioned Throughput: model units reserved for a custom or foundation model, billed by the hour.

It is the only way to serve a custom model whose base cannot be deployed on demand (Nova 2 Lite, Llama).
A Provisioned Throughput is Creating for `provisioning_seconds`, then InService (or Failed, when the knob
`provisioning_failure` is set while it is still Creating); Converse takes its ARN as the model id.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from synthtune_cli.emulator.bedrock.custom_models import CustomModels
from synthtune_cli.emulator.bedrock.deployments import model_not_ready
from synthtune_cli.emulator.bedrock.foundation_models import FoundationModel, find_foundation_model
from synthtune_cli.emulator.bedrock.protocol import (
    Arns,
    Listing,
    ListQuery,
    checked_name,
    client_request_token,
    conflict,
    constraint_error,
    iso_time,
    not_found,
    required_string,
    validation_error,
)
from synthtune_cli.emulator.catalogue import SimulatedModel
from synthtune_cli.emulator.draws import IdFactory
from synthtune_cli.emulator.knobs import EmulatorKnobs

_PROVISIONED_NAME = re.compile(r"([0-9a-zA-Z][_-]?)+")
_DAY = 86_400.0
_COMMITMENTS = {"OneMonth": 30 * _DAY, "SixMonths": 180 * _DAY}


@dataclass
class _Provisioned:
    arn: str
    name: str
    model_arn: str
    foundation: FoundationModel
    # Set when the throughput serves a custom model: it answers as that model while the model exists.
    custom_model_arn: str | None
    units: int
    commitment: str | None
    token: str | None
    created_at: float
    ready_at: float
    status: str = "Creating"
    updated_at: float | None = None
    failure_message: str | None = None


class ProvisionedThroughputs:
    """Provisioned Throughputs by ARN. Not thread-safe: the emulator's state lock guards it."""

    def __init__(self, arns: Arns, ids: IdFactory, models: CustomModels) -> None:
        self._arns = arns
        self._ids = ids
        self._models = models
        self._provisioned: dict[str, _Provisioned] = {}

    def __len__(self) -> int:
        return len(self._provisioned)

    def clear(self) -> None:
        self._provisioned.clear()

    def create(self, body: Mapping[str, Any], now: float, knobs: EmulatorKnobs) -> str:
        """Reserve model units (or find what this request's token reserved); returns the ARN."""
        name = checked_name(
            required_string(body, "provisionedModelName"), "provisionedModelName", _PROVISIONED_NAME
        )
        units = body.get("modelUnits")
        if not isinstance(units, int) or isinstance(units, bool) or units < 1:
            raise constraint_error("modelUnits", units, "Member must have value greater than or equal to 1")
        commitment = body.get("commitmentDuration")
        if commitment is not None and commitment not in _COMMITMENTS:
            raise constraint_error(
                "commitmentDuration", commitment, "Member must satisfy enum value set: [OneMonth, SixMonths]"
            )
        model_arn, foundation, custom_model_arn = self._model(required_string(body, "modelId"))
        token = client_request_token(body)
        if token is not None:
            earlier = next((item for item in self._provisioned.values() if item.token == token), None)
            if earlier is not None:
                if earlier.name != name:
                    raise conflict(
                        f"The clientRequestToken {token} was already used to create the provisioned "
                        f"model {earlier.name}."
                    )
                return earlier.arn
        if any(item.name == name for item in self._provisioned.values()):
            raise conflict(f"A provisioned model named {name} already exists.")
        provisioned = _Provisioned(
            arn=self._arns.provisioned_model(self._ids.bare("provisioned-model")),
            name=name,
            model_arn=model_arn,
            foundation=foundation,
            custom_model_arn=custom_model_arn,
            units=units,
            commitment=commitment,
            token=token,
            created_at=now,
            ready_at=now + knobs.provisioning_seconds,
        )
        self._provisioned[provisioned.arn] = provisioned
        self._advance(provisioned, now, knobs)
        return provisioned.arn

    def _model(self, model_id: str) -> tuple[str, FoundationModel, str | None]:
        """(model ARN, foundation model, custom model ARN or None) of what the throughput will serve."""
        custom = self._models.find(model_id)
        if custom is not None:
            return custom.arn, custom.base, custom.arn
        if ":custom-model/" in model_id:
            self._models.get(model_id)  # raises ResourceNotFoundException: it was deleted or never was
        reference = find_foundation_model(model_id)
        if reference is None or reference.via_profile:
            raise validation_error(f"The provided model identifier {model_id} is invalid.")
        if reference.model.lifecycle.status != "ACTIVE":
            raise validation_error(
                f"Provisioned Throughput cannot be purchased for {reference.model.model_id}: "
                "the model is in the Legacy state."
            )
        model = reference.model
        served = model.model_id
        if reference.customization_variant and model.customization is not None:
            served = model.customization.model_id
        return self._arns.foundation_model(served), model, None

    def refresh(self, now: float, knobs: EmulatorKnobs) -> None:
        for provisioned in self._provisioned.values():
            self._advance(provisioned, now, knobs)

    def _advance(self, provisioned: _Provisioned, now: float, knobs: EmulatorKnobs) -> None:
        if provisioned.status != "Creating":
            return
        if knobs.provisioning_failure is not None:
            provisioned.status, provisioned.failure_message = "Failed", knobs.provisioning_failure
            provisioned.updated_at = min(now, provisioned.ready_at)
        elif now >= provisioned.ready_at:
            provisioned.status, provisioned.updated_at = "InService", provisioned.ready_at

    def serving(self, arn: str) -> tuple[FoundationModel, SimulatedModel]:
        """The model a Converse request to this throughput is answered by, or the error it gets."""
        provisioned = self._get(arn)
        if provisioned.status == "Creating":
            raise model_not_ready(
                f"The provisioned model {provisioned.name} is still being created. "
                "Wait until its status is InService and try again."
            )
        if provisioned.status == "Failed":
            raise validation_error(
                f"The provisioned model {provisioned.name} failed: {provisioned.failure_message}"
            )
        if provisioned.custom_model_arn is None:
            return provisioned.foundation, provisioned.foundation.simulated
        model = self._models.find(provisioned.custom_model_arn)
        if model is None:
            raise not_found(
                f"The custom model {provisioned.custom_model_arn} of this provisioned model no longer exists."
            )
        return model.base, model.simulated

    def get(self, identifier: str) -> dict[str, Any]:
        return self._to_api(self._get(identifier))

    def delete(self, identifier: str) -> None:
        del self._provisioned[self._get(identifier).arn]

    def page(self, query: ListQuery, model_arn: str | None) -> tuple[list[dict[str, Any]], str | None]:
        listings = []
        for provisioned in self._provisioned.values():
            if model_arn is not None and provisioned.model_arn != model_arn:
                continue
            summary = {
                key: value for key, value in self._to_api(provisioned).items() if key != "failureMessage"
            }
            listings.append(Listing(provisioned.name, provisioned.status, provisioned.created_at, summary))
        return query.page(listings)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {arn: self._to_api(provisioned) for arn, provisioned in self._provisioned.items()}

    def _get(self, identifier: str) -> _Provisioned:
        provisioned = self._provisioned.get(identifier) or next(
            (item for item in self._provisioned.values() if item.name == identifier), None
        )
        if provisioned is None:
            raise not_found(f"Could not find a provisioned model with identifier {identifier}.")
        return provisioned

    def _to_api(self, provisioned: _Provisioned) -> dict[str, Any]:
        foundation_id = provisioned.foundation.model_id
        body: dict[str, Any] = {
            "modelUnits": provisioned.units,
            "desiredModelUnits": provisioned.units,
            "provisionedModelName": provisioned.name,
            "provisionedModelArn": provisioned.arn,
            "modelArn": provisioned.model_arn,
            "desiredModelArn": provisioned.model_arn,
            "foundationModelArn": self._arns.foundation_model(foundation_id),
            "status": provisioned.status,
            "creationTime": iso_time(provisioned.created_at),
            "lastModifiedTime": iso_time(provisioned.updated_at or provisioned.created_at),
        }
        if provisioned.failure_message is not None:
            body["failureMessage"] = provisioned.failure_message
        if provisioned.commitment is not None:
            body["commitmentDuration"] = provisioned.commitment
            expires = provisioned.created_at + _COMMITMENTS[provisioned.commitment]
            body["commitmentExpirationTime"] = iso_time(expires)
        return body
