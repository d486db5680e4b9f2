"""Fixtures for the OpenAI emulator's tests: a virtual clock, a small world of questions, SDK clients."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openai import OpenAI
from openai.types.fine_tuning import FineTuningJob

from synthtune_cli.clock import VirtualClock
from synthtune_cli.emulator import EmulatorServer, OpenAIEmulator
from tests.emulator.world import ARITHMETIC, CAPITALS, FINAL_STATUSES, SEED, START, RunJob


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


@pytest.fixture
def emulator(clock: VirtualClock) -> OpenAIEmulator:
    emulator = OpenAIEmulator(clock=clock, seed=SEED)
    emulator.add_knowledge([*ARITHMETIC, *CAPITALS])
    return emulator


@pytest.fixture
def client(emulator: OpenAIEmulator) -> OpenAI:
    # No SDK retries: they sleep in real time, and the tests want to see each error.
    return emulator.openai_client(max_retries=0)


@pytest.fixture
def server(emulator: OpenAIEmulator) -> Iterator[EmulatorServer]:
    with emulator.serve() as server:
        yield server


@pytest.fixture
def run_job(client: OpenAI, clock: VirtualClock) -> RunJob:
    """Upload `content`, start a job on `model` and step the clock until the job ends."""

    def run(content: bytes, model: str = "gpt-4.1-nano", **create: object) -> FineTuningJob:
        uploaded = client.files.create(file=("train.jsonl", content), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(model=model, training_file=uploaded.id, **create)
        for _ in range(1000):
            if job.status in FINAL_STATUSES:
                return job
            clock.advance(30)
            job = client.fine_tuning.jobs.retrieve(job.id)
        raise AssertionError(f"job {job.id} still {job.status} after 1000 polls")

    return run
