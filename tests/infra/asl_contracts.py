"""statemachine/pipeline.asl.json run with types in place of values, against the pydantic contracts.

Step Functions passes JSON between the states; the handlers parse it into the models of
synthtune.contracts.workflow and return models. `check_definition` follows the definition as Step
Functions runs it, but on shapes instead of data: from the execution input (`StartRequest`) through every
state it works out which field of the state's data holds which model, from the model each Task's handler
takes and the one its domain function returns (read from the handler's code, `handler_contracts`), from
Parameters, ResultSelector, ResultPath, InputPath and OutputPath, each Pass's Result, each Map's items,
and the `{Error, Cause}` each Catch adds. A state reached by several paths is checked with every shape
that reaches it; a Choice sends on only the shapes that can satisfy each of its rules.

On the way it reports, as one line each:
- a JSONPath (in Parameters, ItemSelector, ResultSelector, an intrinsic function's arguments, InputPath,
  OutputPath, ItemsPath, a Choice's Variable, any *Path field) with a segment that is no field of what it
  reads, in some shape that reaches its state;
- a Task's input that is not its handler's input model: a field the model does not have, one it needs and
  is not given, a value of another model or type;
- a literal a Choice compares with that is no value of the Literal type of the field it reads (or a field
  that is no Literal type at all: then the Python does not spell the value either);
- a state no shape reaches (so nothing of it was checked), and a field of a state this reader does not
  understand, so that a new kind of path is taught here rather than passed over.

Only the JSONPath forms the definition uses are read (`$`, `$.a.b`, `$$.` context fields); anything else is
reported, never passed.
"""

from __future__ import annotations

import ast
import importlib
import re
import types
import typing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal, Union

from pydantic import BaseModel, RootModel

from synthtune.contracts.workflow import ShardRef, StartRequest, StateFailure
from synthtune_cli.template import PROJECT_ROOT, load_template, resources_of_type

EXECUTION_INPUT: Any = StartRequest
"""What an execution starts with: from the CLI, the console or the S3 upload rule (tested with it)."""
ITEM_READERS: dict[str, Any] = {"Generate": ShardRef}
"""What a Distributed Map reads from S3, by state: the shard manifest (GenerationPlan.manifest_key)."""

NoneType = type(None)


# -- shapes ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Obj:
    """An object the definition builds itself (Parameters, a Pass's Result) or has written into by a
    ResultPath: its fields' shapes by name."""

    fields: tuple[tuple[str, Any], ...] = ()

    def get(self, name: str) -> Any:
        return dict(self.fields).get(name)

    def with_field(self, name: str, shape: Any) -> Obj:
        return Obj(tuple(sorted({**dict(self.fields), name: shape}.items())))


@dataclass(frozen=True)
class Alt:
    """One of several shapes (a handler that returns a union, a path read in several shapes)."""

    options: tuple[Any, ...]


@dataclass(frozen=True)
class ListOf:
    """A Map's result: one item per iteration."""

    item: Any


def one_of(shapes: Iterable[Any]) -> Any:
    unique = list(dict.fromkeys(option for shape in shapes for option in options(shape)))
    return unique[0] if len(unique) == 1 else Alt(tuple(unique))


def options(shape: Any) -> list[Any]:
    """The alternatives a shape stands for: the members of a union, each once."""
    if isinstance(shape, Alt):
        return [option for member in shape.options for option in options(member)]
    if typing.get_origin(shape) in (Union, types.UnionType):
        return [option for member in typing.get_args(shape) for option in options(member)]
    if isinstance(shape, type) and issubclass(shape, RootModel):
        return options(shape.model_fields["root"].annotation)
    return [shape]


def is_model(shape: Any) -> bool:
    return isinstance(shape, type) and issubclass(shape, BaseModel)


def describe(shape: Any) -> str:
    if isinstance(shape, Obj):
        return "{" + ", ".join(name for name, _ in shape.fields) + "}"
    if isinstance(shape, Alt) or typing.get_origin(shape) in (Union, types.UnionType):
        return " | ".join(describe(option) for option in options(shape))
    if isinstance(shape, ListOf):
        return f"list[{describe(shape.item)}]"
    if typing.get_origin(shape) is Literal:
        return f"Literal{list(typing.get_args(shape))}"
    if typing.get_origin(shape) in (list, dict):
        return f"{typing.get_origin(shape).__name__}[{', '.join(map(describe, typing.get_args(shape)))}]"
    if shape is NoneType:
        return "None"
    if isinstance(shape, type):
        return shape.__name__
    return repr(shape).replace("typing.", "")


