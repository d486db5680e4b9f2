"""cfn-lint passes on template.yaml and on what the SAM transform makes of it.

Errors, warnings and informational findings all fail; nothing is ignored.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from cfnlint.api import ManualArgs, lint, lint_file
from cfnlint.rules import Match

from synthtune_cli.template import TEMPLATE_PATH

EVERY_FINDING = ManualArgs(include_checks=["I"])


def _described(matches: list[Match]) -> list[str]:
    return [f"{match.rule.id} line {match.linenumber}: {match.message}" for match in matches]


def test_template_passes_cfn_lint() -> None:
    assert _described(lint_file(TEMPLATE_PATH, config=EVERY_FINDING)) == []


def test_translated_template_passes_cfn_lint(translated_template: dict[str, Any]) -> None:
    assert "Transform" not in translated_template
    # The SAM transform makes the inline definition a Fn::Join of one string per line of the ASL, and
    # cfn-lint (1.58) expands a Fn::Join recursively, one call per element: past about 900 lines of ASL it
    # stops with "maximum recursion depth exceeded" (E1022). Room for the definition to grow, not a finding.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 5_000))
    try:
        findings = _described(lint(json.dumps(translated_template), config=EVERY_FINDING))
    finally:
        sys.setrecursionlimit(limit)
    assert findings == []


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
