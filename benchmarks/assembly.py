"""Whether the Assemble step's memory stays flat as the examples grow, and how fast it goes: a
measurement run on demand (`make bench`), never a timed test.

What runs is the product's own `synthtune.stages.assemble.assemble.assemble_dataset`, on a run laid out as
Generate leaves it: shard answer files of `GeneratedAnswer` lines, the shard manifest, and a holdout
file of 1,000 problems. Three kinds of process take part, so that the measured one holds nothing but
Assemble:

- moto, in a helper process of its own, serves S3 and DynamoDB over HTTP on 127.0.0.1. moto's
  in-memory S3 grows with the data; in the measured process it would hide what Assemble holds.
  moto's own server (`moto.server`) needs Flask, which the project does not install, so the helper
  hands each request, as werkzeug (a dependency of the CLI) receives it, to the dispatcher moto's
  `mock_aws` puts behind botocore.
- A generator process writes the run through boto3, one shard at a time. A line's question derives
  from its index and the seed alone, so a duplicate of an early question needs nothing remembered, and
  the generator's memory does not grow with the size either.
- For each size, Assemble runs in a fresh process (so `ru_maxrss` is that run's own peak) against the
  helper through `endpoint_url`, with a work directory the benchmark creates, where Assemble keeps
  its duplicate index; a thread samples that directory's size every half second.

The synthetic answers look like a teacher's: 30-60 word questions with numbers, drawn with a seeded
RNG from 4,000 words (the student tokenizer's commonest single-token words), 150-300 tokens of
reasoning, a numeric answer, a tenth in the validation split. Some are noise every gate should drop,
in shares near what a real run sees: wrong answers, exact duplicates and one-word-changed
near-duplicates of earlier questions, held-out questions embedded in a longer one, hedged answers
without a reference, failed requests. What was planted is printed beside what was dropped; near
duplicates are found by a MinHash estimate, so the two may differ by a few.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import multiprocessing
import os
import platform
import random
import re
import resource
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar

from synthtune.contracts.config import RunConfig
from synthtune.contracts.problems import Problem, SplitCounts
from synthtune.contracts.usage import Usage
from synthtune.contracts.workflow import AssembleInput, GenerationPlan, RunRef, S3Location, ShardRef
from synthtune.providers.registry import dataset_format
from synthtune.records.layout import RunLayout
from synthtune.stages.generate import GeneratedAnswer, call_cost

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from wsgiref.types import StartResponse, WSGIEnvironment

    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

P = ParamSpec("P")
T = TypeVar("T")

REGION = "us-east-1"
BUCKET = "synthtune-bench-data"
TABLE = "synthtune-bench-runs"
BENCH_CONFIG = RunConfig(teacher_model="gpt-4.1-2025-04-14", student_model="gpt-4.1-mini-2025-04-14")
"""An OpenAI student: the sizes measured go past the 20,000 examples Bedrock fine-tunes Nova on."""

RUN_ID = "bench-assembly"
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (2_000, 20_000)
SHARD_SIZE = 1_000
HOLDOUT_PROBLEMS = 1_000
VALIDATION_SHARE = 0.1
MB = 1_000_000
MIB = 2**20

Kind = Literal["verified", "rejected", "duplicate", "near_duplicate", "holdout_lookalike", "hedged", "failed"]
NOISE: dict[Kind, float] = {
    "rejected": 0.05,
    "duplicate": 0.02,
    "near_duplicate": 0.01,
    "holdout_lookalike": 0.005,
    "hedged": 0.01,
    "failed": 0.005,
}
"""Share of the answers planted as each kind of noise; the rest are verified and distinct."""
EXPECTED_DROP: dict[Kind, str] = {
    "rejected": "wrong_answer",
    "duplicate": "duplicate",
    "near_duplicate": "near_duplicate",
    "holdout_lookalike": "contaminated",
    "hedged": "hedging",
    "failed": "teacher_no_answer",
}
"""The drop reason each kind of noise should get."""
CATEGORIES = ("arithmetic", "word problems", "geometry", "probability")
VOCABULARY_SIZE = 4_000
STEP_STOCK = 20_000


# moto in a helper process ------------------------------------------------------------------------

_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/")
_AWS_HOSTS = {"s3": "s3.amazonaws.com", "dynamodb": f"dynamodb.{REGION}.amazonaws.com"}


def _moto_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """One request to 127.0.0.1, answered by moto as if it had been sent to AWS."""
    from botocore.awsrequest import AWSPreparedRequest
    from botocore.compat import HTTPHeaders
    from moto.core.models import botocore_stubber
    from werkzeug.wrappers import Request, Response

    request = Request(environ)
    scope = _CREDENTIAL_SCOPE.search(request.headers.get("Authorization", ""))
    host = _AWS_HOSTS.get(scope.group(1)) if scope else None
    if host is None:
        return Response("only signed S3 and DynamoDB requests are served", 400)(environ, start_response)
    headers = HTTPHeaders()
    for name, value in request.headers.items():
        headers[name] = value
    del headers["Host"]
    headers["Host"] = host
    path = environ.get("REQUEST_URI") or environ.get("RAW_URI") or request.full_path
    prepared = AWSPreparedRequest(
        method=request.method,
        url=f"https://{host}{path}",
        headers=headers,
        body=request.get_data(),
        stream_output=False,
    )
    answer = botocore_stubber.process_request(prepared)
    if answer is None:
        return Response(f"moto serves nothing at {prepared.url}", 404)(environ, start_response)
    status, response_headers, body = answer
    return Response(body, status, dict(response_headers))(environ, start_response)


def serve_moto(directory: str, port: Connection) -> None:
    """The helper process: S3 and DynamoDB on a free loopback port, sent back through `port`."""
    tempfile.tempdir = directory  # moto spills large objects to temporary files: keep them in ours
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # not one line per request
    from moto import mock_aws
    from werkzeug.serving import make_server

    mock_aws().start()
    server = make_server("127.0.0.1", 0, _moto_app, threaded=True)
    port.send(server.server_port)
    port.close()
    server.serve_forever()


@dataclass(frozen=True)
class Endpoint:
    """The helper's address, and boto3 clients for it with dummy credentials."""

    url: str

    def _options(self) -> dict[str, Any]:
        from botocore.config import Config

        return {
            "region_name": REGION,
            "endpoint_url": self.url,
            "aws_access_key_id": "bench",
            "aws_secret_access_key": "bench",
            "config": Config(s3={"addressing_style": "path"}, retries={"mode": "standard"}),
        }

    def s3(self) -> S3Client:
        import boto3

        return boto3.client("s3", **self._options())

    def dynamodb(self) -> DynamoDBClient:
        import boto3

        return boto3.client("dynamodb", **self._options())


