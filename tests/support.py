"""Helpers for the integration and state-machine tests (fixtures live in conftest.py)."""

from __future__ import annotations

import ast
import json
import threading
from dataclasses import dataclass
from typing import Any

from synthtune_cli.offline import OfflineStack
from synthtune_cli.template import PROJECT_ROOT, load_template

SAMPLE_PROBLEM_SET = PROJECT_ROOT / "events" / "problem-set.sample.jsonl"
EVENTS = PROJECT_ROOT / "events"


def code_strings(tree: ast.AST) -> set[str]:
    """Every string literal of a module's code: its docstrings left out (they may name what they describe)."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    }


def sample_rows(per_category: int | None = None) -> list[dict[str, Any]]:
    """The sample problem set's rows; with `per_category`, the first n of each category."""
    rows = [
        json.loads(line)
        for line in SAMPLE_PROBLEM_SET.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    if per_category is None:
        return rows
    kept: dict[str, int] = {}
    selected = []
    for row in rows:
        if kept.get(row["category"], 0) < per_category:
            kept[row["category"]] = kept.get(row["category"], 0) + 1
            selected.append(row)
    return selected


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


@dataclass
class Execution:
    run_id: str
    arn: str
    description: dict[str, Any]
    history: list[dict[str, Any]]
    records: dict[str, dict[str, Any]]

    @property
    def status(self) -> str:
        return str(self.description["status"])

    @property
    def output(self) -> dict[str, Any]:
        return dict(json.loads(self.description["output"]))

    def entered(self, state: str) -> int:
        return sum(
            1 for event in self.history if event.get("stateEnteredEventDetails", {}).get("name") == state
        )

    def lambda_failures(self) -> list[str]:
        return [
            event["lambdaFunctionFailedEventDetails"]["error"]
            for event in self.history
            if event["type"] == "LambdaFunctionFailed"
        ]


def execute(
    stack: OfflineStack,
    rows: list[dict[str, Any]] | bytes,
    *,
    run_id: str = "test-run",
    config: dict[str, Any] | None = None,
    key: str = "problem-sets/test.jsonl",
    execution_input: dict[str, Any] | None = None,
) -> Execution:
    """Upload a problem set, run the real state machine on it, and collect what it left behind."""
    stack.upload(key, rows if isinstance(rows, bytes) else jsonl(rows))
    start: dict[str, Any] = execution_input or {"key": key, **({"config": config} if config else {})}
    arn = stack.start_execution(run_id, start)
    description = stack.wait(arn, timeout_seconds=120)
    return Execution(
        run_id=run_id,
        arn=arn,
        description=description,
        history=stack.history(arn),
        records={item["sk"]: item for item in stack.records(run_id)},
    )


FAST_CONFIG = {"poll_interval_seconds": 60, "shard_size": 8}
"""Small shards so the Generate Map has several iterations even on a small problem set."""


def event(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text(encoding="utf-8")))


class FakeClock:
    """A monotonic clock whose sleep advances it instead of waiting."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


OPENAI_MODELS: dict[str, Any] = {
    "teacher_model": "gpt-4.1-2025-04-14",
    "student_model": "gpt-4.1-nano-2025-04-14",
    "judge_model": "gpt-4.1-mini-2025-04-14",
}
"""A run on OpenAI models (the emulator's; OpenAI's own dates apply only to its official API)."""


def execution_ended_event(stack: OfflineStack, execution_arn: str, **detail: Any) -> dict[str, Any]:
    """The "Step Functions Execution Status Change" event AWS sends EventBridge when the execution ends
    (moto's Step Functions sends none); `detail` overrides what describe_execution says."""
    description = stack.describe(execution_arn)
    return {
        "version": "0",
        "id": "315c1398-40ff-a850-213b-158f73e60175",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "123456789012",
        "time": "2026-12-01T09:00:00Z",
        "region": stack.region,
        "resources": [execution_arn],
        "detail": {
            "executionArn": execution_arn,
            "stateMachineArn": stack.state_machine_arn,
            "name": description["name"],
            "status": description["status"],
            "startDate": 1_800_000_000_000,
            "stopDate": 1_800_000_060_000,
            "input": description.get("input"),
            "inputDetails": {"included": True},
            "output": None,
            "outputDetails": None,
            "error": description.get("error"),
            "cause": description.get("cause"),
            **detail,
        },
    }


def deliver_to_function(stack: OfflineStack, rule: tuple[str, str], event: dict[str, Any]) -> Any:
    """What EventBridge does with `event` for one of template.yaml's rules, `rule` = (function or state
    machine logical id, event name): check the rule's pattern matches (moto's EventBridge matcher), then
    invoke its function with the event as it is. Returns the function's response payload."""
    from moto.events.models import EventPattern

    logical_id, event_name = rule
    properties = load_template()["Resources"][logical_id]["Properties"]["Events"][event_name]["Properties"]
    references = {"PipelineStateMachine": stack.state_machine_arn, "DataBucket": stack.bucket}
    pattern = _resolved(properties["Pattern"], references)
    assert EventPattern.load(json.dumps(pattern)).matches_event(event), "the rule would not fire"
    response = stack.client("lambda").invoke(FunctionName=logical_id, Payload=json.dumps(event).encode())
    return json.loads(response["Payload"].read())


def _resolved(node: Any, references: dict[str, str]) -> Any:
    if isinstance(node, dict) and set(node) == {"Ref"}:
        return references[node["Ref"]]
    if isinstance(node, dict):
        return {key: _resolved(value, references) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolved(value, references) for value in node]
    return node
