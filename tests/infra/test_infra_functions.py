"""The Lambda functions: code on disk, one shared environment, tracing, the layer, least privilege, logs."""

from __future__ import annotations

import importlib.util
import json
import sys
from typing import Any

import pytest

from synthtune_cli.template import PROJECT_ROOT, load_template, resources_of_type
from tests.infra.iam_policies import ACTIONS_WITHOUT_RESOURCES

FUNCTION_IDS = sorted(resources_of_type(load_template(), "AWS::Serverless::Function"))

DATA_BUCKET = {"Ref": "DataBucket"}
RUNS_TABLE = {"Ref": "RunsTable"}
SECRET = {"Ref": "OpenAIApiKeySecret"}

EXPECTED_FUNCTIONS = {
    "PrepareFunction",
    "GenerateShardFunction",
    "SubmitBatchFunction",
    "CheckBatchFunction",
    "AssembleFunction",
    "StartFineTuneFunction",
    "CheckFineTuneFunction",
    "CancelFineTuneFunction",
    "PrepareServingFunction",
    "CheckServingFunction",
    "ReleaseServingFunction",
    "BenchmarkFunction",
    "ReportFunction",
    "RecordFailureFunction",
}

# The functions that call OpenAI, and so the only ones that may read its API key.
OPENAI_CALLERS = {
    "PrepareFunction",
    "GenerateShardFunction",
    "SubmitBatchFunction",
    "CheckBatchFunction",
    "StartFineTuneFunction",
    "CheckFineTuneFunction",
    "CancelFineTuneFunction",
    "BenchmarkFunction",
    "RecordFailureFunction",
}


def _function_setting(template: dict[str, Any], function: dict[str, Any], name: str) -> Any:
    """A property as deployed: the function's own value, else the Globals one."""
    return function["Properties"].get(name, template["Globals"]["Function"].get(name))


def _policy_templates(function: dict[str, Any]) -> dict[str, dict[str, Any]]:
    policies: list[dict[str, Any]] = function["Properties"].get("Policies", [])
    assert all(isinstance(policy, dict) and len(policy) == 1 for policy in policies), (
        "only SAM policy templates (and inline statements), no managed policy names"
    )
    names = [next(iter(policy)) for policy in policies]
    assert len(names) == len(set(names)), f"repeated policy templates: {names}"
    return {name: arguments for policy in policies for name, arguments in policy.items()}


def _lambda_environment(template: dict[str, Any]) -> dict[str, str]:
    """The Globals environment with each reference replaced by a plausible value, as Lambda would."""
    environment: dict[str, str] = {}
    for name, value in template["Globals"]["Function"]["Environment"]["Variables"].items():
        if isinstance(value, str):
            environment[name] = value
        elif value.get("Ref") in template["Parameters"]:
            environment[name] = str(template["Parameters"][value["Ref"]].get("Default", ""))
        elif "Fn::GetAtt" in value:
            environment[name] = f"arn:aws:iam::123456789012:role/infra-test-{value['Fn::GetAtt'][0]}"
        elif template["Resources"][value["Ref"]]["Type"] == "AWS::SecretsManager::Secret":
            environment[name] = (
                f"arn:aws:secretsmanager:us-east-1:123456789012:secret:infra-test-{value['Ref']}"
            )
        else:
            environment[name] = f"infra-test-{value['Ref'].lower()}"
    return environment


def test_functions_are_the_expected_ones(functions: dict[str, dict[str, Any]]) -> None:
    assert set(functions) == EXPECTED_FUNCTIONS


@pytest.mark.parametrize("function_id", FUNCTION_IDS)
def test_code_folder_has_the_handler_module(
    template: dict[str, Any], functions: dict[str, dict[str, Any]], function_id: str
) -> None:
    code_dir = PROJECT_ROOT / functions[function_id]["Properties"]["CodeUri"]
    handler_module = _function_setting(template, functions[function_id], "Handler").rsplit(".", 1)[0]
    assert code_dir.is_dir(), f"{function_id}: CodeUri {code_dir} is missing"
    assert (code_dir / f"{handler_module.replace('.', '/')}.py").is_file()
    assert (code_dir / "app.py").is_file()


