"""The serving port on Amazon Bedrock: a custom model answers only through a deployment it is given.

Nova Micro, Lite and Pro fine-tunes get a custom model deployment: billed per token like the base model,
nothing while idle. Others need Provisioned Throughput, billed by the hour for as long as it exists; the
run creates it only when `allow_provisioned_throughput` says so (Prepare refuses otherwise). Either is
named after the run, created with a request token from the run id, looked up by that name before any
create, and deleted after the benchmark (and after any failure once it exists), so a run leaves nothing
running that bills.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from synthtune.contracts.errors import InvalidConfig, ServingFailed
from synthtune.contracts.models import parse_model
from synthtune.contracts.workflow import FineTuneState, ServingState, ServingStatus
from synthtune.money.catalog import model_info
from synthtune.providers.bedrock.client import bedrock_call
from synthtune.providers.bedrock.names import request_token, resource_name, run_tags

PROVIDER = "bedrock"
PROVISIONED_MODEL_UNITS = 1

_DEPLOYMENT_STATUS: dict[str, ServingStatus] = {
    "Creating": "creating",
    "Active": "active",
    "Failed": "failed",
}
_PROVISIONED_STATUS: dict[str, ServingStatus] = {
    "Creating": "creating",
    "Updating": "creating",
    "InService": "active",
    "Failed": "failed",
}
_NOT_FOUND = frozenset({"ResourceNotFoundException"})


class BedrockServing:
    def __init__(self, control: Callable[[], Any]) -> None:
        self._control = control

    def prepare(self, run_id: str, job: FineTuneState, *, provisioned_throughput: bool) -> ServingState:
        if job.fine_tuned_model is None:
            raise ServingFailed(f"fine-tuning job {job.job_id} produced no model to serve")
        found = self.find(run_id)
        if found is not None and found.status != "failed":
            return found
        info = model_info(job.base_model)
        serving = (
            info.fine_tuning.serving if info is not None and info.fine_tuning else "provisioned_throughput"
        )
        model_arn = parse_model(job.fine_tuned_model).id
        if serving == "on_demand":
            return self._deploy(run_id, job.fine_tuned_model, model_arn)
        if not provisioned_throughput:
            raise InvalidConfig(
                f"{job.base_model}'s fine-tunes answer only through Provisioned Throughput, billed by the "
                "hour; set allow_provisioned_throughput to pay for it"
            )
        return self._provision(run_id, job.fine_tuned_model, model_arn)

    def _deploy(self, run_id: str, model: str, model_arn: str) -> ServingState:
        name = resource_name(run_id, "deployment")
        # ConflictException: the name is taken, by what an earlier attempt of this run created.
        bedrock_call(
            f"deploying {model}",
            self._control().create_custom_model_deployment,
            tolerate={"ConflictException"},
            modelDeploymentName=name,
            modelArn=model_arn,
            description=f"synthtune run {run_id}: the fine-tuned student, for the benchmark",
            tags=run_tags(run_id),
            clientRequestToken=request_token(run_id, "deployment"),
        )
        found = self._deployment(name)
        if found is None:
            raise ServingFailed(f"Bedrock accepted deployment {name} but does not find it")
        return found

    def _provision(self, run_id: str, model: str, model_arn: str) -> ServingState:
        name = resource_name(run_id, "throughput")
        bedrock_call(
            f"provisioning throughput for {model}",
            self._control().create_provisioned_model_throughput,
            tolerate={"ConflictException"},
            modelUnits=PROVISIONED_MODEL_UNITS,
            provisionedModelName=name,
            modelId=model_arn,
            tags=run_tags(run_id),
            clientRequestToken=request_token(run_id, "throughput"),
        )
        found = self._provisioned(name)
        if found is None:
            raise ServingFailed(f"Bedrock accepted provisioned throughput {name} but does not find it")
        return found

    def status(self, serving: ServingState) -> ServingState:
        if serving.kind == "none" or serving.resource is None or serving.status == "released":
            return serving
        current = (
            self._deployment(serving.resource)
            if serving.kind == "on_demand_deployment"
            else self._provisioned(serving.resource)
        )
        if current is None:
            return serving.model_copy(update={"status": "failed", "error": "it no longer exists"})
        return current.model_copy(update={"kept": serving.kept})

    def find(self, run_id: str) -> ServingState | None:
        return self._deployment(resource_name(run_id, "deployment")) or self._provisioned(
            resource_name(run_id, "throughput")
        )

    def release(self, serving: ServingState) -> ServingState:
        if serving.kind == "none" or serving.resource is None:
            return serving.model_copy(update={"status": "released"})
        if serving.kind == "on_demand_deployment":
            bedrock_call(
                f"deleting deployment {serving.resource}",
                self._control().delete_custom_model_deployment,
                tolerate=_NOT_FOUND,
                customModelDeploymentIdentifier=serving.resource,
            )
        else:
            bedrock_call(
                f"deleting provisioned throughput {serving.resource}",
                self._control().delete_provisioned_model_throughput,
                tolerate=_NOT_FOUND,
                provisionedModelId=serving.resource,
            )
        return serving.model_copy(update={"status": "released"})

    def _deployment(self, identifier: str) -> ServingState | None:
        found = bedrock_call(
            f"looking up deployment {identifier}",
            self._control().get_custom_model_deployment,
            tolerate=_NOT_FOUND,
            customModelDeploymentIdentifier=identifier,
        )
        if found is None:
            return None
        status = _DEPLOYMENT_STATUS.get(str(found.get("status")), "creating")
        arn = str(found["customModelDeploymentArn"])
        return ServingState(
            provider=PROVIDER,
            kind="on_demand_deployment",
            status=status,
            model=f"{PROVIDER}/{found['modelArn']}",
            endpoint=arn if status == "active" else None,
            resource=arn,
            name=str(found.get("modelDeploymentName") or identifier),
            created_at=_iso(found.get("createdAt")),
            error=str(found.get("failureMessage") or ""),
        )

    def _provisioned(self, identifier: str) -> ServingState | None:
        found = bedrock_call(
            f"looking up provisioned throughput {identifier}",
            self._control().get_provisioned_model_throughput,
            tolerate=_NOT_FOUND,
            provisionedModelId=identifier,
        )
        if found is None:
            return None
        status = _PROVISIONED_STATUS.get(str(found.get("status")), "creating")
        arn = str(found["provisionedModelArn"])
        return ServingState(
            provider=PROVIDER,
            kind="provisioned_throughput",
            status=status,
            model=f"{PROVIDER}/{found['modelArn']}",
            endpoint=arn if status == "active" else None,
            resource=arn,
            name=str(found.get("provisionedModelName") or identifier),
            created_at=_iso(found.get("creationTime")),
            error=str(found.get("failureMessage") or ""),
        )


def _iso(value: object) -> str | None:
    isoformat = getattr(value, "isoformat", None)
    return str(isoformat()) if callable(isoformat) else (str(value) if value else None)
