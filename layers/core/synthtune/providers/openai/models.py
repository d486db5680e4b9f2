"""Whether an OpenAI model can serve a role today: the dated catalog offline, `GET /v1/models/{id}` live.

OpenAI's dates apply to the official endpoint only: an OpenAI-compatible server (Azure OpenAI, a vLLM,
the emulator) keeps its own schedule and says so when a request is made.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING

from synthtune.contracts.errors import FineTuneUnavailable
from synthtune.contracts.models import parse_model
from synthtune.money.catalog import OPENAI_FINE_TUNING_ENDS, OPENAI_FINE_TUNING_RESTRICTED, model_info
from synthtune.providers.lifecycle import refuse_retired, suggestion
from synthtune.providers.openai.client import is_official_endpoint, provider_errors
from synthtune.providers.ports import LiveModelStatus, ModelRole

if TYPE_CHECKING:
    from openai import OpenAI


class OpenAIModels:
    def __init__(
        self, client_factory: Callable[[], OpenAI], base_url: str | None, secret_hint: str = ""
    ) -> None:
        self._client_factory = client_factory
        self._base_url = base_url
        self._secret_hint = secret_hint

    @property
    def official(self) -> bool:
        return is_official_endpoint(self._base_url)

    def check_usable(self, model: str, role: ModelRole, today: dt.date) -> None:
        if not self.official:
            return
        info = model_info(model)
        if info is not None:
            refuse_retired(model, role, info, today, "the OpenAI API")
        if role != "student":
            return
        if today > OPENAI_FINE_TUNING_ENDS:
            raise FineTuneUnavailable(
                f"student_model {model!r}: OpenAI accepts no new fine-tuning jobs after "
                f"{OPENAI_FINE_TUNING_ENDS:%Y-%m-%d} (notice of 2026-05-07); {suggestion('student')}"
            )
        if info is not None and info.fine_tuning is None:
            raise FineTuneUnavailable(
                f"student_model {model!r}: OpenAI does not fine-tune it; {suggestion('student')}"
            )

    def live_status(self, model: str, role: ModelRole) -> LiveModelStatus:
        import openai

        model_id = parse_model(model).id
        where = "the OpenAI API" if self.official else self._base_url
        try:
            with provider_errors(f"looking up {model_id}", self._secret_hint):
                found = self._client_factory().models.retrieve(model_id)
        except Exception as error:
            if isinstance(error.__cause__, openai.NotFoundError):
                return LiveModelStatus(model=model, available=False, detail=f"{where} does not serve it")
            raise
        shutdown = getattr(found, "shutdown_date", None)
        shutdown_on = dt.date.fromisoformat(shutdown) if isinstance(shutdown, str) and shutdown else None
        detail = f"served by {where}"
        if shutdown_on is not None:
            detail += f"; shutdown_date {shutdown_on:%Y-%m-%d}"
        if role == "student" and self.official:
            detail += (
                f"; fine-tuning: only organisations with fine-tuned-model use in the last 60 days since "
                f"{OPENAI_FINE_TUNING_RESTRICTED:%Y-%m-%d}, nobody after {OPENAI_FINE_TUNING_ENDS:%Y-%m-%d}"
            )
        today = dt.datetime.now(dt.UTC).date()
        return LiveModelStatus(
            model=model,
            available=shutdown_on is None or today < shutdown_on,
            detail=detail,
            shutdown_on=shutdown_on,
        )
