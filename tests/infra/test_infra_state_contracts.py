"""Every JSONPath and Choice literal of statemachine/pipeline.asl.json exists in the Python contracts.

The definition and the handlers agree only through the models in synthtune.contracts.workflow; nothing
else stops a field renamed in the Python, or a path or status misspelt in the definition, from failing a
run in the middle (a path that does not exist fails its state; a Choice literal no handler returns sends
every run to the Default). `check_definition` (tests/infra/asl_contracts.py) follows the definition with
each state's models in place of data and says where they disagree.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pydantic import create_model

from synthtune.contracts.workflow import (
    BatchState,
    DuplicateStart,
    FineTuneCheck,
    FineTuneJobStatus,
    FineTuneState,
    PrepareInput,
    PrepareOutput,
    ShardResult,
    ShardTask,
)
from tests.infra.asl import ASL_PATH, load_definition
from tests.infra.asl_contracts import TaskContract, check_definition, handler_contracts

CONTRACTS = handler_contracts()


def test_the_definition_read_is_the_one_deployed(asl_path: Path) -> None:
    assert asl_path == ASL_PATH


def test_the_definition_and_the_contracts_agree() -> None:
    assert check_definition(load_definition(), CONTRACTS) == []


def test_each_task_is_read_with_its_handlers_models() -> None:
    # Read from the handlers' code, not listed here: a sample, so a reading gone wrong shows.
    assert CONTRACTS["${PrepareFunctionArn}"] == TaskContract(
        "PrepareFunction", PrepareInput, PrepareOutput | DuplicateStart
    )
    assert CONTRACTS["${GenerateShardFunctionArn}"] == TaskContract(
        "GenerateShardFunction", ShardTask, ShardResult
    )
    assert CONTRACTS["${CancelFineTuneFunctionArn}"] == TaskContract(
        "CancelFineTuneFunction", FineTuneCheck, FineTuneState
    )
    assert CONTRACTS["${CheckBatchFunctionArn}"].returns is BatchState
    assert len(CONTRACTS) == 14


def _state(definition: dict[str, Any], *names: str) -> dict[str, Any]:
    state: dict[str, Any] = definition["States"][names[0]]
    for name in names[1:]:
        state = state["ItemProcessor"]["States"][name]
    return state


def _rename_variable(definition: dict[str, Any]) -> None:
    _state(definition, "BatchSubmitted")["Choices"][0]["Variable"] = "$.batch.state"


def _misspell_literal(definition: dict[str, Any]) -> None:
    _state(definition, "FineTuneStatus")["Choices"][1]["Or"][1]["StringEquals"] = "canceled"


def _literal_of_another_field(definition: dict[str, Any]) -> None:
    _state(definition, "ServingStatus")["Choices"][0]["StringEquals"] = "succeeded"


def _misspell_parameter(definition: dict[str, Any]) -> None:
    parameters = _state(definition, "StartFineTune")["Parameters"]
    parameters["datasets.$"] = parameters.pop("dataset.$")


def _drop_parameter(definition: dict[str, Any]) -> None:
    del _state(definition, "Report")["Parameters"]["scores.$"]


def _path_into_a_model(definition: dict[str, Any]) -> None:
    _state(definition, "WaitForFineTune")["SecondsPath"] = "$.run.config.poll_seconds"


def _path_in_a_map(definition: dict[str, Any]) -> None:
    _state(definition, "Generate", "GenerateShard")["ResultSelector"] = {"index.$": "$.shard_index"}


def _intrinsic_argument(definition: dict[str, Any]) -> None:
    parameters = _state(definition, "FineTuneFailed")["Parameters"]["CheckFineTune"]
    parameters["Cause.$"] = parameters["Cause.$"].replace("$.finetune.error", "$.finetune.failure")


def _result_path_elsewhere(definition: dict[str, Any]) -> None:
    _state(definition, "Assemble")["ResultPath"] = "$.assembled"


def _item_selector(definition: dict[str, Any]) -> None:
    _state(definition, "Benchmark")["ItemSelector"]["contestants.$"] = "$$.Map.Item.Value"


def _field_the_checker_does_not_read(definition: dict[str, Any]) -> None:
    _state(definition, "Generate")["ItemBatcher"] = {"MaxItemsPerBatchPath": "$.run.config.batch"}


@pytest.mark.parametrize(
    ("breach", "reported"),
    [
        (_rename_variable, "BatchSubmitted.Choices[0].Variable: $.batch.state: $.batch is BatchState"),
        (_misspell_literal, "FineTuneStatus.Choices[1].1: $.finetune.status is never 'canceled'"),
        (_literal_of_another_field, "ServingStatus.Choices[0]: $.serving.status is never 'succeeded'"),
        (_misspell_parameter, "StartFineTune: its input is not StartFineTuneFunction's FineTuneInput"),
        (
            _drop_parameter,
            "Report: its input is not ReportFunction's ReportInput: ReportInput needs ['scores']",
        ),
        (_path_into_a_model, "WaitForFineTune.SecondsPath: $.run.config.poll_seconds"),
        (_path_in_a_map, "GenerateShard.ResultSelector.index.$: $.shard_index"),
        (_intrinsic_argument, "FineTuneFailed.Parameters.CheckFineTune.Cause.$: $.finetune.failure"),
        (_result_path_elsewhere, "StartFineTune.Parameters.dataset.$: $.dataset"),
        (_field_the_checker_does_not_read, "Generate: Map field ItemBatcher is not read by this checker"),
        (_item_selector, "BenchmarkContestant: its input is not BenchmarkFunction's BenchmarkTask"),
    ],
)
def test_a_breach_of_the_contracts_is_reported(
    breach: Callable[[dict[str, Any]], None], reported: str
) -> None:
    # A test that cannot fail proves nothing: each breach is one a rename or a typo would make.
    definition = copy.deepcopy(load_definition())
    breach(definition)
    problems = check_definition(definition, CONTRACTS)
    assert any(problem.startswith(reported) for problem in problems), problems


def test_a_field_renamed_in_the_python_is_reported() -> None:
    # FineTuneState.status renamed `state`, as the fine-tuning handlers would then return it.
    fields: dict[str, Any] = {
        name: (info.annotation, info) for name, info in FineTuneState.model_fields.items() if name != "status"
    }
    renamed = create_model("FineTuneState", state=(FineTuneJobStatus, ...), **fields)
    contracts = {
        resource: replace(contract, returns=renamed) if contract.returns is FineTuneState else contract
        for resource, contract in CONTRACTS.items()
    }
    problems = check_definition(load_definition(), contracts)
    for state in ("FineTuneStatus.Choices[0].Variable", "AfterCancel.Choices[0].Variable"):
        assert (
            f"{state}: $.finetune.status: $.finetune is FineTuneState, which has no field 'status'"
            in problems
        )