def literal_values(shape: Any) -> set[Any] | None:
    """The values a Literal (or Enum) type allows; None for any other type."""
    if typing.get_origin(shape) is Literal:
        return set(typing.get_args(shape))
    if isinstance(shape, type) and issubclass(shape, Enum):
        return {member.value for member in shape}
    return None


def field_of(shape: Any, name: str) -> Any:
    """The shape of field `name` of `shape`, by name or alias; None if it has no such field."""
    if shape is Any:
        return Any
    if isinstance(shape, Obj):
        return shape.get(name)
    if is_model(shape):
        for field_name, info in shape.model_fields.items():
            if name in (field_name, info.alias):
                return info.annotation
        return None
    if typing.get_origin(shape) is dict:
        return typing.get_args(shape)[1]
    return None


def as_obj(shape: Any) -> Obj | None:
    """A shape a ResultPath can write a field into, as the object it is."""
    if isinstance(shape, Obj):
        return shape
    if is_model(shape):
        return Obj(tuple(sorted((name, info.annotation) for name, info in shape.model_fields.items())))
    return None


def literal_shape(value: Any) -> Any:
    """The shape of a JSON literal written in the definition."""
    if isinstance(value, dict):
        return Obj(tuple(sorted((name, literal_shape(item)) for name, item in value.items())))
    if isinstance(value, list):
        return ListOf(one_of(literal_shape(item) for item in value)) if value else ListOf(Any)
    if isinstance(value, str):
        return Literal[value]
    if value is None:
        return NoneType
    return type(value)  # bool, int, float: a counter the definition keeps (a wait loop's seconds)


# -- compatibility with a model's field ----------------------------------------------------------------


def mismatch(actual: Any, expected: Any) -> str | None:
    """Why a value of shape `actual` would not parse as `expected` (None: it would)."""
    for option in options(actual):
        if option is Any or expected is Any:
            continue
        if not any(_fits(option, wanted) is None for wanted in options(expected)):
            reasons = [reason for wanted in options(expected) if (reason := _fits(option, wanted))]
            return reasons[0] if len(reasons) == 1 else f"{describe(option)} is not {describe(expected)}"
    return None


def _fits(actual: Any, expected: Any) -> str | None:
    if expected is Any or actual is Any:
        return None
    if expected is NoneType or actual is NoneType:
        return None if actual is expected else f"{describe(actual)} is not {describe(expected)}"
    if is_model(expected):
        if is_model(actual):
            return None if issubclass(actual, expected) else f"{describe(actual)} is not {describe(expected)}"
        if isinstance(actual, Obj):
            return _object_fits(actual, expected)
        return f"{describe(actual)} is not {describe(expected)}"
    origin = typing.get_origin(expected)
    if origin is dict:
        value_type = typing.get_args(expected)[1]
        if isinstance(actual, Obj):
            return next((m for _, shape in actual.fields if (m := mismatch(shape, value_type))), None)
        return None if is_model(actual) and value_type is Any else f"{describe(actual)} is not an object"
    if origin is list:
        item = actual.item if isinstance(actual, ListOf) else _list_item(actual)
        return "not a list" if item is None else mismatch(item, typing.get_args(expected)[0])
    wanted_values = literal_values(expected)
    if wanted_values is not None:
        values = literal_values(actual)
        if values is None or not values <= wanted_values:
            return f"{describe(actual)} is not one of {sorted(wanted_values)}"
        return None
    if isinstance(expected, type):
        values = literal_values(actual)
        if values is not None:
            ok = all(isinstance(value, expected) for value in values)
            return None if ok else f"{describe(actual)} is not {describe(expected)}"
        if isinstance(actual, type) and (issubclass(actual, expected) or (expected, actual) == (float, int)):
            return None
    return f"{describe(actual)} is not {describe(expected)}"


def _list_item(shape: Any) -> Any:
    return typing.get_args(shape)[0] if typing.get_origin(shape) is list else None


