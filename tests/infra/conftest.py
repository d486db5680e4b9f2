"""Fixtures for the infrastructure tests: template.yaml as written, and as aws-sam-translator expands it.

Everything here runs offline: the SAM transform is given a region, a policy loader that knows no managed
policies, the state machine definition inline and s3:// URIs in place of the local code folders, which is
all it needs to expand the template without calling AWS.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from synthtune_cli.template import PROJECT_ROOT, load_template, resources_of_type

STATE_MACHINE_ID = "PipelineStateMachine"
ARTIFACT_BUCKET = "synthtune-infra-test-artifacts"


class _OfflinePolicyLoader:
    """The managed-policy name → ARN map the translator would fetch from IAM; empty offline."""

    def load(self) -> dict[str, str]:
        return {}


def _stand_in_definition(substitutions: dict[str, Any]) -> dict[str, Any]:
    """A minimal valid definition using every substitution, for when the real ASL is not written yet."""
    function_placeholders = [name for name in substitutions if name.endswith("FunctionArn")]
    other_placeholders = [name for name in substitutions if not name.endswith("FunctionArn")]
    states: dict[str, Any] = {
        "Start": {
            "Type": "Pass",
            "Result": {name: f"${{{name}}}" for name in other_placeholders},
            "Next": function_placeholders[0],
        }
    }
    for index, name in enumerate(function_placeholders):
        state: dict[str, Any] = {"Type": "Task", "Resource": f"${{{name}}}"}
        if index + 1 < len(function_placeholders):
            state["Next"] = function_placeholders[index + 1]
        else:
            state["End"] = True
        states[name] = state
    return {"Comment": "stand-in for statemachine/pipeline.asl.json", "StartAt": "Start", "States": states}


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="session")
def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Logical id -> AWS::Serverless::Function resource."""
    return resources_of_type(template, "AWS::Serverless::Function")


@pytest.fixture(scope="session")
def state_machine(template: dict[str, Any]) -> dict[str, Any]:
    """The pipeline's AWS::Serverless::StateMachine resource."""
    resource: dict[str, Any] = template["Resources"][STATE_MACHINE_ID]
    assert resource["Type"] == "AWS::Serverless::StateMachine"
    return resource


@pytest.fixture(scope="session")
def asl_path(state_machine: dict[str, Any]) -> Path:
    """The state machine definition file named by DefinitionUri (it may not exist yet)."""
    definition_uri: str = state_machine["Properties"]["DefinitionUri"]
    return PROJECT_ROOT / definition_uri


@pytest.fixture(scope="session")
def translated_template(template: dict[str, Any], asl_path: Path) -> dict[str, Any]:
    """template.yaml after the SAM transform: the plain CloudFormation that would be deployed."""
    from samtranslator.translator.transform import transform

    deployable = copy.deepcopy(template)
    for logical_id, resource in deployable["Resources"].items():
        properties = resource.get("Properties", {})
        for local_path_key in ("CodeUri", "ContentUri"):
            if local_path_key in properties:
                properties[local_path_key] = f"s3://{ARTIFACT_BUCKET}/{logical_id}.zip"

    machine = deployable["Resources"][STATE_MACHINE_ID]["Properties"]
    machine["Definition"] = (
        json.loads(asl_path.read_text(encoding="utf-8"))
        if asl_path.exists()
        else _stand_in_definition(machine["DefinitionSubstitutions"])
    )
    del machine["DefinitionUri"]

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        translated: dict[str, Any] = transform(deployable, {}, _OfflinePolicyLoader())
    return translated