@pytest.mark.parametrize("function_id", FUNCTION_IDS)
def test_handler_is_importable_and_callable(
    template: dict[str, Any],
    functions: dict[str, dict[str, Any]],
    function_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in _lambda_environment(template).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")

    module_path, attribute = _function_setting(template, functions[function_id], "Handler").rsplit(".", 1)
    code_dir = PROJECT_ROOT / functions[function_id]["Properties"]["CodeUri"]
    source = code_dir / f"{module_path.replace('.', '/')}.py"
    # Every handler module is called app: import each under its own name so they do not shadow each other.
    module_name = f"synthtune_infra_handler_{function_id}"
    assert source.is_file(), f"{function_id}: handler module {source} is missing"
    spec = importlib.util.spec_from_file_location(module_name, source)
    assert spec is not None, f"{function_id}: no module at {source}"
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, module_name, module)
    spec.loader.exec_module(module)

    assert callable(getattr(module, attribute, None)), f"{source} defines no callable {attribute}"


def test_environment_comes_from_globals_only(
    template: dict[str, Any], functions: dict[str, dict[str, Any]]
) -> None:
    # The offline runtime runs every function in one process, with the Globals environment.
    assert [fid for fid, function in functions.items() if "Environment" in function["Properties"]] == []
    assert template["Globals"]["Function"]["Environment"]["Variables"] == {
        "POWERTOOLS_SERVICE_NAME": "synthtune",
        "POWERTOOLS_METRICS_NAMESPACE": "Synthtune",
        "POWERTOOLS_LOG_LEVEL": {"Ref": "LogLevel"},
        "RUNS_TABLE_NAME": RUNS_TABLE,
        "DATA_BUCKET_NAME": DATA_BUCKET,
        "OPENAI_API_KEY_SECRET_ARN": SECRET,
        "OPENAI_BASE_URL": {"Ref": "OpenAIBaseUrl"},
        "BEDROCK_ROLE_ARN": {"Fn::GetAtt": ["BedrockCustomizationRole", "Arn"]},
    }


