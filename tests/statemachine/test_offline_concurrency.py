"""The offline runtime runs a Map's iterations as concurrently as Lambda would: each concurrent invocation
of a function in an execution environment of its own, with its own Powertools state."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from io import StringIO
from typing import TYPE_CHECKING

from synthtune_cli.clock import VirtualClock
from synthtune_cli.emulator import OpenAIEmulator
from synthtune_cli.emulator.server import EmulatorServer
from synthtune_cli.offline import OfflineStack
from tests.support import OPENAI_MODELS, execute, sample_rows

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

SMALL_SET = sample_rows(per_category=8)  # 24 problems: 19 answered by the teacher, in 3 shards of 8
MEETING_SECONDS = 30.0


class MeetingPoint:
    """WSGI middleware: each teacher request waits (up to MEETING_SECONDS) until two are waiting at once,
    which only requests of different shards can be when each shard has one request in flight."""

    def __init__(self, app: WSGIApplication) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._waiting = 0
        self.met = threading.Event()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/v1/chat/completions" and not self.met.is_set():
            with self._lock:
                self._waiting += 1
                if self._waiting >= 2:
                    self.met.set()
            self.met.wait(MEETING_SECONDS)
        return self._app(environ, start_response)


def test_shards_run_at_once_each_in_an_execution_environment_of_its_own(
    emulator: OpenAIEmulator, clock: VirtualClock
) -> None:
    meeting = MeetingPoint(emulator.wsgi_app)
    log = StringIO()
    config = {
        **OPENAI_MODELS,
        "judge_model": None,
        "shard_size": 8,
        "max_concurrency": 3,
        "request_concurrency": 1,
        "benchmark_contestants": ["base"],
    }
    with (
        EmulatorServer(meeting) as server,
        OfflineStack(
            openai_api_key="sk-test",
            parameters={"OpenAIBaseUrl": server.base_url},
            clock=clock,
            log_stream=log,
        ) as stack,
    ):
        execution = execute(stack, SMALL_SET, config=config)
        environments = stack.environments.created("GenerateShardFunction")

    assert execution.status == "SUCCEEDED", execution.description.get("cause")
    assert meeting.met.is_set()  # two shards had a request in flight at the same moment
    assert 2 <= environments <= 3  # no more than the Map's MaxConcurrency
    # Each shard's invocation published its own metrics, cold or warm as its environment was.
    shard_metrics = [
        line
        for line in map(json.loads, (text for text in log.getvalue().splitlines() if text.startswith("{")))
        if "TeacherAnswersVerified" in line
    ]
    assert len(shard_metrics) == 3
    assert all(len(line["TeacherAnswersVerified"]) == 1 for line in shard_metrics)


def test_concurrent_requests_to_one_item_and_one_bucket_are_each_atomic(stack: OfflineStack) -> None:
    # Shards add to the run's ledger item and write checkpoints into the bucket at once. moto, unlike
    # DynamoDB and S3, is not atomic per request: unserialised, updates are lost and a copy of an item
    # another thread is changing fails with "dictionary changed size during iteration".
    dynamodb, s3 = stack.client("dynamodb"), stack.client("s3")
    key = {"pk": {"S": "RUN#hammered"}, "sk": {"S": "RUN"}}
    workers, rounds = 8, 40
    start = threading.Barrier(workers)
    errors: list[BaseException] = []

    def worker(number: int) -> None:
        try:
            start.wait(timeout=10)
            for turn in range(rounds):
                dynamodb.update_item(
                    TableName=stack.table,
                    Key=key,
                    # Each update also adds an attribute of its own, so the item keeps growing while the
                    # others copy it.
                    UpdateExpression=f"ADD requests :one SET #w{number}_{turn} = :turn",
                    ExpressionAttributeNames={f"#w{number}_{turn}": f"w{number}_{turn}"},
                    ExpressionAttributeValues={":one": {"N": "1"}, ":turn": {"N": str(turn)}},
                )
                s3.put_object(Bucket=stack.bucket, Key=f"hammered/{number}/{turn}", Body=b"{}")
                s3.list_objects_v2(Bucket=stack.bucket, Prefix="hammered/")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(number,)) for number in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    item = dynamodb.get_item(TableName=stack.table, Key=key, ConsistentRead=True)["Item"]
    assert item["requests"] == {"N": str(workers * rounds)}
    assert len(item) == 3 + workers * rounds
    listed = s3.list_objects_v2(Bucket=stack.bucket, Prefix="hammered/", MaxKeys=1000)
    assert listed["KeyCount"] == workers * rounds
