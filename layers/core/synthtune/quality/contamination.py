"""Benchmark decontamination: a training question that shares n consecutive words with a held-out
question would show the student the benchmark, so Assemble drops it.

Words are `question_words` (NFKC, case-folded, punctuation ignored). A held-out question shorter than
n words is one gram of its own length: a training question containing all of it, contiguously, is
contaminated (so a one-word held-out question catches every training question with that word).

The index is in memory: the holdout is the benchmark, small beside the training set, and every
training question is checked against all of it. Grams are stable 64-bit hashes of their words and
length, computed with numpy for a whole question at once, in one dict: the hash set, whose values say
where each gram is, so a hit is confirmed against the held-out words and a hash collision is never
reported. Only the distinct lengths present (n, and those of shorter held-out questions) are hashed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from synthtune.quality.dedup import question_words

_BASE: Final = 0x9E37_79B9_7F4A_7C15  # odd, so it has an inverse modulo 2**64
_MOD64: Final = 1 << 64
_LENGTH_SALT: Final = np.uint64(0xD6E8_FEB8_6659_FD93)


@dataclass(frozen=True)
class Contamination:
    holdout_id: str
    ngram: str
    """The shared words, space-joined, for the dataset card and the dropped-examples log."""


def _wrapping_powers(base: int, count: int) -> NDArray[np.uint64]:
    """base**0 .. base**(count - 1) modulo 2**64 (integer arrays wrap on overflow, exactly)."""
    powers = np.ones(count, dtype=np.uint64)
    np.cumprod(np.full(count - 1, base, dtype=np.uint64), out=powers[1:])
    return powers


def _mix(values: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """splitmix64's finaliser: a bijection of 64-bit values that spreads every input bit."""
    values ^= values >> np.uint64(30)
    values *= np.uint64(0xBF58_476D_1CE4_E5B9)
    values ^= values >> np.uint64(27)
    values *= np.uint64(0x94D0_49BB_1331_11EB)
    values ^= values >> np.uint64(31)
    return values


class _GramHasher:
    """Stable 64-bit hashes of runs of consecutive words, for several run lengths in one pass.

    A polynomial hash is the same wherever its run starts once shifted back: the prefix sums of
    value[j] * BASE**j differ by BASE**start times it. Words hash that way over their characters (and
    the space after them), mixed; runs hash that way over their words' hashes, with the run's length
    mixed in (XOR with length * LENGTH_SALT) so that runs of every length share one table.
    """

    def __init__(self) -> None:
        self._forward = _wrapping_powers(_BASE, 256)
        self._inverse = _wrapping_powers(pow(_BASE, -1, _MOD64), 256)

    def keys(self, words: list[str], lengths: NDArray[np.uint64]) -> NDArray[np.uint64]:
        """keys[l, start]: the run of lengths[l] words from `start`; runs past the end are junk keys."""
        codes = np.frombuffer(f"{' '.join(words)} ".encode("utf-32-le"), dtype="<u4").astype(np.uint64)
        if len(codes) > len(self._forward):  # grows to the longest question seen, no further
            self._forward = _wrapping_powers(_BASE, 2 * len(codes))
            self._inverse = _wrapping_powers(pow(_BASE, -1, _MOD64), 2 * len(codes))
        count = len(words)
        word_starts = np.zeros(count, dtype=np.intp)
        np.cumsum(np.fromiter(map(len, words), dtype=np.intp, count=count)[:-1] + 1, out=word_starts[1:])
        word_sums = np.add.reduceat(codes * self._forward[: len(codes)], word_starts)
        word_hashes = _mix(word_sums * self._inverse[word_starts])
        prefix = np.zeros(count + 1, dtype=np.uint64)
        np.cumsum(word_hashes * self._forward[:count], out=prefix[1:])
        starts = np.arange(count)
        ends = np.minimum(starts + lengths[:, None].astype(np.intp), count)
        runs = (prefix[ends] - prefix[starts]) * self._inverse[:count]
        keys: NDArray[np.uint64] = runs ^ (lengths * _LENGTH_SALT)[:, None]
        return keys


class ContaminationIndex:
    """The held-out questions' word n-grams, to find training questions that share one."""

    def __init__(self, holdout: Iterable[tuple[str, str]], n: int = 13) -> None:
        """`holdout` yields (problem id, question); a question without a word is skipped."""
        if n < 1:
            raise ValueError(f"n must be at least 1, not {n}")
        self._hasher = _GramHasher()
        self._ids: list[str] = []
        self._texts: list[str] = []  # the held-out words, space-joined, to confirm a hit
        # key of a run -> (holdout index << 32 | start) << 32 | length, where the run first occurs
        self._runs: dict[int, int] = {}
        # key -> further locations, for the rare distinct runs that share a key
        self._collisions: dict[int, list[int]] = {}
        lengths: set[int] = set()
        for problem_id, question in holdout:
            words = question_words(question)
            if not words:
                continue
            index = len(self._ids)
            self._ids.append(problem_id)
            self._texts.append(" ".join(words))
            length = min(n, len(words))
            lengths.add(length)
            keys = self._hasher.keys(words, np.array([length], dtype=np.uint64))[0]
            for start, key in enumerate(keys[: len(words) - length + 1].tolist()):
                location = (index << 32 | start) << 32 | length
                first = self._runs.setdefault(key, location)
                if first != location and self._words_at(first) != words[start : start + length]:
                    self._collisions.setdefault(key, []).append(location)
        # Longest first: the n-gram is the usual finding; short held-out questions add their lengths.
        self._lengths = np.array(sorted(lengths, reverse=True), dtype=np.uint64)

    @property
    def size(self) -> int:
        """Held-out questions indexed."""
        return len(self._ids)

    def match(self, question: str) -> Contamination | None:
        """The first held-out run the question contains (longest runs first), or None when it is clean."""
        words = question_words(question)
        lengths = self._lengths[self._lengths <= len(words)]
        if not len(lengths):
            return None
        keys = self._hasher.keys(words, lengths).tolist()
        if all(self._runs.keys().isdisjoint(row) for row in keys):
            return None
        for length, row in zip(lengths.tolist(), keys, strict=True):
            for start, key in enumerate(row[: len(words) - length + 1]):
                first = self._runs.get(key)
                if first is None:
                    continue
                run = words[start : start + length]
                for location in (first, *self._collisions.get(key, ())):
                    if self._words_at(location) == run:
                        return Contamination(holdout_id=self._ids[location >> 64], ngram=" ".join(run))
        return None

    def _words_at(self, location: int) -> list[str]:
        start, length = (location >> 32) & 0xFFFF_FFFF, location & 0xFFFF_FFFF
        return self._texts[location >> 64].split(" ")[start : start + length]
