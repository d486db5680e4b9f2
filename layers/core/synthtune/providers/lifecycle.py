"""Refusing, before anything is spent, a model its provider no longer serves or cannot fine-tune.

The dates come from the catalog (`money.catalog`); each provider's `ModelsPort` decides which apply (an
OpenAI-compatible server other than OpenAI's sets its own rules). The message names the date, where it was
announced, and what to use instead.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Iterable

from synthtune.contracts.config import DEFAULT_JUDGE, DEFAULT_STUDENT, DEFAULT_TEACHER
from synthtune.contracts.errors import FineTuneUnavailable, ModelRetired
from synthtune.money.catalog import ModelInfo
from synthtune.providers.ports import ModelRole

_DEFAULTS: dict[ModelRole, str] = {
    "teacher": DEFAULT_TEACHER,
    "judge": DEFAULT_JUDGE,
    "student": DEFAULT_STUDENT,
}
ROLE_FIELDS: dict[ModelRole, str] = {
    "teacher": "teacher_model",
    "judge": "judge_model",
    "student": "student_model",
}


def suggestion(role: ModelRole, info: ModelInfo | None = None) -> str:
    """What to use instead, for a message: the provider's named replacement when it fits, else our default."""
    default = _DEFAULTS[role]
    if info is not None and info.replacement and (role != "student" or info.replacement_fine_tunable):
        named = f"set {ROLE_FIELDS[role]} to {info.replacement!r} (the provider's named replacement)"
        return named if info.replacement == default else f"{named} or {default!r}"
    return f"set {ROLE_FIELDS[role]} to e.g. {default!r}"


def refuse_retired(model: str, role: ModelRole, info: ModelInfo, today: dt.date, where: str) -> None:
    """ModelRetired (FineTuneUnavailable for the student) when `info` was shut down by `today`."""
    if info.shutdown_on is None or today < info.shutdown_on:
        return
    notice = f" ({info.notice})" if info.notice else ""
    message = (
        f"{ROLE_FIELDS[role]} {model!r} was shut down on {where} on {info.shutdown_on:%Y-%m-%d}{notice}; "
        f"{suggestion(role, info)}"
    )
    if role == "student":
        raise FineTuneUnavailable(message)
    raise ModelRetired(message)


def closest_names(wanted: str, offered: Iterable[str], count: int = 3) -> tuple[str, ...]:
    """The names in `offered` most like `wanted`, best first (none when nothing comes close): what a
    message suggests for a misspelt or made-up model."""
    return tuple(difflib.get_close_matches(wanted, sorted(set(offered)), n=count, cutoff=0.4))
