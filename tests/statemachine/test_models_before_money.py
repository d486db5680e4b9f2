"""Models checked before money: a model the run's endpoint does not serve, or a student its provider does
not fine-tune, fails the run in Prepare, and the emulator's request log shows nothing was paid for — no
chat completion, no Converse request, no file, job or batch: at most a free lookup of each model."""

from __future__ import annotations

from typing import Any

import pytest

from synthtune_cli.emulator import OpenAIEmulator
from synthtune_cli.offline import OfflineStack
from tests.support import FAST_CONFIG, OPENAI_MODELS, execute, sample_rows

SMALL_SET = sample_rows(per_category=8)
LOOKUPS = {"GET"}
"""GET /v1/models/{id} and /v1/models, GET /foundation-models/{id} and /foundation-models: free reads."""


@pytest.mark.parametrize(
    ("config", "error", "says", "looked_up"),
    [
        (
            {**OPENAI_MODELS, "teacher_model": "gpt-9-ultra"},
            "InvalidConfig",
            "teacher_model 'gpt-9-ultra': http://127.0.0.1:",
            ["/v1/models/gpt-9-ultra", "/v1/models"],
        ),
        (
            {"teacher_model": "bedrock/us.amazon.nova-3-lite-v1:0"},
            "InvalidConfig",
            "does not serve it; the closest names it offers: 'bedrock/amazon.nova-2-lite-v1:0'",
            ["/foundation-models/amazon.nova-3-lite-v1:0", "/foundation-models"],
        ),
        (
            # Known to the catalog as a model OpenAI does not fine-tune: refused offline, nothing asked.
            {**OPENAI_MODELS, "student_model": "gpt-3.5-turbo"},
            "FineTuneUnavailable",
            "student_model 'gpt-3.5-turbo': OpenAI does not fine-tune it",
            [],
        ),
    ],
    ids=["unknown OpenAI teacher", "unknown Bedrock teacher", "student not fine-tunable"],
)
def test_a_refused_model_costs_nothing(
    stack: OfflineStack,
    emulator: OpenAIEmulator,
    config: dict[str, Any],
    error: str,
    says: str,
    looked_up: list[str],
) -> None:
    execution = execute(stack, SMALL_SET, config={**FAST_CONFIG, **config})

    assert execution.status == "FAILED"
    assert execution.description["error"] == error
    assert says in execution.description["cause"]
    run = execution.records["RUN"]
    assert (run["failed_state"], run["error"]) == ("Prepare", error)
    assert execution.entered("Generate") == 0
    # Counted at the emulator: nothing billed, nothing created, only the lookups.
    assert emulator.billed == []
    assert {request.method for request in emulator.requests} <= LOOKUPS
    assert [request.path for request in emulator.requests] == looked_up


def test_models_the_endpoint_serves_are_looked_up_once_each_before_the_first_paid_call(
    stack: OfflineStack, emulator: OpenAIEmulator
) -> None:
    execution = execute(stack, SMALL_SET, config={**FAST_CONFIG, **OPENAI_MODELS})

    assert execution.status == "SUCCEEDED", execution.description.get("cause")
    paths = [request.path for request in emulator.requests]
    first_paid = paths.index("/v1/chat/completions")
    assert paths[:first_paid] == [f"/v1/models/{model}" for model in OPENAI_MODELS.values()]