def _object_fits(actual: Obj, model: type[BaseModel]) -> str | None:
    given = dict(actual.fields)
    for name, shape in given.items():
        wanted = field_of(model, name)
        if wanted is None:
            if model.model_config.get("extra") != "allow":
                return f"{model.__name__} has no field {name!r}"
            continue
        if (reason := mismatch(shape, wanted)) is not None:
            return f"{model.__name__}.{name}: {reason}"
    missing = [
        name
        for name, info in model.model_fields.items()
        if info.is_required() and name not in given and info.alias not in given
    ]
    return f"{model.__name__} needs {missing}, not given" if missing else None


# -- the handlers' contracts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskContract:
    function: str
    takes: Any
    returns: Any


def handler_contracts() -> dict[str, TaskContract]:
    """`${<Function>Arn}` -> what the function's handler parses its event into (`event_parser(model=...)`)
    and what the domain function it hands the event to returns (its return annotation)."""
    contracts: dict[str, TaskContract] = {}
    for logical_id, function in resources_of_type(load_template(), "AWS::Serverless::Function").items():
        app = PROJECT_ROOT / function["Properties"]["CodeUri"] / "app.py"
        tree = ast.parse(app.read_text(encoding="utf-8"))
        imported = {
            alias.asname or alias.name: (node.module, alias.name)
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
            for alias in node.names
        }
        (handler,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "lambda_handler"]
        (model_name,) = [
            keyword.value.id
            for decorator in handler.decorator_list
            if isinstance(decorator, ast.Call) and ast.unparse(decorator.func) == "event_parser"
            for keyword in decorator.keywords
            if keyword.arg == "model" and isinstance(keyword.value, ast.Name)
        ]
        (domain_name,) = {
            node.func.id
            for node in ast.walk(handler)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in imported
            and imported[node.func.id][0].startswith("synthtune.stages.")
            and node.args
            and ast.unparse(node.args[0]).split(".")[0] == "event"
        }
        takes = _imported(*imported[model_name])
        domain = _imported(*imported[domain_name])
        returns = typing.get_type_hints(domain)["return"]
        contracts[f"${{{logical_id}Arn}}"] = TaskContract(logical_id, takes, returns)
    return contracts


def _imported(module: str, name: str) -> Any:
    return getattr(importlib.import_module(module), name)


# -- paths ---------------------------------------------------------------------------------------------

PATH = re.compile(r"\$\$?(?:\.[A-Za-z_][\w-]*)*")
QUOTED = re.compile(r"'(?:\\.|[^'\\])*'")
INTRINSIC_RESULTS: dict[str, Any] = {"States.MathAdd": int, "States.Format": str}
"""What the intrinsic functions the definition calls return (others: reported as not understood)."""


def segments(path: str) -> list[str] | None:
    """`$.a.b` -> ["a", "b"]; None for a form this reader does not understand."""
    if path == "$":
        return []
    if not re.fullmatch(r"\$(?:\.[A-Za-z_][\w-]*)+", path):
        return None
    return path[2:].split(".")


# -- the walk ------------------------------------------------------------------------------------------

PATH_FIELDS = {
    "SecondsPath": "number",
    "TimestampPath": "string",
    "MaxConcurrencyPath": "number",
    "ToleratedFailurePercentagePath": "number",
    "ToleratedFailureCountPath": "number",
    "ErrorPath": "string",
    "CausePath": "string",
    "TimeoutSecondsPath": "number",
    "HeartbeatSecondsPath": "number",
}
"""Fields holding a path to a number or a string, read from the state's input."""
UNDERSTOOD = {
    "Task": {
        "Type",
        "Comment",
        "Resource",
        "Parameters",
        "ResultSelector",
        "ResultPath",
        "InputPath",
        "OutputPath",
        "Retry",
        "Catch",
        "Next",
        "End",
        "TimeoutSeconds",
        "HeartbeatSeconds",
        *PATH_FIELDS,
    },
    "Pass": {
        "Type",
        "Comment",
        "Result",
        "Parameters",
        "ResultPath",
        "InputPath",
        "OutputPath",
        "Next",
        "End",
    },
    "Choice": {"Type", "Comment", "Choices", "Default", "InputPath", "OutputPath"},
    "Wait": {
        "Type",
        "Comment",
        "Seconds",
        "Timestamp",
        "InputPath",
        "OutputPath",
        "Next",
        "End",
        *PATH_FIELDS,
    },
    "Succeed": {"Type", "Comment", "InputPath", "OutputPath"},
    "Fail": {"Type", "Comment", "Error", "Cause", *PATH_FIELDS},
    "Map": {
        "Type",
        "Comment",
        "ItemsPath",
        "ItemReader",
        "ItemSelector",
        "ItemProcessor",
        "Label",
        "MaxConcurrency",
        "ResultSelector",
        "ResultPath",
        "InputPath",
        "OutputPath",
        "Retry",
        "Catch",
        "Next",
        "End",
        "ToleratedFailurePercentage",
        "ToleratedFailureCount",
        *PATH_FIELDS,
    },
}
"""The fields of each state type this reader follows; any other is reported."""
STRING_COMPARATORS = {
    "StringEquals",
    "StringLessThan",
    "StringGreaterThan",
    "StringLessThanEquals",
    "StringGreaterThanEquals",
    "StringMatches",
}
NUMERIC_COMPARATORS = {
    "NumericEquals",
    "NumericLessThan",
    "NumericGreaterThan",
    "NumericLessThanEquals",
    "NumericGreaterThanEquals",
}


