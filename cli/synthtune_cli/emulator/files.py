"""Uploaded files, and the result files fine-tuning jobs write."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from synthtune_cli.emulator.errors import ApiError, bad_request

UPLOAD_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")


@dataclass(frozen=True)
class StoredFile:
    id: str
    filename: str
    purpose: str
    content: bytes
    created_at: int

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.content),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }


class FileStore:
    """Files by id, in upload order. Not thread-safe: the emulator's state lock guards it."""

    def __init__(self) -> None:
        self._files: dict[str, StoredFile] = {}

    def __len__(self) -> int:
        return len(self._files)

    def snapshot(self) -> dict[str, StoredFile]:
        return dict(self._files)

    def add(self, stored: StoredFile) -> StoredFile:
        self._files.setdefault(stored.id, stored)
        return self._files[stored.id]

    def get(self, file_id: str) -> StoredFile:
        stored = self._files.get(file_id)
        if stored is None:
            raise ApiError(404, f"No such File object: {file_id}", param="id")
        return stored

    def find(self, file_id: str) -> StoredFile | None:
        return self._files.get(file_id)

    def delete(self, file_id: str) -> dict[str, Any]:
        self.get(file_id)
        del self._files[file_id]
        return {"id": file_id, "object": "file", "deleted": True}

    def clear(self) -> None:
        self._files.clear()

    def page(self, purpose: str | None, after: str | None, limit: int, order: str) -> dict[str, Any]:
        if order not in ("asc", "desc"):
            raise bad_request(f"Invalid order {order!r}: expected 'asc' or 'desc'.", param="order")
        if not 1 <= limit <= 10_000:
            raise bad_request("limit must be between 1 and 10000.", param="limit")
        files = [stored for stored in self._files.values() if purpose is None or stored.purpose == purpose]
        if order == "desc":
            files.reverse()
        return cursor_page([stored.to_api() for stored in files], after, limit)


def cursor_page(items: list[dict[str, Any]], after: str | None, limit: int) -> dict[str, Any]:
    """OpenAI's cursor page over `items` (already in order): the ones after id `after`, at most `limit`."""
    if after is not None:
        ids = [item["id"] for item in items]
        if after not in ids:
            raise bad_request(f"No object with id {after!r} to page after.", param="after")
        items = items[ids.index(after) + 1 :]
    page = items[:limit]
    return {
        "object": "list",
        "data": page,
        "has_more": len(items) > limit,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
    }
