"""`synthtune emulator`: serve the model-provider emulator (OpenAI and Bedrock) on a loopback port until
Ctrl-C."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import threading
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from synthtune_cli.clock import Clock, ScaledClock, WallClock
from synthtune_cli.emulator.emulator import OpenAIEmulator
from synthtune_cli.emulator.knobs import EmulatorKnobs
from synthtune_cli.emulator.knowledge import KnowledgeItem
from synthtune_cli.emulator.server import EmulatorServer, require_loopback
from synthtune_cli.emulator.state import DEFAULT_REGION

DEFAULT_PORT = 8787
# Column names other tools use for the same fields, so a problem set can be loaded as it is.
_FIELD_ALIASES = {
    "question": ("question", "problem", "prompt", "input"),
    "answer": ("answer", "reference", "reference_answer", "expected", "target", "output"),
    "category": ("category", "topic", "subject", "domain"),
}


def add_emulator_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="loopback address to listen on (default 127.0.0.1)"
    )
    parser.add_argument(
        "--knowledge",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="questions the simulated models know: JSONL, a JSON array or CSV with a header "
        "(question, answer, category); repeatable",
    )
    parser.add_argument(
        "--time-scale", type=float, default=1.0, help="emulated seconds per real second (default 1)"
    )
    parser.add_argument(
        "--latency", type=float, default=0.0, metavar="S", help="seconds added to each request"
    )
    parser.add_argument(
        "--rpm", type=int, default=None, metavar="N", help="chat (and, apart, Converse) requests per minute"
    )
    parser.add_argument(
        "--tpm", type=int, default=None, metavar="N", help="chat (and, apart, Converse) tokens per minute"
    )
    parser.add_argument(
        "--error-rate", type=float, default=0.0, metavar="F", help="share of requests that fail with 500"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every simulated choice (default 0)")
    parser.add_argument(
        "--region",
        default=DEFAULT_REGION,
        help=f"the AWS region in Bedrock's ARNs and of the S3 client jobs use (default {DEFAULT_REGION})",
    )


def run_emulator(args: argparse.Namespace) -> int:
    try:
        require_loopback(args.host)
        knobs = EmulatorKnobs(
            latency_seconds=args.latency,
            requests_per_minute=args.rpm,
            tokens_per_minute=args.tpm,
            error_rate=args.error_rate,
        )
        clock: Clock = WallClock() if args.time_scale == 1 else ScaledClock(args.time_scale)
        items = [item for path in args.knowledge for item in read_knowledge_file(path)]
        emulator = OpenAIEmulator(clock=clock, knobs=knobs, seed=args.seed, region=args.region)
    except (ValueError, OSError) as error:
        print(f"synthtune emulator: {error}", file=sys.stderr)
        return 2
    emulator.add_knowledge(items)
    try:
        server = emulator.serve(args.host, args.port, log_requests=True)
    except OSError as error:
        print(f"synthtune emulator: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 2
    with server:
        print(f"Model-provider emulator (simulated models) listening on {server.root_url}")
        print(f"  {len(items)} knowledge items, seed {args.seed}, time scale {args.time_scale:g}")
        for line in connection_lines(server, args.region):
            print(f"  {line}")
        print("  Ctrl-C to stop", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopping", file=sys.stderr)
    return 0


def connection_lines(server: EmulatorServer, region: str) -> list[str]:
    """How to point each SDK at the server: the environment the OpenAI SDK and boto3 read."""
    return [
        f"point the OpenAI SDK at it: OPENAI_BASE_URL={server.base_url} OPENAI_API_KEY=anything",
        f"point boto3's bedrock and bedrock-runtime clients at it (region {region}):",
        *(f"  {name}={value}" for name, value in server.bedrock_environment().items()),
        "  (customisation jobs read and write S3 with boto3's usual settings: "
        "set AWS_ENDPOINT_URL_S3 to a moto server to stay offline)",
        f"admin: {server.root_url}/_emulator/state",
    ]


def read_knowledge_file(path: Path) -> list[KnowledgeItem]:
    """Knowledge items from a JSONL file, a JSON array (or an object holding one) or a CSV with a header."""
    text = path.read_text(encoding="utf-8-sig")
    records: list[tuple[str, Any]]
    if path.suffix.lower() == ".csv":
        rows = csv.DictReader(io.StringIO(text))
        records = [(f"{path}:{index}", row) for index, row in enumerate(rows, start=2)]
    elif text.lstrip().startswith(("[", "{")) and _is_one_json_document(text):
        document = json.loads(text)
        if isinstance(document, dict):
            # One JSONL line, or an object that wraps the list ({"problems": [...]}).
            is_item = any(alias in document for alias in _FIELD_ALIASES["question"])
            lists = [value for value in document.values() if isinstance(value, list)]
            document = [document] if is_item or not lists else lists[0]
        if not isinstance(document, list):
            raise ValueError(f"{path}: expected a JSON array of knowledge items")
        records = [(f"{path}: item {index}", record) for index, record in enumerate(document)]
    else:
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    records.append((f"{path}:{number}", json.loads(line)))
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path}:{number}: not valid JSON ({error.msg})") from error
    return [_knowledge_item(where, record) for where, record in records]


def _is_one_json_document(text: str) -> bool:
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return False
    return True


def _knowledge_item(where: str, record: Any) -> KnowledgeItem:
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected an object with question, answer and category")
    lowered = {str(key).strip().lower(): value for key, value in record.items()}
    fields: dict[str, str | None] = {}
    for name, aliases in _FIELD_ALIASES.items():
        value = next((lowered[alias] for alias in aliases if lowered.get(alias) not in (None, "")), None)
        fields[name] = None if value is None else str(value).strip()
    try:
        return KnowledgeItem.model_validate(fields)
    except ValidationError as error:
        raise ValueError(f"{where}: no question (expected a 'question' field)") from error
