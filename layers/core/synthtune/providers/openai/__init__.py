"""OpenAI (and any OpenAI-compatible server, e.g. Azure OpenAI's v1 API): every port, over the openai SDK.

The SDK retries a failed request `max_retries` times with no idempotency key, which OpenAI's API does
not take anyway: harmless for a read, a second job or batch for a create whose reply was lost, a second
bill for a chat completion. So only reads keep the SDK's retries; chat requests and creates are sent
once (`with_options(max_retries=0)`) and retried by the engine or, through the step that first finds
what an earlier attempt created, by Step Functions.

`import openai` costs about a third of a second, so nothing here imports it at module level: a run that
uses no OpenAI model never pays for it, and never needs an OpenAI key.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING

from synthtune.providers.openai.batch import OpenAIBatches
from synthtune.providers.openai.chat import OpenAIChat
from synthtune.providers.openai.finetune import Download, OpenAIFineTuning
from synthtune.providers.openai.models import OpenAIModels
from synthtune.providers.openai.serving import OpenAIServing

if TYPE_CHECKING:
    from openai import OpenAI


class OpenAIProvider:
    name = "openai"
    batch_generation = True

    def __init__(
        self,
        *,
        api_key: Callable[[], str],
        base_url: str | None,
        max_retries: int,
        timeout_seconds: float,
        download: Download,
        secret_hint: str = "",
    ) -> None:
        self._api_key = api_key
        self._base_url = base_url
        self._max_retries = max_retries
        self._timeout_seconds = timeout_seconds
        self._download = download
        self._secret_hint = secret_hint

    def client(self) -> OpenAI:
        from synthtune.providers.openai.client import openai_client

        return openai_client(self._api_key(), self._base_url, self._max_retries, self._timeout_seconds)

    def chat(self, *, request_timeout_seconds: float | None = None) -> OpenAIChat:
        # Every attempt at a chat request may be billed, so the SDK never retries one out of sight: the
        # engine does (`engine.paced`), each attempt reserved and settled in the ledger (`engine.budgeted`).
        client = self.client().with_options(
            max_retries=0, timeout=request_timeout_seconds or self._timeout_seconds
        )
        return OpenAIChat(client, secret_hint=self._secret_hint)

    def batches(self) -> OpenAIBatches:
        return OpenAIBatches(self.client(), secret_hint=self._secret_hint)

    def fine_tuning(self) -> OpenAIFineTuning:
        return OpenAIFineTuning(self.client, self._download, secret_hint=self._secret_hint)

    def serving(self) -> OpenAIServing:
        return OpenAIServing()

    @cached_property
    def _models(self) -> OpenAIModels:
        return OpenAIModels(self.client, self._base_url, secret_hint=self._secret_hint)

    def models(self) -> OpenAIModels:
        return self._models