@contextmanager
def moto_server(directory: Path) -> Iterator[Endpoint]:
    """moto in a helper process for the block; stopped at the end, whatever ends it."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    helper = context.Process(target=serve_moto, args=(str(directory), send), name="moto", daemon=True)
    helper.start()
    send.close()
    try:
        if not receive.poll(60):
            raise RuntimeError("moto's helper process did not start within 60 s")
        yield Endpoint(f"http://127.0.0.1:{receive.recv()}")
    finally:
        receive.close()
        helper.terminate()
        helper.join(10)
        if helper.is_alive():
            helper.kill()
            helper.join()


# The synthetic run ------------------------------------------------------------------------------


def vocabulary() -> list[str]:
    """Lower-case words of 4-10 letters that are one token each for the student: mostly English, some
    other languages' and some word pieces, as the tokenizer's vocabulary has them."""
    from synthtune.tokens import encoding_for

    encoding = encoding_for(BENCH_CONFIG.student_model)
    words: list[str] = []
    token = 0
    while len(words) < VOCABULARY_SIZE:
        piece = encoding.decode_single_token_bytes(token)
        if re.fullmatch(rb" [a-z]{4,10}", piece):
            words.append(piece.decode().strip())
        token += 1
    return words


class QuestionBank:
    """Each question, and each line's kind of noise, derives from the seed and its index alone, so a
    duplicate of line 5 at line 900,000 needs nothing remembered from line 5."""

    def __init__(self, seed: int, words: Sequence[str]) -> None:
        self.seed = seed
        self.words = words
        # Reasoning is drawn from a fixed stock of steps (the gates read only its length and wording):
        # drawing 200 words per line would make writing a million lines take ten minutes.
        rng = self._rng(0, 0)
        self.steps = [
            " ".join(self._sentence(rng, 23, 33)).capitalize()
            + f" {rng.randint(2, 999)} × {rng.randint(2, 99)}"
            for _ in range(STEP_STOCK)
        ]

    def _rng(self, stream: int, index: int) -> random.Random:
        return random.Random((self.seed * 7 + stream) * 10_000_019 + index)

    def _sentence(self, rng: random.Random, low: int, high: int) -> list[str]:
        words = rng.choices(self.words, k=rng.randint(low, high))
        for _ in range(2):
            words.insert(rng.randrange(len(words)), str(rng.randint(2, 9_999)))
        return words

    def question(self, index: int) -> str:
        words = self._sentence(self._rng(1, index), 28, 58)
        return " ".join(words).capitalize() + "?"

    def holdout_question(self, index: int) -> str:
        words = self._sentence(self._rng(2, index), 28, 58)
        return " ".join(words).capitalize() + "?"

    def kind(self, index: int) -> Kind:
        draw = self._rng(3, index).random()
        for kind, share in NOISE.items():
            if draw < share:
                return kind
            draw -= share
        return "verified"


def _reasoning(rng: random.Random, bank: QuestionBank, result: int) -> list[str]:
    """4-8 steps of 25-35 words with numbers, 120-240 words in all: about 150-300 of the student's tokens."""
    count = rng.randint(4, 8)
    steps = [
        f"{step}, which gives {rng.randint(2, 99_999)}." for step in rng.choices(bank.steps, k=count - 1)
    ]
    return [*steps, f"{rng.choice(bank.steps)}, so the answer is {result}."]


