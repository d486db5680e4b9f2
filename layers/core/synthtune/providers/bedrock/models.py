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
from synthtune.providers.lifecycle import closest_names, refuse_retired, suggestion
from synthtune.providers.ports import LiveModelStatus, ModelRole

_LOOKED_UP_ARNS = ("foundation-model", "inference-profile")
"""The ARNs GetFoundationModel answers for (a profile's, through the model it serves)."""
_NOT_FOUND = {"ResourceNotFoundException", "ValidationException"}
"""How GetFoundationModel says it knows no such model (ValidationException: no model has that id's form)."""
_GEO_PREFIXES = ("us.", "eu.", "apac.", "us-gov.", "global.", "jp.", "au.", "ca.")


def foundation_model_id(model_id: str) -> str:
    """`us.amazon.nova-2-lite-v1:0` → `amazon.nova-2-lite-v1:0`: an inference profile's model."""
    for prefix in _GEO_PREFIXES:
        if model_id.startswith(prefix):
            return model_id.removeprefix(prefix)
    return model_id


def arn_resource(identifier: str) -> tuple[str, str] | None:
    """`arn:aws:bedrock:us-east-1:123456789012:custom-model/abc` → ("custom-model", "abc"); None for an id."""
    parts = identifier.split(":", 5)
    if parts[0] != "arn" or len(parts) < 6:
        return None
    kind, _, rest = parts[5].partition("/")
    return kind, rest


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

    def _endpoint(self, control: Any) -> str:
        """Where the lookups go, as a message names it."""
        url = str(getattr(control.meta, "endpoint_url", "") or "")
        region = getattr(control.meta, "region_name", None) or self._region()
        if not url or url.endswith(".amazonaws.com") or ".amazonaws.com/" in url:
            return f"Amazon Bedrock in {region}"
        return f"the Bedrock endpoint {url}"

    def live_status(self, model: str, role: ModelRole) -> LiveModelStatus:
        model_id = parse_model(model).id
        resource = arn_resource(model_id)
        if resource is not None and resource[0] not in _LOOKED_UP_ARNS:
            # A deployment, a Provisioned Throughput or a custom model of this account: its own Get call
            # and grant; the first request to it says whether it answers (refused, not billed).
            return LiveModelStatus(
                model=model, available=True, detail=f"a {resource[0]} ARN: not looked up", found=True
            )
        lookup = foundation_model_id(resource[1] if resource is not None else model_id)
        control = self._control()
        where = self._endpoint(control)
        found = bedrock_call(
            f"looking up {lookup} at {where}",
            control.get_foundation_model,
            tolerate=_NOT_FOUND,
            modelIdentifier=lookup,
        )
        if found is None:
            listed = bedrock_call(f"listing the foundation models of {where}", control.list_foundation_models)
            offered = [str(summary.get("modelId")) for summary in (listed or {}).get("modelSummaries", [])]
            return LiveModelStatus(
                model=model,
                available=False,
                found=False,
                detail=f"{where} does not know it",
                endpoint=where,
                closest=tuple(f"bedrock/{name}" for name in closest_names(lookup, offered)),
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
        # Whether the student fine-tunes is the catalog's to say (check_usable): it names the
        # customisation id a job takes, which is not always the id the model is served under.
        return LiveModelStatus(
            model=model,
            available=shutdown_on is None or today < shutdown_on,
            detail="; ".join(parts),
            endpoint=where,
            shutdown_on=shutdown_on,
            fine_tunable=fine_tunable,
        )
