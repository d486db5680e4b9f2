"""The names and request tokens a run gives what it creates on Bedrock: derived from the run id alone.

A retried state computes the same name and the same clientRequestToken, so it finds (or is handed back)
what an earlier attempt created instead of creating a second one: one job and one deployment per run.
"""

from __future__ import annotations

import hashlib
import re

RUN_ID_TAG = "synthtune:run-id"
"""The tag on every job, custom model, deployment and throughput a run creates: whose it is, for cleanup."""

MAX_NAME_LENGTH = 63
"""jobName, customModelName, modelDeploymentName and provisionedModelName: at most 63 characters."""

_NOT_ALLOWED = re.compile(r"[^a-zA-Z0-9]+")


def _slug(run_id: str) -> str:
    return _NOT_ALLOWED.sub("-", run_id).strip("-") or "run"


def resource_name(run_id: str, kind: str) -> str:
    """`synthtune-<kind>-<run id>`, letters, digits and single hyphens, at most 63 characters; a long run id
    is cut and a hash of the whole keeps two long ids apart."""
    name = f"synthtune-{kind}-{_slug(run_id)}"
    if len(name) <= MAX_NAME_LENGTH:
        return name
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:10]
    return f"{name[: MAX_NAME_LENGTH - len(digest) - 1].rstrip('-')}-{digest}"


def attempt_kind(kind: str, attempt: int) -> str:
    """The kind of name for a run's `attempt`-th job (and its model): `job` for the first, then `job2`,
    `job3`... — a resumed run whose job failed names its next one apart, so it is not found as the old."""
    return kind if attempt == 0 else f"{kind}{attempt + 1}"


def run_tags(run_id: str) -> list[dict[str, str]]:
    return [{"key": RUN_ID_TAG, "value": run_id}]


def request_token(run_id: str, kind: str) -> str:
    """A clientRequestToken: the same for every attempt of the same create in the same run."""
    return f"synthtune-{hashlib.sha256(f'{kind}:{run_id}'.encode()).hexdigest()[:48]}"