def _earlier_kept(bank: QuestionBank, index: int, rng: random.Random) -> int | None:
    """An earlier line's index whose question was kept, so that the copy is the one dropped."""
    for _ in range(20 if index else 0):
        earlier = rng.randrange(index)
        if bank.kind(earlier) == "verified":
            return earlier
    return None


def synthetic_answer(
    bank: QuestionBank, index: int, rng: random.Random, teacher: str
) -> tuple[Kind, GeneratedAnswer]:
    """The shard line at `index`: its planted kind and the answer."""
    kind = bank.kind(index)
    question = bank.question(index)
    if kind in ("duplicate", "near_duplicate"):
        earlier = _earlier_kept(bank, index, rng)
        if earlier is None:
            kind = "verified"
        else:
            question = bank.question(earlier)
            if kind == "near_duplicate":
                words = question.split()
                words[rng.randrange(1, len(words) - 1)] = rng.choice(bank.words)
                question = " ".join(words)
    elif kind == "holdout_lookalike":
        held_out = bank.holdout_question(rng.randrange(HOLDOUT_PROBLEMS))
        question = f"Read this carefully. {held_out} Give the answer as a number."
    result = rng.randint(2, 999_999)
    usage = Usage(requests=1, input_tokens=rng.randint(180, 320), output_tokens=rng.randint(160, 330))
    fields: dict[str, Any] = {
        "problem_id": f"bench-{index:07d}",
        "split": "validation" if rng.random() < VALIDATION_SHARE else "train",
        "category": rng.choice(CATEGORIES),
        "question": question,
        "reference": str(result),
        "status": "verified",
        "steps": _reasoning(rng, bank, result),
        "final_answer": str(result),
        "grade_method": "numeric",
        "finish_reason": "stop",
        "sample_answers": [str(result)],
        "agreement": 1.0,
        "calls": [call_cost("solve", teacher, usage)],
        "usage": {teacher: usage},
    }
    if kind == "rejected":
        fields |= {
            "status": "rejected",
            "final_answer": str(result + rng.randint(1, 99)),
            "grade_method": "mismatch",
        }
    elif kind == "hedged":
        fields |= {
            "status": "unverified",
            "reference": None,
            "final_answer": "I don't know",
            "grade_method": None,
        }
    elif kind == "failed":
        fields |= {
            "status": "failed",
            "failure": "no_answer",
            "steps": [],
            "final_answer": None,
            "grade_method": None,
            "sample_answers": [None],
            "agreement": None,
        }
    return kind, GeneratedAnswer(**fields)


