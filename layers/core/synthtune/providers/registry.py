"""Which provider serves a model, and one chat port that speaks to all of them.

A run may mix providers (a Bedrock teacher, an OpenAI judge); `RoutedChat` sends each call to the
provider its model names (`contracts.models`) and builds each provider's chat port only when a call first
needs it, so a run that names no OpenAI model never reads an OpenAI key.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping, Sequence

from synthtune.contracts.config import RunConfig
from synthtune.contracts.errors import FineTuneUnavailable, InvalidConfig, ModelRetired
from synthtune.contracts.models import ModelRef, parse_model
from synthtune.contracts.usage import Usage
from synthtune.prompts import SOLVER_SYSTEM_PROMPT, Exemplar, Verdict
from synthtune.providers.lifecycle import ROLE_FIELDS, suggestion
from synthtune.providers.ports import (
    ChatPort,
    DatasetFormat,
    LiveModelStatus,
    ModelRole,
    Provider,
    Replies,
    Reply,
    SolveResult,
)


class ProviderRegistry:
    def __init__(self, providers: Mapping[str, Provider]) -> None:
        self._providers = dict(providers)

    @property
    def names(self) -> list[str]:
        return sorted(self._providers)

    def provider(self, name: str) -> Provider:
        try:
            return self._providers[name]
        except KeyError:
            raise InvalidConfig(f"no provider {name!r} (available: {', '.join(self.names)})") from None

    def batch_providers(self) -> list[str]:
        return [name for name in self.names if self._providers[name].batch_generation]

    def for_model(self, model: str) -> Provider:
        return self.provider(parse_model(model).provider)

    def chat(self, *, request_timeout_seconds: float | None = None) -> RoutedChat:
        return RoutedChat(self, request_timeout_seconds=request_timeout_seconds)

    def check_models(self, config: RunConfig, today: dt.date) -> None:
        """Refuse, offline, a model that cannot serve its role today (each provider's own rules)."""
        for role, model in roles(config).items():
            self.for_model(model).models().check_usable(model, role, today)

    def confirm_models(self, config: RunConfig) -> dict[ModelRole, LiveModelStatus]:
        """Each model the run names, looked up at the endpoint the run will call (free: nothing is
        generated, trained or created); InvalidConfig for one the endpoint does not serve, naming the
        endpoint and the names it offers that come closest, ModelRetired (FineTuneUnavailable for the
        student) for one it has shut down."""
        confirmed: dict[ModelRole, LiveModelStatus] = {}
        for role, model in roles(config).items():
            status = self.for_model(model).models().live_status(model, role)
            field = ROLE_FIELDS[role]
            if not status.found:
                offered = (
                    f"the closest names it offers: {', '.join(repr(name) for name in status.closest)}"
                    if status.closest
                    else "it offers no name close to it"
                )
                raise InvalidConfig(f"{field} {model!r}: {status.endpoint} does not serve it; {offered}")
            if not status.available:
                refused = FineTuneUnavailable if role == "student" else ModelRetired
                raise refused(
                    f"{field} {model!r}: {status.endpoint} no longer serves it ({status.detail}); "
                    f"{suggestion(role)}"
                )
            confirmed[role] = status
        return confirmed


def dataset_format(provider: str) -> DatasetFormat:
    """The fine-tuning file format of a provider (stateless: no client, no credentials)."""
    if provider == "openai":
        from synthtune.providers.openai.format import OpenAIChatFormat

        return OpenAIChatFormat()
    if provider == "bedrock":
        from synthtune.providers.bedrock.format import ConversationFormat

        return ConversationFormat()
    raise InvalidConfig(f"no provider {provider!r} (available: openai, bedrock)")


def roles(config: RunConfig) -> dict[ModelRole, str]:
    """The models a run names, by role."""
    named: dict[ModelRole, str] = {"teacher": config.teacher_model, "student": config.student_model}
    if config.judge_model is not None:
        named["judge"] = config.judge_model
    return named


class RoutedChat:
    """A ChatPort over every provider; each call goes to the provider its model names."""

    def __init__(self, registry: ProviderRegistry, *, request_timeout_seconds: float | None) -> None:
        self._registry = registry
        self._request_timeout_seconds = request_timeout_seconds
        self._ports: dict[str, ChatPort] = {}
        self._lock = threading.Lock()

    def _port(self, model: str) -> tuple[ChatPort, ModelRef]:
        ref = parse_model(model)
        with self._lock:
            port = self._ports.get(ref.provider)
            if port is None:
                port = self._registry.provider(ref.provider).chat(
                    request_timeout_seconds=self._request_timeout_seconds
                )
                self._ports[ref.provider] = port
        return port, ref

    def solve(
        self, model: str, question: str, *, temperature: float, max_tokens: int, samples: int = 1
    ) -> SolveResult:
        port, ref = self._port(model)
        return port.solve(ref.name, question, temperature=temperature, max_tokens=max_tokens, samples=samples)

    def answer(
        self,
        model: str,
        question: str,
        *,
        max_tokens: int,
        endpoint: str | None = None,
        system: str = SOLVER_SYSTEM_PROMPT,
    ) -> Reply:
        port, ref = self._port(model)
        return port.answer(ref.name, question, max_tokens=max_tokens, endpoint=endpoint, system=system)

    def replies(
        self,
        model: str,
        question: str,
        *,
        system: str,
        exemplars: Sequence[Exemplar] = (),
        temperature: float,
        max_tokens: int,
        samples: int = 1,
    ) -> Replies:
        port, ref = self._port(model)
        return port.replies(
            ref.name,
            question,
            system=system,
            exemplars=exemplars,
            temperature=temperature,
            max_tokens=max_tokens,
            samples=samples,
        )

    def judge(self, model: str, question: str, reference: str, candidate: str) -> tuple[Verdict, Usage]:
        port, ref = self._port(model)
        return port.judge(ref.name, question, reference, candidate)

    def samples_per_request(self, model: str) -> int:
        port, ref = self._port(model)
        return port.samples_per_request(ref.name)
