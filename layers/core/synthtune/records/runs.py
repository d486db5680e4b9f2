"""DynamoDB adapter: the run record and its results.

One item collection per run (pk `RUN#<run_id>`):
  sk `RUN`             status, stage, problem set, config, counts, fine-tuning job, error and cause
  sk `SHARD#<index>`   one Generate shard's outcome and token usage (rewritten, never added to, on retry)
  sk `BATCH#<round>#<part>` one Batch API submission: its batch id, requests, reservation, outcome
  sk `DATASET`         what Assemble kept and dropped
  sk `FINETUNE`        the fine-tuning job as last seen
  sk `FINETUNE#<attempt>` a job of the run that ended without a model before a resumed run trained its next
  sk `SERVING`         what serves the fine-tuned model (a Bedrock deployment) as last seen
  sk `SCORE#<name>`    one benchmark contestant's score and usage
  sk `SPEND#<kind>#<spender>#<purpose>#<model>` model requests paid for that no other item counts:
                       replies that never arrived, at their worst case (kind paid_but_lost, added to
                       atomically), and the answers a benchmark contestant without a score yet keeps in
                       its checkpoints (kind unfinished, rewritten whole, removed with its score; older
                       runs: discarded) (see money.ledger)
Totals are summed from the items when the report is written, so a retried stage never counts twice.

And one item per version of a problem set that a run was started on (pk `PROBLEM_SET#<s3 uri>`, sk
`VERSION#<version id>#<etag>`): the run that handles it, so a second start for the same upload (a repeated
S3 event, an upload and a start-execution) is told which run already does instead of paying again.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

RUN_SK = "RUN"
ENDED_STATUSES = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "DUPLICATE"})
"""A run record's status once the run is over (RUNNING until then)."""
UNSUCCESSFUL_STATUSES = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})
DATASET_SK = "DATASET"
FINETUNE_SK = "FINETUNE"
SERVING_SK = "SERVING"
ENDED_JOB_PREFIX = f"{FINETUNE_SK}#"


def ended_job_sk(attempt: int) -> str:
    return f"{ENDED_JOB_PREFIX}{attempt:02d}"


_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def shard_sk(index: int) -> str:
    return f"SHARD#{index:05d}"


def batch_sk(round_number: int, part: int) -> str:
    return f"BATCH#{round_number:02d}#{part:03d}"


def score_sk(contestant: str) -> str:
    return f"SCORE#{contestant}"


SPEND_PREFIX = "SPEND#"


def spend_sk(kind: str, spender: str, purpose: str, model: str) -> str:
    return f"{SPEND_PREFIX}{kind}#{spender}#{purpose}#{model}"


def run_pk(run_id: str) -> str:
    return f"RUN#{run_id}"


def problem_set_pk(uri: str) -> str:
    return f"PROBLEM_SET#{uri}"


def problem_set_version_sk(etag: str, version_id: str | None) -> str:
    return f"VERSION#{version_id or '-'}#{etag}"


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


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

    def put(self, run_id: str, sk: str, attributes: dict[str, Any]) -> None:
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

    def claim(self, pk: str, sk: str, run_id: str, *, replacing: str | None = None, **attributes: Any) -> str:
        """Make `run_id` the one run of the item `pk`/`sk` unless another run holds it (or, with `replacing`,
        unless a run other than that one does): returns the holder afterwards, `run_id` if it won.

        A conditional write, so of two runs claiming at once exactly one wins."""
        item = {"pk": pk, "sk": sk, "run_id": run_id, "claimed_at": now_iso(), **attributes}
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
            return str(self._decode(response.get("Item", {})).get("run_id", ""))
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

    @staticmethod
    def _decode(item: dict[str, Any]) -> dict[str, Any]:
        return {name: _from_dynamodb(_deserializer.deserialize(value)) for name, value in item.items()}
