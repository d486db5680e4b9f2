"""statemachine/pipeline.asl.json read as the contract tests read it: every state, at any depth.

A Map's ItemProcessor (or the older Iterator) and a Parallel's Branches hold states of their own, with
their own Retry, Catch and Fail; a check that looked at the top-level States only would miss them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from synthtune_cli.template import PROJECT_ROOT

ASL_PATH = PROJECT_ROOT / "statemachine" / "pipeline.asl.json"


def load_definition() -> dict[str, Any]:
    definition: dict[str, Any] = json.loads(ASL_PATH.read_text(encoding="utf-8"))
    return definition


def sub_machines(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The state machines a state runs inside it: a Map's processor, a Parallel's branches."""
    machines = [state[key] for key in ("ItemProcessor", "Iterator") if key in state]
    return machines + list(state.get("Branches", []))


def all_states(machine: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(name, state) for every state of `machine` and of every machine nested in it."""
    for name, state in machine["States"].items():
        yield name, state
        for nested in sub_machines(state):
            yield from all_states(nested)


def matched_errors(machine: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(state, error name) for every name a Retry or Catch lists."""
    for name, state in all_states(machine):
        for rule in (*state.get("Retry", []), *state.get("Catch", [])):
            for error in rule["ErrorEquals"]:
                yield name, error


def given_errors(machine: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(state, error name) for every error the definition gives itself: a Fail state's `Error`, and the
    `{Error, Cause}` a Pass state builds for RecordFailure as a Catch would."""
    for name, state in all_states(machine):
        if state["Type"] == "Fail" and "Error" in state:
            yield name, state["Error"]
        if state["Type"] == "Pass":
            for key in ("Parameters", "Result"):
                yield from ((name, error) for error in _error_fields(state.get(key)))


def _error_fields(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Error" and isinstance(value, str):
                yield value
            else:
                yield from _error_fields(value)
    elif isinstance(node, list):
        for value in node:
            yield from _error_fields(value)
