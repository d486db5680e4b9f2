"""The layer's shape, held by tests: no provider SDK or payload outside `providers/`, arrows pointing down.

Read from the source as text (the AST), so a broken rule fails here whatever the tests happen to run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from synthtune_cli.template import PROJECT_ROOT
from tests.support import code_strings

LAYER = PROJECT_ROOT / "layers" / "core" / "synthtune"
PROVIDERS = LAYER / "providers"
COMPOSITION_ROOT = LAYER / "adapters.py"
"""The one module that builds the providers (and so names their packages) for the handlers."""

SDKS = {"openai", "anthropic", "httpx", "httpx2"}
"""Model providers' SDKs (and the HTTP clients under them)."""
PROVIDER_SERVICES = {"bedrock", "bedrock-runtime"}
"""boto3 services that are model providers (S3 and DynamoDB are the run's records: allowed)."""
PAYLOAD_WORDS = {
    # OpenAI's API
    "/v1/chat/completions",
    "max_completion_tokens",
    "response_format",
    "json_schema",
    "fine_tuning",
    "x-ratelimit-remaining-requests",
    # Bedrock's API and format
    "modelId",
    "toolConfig",
    "inferenceConfig",
    "customizationType",
    "baseModelIdentifier",
    "schemaVersion",
    "bedrock-conversation-2024",
    "ThrottlingException",
}
"""String constants that only a provider's request, response or file format would hold."""

# Lower layers never import higher ones (STYLE.md: stages → engine/providers → quality/verdict → money →
# records/contracts).
RANK = {
    "stages": 4,
    "engine": 3,
    "providers": 3,
    "quality": 2,
    "verdict": 2,
    "money": 1,
    "records": 0,
    "contracts": 0,
}


def layer_modules() -> list[Path]:
    return sorted(path for path in LAYER.rglob("*.py") if "__pycache__" not in path.parts)


def outside_providers() -> list[Path]:
    return [path for path in layer_modules() if PROVIDERS not in path.parents]


def imported(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", outside_providers(), ids=lambda path: str(path.relative_to(LAYER)))
def test_no_provider_sdk_outside_providers(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    sdks = {name for name in imported(tree) if name.split(".")[0] in SDKS}
    assert not sdks, f"{path.name} imports {sdks}: provider SDKs belong in synthtune/providers/"
    if path != COMPOSITION_ROOT:
        adapters = {
            name
            for name in imported(tree)
            if name.startswith(("synthtune.providers.openai", "synthtune.providers.bedrock"))
        }
        assert not adapters, (
            f"{path.name} imports {adapters}: go through providers.ports / providers.registry"
        )


@pytest.mark.parametrize("path", outside_providers(), ids=lambda path: str(path.relative_to(LAYER)))
def test_no_provider_payload_outside_providers(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    words = {word for constant in code_strings(tree) for word in PAYLOAD_WORDS if word in constant}
    assert not words, f"{path.name} spells {words}: provider payloads belong in synthtune/providers/"
    services = {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and node.args[0].value in PROVIDER_SERVICES
    }
    assert not services, (
        f"{path.name} makes a {services} client: provider clients belong in synthtune/providers/"
    )


@pytest.mark.parametrize("path", layer_modules(), ids=lambda path: str(path.relative_to(LAYER)))
def test_imports_point_down(path: Path) -> None:
    parts = path.relative_to(LAYER).parts
    if len(parts) < 2 or parts[0] not in RANK:
        return
    own = RANK[parts[0]]
    upward = {
        name
        for name in imported(ast.parse(path.read_text(encoding="utf-8")))
        if name.startswith("synthtune.")
        and name.split(".")[1] in RANK
        and name.split(".")[1] != parts[0]
        and RANK[name.split(".")[1]] > own
    }
    assert not upward, f"{'/'.join(parts)} imports {upward}, which sit above it"


def test_the_rules_would_catch_a_breach(tmp_path: Path) -> None:
    # A test that cannot fail proves nothing: the same reading on a module that breaks every rule.
    breach = ast.parse(
        "import openai\nimport boto3\nclient = boto3.client('bedrock-runtime')\n"
        "body = {'modelId': 'x', 'response_format': {}}\n"
    )
    assert "openai" in imported(breach)
    assert {"modelId", "response_format"} <= {
        w for c in code_strings(breach) for w in PAYLOAD_WORDS if w in c
    }


HANDLERS = sorted((PROJECT_ROOT / "functions").glob("*/app.py"))


def decorators(path: Path) -> list[str]:
    """The names of `lambda_handler`'s decorators, outermost first (`logger.inject_lambda_context`, ...)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    (handler,) = [
        node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name == "lambda_handler"
    ]
    return [ast.unparse(node.func if isinstance(node, ast.Call) else node) for node in handler.decorator_list]


@pytest.mark.parametrize("path", HANDLERS, ids=lambda path: path.parent.name)
def test_every_handler_lets_errors_out_redacted_and_bounded(path: Path) -> None:
    # Lambda hands a handler's error message to Step Functions as the Catch's Cause, into the state (256 KB)
    # and the history: safe_errors must see it before Tracer, Metrics and Logger do, after the parser.
    assert decorators(path) == [
        "logger.inject_lambda_context",
        "metrics.log_metrics",
        "tracer.capture_lambda_handler",
        "safe_errors",
        "event_parser",
    ]
