"""Custom models: what a completed customisation job leaves behind, until somebody deletes it.

A custom model cannot be invoked on demand by its own ARN; it answers through a custom model deployment
or a Provisioned Throughput, as the fine-tuned simulated model its job's training data made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from synthtune_cli.emulator.bedrock.foundation_models import FoundationModel
from synthtune_cli.emulator.bedrock.protocol import ACCOUNT_ID, Listing, iso_time, not_found
from synthtune_cli.emulator.catalogue import SimulatedModel


@dataclass(frozen=True)
class CustomModel:
    arn: str
    name: str
    job_arn: str
    job_name: str
    base: FoundationModel
    # The customisation variant the job started from: `...:foundation-model/amazon.nova-micro-v1:0:128k`.
    base_model_arn: str
    hyperparameters: dict[str, str]
    training_data_config: dict[str, Any]
    validation_data_config: dict[str, Any]
    output_data_config: dict[str, Any]
    training_loss: float
    validation_loss: float | None
    created_at: float
    simulated: SimulatedModel

    def to_api(self) -> dict[str, Any]:
        """The model as GetCustomModel returns it."""
        return {
            "modelArn": self.arn,
            "modelName": self.name,
            "jobName": self.job_name,
            "jobArn": self.job_arn,
            "baseModelArn": self.base_model_arn,
            "customizationType": "FINE_TUNING",
            "hyperParameters": dict(self.hyperparameters),
            "trainingDataConfig": self.training_data_config,
            "validationDataConfig": self.validation_data_config,
            "outputDataConfig": self.output_data_config,
            "trainingMetrics": {"trainingLoss": self.training_loss},
            "validationMetrics": []
            if self.validation_loss is None
            else [{"validationLoss": self.validation_loss}],
            "creationTime": iso_time(self.created_at),
            "modelStatus": "Active",
        }

    def listing(self) -> Listing:
        summary = {
            "modelArn": self.arn,
            "modelName": self.name,
            "creationTime": iso_time(self.created_at),
            "baseModelArn": self.base_model_arn,
            "baseModelName": self.base.name,
            "customizationType": "FINE_TUNING",
            "ownerAccountId": ACCOUNT_ID,
            "modelStatus": "Active",
        }
        return Listing(self.name, "Active", self.created_at, summary)


class CustomModels:
    """Custom models by ARN. Not thread-safe: the emulator's state lock guards it."""

    def __init__(self) -> None:
        self._models: dict[str, CustomModel] = {}

    def __len__(self) -> int:
        return len(self._models)

    def clear(self) -> None:
        self._models.clear()

    def add(self, model: CustomModel) -> None:
        self._models[model.arn] = model

    def find(self, identifier: str) -> CustomModel | None:
        """The model a name or an ARN names, if it exists."""
        model = self._models.get(identifier)
        if model is not None:
            return model
        return next((model for model in self._models.values() if model.name == identifier), None)

    def get(self, identifier: str) -> CustomModel:
        model = self.find(identifier)
        if model is None:
            raise not_found(f"Could not find a custom model with identifier {identifier}.")
        return model

    def delete(self, identifier: str) -> None:
        del self._models[self.get(identifier).arn]

    def all(self) -> list[CustomModel]:
        return list(self._models.values())
