"""Uploading a file to OpenAI exactly once, however often the caller is retried.

Files carry no metadata, so a file is known by its name: each caller gives its upload a name of its
own (the run id, and the round and part of a batch). Before uploading, the newest files of the same
purpose are searched for that name and size, so that an upload whose reply was lost is used instead of
made again; the upload itself is sent once, never retried by the SDK (see `client.sent_once`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from synthtune.providers.openai.client import provider_errors, sent_once

if TYPE_CHECKING:
    from openai import OpenAI

FilePurpose = Literal["fine-tune", "batch"]


def find_upload(client: OpenAI, path: Path, purpose: FilePurpose, secret_hint: str = "") -> str | None:
    """The id of a file an earlier attempt uploaded from `path` (same name, purpose and size), if any."""
    size = path.stat().st_size
    with provider_errors(f"looking for an earlier upload of {path.name}", secret_hint):
        # Newest first: a retry's file is among the newest. The SDK pages through the rest.
        for stored in client.files.list(purpose=purpose, order="desc"):
            if stored.filename == path.name and stored.bytes == size and stored.status != "error":
                return stored.id
    return None


def upload_once(client: OpenAI, path: Path, purpose: FilePurpose, action: str, secret_hint: str = "") -> str:
    """The id of `path` uploaded for `purpose`: found from an earlier attempt, or uploaded now."""
    found = find_upload(client, path, purpose, secret_hint)
    if found is not None:
        return found
    with provider_errors(action, secret_hint), path.open("rb") as handle:
        return sent_once(client).files.create(file=(path.name, handle), purpose=purpose).id
