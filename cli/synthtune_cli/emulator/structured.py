"""Structured outputs: a JSON value that conforms to the caller's JSON Schema, filled from a reply.

Conventions: an array of strings gets the reasoning steps; every string, whether its property is named
like "final_answer" or not, gets the final answer; booleans get true; numbers get the final answer's value
(else 0). In judge mode booleans get the verdict and strings the explanation. `$ref`/`$defs`,
`anyOf`/`oneOf` (the first non-null branch), `allOf`, `enum`, `const`, `minItems`/`maxItems` and
`minimum`/`maximum` are honoured.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from synthtune_cli.emulator.answers import answers_match, parse_numeric
from synthtune_cli.emulator.behaviour import Reply

# Recursive schemas ($ref to an ancestor) stop here: the filler emits the emptiest value the node allows.
_MAX_DEPTH = 8
_POSITIVE = {"correct", "yes", "true", "pass", "right", "1"}
_NEGATIVE = {"incorrect", "no", "false", "fail", "wrong", "0"}


class SchemaError(ValueError):
    """The schema cannot be filled (a broken `$ref`, an unknown type)."""


def fill_schema(schema: Mapping[str, Any], reply: Reply) -> Any:
    return _Filler(schema, reply).value(schema, depth=0)


class _Filler:
    def __init__(self, root: Mapping[str, Any], reply: Reply) -> None:
        self._root = root
        self._reply = reply

    def value(self, node: Mapping[str, Any], depth: int) -> Any:
        node = self._resolve(node)
        if "const" in node:
            return node["const"]
        if isinstance(node.get("enum"), list) and node["enum"]:
            return self._enum(node["enum"])
        for combinator in ("anyOf", "oneOf"):
            if isinstance(node.get(combinator), list):
                return self._first_non_null(node[combinator], depth)
        if isinstance(node.get("allOf"), list):
            merged: dict[str, Any] = {}
            for part in node["allOf"]:
                merged.update(self._resolve(part))
            merged.update({key: item for key, item in node.items() if key != "allOf"})
            return self.value(merged, depth)
        kind = _kind(node)
        if kind == "object":
            return self._object(node, depth)
        if kind == "array":
            return self._array(node, depth)
        if kind == "string":
            return self._reply.explanation if self._reply.judging else self._reply.final_answer
        if kind in ("number", "integer"):
            return _number(node, kind, self._number_value())
        if kind == "boolean":
            return bool(self._reply.verdict) if self._reply.judging else True
        if kind == "null":
            return None
        raise SchemaError(f"unsupported schema type {kind!r}")

    def _resolve(self, node: Mapping[str, Any]) -> Mapping[str, Any]:
        seen = 0
        while isinstance(node.get("$ref"), str):
            node = _pointer(self._root, node["$ref"])
            seen += 1
            if seen > _MAX_DEPTH:
                raise SchemaError("$ref chain too long")
        return node

    def _first_non_null(self, branches: list[Any], depth: int) -> Any:
        resolved = [self._resolve(branch) for branch in branches if isinstance(branch, Mapping)]
        for branch in resolved:
            if branch.get("type") != "null" and not (depth >= _MAX_DEPTH and _kind(branch) == "object"):
                return self.value(branch, depth)
        return None

    def _object(self, node: Mapping[str, Any], depth: int) -> dict[str, Any]:
        properties = node.get("properties") or {}
        if depth >= _MAX_DEPTH:
            properties = {key: properties[key] for key in node.get("required", []) if key in properties}
        return {key: self.value(sub, depth + 1) for key, sub in properties.items()}

    def _array(self, node: Mapping[str, Any], depth: int) -> list[Any]:
        items = self._resolve(node.get("items") or {})
        minimum, maximum = int(node.get("minItems", 0)), node.get("maxItems")
        values: list[Any]
        if depth >= _MAX_DEPTH:
            values = []
        elif _kind(items) == "string" and "enum" not in items and "const" not in items:
            values = [self._reply.explanation] if self._reply.judging else list(self._reply.steps)
        else:
            values = [self.value(items, depth + 1)]
        while values and len(values) < minimum:
            values.append(values[-1])
        if not values and minimum:
            values = [self.value(items, depth + 1) for _ in range(minimum)]
        return values[: int(maximum)] if maximum is not None else values

    def _enum(self, options: list[Any]) -> Any:
        if self._reply.judging:
            wanted = _POSITIVE if self._reply.verdict else _NEGATIVE
            for option in options:
                if str(option).casefold() in wanted:
                    return option
            return options[0]
        for option in options:
            if answers_match(str(option), self._reply.final_answer):
                return option
        return options[0]

    def _number_value(self) -> float:
        if self._reply.judging:
            return 1.0 if self._reply.verdict else 0.0
        numeric = parse_numeric(self._reply.final_answer)
        return numeric.value if numeric else 0.0


def _kind(node: Mapping[str, Any]) -> str:
    kind = node.get("type")
    if isinstance(kind, list):
        non_null = [item for item in kind if item != "null"]
        kind = non_null[0] if non_null else "null"
    if isinstance(kind, str):
        return kind
    if "properties" in node:
        return "object"
    if "items" in node:
        return "array"
    return "string"


def _number(node: Mapping[str, Any], kind: str, value: float) -> float | int:
    if isinstance(node.get("minimum"), int | float):
        value = max(value, float(node["minimum"]))
    if isinstance(node.get("maximum"), int | float):
        value = min(value, float(node["maximum"]))
    return round(value) if kind == "integer" else value


def _pointer(root: Mapping[str, Any], reference: str) -> Mapping[str, Any]:
    if not reference.startswith("#"):
        raise SchemaError(f"only local $ref is supported, got {reference!r}")
    node: Any = root
    for raw in [part for part in reference[1:].split("/") if part]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            raise SchemaError(f"$ref {reference!r} does not resolve")
        node = node[part]
    if not isinstance(node, Mapping):
        raise SchemaError(f"$ref {reference!r} does not point at a schema")
    return node
