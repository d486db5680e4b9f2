"""The emulator on a loopback port: the SDK over real HTTP, the admin endpoints, concurrency."""

from __future__ import annotations

import threading

import httpx2
import openai
import pytest
from openai import OpenAI

from synthtune.prompts import parse_final_answer
from synthtune_cli.clock import VirtualClock, WallClock
from synthtune_cli.emulator import EmulatorServer, OpenAIEmulator
from tests.emulator.world import ARITHMETIC, START, training_jsonl


def admin_url(server: EmulatorServer, path: str) -> str:
    return server.base_url.removesuffix("/v1") + "/_emulator/" + path


def test_sdk_over_the_loopback_server(server: EmulatorServer, emulator: OpenAIEmulator) -> None:
    assert server.base_url == f"http://127.0.0.1:{server.port}/v1" and server.port > 0
    client = OpenAI(base_url=server.base_url, api_key="anything", max_retries=0)

    completion = client.chat.completions.create(
        model="gpt-4.1", temperature=0, messages=[{"role": "user", "content": ARITHMETIC[3].question}]
    )
    uploaded = client.files.create(file=("t.jsonl", training_jsonl([("q", "a")] * 10)), purpose="fine-tune")

    in_process = emulator.openai_client().chat.completions.create(
        model="gpt-4.1", temperature=0, messages=[{"role": "user", "content": ARITHMETIC[3].question}]
    )
    assert completion.choices[0].message.content == in_process.choices[0].message.content
    assert client.files.content(uploaded.id).content == emulator.files[uploaded.id].content
    assert httpx2.get(server.base_url + "/models").status_code == 401


def test_admin_state_knobs_clock_knowledge_errors_reset(
    server: EmulatorServer, emulator: OpenAIEmulator
) -> None:
    http = httpx2.Client()
    client = OpenAI(base_url=server.base_url, api_key="anything", max_retries=0)
    client.files.create(file=("a.jsonl", b"x"), purpose="fine-tune")

    state = http.get(admin_url(server, "state")).json()
    assert state["clock"] == {"now": START, "type": "VirtualClock", "advanceable": True}
    assert state["counts"]["files"] == 1 and state["counts"]["knowledge"] == len(ARITHMETIC) + 8

    knobs = http.post(admin_url(server, "knobs"), json={"latency_seconds": 1.5, "requests_per_minute": 100})
    assert knobs.status_code == 200 and emulator.knobs.latency_seconds == 1.5
    assert emulator.knobs.requests_per_minute == 100 and emulator.knobs.queue_seconds == 60
    assert http.post(admin_url(server, "knobs"), json={"error_rate": 5}).status_code == 400

    advanced = http.post(admin_url(server, "clock/advance"), json={"seconds": 90})
    assert advanced.json() == {"now": START + 90} and emulator.clock.now() == START + 90
    assert http.post(admin_url(server, "clock/advance"), json={"seconds": -1}).status_code == 400

    question = "What colour is the emulator's favourite teapot?"
    added = http.post(
        admin_url(server, "knowledge"), json=[{"question": question, "answer": "Teal", "category": "x"}]
    )
    assert added.json()["added"] == 1
    reply = client.chat.completions.create(
        model="gpt-5", temperature=0, messages=[{"role": "user", "content": question}]
    )
    assert parse_final_answer(reply.choices[0].message.content) == "Teal"
    assert http.post(admin_url(server, "knowledge"), json=[{"answer": "no question"}]).status_code == 400

    injected = http.post(
        admin_url(server, "errors"), json={"count": 1, "status": 502, "path_prefix": "/v1/models"}
    )
    assert injected.json() == {"pending": [{"count": 1, "status": 502, "path_prefix": "/v1/models"}]}
    with pytest.raises(openai.APIStatusError) as error:
        client.models.list()
    assert error.value.status_code == 502
    assert client.models.list().data

    reset = http.post(admin_url(server, "reset")).json()
    assert reset["counts"]["files"] == 0 and reset["counts"]["knowledge"] > 0
    assert reset["knobs"]["latency_seconds"] == 0
    assert [request.path for request in emulator.requests] == ["/_emulator/reset"]
    http.post(admin_url(server, "reset"), json={"knowledge": True})
    assert http.get(admin_url(server, "state")).json()["counts"]["knowledge"] == 0


def test_admin_clock_advance_needs_a_virtual_clock() -> None:
    emulator = OpenAIEmulator(clock=WallClock())
    with emulator.serve() as server:
        response = httpx2.post(admin_url(server, "clock/advance"), json={"seconds": 1})

    assert response.status_code == 409
    assert "VirtualClock" in response.json()["error"]["message"]


def test_concurrent_requests_are_all_served_and_deterministic(
    server: EmulatorServer, emulator: OpenAIEmulator
) -> None:
    client = OpenAI(base_url=server.base_url, api_key="anything", max_retries=0)
    questions = [item.question for item in ARITHMETIC[:40]]
    results: dict[str, str | None] = {}
    lock = threading.Lock()

    def worker(batch: list[str]) -> None:
        for question in batch:
            reply = client.chat.completions.create(
                model="gpt-4.1-mini", temperature=0, messages=[{"role": "user", "content": question}]
            )
            with lock:
                results[question] = reply.choices[0].message.content

    threads = [threading.Thread(target=worker, args=(questions[index::8],)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    sequential = emulator.openai_client()
    for question in questions:
        again = sequential.chat.completions.create(
            model="gpt-4.1-mini", temperature=0, messages=[{"role": "user", "content": question}]
        )
        assert results[question] == again.choices[0].message.content
    assert [request.status for request in emulator.requests] == [200] * 80


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "example.com", "::"])
def test_server_refuses_a_non_loopback_host(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        OpenAIEmulator(clock=VirtualClock()).serve(host=host)


def test_localhost_name_is_accepted() -> None:
    with OpenAIEmulator(clock=VirtualClock()).serve(host="localhost") as server:
        assert httpx2.get(admin_url(server, "state")).status_code == 200
