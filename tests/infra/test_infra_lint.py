"""cfn-lint passes on template.yaml and on what the SAM transform makes of it.

Errors and warnings both fail; nothing is ignored. (Informational findings are not checked: the only ones
today are on the dead-letter queue SAM generates for the EventBridge rule, whose properties the template
cannot set.)
"""

from __future__ import annotations

import json
from typing import Any

from cfnlint.api import lint, lint_file
from cfnlint.rules import Match

from synthtune_cli.template import TEMPLATE_PATH


def _described(matches: list[Match]) -> list[str]:
    return [f"{match.rule.id} line {match.linenumber}: {match.message}" for match in matches]


def test_template_passes_cfn_lint() -> None:
    assert _described(lint_file(TEMPLATE_PATH)) == []


def test_translated_template_passes_cfn_lint(translated_template: dict[str, Any]) -> None:
    assert "Transform" not in translated_template
    assert _described(lint(json.dumps(translated_template))) == []


def test_translation_keeps_every_resource(
    template: dict[str, Any], translated_template: dict[str, Any]
) -> None:
    # Plain CloudFormation resources pass through under their own ids; SAM ones expand to at least one.
    plain = {
        logical_id
        for logical_id, resource in template["Resources"].items()
        if not resource["Type"].startswith("AWS::Serverless::")
    }
    assert plain <= set(translated_template["Resources"])
    types = {resource["Type"] for resource in translated_template["Resources"].values()}
    assert {
        "AWS::Lambda::Function",
        "AWS::Lambda::LayerVersion",
        "AWS::StepFunctions::StateMachine",
        "AWS::Events::Rule",
        "AWS::SQS::Queue",
    } <= types
    assert not any(resource_type.startswith("AWS::Serverless::") for resource_type in types)