@dataclass
class Findings:
    problems: set[str] = field(default_factory=set)
    compared: dict[tuple[str, str, str], set[Any]] = field(default_factory=dict)
    """(Choice rule, Variable, literal) -> every value the Variable's type allows, over every shape."""


@dataclass
class Walk:
    """One state machine (the pipeline, or a Map's processor) followed from the shapes it starts with."""

    machine: dict[str, Any]
    contracts: dict[str, TaskContract]
    context: dict[str, Any]
    findings: Findings
    outputs: list[Any] = field(default_factory=list)
    reached: dict[str, set[Any]] = field(default_factory=dict)

    @property
    def problems(self) -> set[str]:
        return self.findings.problems

    def run(self, start: Iterable[Any]) -> Walk:
        pending = [(self.machine["StartAt"], shape) for shape in start]
        while pending:
            name, shape = pending.pop()
            if shape in self.reached.setdefault(name, set()):
                continue
            self.reached[name].add(shape)
            if sum(map(len, self.reached.values())) > 20_000:
                raise AssertionError("the shapes never settle: a loop keeps adding fields")
            for successor, output in self._state(name, self.machine["States"][name], shape):
                if successor is None:
                    self.outputs.append(output)
                else:
                    pending.append((successor, output))
        for name in self.machine["States"]:
            if name not in self.reached:
                self.problems.add(f"{name}: no path reaches it, so nothing of it was checked")
        return self

    # -- reading paths -------------------------------------------------------------------------------

    def resolve(self, where: str, path: str, shape: Any) -> Any:
        """The shape at `path` in `shape` (None, and a problem, if it has none)."""
        if path.startswith("$$"):
            if path not in self.context:
                self.problems.add(f"{where}: {path} is no context field this reader knows")
                return None
            return self.context[path]
        parts = segments(path)
        if parts is None:
            self.problems.add(f"{where}: {path} is a path form this reader does not understand")
            return None
        current = [shape]
        for depth, part in enumerate(parts):
            found = [
                inner
                for outer in current
                for option in options(outer)
                if option is not NoneType and (inner := field_of(option, part)) is not None
            ]
            if not found:
                read = "$." + ".".join(parts[:depth]) if depth else "$"
                self.problems.add(
                    f"{where}: {path}: {read} is {one_of_names(current)}, which has no field {part!r}"
                )
                return None
            current = found
        return one_of(current)

    def expression(self, where: str, value: str, shape: Any) -> Any:
        """A `.$` field's value: a path, or an intrinsic function of paths."""
        call = re.match(r"(States\.\w+)\(", value)
        if call is None:
            return self.resolve(where, value, shape)
        for path in PATH.findall(QUOTED.sub("", value)):
            self.resolve(where, path, shape)
        if call.group(1) not in INTRINSIC_RESULTS:
            self.problems.add(f"{where}: {call.group(1)} is an intrinsic function this reader does not know")
            return Any
        return INTRINSIC_RESULTS[call.group(1)]

    def build(self, where: str, template: Any, shape: Any) -> Any:
        """What a Parameters (ItemSelector, ResultSelector) block makes of `shape`."""
        if isinstance(template, dict):
            built = Obj()
            for key, value in template.items():
                if key.endswith(".$"):
                    found = self.expression(f"{where}.{key}", value, shape)
                    built = built.with_field(key[:-2], Any if found is None else found)
                else:
                    built = built.with_field(key, self.build(f"{where}.{key}", value, shape))
            return built
        return literal_shape(template)

    def place(self, where: str, result_path: Any, state_input: Any, result: Any) -> list[Any]:
        """The state's output once ResultPath put `result` into its input (each alternative)."""
        if result_path is None:
            return [state_input]
        parts = segments(result_path)
        if parts is None:
            self.problems.add(f"{where}: ResultPath {result_path} is a form this reader does not understand")
            return []
        if not parts:
            return options(result)
        placed = self._placed(state_input, parts, result)
        if placed is None:
            self.problems.add(f"{where}: ResultPath {result_path} writes into {describe(state_input)}")
            return []
        return [placed]

    def _placed(self, shape: Any, parts: list[str], result: Any) -> Obj | None:
        into = as_obj(shape) if shape is not None else Obj()
        if into is None:
            return None
        if len(parts) == 1:
            return into.with_field(parts[0], result)
        inner = self._placed(into.get(parts[0]), parts[1:], result)
        return None if inner is None else into.with_field(parts[0], inner)

    def check_type(self, where: str, path: str, shape: Any, kind: str) -> None:
        found = self.resolve(where, path, shape)
        if found is None:
            return
        wanted = {"number": float, "string": str, "boolean": bool}[kind]
        if (reason := mismatch(found, wanted)) is not None:
            self.problems.add(f"{where}: {path} should be a {kind}: {reason}")

    # -- the states ----------------------------------------------------------------------------------

    def _state(self, name: str, state: dict[str, Any], shape: Any) -> Iterator[tuple[str | None, Any]]:
        kind = state["Type"]
        if kind not in UNDERSTOOD:
            self.problems.add(f"{name}: a {kind} state, which this checker does not follow: teach it")
            return
        for unknown in sorted(set(state) - UNDERSTOOD[kind]):
            self.problems.add(f"{name}: {kind} field {unknown} is not read by this checker: teach it")
        effective = self.resolve(f"{name}.InputPath", state.get("InputPath", "$"), shape)
        if effective is None:
            return
        for field_name, path_kind in PATH_FIELDS.items():
            if field_name in state:
                self.check_type(f"{name}.{field_name}", state[field_name], effective, path_kind)
        if kind == "Choice":
            yield from self._choice(name, state, effective)
            return
        if kind in ("Succeed", "Fail"):
            if kind == "Succeed":
                yield from self._after(name, state, [effective])
            return
        if kind == "Wait":
            yield from self._after(name, state, [effective])
            return
        if kind == "Pass":
            if "Parameters" in state:
                result = self.build(f"{name}.Parameters", state["Parameters"], effective)
            elif "Result" in state:
                result = literal_shape(state["Result"])
            else:
                result = effective
        elif kind == "Task":
            result = self._task(name, state, effective)
        else:
            result = self._map(name, state, effective)
        if result is None:
            return
        if "ResultSelector" in state:
            result = self.build(f"{name}.ResultSelector", state["ResultSelector"], result)
        outputs = self.place(name, state.get("ResultPath", "$"), shape, result)
        yield from self._after(name, state, outputs)
        for catcher in state.get("Catch", []):
            for caught in self.place(f"{name}.Catch", catcher.get("ResultPath", "$"), shape, StateFailure):
                yield catcher["Next"], caught

    def _after(
        self, name: str, state: dict[str, Any], outputs: list[Any]
    ) -> Iterator[tuple[str | None, Any]]:
        for output in outputs:
            sent = self.resolve(f"{name}.OutputPath", state.get("OutputPath", "$"), output)
            if sent is not None:
                for option in options(sent):
                    yield state.get("Next"), option

    def _task(self, name: str, state: dict[str, Any], effective: Any) -> Any:
        contract = self.contracts.get(state["Resource"])
        if contract is None:
            self.problems.add(f"{name}: {state['Resource']} is no function of template.yaml")
            return None
        given = (
            self.build(f"{name}.Parameters", state["Parameters"], effective)
            if "Parameters" in state
            else effective
        )
        if (reason := mismatch(given, contract.takes)) is not None:
            self.problems.add(
                f"{name}: its input is not {contract.function}'s {describe(contract.takes)}: {reason}"
            )
        return contract.returns

    def _map(self, name: str, state: dict[str, Any], effective: Any) -> Any:
        if "ItemReader" in state:
            for key, value in state["ItemReader"].get("Parameters", {}).items():
                if key.endswith(".$"):
                    self.check_type(f"{name}.ItemReader.{key}", value, effective, "string")
            item = ITEM_READERS.get(name)
            if item is None:
                self.problems.add(f"{name}: ItemReader with no item model in ITEM_READERS")
                return None
        else:
            items = self.resolve(f"{name}.ItemsPath", state.get("ItemsPath", "$"), effective)
            if items is None:
                return None
            item = one_of(
                option.item if isinstance(option, ListOf) else _list_item(option) for option in options(items)
            )
            if item is None or (isinstance(item, Alt) and None in item.options):
                self.problems.add(f"{name}: ItemsPath {state.get('ItemsPath', '$')} is not a list")
                return None
        context = {**self.context, "$$.Map.Item.Value": item, "$$.Map.Item.Index": int}
        selector = Walk(self.machine, self.contracts, context, self.findings)
        iteration = (
            selector.build(f"{name}.ItemSelector", state["ItemSelector"], effective)
            if "ItemSelector" in state
            else item
        )
        processor = Walk(state["ItemProcessor"], self.contracts, context, self.findings)
        processor.run(options(iteration))
        return ListOf(one_of(processor.outputs)) if processor.outputs else None

    def _choice(self, name: str, state: dict[str, Any], shape: Any) -> Iterator[tuple[str | None, Any]]:
        for index, rule in enumerate(state["Choices"]):
            may, surely = self._rule(f"{name}.Choices[{index}]", rule, shape)
            if may:
                yield rule["Next"], shape
            if surely:  # the rules after it, and the Default, never see this shape
                return
        if "Default" in state:
            yield state["Default"], shape

    def _rule(self, where: str, rule: dict[str, Any], shape: Any) -> tuple[bool, bool]:
        """Whether the rule may match data of this shape, and whether it surely does."""
        if "And" in rule or "Or" in rule:
            parts = [
                self._rule(f"{where}.{i}", part, shape)
                for i, part in enumerate(rule.get("And") or rule["Or"])
            ]
            if "And" in rule:
                return all(may for may, _ in parts), all(surely for _, surely in parts)
            return any(may for may, _ in parts), any(surely for _, surely in parts)
        if "Not" in rule:
            may, surely = self._rule(f"{where}.Not", rule["Not"], shape)
            return not surely, not may
        (comparator,) = [key for key in rule if key not in {"Variable", "Next"}]
        if comparator == "IsPresent":
            return True, False
        variable = self.resolve(f"{where}.Variable", rule["Variable"], shape)
        if variable is None:
            return True, False
        operand = rule[comparator]
        if comparator.endswith("Path"):
            kind = "number" if comparator.startswith("Numeric") else "string"
            self.check_type(f"{where}.{comparator}", operand, shape, kind)
            return True, False
        if comparator in NUMERIC_COMPARATORS:
            self.check_type(where, rule["Variable"], shape, "number")
            return True, False
        if comparator not in STRING_COMPARATORS:
            self.problems.add(f"{where}: {comparator} is a comparison this reader does not know")
            return True, False
        found = [literal_values(option) for option in options(variable)]
        if any(values is None for values in found):
            self.problems.add(
                f"{where}: {rule['Variable']} is {describe(variable)}, no Literal type, so {operand!r} is a "
                "value the Python never names"
            )
            return True, False
        allowed = set().union(*[values for values in found if values is not None])
        if comparator == "StringEquals":
            self.findings.compared.setdefault((where, rule["Variable"], operand), set()).update(allowed)
            return operand in allowed, allowed == {operand}
        return True, False


def one_of_names(shapes: list[Any]) -> str:
    return describe(one_of(shapes))


def check_definition(definition: dict[str, Any], contracts: dict[str, TaskContract]) -> list[str]:
    """Every mismatch between the definition and the contracts, one line each (none: they agree)."""
    findings = Findings()
    if definition.get("QueryLanguage", "JSONPath") != "JSONPath":
        findings.problems.add(
            f"QueryLanguage {definition['QueryLanguage']}: this reader follows JSONPath only"
        )
    Walk(definition, contracts, {"$$.Execution.Name": str, "$$.Execution.Id": str}, findings).run(
        options(EXECUTION_INPUT)
    )
    for (where, variable, literal), allowed in findings.compared.items():
        if literal not in allowed:
            findings.problems.add(
                f"{where}: {variable} is never {literal!r}: its type allows only {sorted(allowed)}"
            )
    return sorted(findings.problems)
