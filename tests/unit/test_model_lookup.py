"""Each model looked up where the run will call it, for free, before anything is spent: found or not,
shut down or not, and for one that is not served, the names the endpoint offers that come closest."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from synthtune.contracts.config import RunConfig
from synthtune.contracts.errors import FineTuneUnavailable, InvalidConfig, ModelRequestRejected, ModelRetired
from synthtune.providers.bedrock import BedrockProvider
from synthtune.providers.bedrock.client import BedrockEndpoint
from synthtune.providers.openai.models import OpenAIModels
from synthtune.providers.ports import LiveModelStatus, ModelRole
from synthtune.providers.registry import ProviderRegistry
from synthtune_cli.emulator import OpenAIEmulator
from synthtune_cli.providers import OpenAIEndpoint, local_providers
from tests.support import OPENAI_MODELS


@pytest.fixture
def emulator() -> OpenAIEmulator:
    return OpenAIEmulator()


@pytest.fixture
def registry(emulator: OpenAIEmulator) -> Iterator[ProviderRegistry]:
    with emulator.serve() as server:
        yield local_providers(
            openai=OpenAIEndpoint(server.base_url, lambda: "sk-test"),
            bedrock=BedrockEndpoint(server.root_url, "us-east-1", credentials=("test", "test")),
        )


def test_an_unknown_openai_model_is_named_with_the_endpoint_and_the_closest_names(
    registry: ProviderRegistry, emulator: OpenAIEmulator
) -> None:
    with pytest.raises(InvalidConfig) as refused:
        registry.confirm_models(RunConfig.model_validate({**OPENAI_MODELS, "teacher_model": "gpt-4.1-nan"}))
    message = str(refused.value)
    assert message.startswith("teacher_model 'gpt-4.1-nan': http://127.0.0.1:")
    assert "/v1 does not serve it; the closest names it offers: 'gpt-4.1-nano', 'gpt-4.1-mini'" in message
    # A lookup and a listing: nothing generated, nothing billed.
    assert [(request.method, request.path) for request in emulator.requests] == [
        ("GET", "/v1/models/gpt-4.1-nan"),
        ("GET", "/v1/models"),
    ]
    assert emulator.billed == []


def test_an_unknown_bedrock_model_is_named_with_the_endpoint_and_the_closest_names(
    registry: ProviderRegistry, emulator: OpenAIEmulator
) -> None:
    with pytest.raises(InvalidConfig) as refused:
        registry.confirm_models(RunConfig(teacher_model="bedrock/us.amazon.nova-3-lite-v1:0"))
    message = str(refused.value)
    assert (
        "teacher_model 'bedrock/us.amazon.nova-3-lite-v1:0': the Bedrock endpoint http://127.0.0.1:"
        in message
    )
    assert "does not serve it; the closest names it offers: 'bedrock/amazon.nova-2-lite-v1:0'" in message
    assert [request.path for request in emulator.requests] == [
        "/foundation-models/amazon.nova-3-lite-v1:0",
        "/foundation-models",
    ]


def test_known_models_are_confirmed_with_what_their_endpoint_says(registry: ProviderRegistry) -> None:
    confirmed = registry.confirm_models(RunConfig())
    assert set(confirmed) == {"teacher", "student", "judge"}
    assert confirmed["student"].detail == "lifecycle ACTIVE; inference ON_DEMAND; fine-tunable"
    openai = registry.confirm_models(RunConfig.model_validate(OPENAI_MODELS))
    # An OpenAI-compatible server's shutdown_date is reported, not enforced: it still serves the model.
    assert openai["student"].detail.endswith("shutdown_date 2026-10-23")


def test_a_model_the_endpoint_lists_but_cannot_retrieve_is_served(emulator: OpenAIEmulator) -> None:
    # Some OpenAI-compatible servers list their models but answer 404 to GET /models/{id}.
    emulator.inject_errors(1, status=404, path_prefix="/v1/models/")
    models = OpenAIModels(lambda: emulator.openai_client(max_retries=0), "http://openai-emulator.invalid/v1")
    status = models.live_status("gpt-4.1-mini", "judge")
    assert (status.found, status.available, status.detail) == (
        True,
        True,
        "listed by http://openai-emulator.invalid/v1",
    )


class _Says:
    """A provider whose endpoint describes the model of role `only` (every model, if None) as `status`,
    and serves the others."""

    name = "openai"
    batch_generation = True

    def __init__(self, status: LiveModelStatus, only: ModelRole | None = None) -> None:
        self._status = status
        self._only = only

    def models(self) -> _Says:
        return self

    def live_status(self, model: str, role: ModelRole) -> LiveModelStatus:
        if self._only not in (None, role):
            return LiveModelStatus(model=model, available=True, detail="served")
        return self._status.model_copy(update={"model": model})


def test_a_model_its_endpoint_shut_down_is_refused_by_role() -> None:
    gone = LiveModelStatus(
        model="", available=False, detail="shutdown_date 2026-10-23", endpoint="the OpenAI API"
    )
    config = RunConfig.model_validate(OPENAI_MODELS)
    everything_gone = ProviderRegistry({"openai": _Says(gone)})  # type: ignore[dict-item]
    with pytest.raises(
        ModelRetired,
        match=r"teacher_model 'gpt-4.1-2025-04-14': the OpenAI API no longer serves it \(shutdown_date",
    ):
        everything_gone.confirm_models(config)
    student_gone = ProviderRegistry({"openai": _Says(gone, only="student")})  # type: ignore[dict-item]
    with pytest.raises(FineTuneUnavailable, match=r"student_model 'gpt-4.1-nano-2025-04-14': the OpenAI API"):
        student_gone.confirm_models(config)


def test_an_arn_of_this_accounts_resources_is_not_looked_up(emulator: OpenAIEmulator) -> None:
    with emulator.serve() as server:
        provider = BedrockProvider(
            role_arn=None,
            read_text=lambda location: "",
            list_keys=lambda location: [],
            endpoint=BedrockEndpoint(server.root_url, "us-east-1", credentials=("test", "test")),
        )
        arn = "arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/abcdefghijkl"
        status = provider.models().live_status(f"bedrock/{arn}", "teacher")
    assert (status.found, status.available) == (True, True)
    assert emulator.requests == []


def _answering(status: int, message: str) -> OpenAIModels:
    import httpx2
    import openai

    def api(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, json={"error": {"message": message, "type": "invalid_request_error"}})

    client = openai.OpenAI(
        api_key="sk-test",
        base_url="http://openai.invalid/v1",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(api)),
    )
    return OpenAIModels(lambda: client, "http://openai.invalid/v1")


def test_a_key_that_may_not_read_models_is_not_refused_for_it() -> None:
    missing = "You have insufficient permissions for this operation. Missing scopes: api.model.read."
    restricted = _answering(401, missing)
    status = restricted.live_status("gpt-4.1-mini", "judge")
    assert (status.found, status.available) == (True, True)
    assert status.detail == "not looked up: the key may not read http://openai.invalid/v1's models"
    # A key that is wrong is: the run would fail at its first request.
    with pytest.raises(ModelRequestRejected, match="authentication failed"):
        _answering(401, "Incorrect API key provided.").live_status("gpt-4.1-mini", "judge")
