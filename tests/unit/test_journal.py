"""The run's journal: every write to the run's S3 objects and DynamoDB items copied to disk as it is stored,
and given back to a fresh moto."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
from moto import mock_aws

from synthtune.records.artifacts import ArtifactStore
from synthtune.records.layout import RunLayout
from synthtune.records.runs import RunStore
from synthtune_cli.journal import RunJournal
from synthtune_cli.template import load_template
from tests.unit.conftest import BUCKET, REGION, TABLE

RUN = "journalled"
LAYOUT = RunLayout(RUN)


def journal(tmp_path: Path) -> RunJournal:
    return RunJournal(
        tmp_path / "state", RUN, bucket=BUCKET, table=TABLE, problem_set_key="problem-sets/set.jsonl"
    )


def create_bucket() -> ArtifactStore:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    return ArtifactStore(BUCKET, s3)


def create_table() -> RunStore:
    properties = load_template()["Resources"]["RunsTable"]["Properties"]
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=properties["KeySchema"],
        AttributeDefinitions=properties["AttributeDefinitions"],
        BillingMode="PAY_PER_REQUEST",
    )
    return RunStore(TABLE, dynamodb)


def test_the_run_objects_and_items_are_on_disk_when_the_write_returns(
    tmp_path: Path, data: ArtifactStore, runs: RunStore
) -> None:
    kept = journal(tmp_path)
    with kept.recording():
        data.write_json(LAYOUT.checkpoint(0, 3), {"answer": 42})
        assert json.loads((kept.objects_dir / LAYOUT.checkpoint(0, 3)).read_bytes()) == {"answer": 42}
        data.write_text("problem-sets/set.jsonl", '{"question": "q"}\n')
        data.write_text("problem-sets/other.jsonl", "not this run's\n")
        data.write_text("runs/another-run/config.json", "{}")
        runs.put(RUN, "SHARD#00000", {"status": "done"})
        runs.put("another-run", "SHARD#00000", {"status": "done"})
        runs.update(RUN, status="RUNNING")
        data.write_json(LAYOUT.config, {"shard_size": 8})
        boto3.client("s3", region_name=REGION).delete_object(Bucket=BUCKET, Key=LAYOUT.config)
    data.write_json(LAYOUT.manifest, [])  # after recording: not journalled

    assert [key for key, _ in kept.objects()] == [
        "problem-sets/set.jsonl",
        LAYOUT.checkpoint(0, 3),
    ]
    items = {item["sk"]["S"]: item for item in kept.items()}
    assert set(items) == {"RUN", "SHARD#00000"}
    assert items["RUN"]["status"] == {"S": "RUNNING"}
    assert (kept.items_dir / "SHARD#00000.json").is_file()


def test_an_item_written_by_many_threads_at_once_ends_as_its_last_version(
    tmp_path: Path, runs: RunStore
) -> None:
    # The ledger: every request adds to the run item from its own thread. The file must end as the item
    # did, never as an older version read or copied out of order.
    kept = journal(tmp_path)
    with kept.recording(), ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda _: runs.add(RUN, {"spent_usd": 0.5, "requests": 1}), range(200)))

    (item,) = kept.items()
    stored = runs.get(RUN)
    assert stored is not None and stored["requests"] == 200
    assert item["requests"] == {"N": "200"}
    assert float(item["spent_usd"]["N"]) == 100


def test_a_fresh_moto_gets_the_run_back_without_the_failure_of_the_attempt_resumed(tmp_path: Path) -> None:
    kept = journal(tmp_path)
    with mock_aws():
        data, runs = create_bucket(), create_table()
        with kept.recording():
            data.write_json(LAYOUT.checkpoint(1, 0), {"answer": "an echo"})
            runs.put(RUN, "FINETUNE", {"job_id": "ftjob-1", "status": "running"})
            runs.update(RUN, status="FAILED", error="BudgetExceeded", cause="over", spent_usd=0.25)
        job = runs.get(RUN, "FINETUNE")
    # A process killed in the middle of a write leaves a temporary file: it is not part of the run.
    (kept.objects_dir / "runs" / RUN / "answers" / "00001" / ".~00002.json.1-2").write_bytes(b'{"half')

    with mock_aws():  # a new process: moto empty again
        data, runs = create_bucket(), create_table()
        restored = kept.restore(
            boto3.client("s3", region_name=REGION), boto3.client("dynamodb", region_name=REGION)
        )

        assert (restored.objects, restored.items) == (1, 2)
        assert data.keys("") == {LAYOUT.checkpoint(1, 0)}
        assert data.read_json(LAYOUT.checkpoint(1, 0)) == {"answer": "an echo"}
        run = runs.get(RUN)
        assert run is not None
        assert (run["status"], run["spent_usd"]) == ("FAILED", 0.25)
        assert not {"error", "cause"} & set(run)
        assert runs.get(RUN, "FINETUNE") == job
