"""DynamoDB adapter: the run record and its results, one item collection per run.

What the items are, their keys and their shapes, is `records.items`; this module only reads and writes
them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from pydantic import BaseModel

from synthtune.records.items import (
    RUN_SK,
    SHARD_PREFIX,
    BatchItem,
    ProblemSetClaim,
    ShardItem,
    batch_round_prefix,
    now_iso,
    run_pk,
    shard_item,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _to_dynamodb(value: Any) -> Any:
    # DynamoDB takes no floats; a JSON round trip turns them into Decimals (and models into plain data).
    return _serializer.serialize(json.loads(json.dumps(value), parse_float=Decimal))


def _from_dynamodb(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _from_dynamodb(item) for key, item in value.items()}
    if isinstance(value, list | set):
        return [_from_dynamodb(item) for item in value]
    return value


class RunStore:
    def __init__(self, table: str, dynamodb: DynamoDBClient) -> None:
        self.table = table
        self._dynamodb = dynamodb

    def put(self, run_id: str, sk: str, attributes: BaseModel | Mapping[str, Any]) -> None:
        """Write the item whole (a model as its fields), replacing what was there."""
        if isinstance(attributes, BaseModel):
            attributes = attributes.model_dump(mode="json")
        item = {"pk": run_pk(run_id), "sk": sk, "run_id": run_id, "updated_at": now_iso(), **attributes}
        self._dynamodb.put_item(
            TableName=self.table, Item={name: _to_dynamodb(value) for name, value in item.items()}
        )

    def update(self, run_id: str, sk: str = RUN_SK, **attributes: Any) -> None:
        """Set attributes, creating the item if needed (a failure can be recorded before Prepare's)."""
        attributes = {"run_id": run_id, "updated_at": now_iso(), **attributes}
        names = {f"#a{i}": name for i, name in enumerate(attributes)}
        values = {f":v{i}": _to_dynamodb(value) for i, value in enumerate(attributes.values())}
        assignments = ", ".join(f"#a{i} = :v{i}" for i in range(len(attributes)))
        self._set(run_id, sk, assignments, names, values)

    def claim(self, pk: str, sk: str, claim: ProblemSetClaim, *, replacing: str | None = None) -> str:
        """Make `claim.run_id` the one run of the item `pk`/`sk` unless another run holds it (or, with
        `replacing`, unless a run other than that one does): returns the holder afterwards, `claim.run_id`
        if it won.

        A conditional write, so of two runs claiming at once exactly one wins."""
        run_id = claim.run_id
        item = {"pk": pk, "sk": sk, **claim.model_dump(mode="json")}
        values = {":me": _to_dynamodb(run_id)}
        condition = "attribute_not_exists(pk) OR #holder = :me"
        if replacing is not None:
            values[":replaced"] = _to_dynamodb(replacing)
            condition += " OR #holder = :replaced"
        try:
            self._dynamodb.put_item(
                TableName=self.table,
                Item={name: _to_dynamodb(value) for name, value in item.items()},
                ConditionExpression=condition,
                ExpressionAttributeNames={"#holder": "run_id"},
                ExpressionAttributeValues=values,
            )
        except self._dynamodb.exceptions.ConditionalCheckFailedException:
            response = self._dynamodb.get_item(
                TableName=self.table, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
            )
            held = response.get("Item")
            return ProblemSetClaim.from_item(self._decode(held)).run_id if held else ""
        return run_id

    def end(self, run_id: str, status: str, **attributes: Any) -> bool:
        """Give the run its final `status` (and `attributes`) unless it has one already: False, and
        nothing changed, if it had (a failure reported twice is recorded once)."""
        attributes = {"run_id": run_id, "updated_at": now_iso(), "status": status, **attributes}
        names = {f"#a{i}": name for i, name in enumerate(attributes)}
        values = {f":v{i}": _to_dynamodb(value) for i, value in enumerate(attributes.values())}
        assignments = ", ".join(f"#a{i} = :v{i}" for i in range(len(attributes)))
        status_name = next(key for key, name in names.items() if name == "status")
        values[":running"] = _to_dynamodb("RUNNING")
        try:
            self._set(
                run_id,
                RUN_SK,
                assignments,
                names,
                values,
                f"attribute_not_exists({status_name}) OR {status_name} = :running",
            )
        except self._dynamodb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def add(
        self,
        run_id: str,
        amounts: dict[str, float],
        *,
        not_above: tuple[str, float] | None = None,
        sk: str = RUN_SK,
        labels: dict[str, Any] | None = None,
    ) -> bool:
        """Add to numeric attributes atomically (missing ones count as 0); `labels` are set as they are,
        in the same update.

        With `not_above=(name, limit)` the update happens only if `name` is at most `limit` before it;
        returns False (and changes nothing) when it is not.
        """
        names = {f"#a{i}": name for i, name in enumerate(amounts)}
        values: dict[str, Any] = {f":v{i}": _to_dynamodb(amount) for i, amount in enumerate(amounts.values())}
        values[":zero"] = _to_dynamodb(0)
        assignments = ", ".join(f"#a{i} = if_not_exists(#a{i}, :zero) + :v{i}" for i in range(len(amounts)))
        for i, (name, value) in enumerate((labels or {}).items()):
            names[f"#l{i}"] = name
            values[f":l{i}"] = _to_dynamodb(value)
            assignments += f", #l{i} = :l{i}"
        condition = None
        if not_above is not None:
            names["#limited"] = not_above[0]
            values[":limit"] = _to_dynamodb(not_above[1])
            condition = "attribute_not_exists(#limited) OR #limited <= :limit"
        try:
            self._set(run_id, sk, assignments, names, values, condition)
        except self._dynamodb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _set(
        self,
        run_id: str,
        sk: str,
        assignments: str,
        names: dict[str, str],
        values: dict[str, Any],
        condition: str | None = None,
    ) -> None:
        options: dict[str, Any] = {"ConditionExpression": condition} if condition else {}
        self._dynamodb.update_item(
            TableName=self.table,
            Key={"pk": {"S": run_pk(run_id)}, "sk": {"S": sk}},
            UpdateExpression=f"SET {assignments}",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            **options,
        )

    def delete(self, run_id: str, sk: str) -> None:
        """Remove one of the run's items (nothing happens if it is not there)."""
        self._dynamodb.delete_item(TableName=self.table, Key={"pk": {"S": run_pk(run_id)}, "sk": {"S": sk}})

    def get(self, run_id: str, sk: str = RUN_SK) -> dict[str, Any] | None:
        response = self._dynamodb.get_item(
            TableName=self.table, Key={"pk": {"S": run_pk(run_id)}, "sk": {"S": sk}}, ConsistentRead=True
        )
        item = response.get("Item")
        return None if item is None else self._decode(item)

    def items(self, run_id: str, sk_prefix: str | None = None) -> list[dict[str, Any]]:
        """Every item of the run (or those whose sk starts with `sk_prefix`), in sort-key order."""
        condition = "pk = :pk"
        values: dict[str, Any] = {":pk": {"S": run_pk(run_id)}}
        if sk_prefix is not None:
            condition += " AND begins_with(sk, :prefix)"
            values[":prefix"] = {"S": sk_prefix}
        paginator = self._dynamodb.get_paginator("query")
        found: list[dict[str, Any]] = []
        for page in paginator.paginate(
            TableName=self.table,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ConsistentRead=True,
        ):
            found.extend(self._decode(item) for item in page.get("Items", []))
        return found

    def shards(self, run_id: str) -> list[ShardItem]:
        """The run's Generate shards' items, in index order."""
        return [shard_item(item) for item in self.items(run_id, SHARD_PREFIX)]

    def batches(self, run_id: str, round_number: int) -> list[BatchItem]:
        """The items of one round's Batch API submissions, in part order."""
        return [BatchItem.from_item(item) for item in self.items(run_id, batch_round_prefix(round_number))]

    @staticmethod
    def _decode(item: dict[str, Any]) -> dict[str, Any]:
        return {name: _from_dynamodb(_deserializer.deserialize(value)) for name, value in item.items()}