def test_sam_local_env_vars_file_sets_every_function_variable(template: dict[str, Any]) -> None:
    # `sam local invoke --env-vars events/env.json` (the README): a Ref in the template's environment is not
    # resolved locally, so the file gives every variable, for every function ("Parameters").
    env_vars = json.loads((PROJECT_ROOT / "events" / "env.json").read_text(encoding="utf-8"))
    assert set(env_vars) == {"Parameters"}
    assert env_vars["Parameters"].keys() == template["Globals"]["Function"]["Environment"]["Variables"].keys()
    assert all(isinstance(value, str) for value in env_vars["Parameters"].values())
    assert "--env-vars events/env.json" in (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")


def test_deployed_functions_share_one_environment(
    template: dict[str, Any], translated_template: dict[str, Any]
) -> None:
    lambdas = resources_of_type(translated_template, "AWS::Lambda::Function")
    assert set(lambdas) == set(FUNCTION_IDS)
    expected = template["Globals"]["Function"]["Environment"]
    assert {
        fid: function["Properties"].get("Environment") for fid, function in lambdas.items()
    } == dict.fromkeys(lambdas, expected)


def test_every_function_is_traced_and_uses_the_core_layer(translated_template: dict[str, Any]) -> None:
    resources = translated_template["Resources"]
    for function_id, function in resources_of_type(translated_template, "AWS::Lambda::Function").items():
        properties = function["Properties"]
        assert properties.get("TracingConfig") == {"Mode": "Active"}, function_id
        layers = properties.get("Layers", [])
        assert len(layers) == 1, function_id
        layer_id = layers[0]["Ref"]
        assert layer_id.startswith("CoreLayer"), function_id
        assert resources[layer_id]["Type"] == "AWS::Lambda::LayerVersion"
        assert properties["Runtime"] == "python3.13", function_id
        assert properties["Architectures"] == ["arm64"], function_id
        assert properties["Handler"] == "app.lambda_handler", function_id


def test_layer_is_built_for_the_functions_runtime(template: dict[str, Any]) -> None:
    layer = template["Resources"]["CoreLayer"]
    function_globals = template["Globals"]["Function"]
    content = PROJECT_ROOT / layer["Properties"]["ContentUri"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert (content / "requirements.lock").is_file()
    assert (content / "synthtune" / "__init__.py").is_file()
    assert layer["Properties"]["CompatibleRuntimes"] == [function_globals["Runtime"]]
    assert layer["Properties"]["CompatibleArchitectures"] == function_globals["Architectures"]
    # sam build runs the folder's Makefile, which names the runtime's Python and architecture itself.
    assert layer["Metadata"] == {
        "BuildMethod": "makefile",
        "BuildArchitecture": function_globals["Architectures"][0],
    }
    makefile = (content / "Makefile").read_text()
    version = function_globals["Runtime"].removeprefix("python")
    assert "build-CoreLayer:" in makefile
    assert f"LAMBDA_PYTHON_VERSION := {version}\n" in makefile
    assert f"LAMBDA_ABI := cp{version.replace('.', '')}\n" in makefile
    assert {"arm64": "aarch64"}[function_globals["Architectures"][0]] in makefile
    assert "--require-hashes" in makefile
    assert "-r requirements.lock" in makefile


@pytest.mark.parametrize("function_id", FUNCTION_IDS)
def test_policies_are_explicit_statements_each_named(
    functions: dict[str, dict[str, Any]], function_id: str
) -> None:
    # No SAM policy templates: S3CrudPolicy and its kin grant a whole bucket or table and more actions than
    # a step uses (lifecycle configuration among them). What each statement grants is checked against what
    # the code does in test_infra_least_privilege.py; here, that there is one list of them, each with a Sid
    # (the name Metadata UnexercisedGrants and the test's messages use).
    granted = _policy_templates(functions[function_id])
    assert set(granted) == {"Statement"}, f"{function_id}: {sorted(granted)}"
    sids = [statement.get("Sid") for statement in granted["Statement"]]
    assert all(sids), f"{function_id}: a statement without a Sid"
    assert len(sids) == len(set(sids)), f"{function_id}: repeated Sids {sids}"
    for statement in granted["Statement"]:
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        unbounded = "*" in resources and not set(actions) <= ACTIONS_WITHOUT_RESOURCES
        assert not unbounded, f"{function_id}: {statement}"


def test_only_openai_callers_can_read_the_api_key(translated_template: dict[str, Any]) -> None:
    resources = translated_template["Resources"]
    readers: set[str] = set()
    for function_id, function in resources_of_type(translated_template, "AWS::Lambda::Function").items():
        role = resources[function["Properties"]["Role"]["Fn::GetAtt"][0]]
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = (
                    statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                )
                assert "*" not in actions, (function_id, statement)
                assert statement.get("Resource") != "*" or set(actions) <= ACTIONS_WITHOUT_RESOURCES, (
                    function_id,
                    statement,
                )
                if any(action.startswith("secretsmanager:") for action in actions):
                    readers.add(function_id)
    assert readers == OPENAI_CALLERS


@pytest.mark.parametrize("function_id", FUNCTION_IDS)
def test_each_function_has_a_log_group_with_retention(
    template: dict[str, Any], functions: dict[str, dict[str, Any]], function_id: str
) -> None:
    groups = [
        group
        for group in resources_of_type(template, "AWS::Logs::LogGroup").values()
        if group["Properties"]["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{{function_id}}}"}
    ]
    assert len(groups) == 1, f"{function_id} needs exactly one log group named /aws/lambda/<its name>"
    assert groups[0]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    # The group above is the function's default one; redirecting its logs elsewhere would orphan it.
    assert "LogGroup" not in (_function_setting(template, functions[function_id], "LoggingConfig") or {})


def test_only_the_fine_tuning_starter_may_pass_the_bedrock_role_and_only_to_bedrock(
    functions: dict[str, dict[str, Any]],
) -> None:
    passes = {
        function_id: statement
        for function_id, function in functions.items()
        for statement in _policy_templates(function).get("Statement", [])
        if statement["Action"] == "iam:PassRole"
    }
    assert set(passes) == {"StartFineTuneFunction"}
    statement = passes["StartFineTuneFunction"]
    assert statement["Resource"] == {"Fn::GetAtt": ["BedrockCustomizationRole", "Arn"]}
    assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}}


def test_the_bedrock_role_trusts_this_accounts_jobs_and_reaches_only_run_folders(
    template: dict[str, Any],
) -> None:
    role = template["Resources"]["BedrockCustomizationRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "bedrock.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert "model-customization-job/*" in trust["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Sub"]
    (policy,) = role["Policies"]
    by_action = {statement["Action"]: statement for statement in policy["PolicyDocument"]["Statement"]}
    assert set(by_action) == {"s3:GetObject", "s3:PutObject", "s3:ListBucket"}
    assert by_action["s3:GetObject"]["Resource"] == {"Fn::Sub": "${DataBucket.Arn}/runs/*/dataset/*"}
    assert by_action["s3:PutObject"]["Resource"] == {"Fn::Sub": "${DataBucket.Arn}/runs/*/finetune/output/*"}
    assert by_action["s3:ListBucket"]["Condition"]["StringLike"]["s3:prefix"] == [
        "runs/*/dataset/*",
        "runs/*/finetune/output/*",
    ]
