"""Error names, spelled once: `ErrorName` (synthtune.contracts.errors) against the definition and the code.

Every name a Retry or Catch matches is Step Functions' or Lambda's own, or an ErrorName; every name the
definition gives itself is an ErrorName; every ErrorName is given by something (an exception class a
handler raises, the definition's own states, or RecordFailure), so a renamed class, a misspelt
ErrorEquals or a name nothing gives any more fails here rather than in a run that is not retried.
"""

from __future__ import annotations

import ast
import copy
from pathlib import Path
from typing import Any

import pytest

from synthtune.contracts import errors
from synthtune.contracts.errors import (
    GIVEN_BY_RECORD_FAILURE,
    GIVEN_BY_THE_STATE_MACHINE,
    ErrorName,
    SynthtuneError,
)
from synthtune.stages.failure import UNCAUGHT
from synthtune_cli.template import PROJECT_ROOT
from tests.infra.asl import given_errors, load_definition, matched_errors
from tests.support import code_strings

BUILT_IN_PREFIXES = ("States.", "Lambda.")
"""Step Functions' own errors and those of its Lambda integration."""
LAMBDA_RUNTIME_ERRORS = frozenset({"Sandbox.Timedout", "Runtime.ExitError"})
"""What Lambda reports for a function that ran out of time or whose runtime died (no exception class)."""

PYTHON_SOURCES = [
    PROJECT_ROOT / "layers" / "core" / "synthtune",
    PROJECT_ROOT / "functions",
    PROJECT_ROOT / "cli" / "synthtune_cli",
]
ERRORS_MODULE = Path(errors.__file__).resolve()


def _python_trees() -> list[tuple[Path, ast.Module]]:
    return [
        (path, ast.parse(path.read_text(encoding="utf-8")))
        for root in PYTHON_SOURCES
        for path in sorted(root.rglob("*.py"))
        if "__pycache__" not in path.parts
    ]


PYTHON = _python_trees()


def _is_built_in(name: str) -> bool:
    return name.startswith(BUILT_IN_PREFIXES) or name in LAMBDA_RUNTIME_ERRORS


def unknown_matched_errors(definition: dict[str, Any]) -> list[str]:
    return [
        f"{state}: ErrorEquals {name!r} is neither built in nor an ErrorName"
        for state, name in matched_errors(definition)
        if not _is_built_in(name) and name not in ErrorName.__members__
    ]


def unknown_given_errors(definition: dict[str, Any]) -> list[str]:
    return [
        f"{state}: gives the error {name!r}, which is not an ErrorName"
        for state, name in given_errors(definition)
        if name not in ErrorName.__members__
    ]


def exception_classes() -> dict[str, type[SynthtuneError]]:
    found: dict[str, type[SynthtuneError]] = {}
    pending = list(SynthtuneError.__subclasses__())
    while pending:
        cls = pending.pop()
        found[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return found


def raised_in_python() -> set[str]:
    """Names called as a function or class anywhere in the code (outside the module defining them)."""
    called: set[str] = set()
    for path, tree in PYTHON:
        if path.resolve() == ERRORS_MODULE:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                if isinstance(node.func, ast.Name):
                    called.add(node.func.id)
                elif isinstance(node.func, ast.Attribute):
                    called.add(node.func.attr)
    return called


def test_every_error_the_definition_matches_is_built_in_or_an_error_name() -> None:
    assert unknown_matched_errors(load_definition()) == []


def test_every_error_the_definition_gives_is_an_error_name() -> None:
    assert unknown_given_errors(load_definition()) == []


def test_the_definition_is_read_to_the_depth_of_the_maps() -> None:
    # GenerateShard sits in the Generate Map's ItemProcessor: a walk of the top level would not see it.
    assert ("GenerateShard", ErrorName.ShardIncomplete) in set(matched_errors(load_definition()))


def test_the_checks_would_catch_a_misspelt_name() -> None:
    definition = load_definition()
    broken = copy.deepcopy(definition)
    shard = broken["States"]["Generate"]["ItemProcessor"]["States"]["GenerateShard"]
    shard["Retry"][1]["ErrorEquals"] = ["RateLimit", "ModelUnavailable"]
    broken["States"]["FailureNotRecorded"]["Error"] = "FailureNotRecord"
    broken["States"]["ServingTimedOut"]["Parameters"]["CheckServing"]["Error"] = "ServingTimeout"
    assert unknown_matched_errors(broken) == [
        "GenerateShard: ErrorEquals 'RateLimit' is neither built in nor an ErrorName"
    ]
    assert sorted(unknown_given_errors(broken)) == [
        "FailureNotRecorded: gives the error 'FailureNotRecord', which is not an ErrorName",
        "ServingTimedOut: gives the error 'ServingTimeout', which is not an ErrorName",
    ]


def test_every_exception_class_is_the_error_name_it_raises() -> None:
    classes = exception_classes()
    without_class = GIVEN_BY_THE_STATE_MACHINE | GIVEN_BY_RECORD_FAILURE
    assert set(classes) == {name.value for name in ErrorName if name not in without_class}
    for name, cls in classes.items():
        # Step Functions sees the class's own name: the one exported under it, and a member's value.
        assert getattr(errors, name) is cls
        assert ErrorName(name).name == name


def test_every_error_name_is_given_by_something() -> None:
    # A name nothing gives is dead: a Retry or Catch on it, or code comparing with it, waits for nothing.
    definition_gives = {name for _, name in given_errors(load_definition())}
    record_failure_gives = {error for error, _ in UNCAUGHT.values()}
    raised = raised_in_python() & set(exception_classes())
    dead = [
        name
        for name in ErrorName
        if name not in raised and name not in definition_gives and name not in record_failure_gives
    ]
    assert dead == []
    assert definition_gives >= GIVEN_BY_THE_STATE_MACHINE
    assert record_failure_gives >= GIVEN_BY_RECORD_FAILURE


def test_a_new_exception_class_must_be_an_error_name() -> None:
    with pytest.raises(TypeError, match="NotListed is not an ErrorName"):
        type("NotListed", (SynthtuneError,), {})


@pytest.mark.parametrize(
    ("path", "tree"), PYTHON, ids=[str(path.relative_to(PROJECT_ROOT)) for path, _ in PYTHON]
)
def test_python_spells_no_error_name_as_a_string(path: Path, tree: ast.Module) -> None:
    if path.resolve() == ERRORS_MODULE:
        return
    spelt = {value for value in code_strings(tree) if value in ErrorName.__members__}
    assert not spelt, f"spells {sorted(spelt)}: use ErrorName's members (or the exception classes)"