@dataclass(frozen=True)
class SyntheticRun:
    task: AssembleInput
    examples: int
    input_bytes: int
    """The shards' answer files, what Assemble reads."""
    planted: dict[str, int]
    seconds: float


def create_resources(endpoint: Endpoint) -> None:
    """The data bucket, and the runs table keyed as template.yaml's RunsTable."""
    from synthtune_cli.template import load_template

    table = load_template()["Resources"]["RunsTable"]["Properties"]
    endpoint.s3().create_bucket(Bucket=BUCKET)
    endpoint.dynamodb().create_table(
        TableName=TABLE,
        KeySchema=table["KeySchema"],
        AttributeDefinitions=table["AttributeDefinitions"],
        BillingMode="PAY_PER_REQUEST",
    )


def write_synthetic_run(endpoint_url: str, examples: int, shard_size: int, seed: int) -> SyntheticRun:
    """The run Generate would leave: shard answer files, the manifest, the holdout file."""
    started = time.perf_counter()
    endpoint = Endpoint(endpoint_url)
    create_resources(endpoint)
    s3 = endpoint.s3()
    layout = RunLayout(RUN_ID)
    bank = QuestionBank(seed, vocabulary())
    rng = random.Random(seed)
    teacher = BENCH_CONFIG.teacher_model
    planted: Counter[str] = Counter()
    splits: Counter[str] = Counter()
    shards: list[ShardRef] = []
    input_bytes = 0
    for shard, start in enumerate(range(0, examples, shard_size)):
        body = io.BytesIO()
        for index in range(start, min(start + shard_size, examples)):
            kind, answer = synthetic_answer(bank, index, rng, teacher)
            planted[kind] += 1
            splits[answer.split] += 1
            body.write(answer.model_dump_json().encode() + b"\n")
        s3.put_object(Bucket=BUCKET, Key=layout.shard_output(shard), Body=body.getvalue())
        input_bytes += body.tell()
        shards.append(ShardRef(index=shard, problem_count=min(shard_size, examples - start)))
    s3.put_object(
        Bucket=BUCKET, Key=layout.manifest, Body=json.dumps([s.model_dump() for s in shards]).encode()
    )
    holdout = io.BytesIO()
    for index in range(HOLDOUT_PROBLEMS):
        problem = Problem(
            id=f"holdout-{index:04d}", question=bank.holdout_question(index), answer="1", split="holdout"
        )
        holdout.write(problem.model_dump_json().encode() + b"\n")
    s3.put_object(Bucket=BUCKET, Key=layout.holdout, Body=holdout.getvalue())

    problem_set = S3Location(bucket=BUCKET, key="problem-sets/bench-assembly.jsonl")
    run = RunRef(
        run_id=RUN_ID,
        bucket=BUCKET,
        problem_set=problem_set,
        config=BENCH_CONFIG.model_copy(update={"shard_size": shard_size}),
    )
    plan = GenerationPlan(
        manifest_key=layout.manifest,
        shard_count=len(shards),
        problem_count=examples,
        splits=SplitCounts(train=splits["train"], validation=splits["validation"], holdout=HOLDOUT_PROBLEMS),
    )
    return SyntheticRun(
        task=AssembleInput(run=run, generation=plan),
        examples=examples,
        input_bytes=input_bytes,
        planted=dict(planted),
        seconds=time.perf_counter() - started,
    )


# The measured process ---------------------------------------------------------------------------


def _rss_bytes() -> int:
    """This process's resident set now (Linux); its peak so far elsewhere."""
    try:
        resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def _directory_bytes(directory: Path) -> int:
    total = 0
    for root, _, files in os.walk(directory):
        for name in files:
            with suppress(FileNotFoundError):  # deleted between the listing and the stat
                total += os.stat(os.path.join(root, name)).st_size
    return total


