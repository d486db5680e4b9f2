"""Fixtures shared by the integration and state-machine tests: the OpenAI emulator on loopback and the
offline stack (template.yaml on moto, handlers in-process), both on one virtual clock."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from synthtune.contracts.problems import parse_problem_set
from synthtune_cli.clock import VirtualClock
from synthtune_cli.emulator import KnowledgeItem, OpenAIEmulator
from synthtune_cli.offline import OfflineStack
from tests.support import SAMPLE_PROBLEM_SET


@pytest.fixture(autouse=True)
def _offline_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Belt and braces: nothing in a test may reach real AWS or OpenAI.
    for name in ("AWS_PROFILE", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (taken from the kernel, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(start=1_800_000_000.0)


@pytest.fixture
def emulator(clock: VirtualClock) -> OpenAIEmulator:
    emulator = OpenAIEmulator(clock=clock)
    problems = parse_problem_set(SAMPLE_PROBLEM_SET.read_bytes().splitlines(), "sample", "jsonl")
    emulator.add_knowledge(
        KnowledgeItem(question=p.question, answer=p.answer, category=p.category) for p in problems
    )
    return emulator


@pytest.fixture
def stack(emulator: OpenAIEmulator, clock: VirtualClock) -> Iterator[OfflineStack]:
    with (
        emulator.serve() as server,
        OfflineStack(
            openai_api_key="sk-test",
            parameters={"OpenAIBaseUrl": server.base_url},
            clock=clock,
            # The SDK's own retries would hide the faults the workflow's Retry must handle; boto3 reaches
            # the emulator's Bedrock through the standard endpoint variables.
            # The emulator answers for both providers, and the run records that its models are simulated.
            extra_environment={
                "OPENAI_MAX_RETRIES": "0",
                "SIMULATED_PROVIDERS": "openai,bedrock",
                **server.bedrock_environment(),
            },
        ) as stack,
    ):
        yield stack
