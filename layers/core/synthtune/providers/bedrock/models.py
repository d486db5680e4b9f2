"""Whether a Bedrock model can serve a role: the dated catalog offline, GetFoundationModel live.

The student must be one Bedrock fine-tunes (Nova Micro, Lite, Pro, Nova 2 Lite; Llama 3.1 in us-west-2),
in a Region where it does, and not retired; a teacher or judge must not have reached its end of life.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from synthtune.contracts.errors import FineTuneUnavailable
from synthtune.contracts.models import parse_model
from synthtune.money.catalog import MODELS, model_info
from synthtune.providers.bedrock.client import bedrock_call
from synthtune.providers.lifecycle import refuse_retired, suggestion
from synthtune.providers.ports import LiveModelStatus, ModelRole

_GEO_PREFIXES = ("us.", "eu.", "apac.", "us-gov.", "global.", "jp.", "au.", "ca.")


def foundation_model_id(model_id: str) -> str:
    """`us.amazon.nova-2-lite-v1:0` → `amazon.nova-2-lite-v1:0`: an inference profile's model."""
    for prefix in _GEO_PREFIXES:
        if model_id.startswith(prefix):
            return model_id.removeprefix(prefix)
    return model_id


def fine_tunable_students() -> list[str]:
    return [
        model.name
        for model in MODELS
        if model.provider == "bedrock" and model.fine_tuning and not model.shutdown_on
    ]


class BedrockModels:
    def __init__(self, control: Callable[[], Any], region: Callable[[], str | None]) -> None:
        self._control = control
        self._region = region

    def check_usable(self, model: str, role: ModelRole, today: dt.date) -> None:
        info = model_info(model)
        if info is not None:
            refuse_retired(model, role, info, today, "Amazon Bedrock")
        if role != "student":
            return
        if info is None or info.fine_tuning is None:
            raise FineTuneUnavailable(
                f"student_model {model!r}: Bedrock does not fine-tune it (fine-tunable: "
                f"{', '.join(fine_tunable_students())}); {suggestion('student')}"
            )
        region = self._region()
        regions = info.fine_tuning.regions
        if region and regions and region not in regions:
            raise FineTuneUnavailable(
                f"student_model {model!r}: Bedrock fine-tunes it only in {', '.join(regions)}, and this "
                f"stack is in {region}; deploy the stack there, or choose another student"
            )

    def live_status(self, model: str, role: ModelRole) -> LiveModelStatus:
        model_id = foundation_model_id(parse_model(model).id)
        found = bedrock_call(
            f"looking up {model_id}",
            self._control().get_foundation_model,
            tolerate={"ResourceNotFoundException", "ValidationException"},
            modelIdentifier=model_id,
        )
        if found is None:
            return LiveModelStatus(
                model=model, available=False, detail="Amazon Bedrock does not know it here"
            )
        details = found.get("modelDetails") or {}
        lifecycle = details.get("modelLifecycle") or {}
        status = str(lifecycle.get("status", "ACTIVE"))
        end = lifecycle.get("endOfLifeTime")
        shutdown_on = end.date() if isinstance(end, dt.datetime) else None
        customizations = list(details.get("customizationsSupported") or [])
        parts = [f"lifecycle {status}"]
        if shutdown_on is not None:
            parts.append(f"end of life {shutdown_on:%Y-%m-%d}")
        parts.append(f"inference {', '.join(details.get('inferenceTypesSupported') or []) or 'none listed'}")
        fine_tunable = "FINE_TUNING" in customizations
        if role == "student":
            parts.append("fine-tunable" if fine_tunable else "not fine-tunable")
        today = dt.datetime.now(dt.UTC).date()
        available = status == "ACTIVE" or (shutdown_on is not None and today < shutdown_on)
        return LiveModelStatus(
            model=model,
            available=available and (fine_tunable or role != "student"),
            detail="; ".join(parts),
            shutdown_on=shutdown_on,
            fine_tunable=fine_tunable,
        )