class _Sampler(threading.Thread):
    """Every `interval` seconds: the work directory's size, and with tracemalloc the largest snapshot."""

    def __init__(self, directory: Path, interval: float = 0.5, snapshot_every: float | None = None) -> None:
        super().__init__(name="sampler", daemon=True)
        self._directory = directory
        self._interval = interval
        self._snapshot_every = snapshot_every
        self._done = threading.Event()
        self.peak_disk_bytes = 0
        self.snapshot: tracemalloc.Snapshot | None = None
        self._snapshot_size = 0

    def run(self) -> None:
        last_snapshot = time.monotonic()
        while not self._done.is_set():
            self.sample()
            if self._snapshot_every is not None and time.monotonic() - last_snapshot >= self._snapshot_every:
                size = tracemalloc.get_traced_memory()[0]
                if size >= self._snapshot_size:
                    self.snapshot, self._snapshot_size = tracemalloc.take_snapshot(), size
                last_snapshot = time.monotonic()
            self._done.wait(self._interval)

    def sample(self) -> None:
        self.peak_disk_bytes = max(self.peak_disk_bytes, _directory_bytes(self._directory))

    def stop(self) -> None:
        self._done.set()
        self.join()


@dataclass(frozen=True)
class Measurement:
    examples: int
    seconds: float
    input_bytes: int
    output_bytes: int
    baseline_rss_bytes: int
    """After the imports, before the call."""
    peak_rss_bytes: int
    peak_disk_bytes: int
    """The work directory, where the duplicate index lives, at its largest."""
    train: int
    validation: int
    dropped: dict[str, int]
    considered: int
    accounted: bool
    mean_example_tokens: float | None
    traced_peak_bytes: int | None = None
    top_allocations: list[str] = field(default_factory=list)
    """With tracemalloc: the largest allocation sites in the biggest snapshot taken during the call."""

    @property
    def megabytes_per_second(self) -> float:
        return self.input_bytes / MB / self.seconds

    @property
    def examples_per_second(self) -> float:
        return self.examples / self.seconds

    @property
    def growth_bytes(self) -> int:
        return self.peak_rss_bytes - self.baseline_rss_bytes

    @property
    def balanced(self) -> bool:
        return self.train + self.validation + sum(self.dropped.values()) == self.examples


def assemble_once(endpoint_url: str, run: SyntheticRun, workdir: str, *, trace: bool) -> Measurement:
    """Assemble the run once; meant for a fresh process, whose peak RSS is then this call's own."""
    from synthtune.records.artifacts import ArtifactStore
    from synthtune.records.runs import RunStore
    from synthtune.stages.assemble.assemble import assemble_dataset
    from synthtune.stages.assemble.card import DatasetCard

    endpoint = Endpoint(endpoint_url)
    s3 = endpoint.s3()
    data, runs = ArtifactStore(BUCKET, s3), RunStore(TABLE, endpoint.dynamodb())
    layout = RunLayout(RUN_ID)
    directory = Path(workdir)
    sampler = _Sampler(directory, snapshot_every=5.0 if trace else None)
    baseline = _rss_bytes()
    sampler.start()
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    try:
        summary = assemble_dataset(run.task, data=data, runs=runs, formats=dataset_format, workdir=directory)
        seconds = time.perf_counter() - started
        traced_peak = tracemalloc.get_traced_memory()[1] if trace else None
    finally:
        sampler.stop()
        tracemalloc.stop()
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB

    card = DatasetCard.model_validate(data.read_json(layout.dataset_card))
    paginator = s3.get_paginator("list_objects_v2")
    output_bytes = sum(
        entry["Size"]
        for page in paginator.paginate(Bucket=BUCKET, Prefix=layout.dataset_prefix)
        for entry in page.get("Contents", [])
    )
    tokens = card.format_checks[0].tokens
    top = []
    if sampler.snapshot is not None:
        for stat in sampler.snapshot.statistics("lineno")[:10]:
            frame = stat.traceback[0]
            top.append(f"{stat.size / MIB:8.1f} MiB {stat.count:>9,} blocks  {frame.filename}:{frame.lineno}")
    return Measurement(
        examples=run.examples,
        seconds=seconds,
        input_bytes=run.input_bytes,
        output_bytes=output_bytes,
        baseline_rss_bytes=baseline,
        peak_rss_bytes=peak_rss,
        peak_disk_bytes=sampler.peak_disk_bytes,
        train=summary.train_examples,
        validation=summary.validation_examples,
        dropped=summary.dropped,
        considered=card.considered,
        accounted=card.accounted,
        mean_example_tokens=tokens.total / tokens.count if tokens.count else None,
        traced_peak_bytes=traced_peak,
        top_allocations=top,
    )


