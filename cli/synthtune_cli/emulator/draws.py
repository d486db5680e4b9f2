"""Deterministic "randomness": every simulated choice is a hash of what it depends on.

The emulator never calls `random`: the same seed, model, question and sample index give the same answer
in every run and on every thread, which is what makes benchmark numbers and tests reproducible.
"""

from __future__ import annotations

import hashlib


def _digest(parts: tuple[object, ...], size: int) -> bytes:
    text = "\x1f".join(str(part) for part in parts)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=size).digest()


def draw(*parts: object) -> float:
    """A uniform number in [0, 1) fixed by `parts`: hash(parts) / 2**64."""
    return int.from_bytes(_digest(parts, 8), "big") / 2**64


def pick(count: int, *parts: object) -> int:
    """An index in range(count) fixed by `parts`."""
    return min(int(draw(*parts) * count), count - 1)


def token(length: int, *parts: object) -> str:
    """A lower-case alphanumeric token of `length` characters fixed by `parts`, for object ids."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    number = int.from_bytes(_digest(parts, 32), "big")
    chars = []
    for _ in range(length):
        number, index = divmod(number, len(alphabet))
        chars.append(alphabet[index])
    return "".join(chars)


class IdFactory:
    """Object ids that depend only on the seed and how many of that kind came before."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._counts: dict[str, int] = {}

    def new(self, prefix: str, length: int = 24) -> str:
        return prefix + self.bare(prefix, length)

    def bare(self, kind: str, length: int = 12) -> str:
        """The next id of `kind` without a prefix: Bedrock puts its ids after a slash in an ARN."""
        count = self._counts.get(kind, 0)
        self._counts[kind] = count + 1
        return token(length, self._seed, kind, count)

    def clear(self) -> None:
        self._counts.clear()
