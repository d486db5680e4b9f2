"""Files that are whole or absent: what a killed process leaves on disk must still be readable.

A run directory is written while the run happens, by many threads, and a process may die at any point
(Ctrl-C, kill -9, a crash, the machine losing power). Every file is therefore written to a temporary
name beside its target and renamed over it — a rename within a directory is atomic on POSIX file
systems, so a reader sees the old file or the new one, never half of one. What was paid for (a teacher's
answer, the run's ledger) is also fsynced, file and directory, before the write returns: a process
killed by a signal keeps what the kernel already holds, but only fsync survives the machine going down.
The standard library has all this needs (atomicwrites, the package that wrapped it, is archived).
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

TEMPORARY_PREFIX = ".~"
"""Names that start with this are writes in progress (or abandoned by a killed process): never data."""


def write_atomically(path: Path, data: bytes, *, fsync: bool) -> None:
    """`path` holds `data` afterwards, or (if the process dies first) whatever it held before.

    `fsync`: sync the file and its directory, so the write survives a crash of the machine too.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # One temporary name per thread: two threads writing the same path never share a temporary file.
    temporary = path.with_name(f"{TEMPORARY_PREFIX}{path.name}.{os.getpid()}-{threading.get_ident()}")
    try:
        with temporary.open("wb") as file:
            file.write(data)
            if fsync:
                file.flush()
                os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    if fsync:
        sync_directory(path.parent)


def remove(path: Path, *, fsync: bool) -> None:
    """Delete `path` if it exists (and, with `fsync`, make the deletion survive a crash)."""
    try:
        path.unlink()
    except FileNotFoundError:
        return
    if fsync:
        sync_directory(path.parent)


def sync_directory(directory: Path) -> None:
    """fsync a directory, which makes the renames and deletions inside it durable (POSIX)."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def is_temporary(path: Path) -> bool:
    return path.name.startswith(TEMPORARY_PREFIX)