def _run_and_send(
    function: Callable[..., object], args: tuple[object, ...], kwargs: dict[str, object], result: Connection
) -> None:
    try:
        result.send((True, function(*args, **kwargs)))
    except BaseException:
        result.send((False, traceback.format_exc()))
    finally:
        result.close()


def in_fresh_process(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`function(*args, **kwargs)` in a process started for it (spawn: nothing inherited), ended with
    the call, or when the benchmark is interrupted. Its exception comes back as its traceback."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_run_and_send, args=(function, args, kwargs, send), name=function.__name__)
    child.start()
    send.close()
    try:
        try:
            succeeded, value = receive.recv()
        except EOFError:
            child.join(5)
            raise RuntimeError(
                f"{function.__name__} died in its process (exit code {child.exitcode})"
            ) from None
        if not succeeded:
            raise RuntimeError(f"{function.__name__} failed in its process:\n{value}")
        return value  # type: ignore[no-any-return]
    finally:
        receive.close()
        if child.is_alive():
            child.join(5)
        if child.is_alive():
            child.terminate()
            child.join()


def measure_size(
    examples: int, *, shard_size: int, seed: int, trace: bool
) -> tuple[SyntheticRun, Measurement]:
    """Write a run of `examples` answers and assemble it, each in a fresh process, against a fresh moto."""
    scratch = Path(tempfile.mkdtemp(prefix="synthtune-bench-assembly-"))
    try:
        moto_files, workdir = scratch / "moto", scratch / "work"
        moto_files.mkdir()
        workdir.mkdir()
        with moto_server(moto_files) as endpoint:
            run = in_fresh_process(write_synthetic_run, endpoint.url, examples, shard_size, seed)
            plan = run.task.generation
            _progress(
                f"  wrote {run.input_bytes / MB:,.1f} MB in {plan.shard_count:,} shards "
                f"({plan.splits.train:,} train, {plan.splits.validation:,} validation) in {run.seconds:.0f} s"
            )
            measurement = in_fresh_process(assemble_once, endpoint.url, run, str(workdir), trace=False)
            _progress(f"  assembled in {measurement.seconds:.1f} s")
            if trace:  # the same run again, its outputs overwritten
                traced = in_fresh_process(assemble_once, endpoint.url, run, str(workdir), trace=True)
                _progress(f"  assembled with tracemalloc in {traced.seconds:.1f} s")
                measurement = replace(
                    measurement,
                    traced_peak_bytes=traced.traced_peak_bytes,
                    top_allocations=traced.top_allocations,
                )
        return run, measurement
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# The report -------------------------------------------------------------------------------------

COLUMNS = (
    "examples",
    "input MB",
    "output MB",
    "seconds",
    "MB/s",
    "examples/s",
    "peak RSS MiB",
    "RSS growth over baseline MiB",
    "index on disk MiB",
)


def render_table(measurements: Sequence[Measurement]) -> str:
    traced = any(m.traced_peak_bytes is not None for m in measurements)
    header = [*COLUMNS, *(["Python heap peak MiB"] if traced else [])]
    rows = [header, ["---:"] * len(header)]
    for m in measurements:
        row = [
            f"{m.examples:,}",
            f"{m.input_bytes / MB:,.1f}",
            f"{m.output_bytes / MB:,.1f}",
            f"{m.seconds:,.1f}",
            f"{m.megabytes_per_second:.2f}",
            f"{m.examples_per_second:,.0f}",
            f"{m.peak_rss_bytes / MIB:,.0f}",
            f"{m.growth_bytes / MIB:,.0f}",
            f"{m.peak_disk_bytes / MIB:,.1f}",
        ]
        if traced:
            row.append("–" if m.traced_peak_bytes is None else f"{m.traced_peak_bytes / MIB:,.1f}")
        rows.append(row)
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def render_counts(run: SyntheticRun, m: Measurement) -> str:
    planted = {EXPECTED_DROP[kind]: count for kind, count in run.planted.items() if kind in EXPECTED_DROP}
    reasons = sorted(set(planted) | set(m.dropped))
    drops = ", ".join(
        f"{reason} {m.dropped.get(reason, 0):,} (planted {planted.get(reason, 0):,})" for reason in reasons
    )
    verdict = "yes" if m.balanced and m.accounted and m.considered == m.examples else "NO"
    total = m.train + m.validation + sum(m.dropped.values())
    return (
        f"- {m.examples:,}: train {m.train:,}, validation {m.validation:,}; dropped: {drops}; "
        f"train + validation + dropped = {total:,}, card accounted: {verdict}; "
        f"mean tokens per training example {m.mean_example_tokens or 0:,.0f}"
    )


def machine() -> str:
    return f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}."


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Measure the Assemble step's memory and throughput on synthetic runs of growing size, "
        "against moto served from a helper process on a loopback port.",
    )
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument(
        "--sizes",
        type=lambda text: [int(size.replace("_", "")) for size in text.split(",")],
        help="comma-separated numbers of answers (default: 10000,100000,1000000)",
    )
    sizes.add_argument(
        "--quick", action="store_true", help=f"a smoke run: {', '.join(map(str, QUICK_SIZES))}"
    )
    parser.add_argument(
        "--shard-size", type=int, default=SHARD_SIZE, help=f"answers per shard ({SHARD_SIZE})"
    )
    parser.add_argument("--seed", type=int, default=0, help="changes the synthetic answers (0)")
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="a second, slower pass per size with tracemalloc: the Python heap's peak and its largest sites",
    )
    return parser


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # runs the cleanup, as Ctrl-C does


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    sizes: list[int] = list(QUICK_SIZES if args.quick else args.sizes or DEFAULT_SIZES)
    if any(size < 1 for size in sizes):
        parser.error("--sizes must be positive")
    if not 1 <= args.shard_size <= 1000:
        parser.error("--shard-size must be between 1 and 1000 (RunConfig.shard_size)")
    signal.signal(signal.SIGTERM, _stop_on_sigterm)

    started = time.perf_counter()
    results = []
    for number, size in enumerate(sizes, 1):
        _progress(f"[{number}/{len(sizes)}] {size:,} answers")
        size_started = time.perf_counter()
        results.append(measure_size(size, shard_size=args.shard_size, seed=args.seed, trace=args.tracemalloc))
        _progress(f"  {size:,} done in {time.perf_counter() - size_started:.0f} s")
    measurements = [m for _, m in results]
    print(render_table(measurements))
    print()
    print("Dropped, by reason (what the generator planted in brackets):")
    for run, m in results:
        print(render_counts(run, m))
    for m in measurements:
        if m.top_allocations:
            print(
                f"\nLargest allocation sites at {m.examples:,} "
                "(the biggest tracemalloc snapshot taken during the call):"
            )
            print("\n".join(m.top_allocations))
    print()
    print(
        "peak RSS: the fresh assembling process's ru_maxrss; growth: that minus its RSS after the imports, "
        "before the call (the tokenizer, loaded on the first example, is part of the growth). index on "
        "disk: the work directory at its largest, sampled every 0.5 s. MB/s: input MB over seconds."
    )
    print(machine())
    _progress(f"{len(sizes)} size(s) in {time.perf_counter() - started:.0f} s.")
    failed = [
        m.examples for m in measurements if not (m.balanced and m.accounted and m.considered == m.examples)
    ]
    if failed:
        print(f"Accounting failed at {', '.join(f'{n:,}' for n in failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
