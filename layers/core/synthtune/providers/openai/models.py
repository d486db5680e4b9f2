"""Whether an OpenAI model can serve a role today: the dated catalog offline, `GET /v1/models/{id}` live.

OpenAI's dates apply to the official endpoint only: an OpenAI-compatible server (Azure OpenAI, a vLLM,
the emulator) keeps its own schedule, and its `shutdown_date` is reported, not enforced. What OpenAI's
fine-tuning API takes does not depend on the endpoint: a model the catalog knows as one OpenAI does not
fine-tune is refused as a student anywhere, before the teacher is paid for answers no job could use.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING

from synthtune.contracts.errors import FineTuneUnavailable, ModelRequestRejected
from synthtune.contracts.models import parse_model
from synthtune.money.catalog import (
    MODELS,
    OPENAI_FINE_TUNING_ENDS,
    OPENAI_FINE_TUNING_RESTRICTED,
    model_info,
)
from synthtune.providers.lifecycle import closest_names, refuse_retired, suggestion
from synthtune.providers.openai.client import OFFICIAL_BASE_URL, is_official_endpoint, provider_errors
from synthtune.providers.ports import LiveModelStatus, ModelRole

if TYPE_CHECKING:
    from openai import OpenAI


def _may_not_read_models(error: BaseException | None) -> bool:
    """OpenAI's answer to a restricted key without the models scope (401 "Missing scopes:
    api.model.read"), which may still call the models: not a bad key, not an unknown model."""
    import openai

    return (
        isinstance(error, openai.APIStatusError)
        and error.status_code in (401, 403)
        and ("scope" in str(error.message).lower())
    )


def fine_tunable_students(today: dt.date | None = None) -> list[str]:
    """The OpenAI models the catalog knows a fine-tuning job takes (on `today`, if given)."""
    return [
        model.name
        for model in MODELS
        if model.provider == "openai"
        and model.fine_tuning
        and (today is None or model.shutdown_on is None or today < model.shutdown_on)
    ]


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

    @property
    def endpoint(self) -> str:
        """The endpoint as a message names it."""
        return f"the OpenAI API ({OFFICIAL_BASE_URL})" if self.official else str(self._base_url)

    def check_usable(self, model: str, role: ModelRole, today: dt.date) -> None:
        info = model_info(model)
        if self.official and info is not None:
            refuse_retired(model, role, info, today, "the OpenAI API")
        if role != "student":
            return
        if self.official and today > OPENAI_FINE_TUNING_ENDS:
            raise FineTuneUnavailable(
                f"student_model {model!r}: OpenAI accepts no new fine-tuning jobs after "
                f"{OPENAI_FINE_TUNING_ENDS:%Y-%m-%d} (notice of 2026-05-07); {suggestion('student')}"
            )
        if info is not None and info.fine_tuning is None:
            raise FineTuneUnavailable(
                f"student_model {model!r}: OpenAI does not fine-tune it (fine-tunable: "
                f"{', '.join(fine_tunable_students(today if self.official else None))}); "
                f"{suggestion('student')}"
            )

    def live_status(self, model: str, role: ModelRole) -> LiveModelStatus:
        import openai

        model_id = parse_model(model).id
        client = self._client_factory()
        try:
            with provider_errors(f"looking up {model_id} at {self.endpoint}", self._secret_hint):
                found = client.models.retrieve(model_id)
        except ModelRequestRejected as error:
            if _may_not_read_models(error.__cause__):
                # A restricted key that may call models but not read them: the run is not refused for it.
                return LiveModelStatus(
                    model=model,
                    available=True,
                    detail=f"not looked up: the key may not read {self.endpoint}'s models",
                    endpoint=self.endpoint,
                )
            if not isinstance(error.__cause__, openai.NotFoundError):
                raise
            return self._not_retrieved(model, model_id, client)
        shutdown = getattr(found, "shutdown_date", None)
        shutdown_on = dt.date.fromisoformat(shutdown) if isinstance(shutdown, str) and shutdown else None
        detail = f"served by {self.endpoint}"
        if shutdown_on is not None:
            detail += f"; shutdown_date {shutdown_on:%Y-%m-%d}"
        if role == "student" and self.official:
            detail += (
                f"; fine-tuning: only organisations with fine-tuned-model use in the last 60 days since "
                f"{OPENAI_FINE_TUNING_RESTRICTED:%Y-%m-%d}, nobody after {OPENAI_FINE_TUNING_ENDS:%Y-%m-%d}"
            )
        today = dt.datetime.now(dt.UTC).date()
        # Only OpenAI's own dates are enforced (see the module's docstring).
        shut_down = self.official and shutdown_on is not None and today >= shutdown_on
        return LiveModelStatus(
            model=model,
            available=not shut_down,
            detail=detail,
            endpoint=self.endpoint,
            shutdown_on=shutdown_on,
        )

    def _not_retrieved(self, model: str, model_id: str, client: OpenAI) -> LiveModelStatus:
        """A 404 for the model: served after all if the endpoint lists it (some OpenAI-compatible
        servers have no `GET /models/{id}`), else unknown there, with the names it lists that come
        closest."""
        import openai

        try:
            with provider_errors(f"listing the models of {self.endpoint}", self._secret_hint):
                offered = [listed.id for listed in client.models.list()]
        except ModelRequestRejected as error:
            if not isinstance(error.__cause__, openai.NotFoundError):
                raise
            offered = []
        if model_id in offered:
            return LiveModelStatus(
                model=model, available=True, detail=f"listed by {self.endpoint}", endpoint=self.endpoint
            )
        return LiveModelStatus(
            model=model,
            available=False,
            found=False,
            detail=f"{self.endpoint} does not serve it",
            endpoint=self.endpoint,
            closest=closest_names(model_id, offered),
        )
