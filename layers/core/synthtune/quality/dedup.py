"""Exact and near-duplicate questions, for Assemble: a training set keeps the first of each.

Two questions are exact duplicates when their words are the same (`question_words`: NFKC, case-folded,
punctuation and whitespace ignored), and near duplicates when the Jaccard similarity of their
character shingles, estimated by MinHash, is at least `near_threshold` and they hold the same numbers
and arithmetic signs (one template filled with other numbers is another problem, with another answer).
Candidates come from LSH banding and every candidate is verified against its stored signature, so a
band collision alone never drops an example.

Assemble streams up to a million examples through one index, so memory must not grow with them: the
index is a SQLite file in a directory the caller owns (Lambda's /tmp) with a bounded page cache; the
Python side keeps nothing per example.

This is written here rather than taken from `datasketch`: its LSH index lives in memory (or in Redis
or Cassandra), not in constant memory on local disk, and it would bring scipy into the Lambda layer
for one integral.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import sqlite3
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Literal, Self

import numpy as np
from numpy.typing import NDArray

_NUMBER: Final = r"\d+(?:[.,/]\d+)*"
# A minus is a sign before a digit or after a space ("12 - 5", "12-5", "-5"), a hyphen inside a word.
_SIGN: Final = r"[+−×÷*/=<>^%√]|(?<!\w)-|-(?=\d)"
_FIGURES: Final = re.compile(rf"{_NUMBER}|{_SIGN}")
_LOW32: Final = np.uint64(0xFFFF_FFFF)
_U32: Final = np.uint64(32)
_SHINGLE_CHUNK: Final = 512
_FNV_OFFSET: Final = np.uint64(0xCBF2_9CE4_8422_2325)
_FNV_PRIME: Final = np.uint64(0x0000_0100_0000_01B3)

_COMMIT_EVERY: Final = 20_000
"""Inserts per transaction. With the journal off a commit only writes the dirty pages back, and the
bounded cache spills them anyway; committing every 1,000 measured slower, every 20,000 as fast as never."""


def question_words(text: str) -> list[str]:
    """The words two questions are compared by: NFKC, case-folded; numbers (`3.14`, `1,000`, `3/4`),
    runs of letters and digits (with their combining marks), and arithmetic signs, which tell
    "12 + 45" from "12 - 45"."""
    return _word_pattern().findall(unicodedata.normalize("NFKC", text).casefold().replace("_", " "))


@functools.cache
def _word_pattern() -> re.Pattern[str]:
    """Runs of letters, digits and combining marks ("_" is replaced by a space before matching).

    A word character in `re` is a letter or a digit but not a combining mark (Devanagari and Bengali
    vowel signs, Arabic harakat, accents with no precomposed form), so a plain word pattern would split
    those words and drop their marks, and questions differing only in them would look the same. The
    marks are read from unicodedata once, in about 20 ms.
    """
    ranges, start = [], None
    for code in range(0x10000):  # the Basic Multilingual Plane holds all but historic scripts' marks
        mark = unicodedata.category(chr(code)).startswith("M")
        if mark and start is None:
            start = code
        elif not mark and start is not None:
            ranges.append(f"{re.escape(chr(start))}-{re.escape(chr(code - 1))}")
            start = None
    return re.compile(rf"{_NUMBER}|[\w{''.join(ranges)}]+|{_SIGN}")


def stable_hash64(text: str) -> int:
    """A signed 64-bit hash that is the same in every process (unlike the salted `hash`)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little", signed=True)


@dataclass(frozen=True)
class Duplicate:
    kind: Literal["duplicate", "near_duplicate"]
    of: str
    """The key (problem id) of the earlier example it duplicates."""
    similarity: float
    """1.0 for an exact duplicate; the estimated Jaccard similarity for a near one."""


def _simpson(values: NDArray[np.float64], width: float) -> NDArray[np.float64]:
    """Composite Simpson's rule along the last axis, over an odd number of equally spaced points."""
    weights = np.ones(values.shape[-1])
    weights[1:-1:2] = 4.0
    weights[2:-1:2] = 2.0
    return np.asarray(values @ weights * (width / (3 * (values.shape[-1] - 1))), dtype=np.float64)


@functools.lru_cache
def lsh_bands(threshold: float, permutations: int, points: int = 1001) -> tuple[int, int]:
    """(bands, rows) minimising the false-positive plus false-negative probability mass at `threshold`.

    Two signatures of Jaccard similarity s share at least one band with probability
    1 - (1 - s**rows)**bands. The false-positive mass is that probability integrated over [0, threshold],
    the false-negative mass its complement over [threshold, 1]; equal weights, as datasketch's
    `_optimal_param`.
    """
    below = np.linspace(0.0, threshold, points)
    above = np.linspace(threshold, 1.0, points)
    best, best_error = (1, 1), float("inf")
    for bands in range(1, permutations + 1):
        rows = np.arange(1, permutations // bands + 1, dtype=np.float64)[:, None]
        false_positive = _simpson(1.0 - (1.0 - below**rows) ** bands, threshold)
        false_negative = _simpson((1.0 - above**rows) ** bands, 1.0 - threshold)
        error = 0.5 * false_positive + 0.5 * false_negative
        index = int(np.argmin(error))
        if error[index] < best_error:
            best, best_error = (bands, index + 1), float(error[index])
    return best


def _shingle_ids(text: str, width: int) -> NDArray[np.uint64]:
    """Stable 64-bit ids of the text's distinct `width`-character shingles (FNV-1a over code points).

    A text shorter than `width` is one shingle, so even the empty question has a signature.
    """
    codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4").astype(np.uint64)
    width = min(width, len(codes))
    count = len(codes) - width + 1
    ids = np.full(count, _FNV_OFFSET, dtype=np.uint64)
    for offset in range(width):
        ids ^= codes[offset : offset + count]
        ids *= _FNV_PRIME
    # Repeated shingles are common (a word used twice) and cost as much as new ones below.
    ids.sort()
    distinct = np.empty(count, dtype=bool)
    distinct[0] = True
    np.not_equal(ids[1:], ids[:-1], out=distinct[1:])
    return ids[distinct]


class _MinHash:
    """Signatures of shingle sets under `permutations` hash functions h(x) = ((a*x + b) mod 2**64) >> 32.

    This is Dietzfelbinger's multiply-add-shift family for 32-bit keys (a, b random 64-bit, a odd): a
    2-independent family, computed in two passes of plain wrapping uint64 arithmetic where the exact
    (a*x + b) mod (2**61 - 1) needed seventeen (measured: ~50 µs against ~270 µs per 250-shingle
    question, most of Assemble's time). The shingle ids are already FNV-mixed and folded to 32 bits, so
    the family's weakness on structured keys does not arise. The shift is monotone, so the minimum is
    taken on the 64-bit values and shifted once. a and b come from numpy's Generator(seed), so two
    indexes built with the same seed agree.
    """

    def __init__(self, permutations: int, seed: int) -> None:
        generator = np.random.default_rng(seed)
        self._a = (generator.integers(0, 1 << 64, size=permutations, dtype=np.uint64) | np.uint64(1))[:, None]
        self._b = generator.integers(0, 1 << 64, size=permutations, dtype=np.uint64)[:, None]
        # A work array made once and reused: allocating it per question cost more (page faults) than
        # the arithmetic. Shingles go through in chunks, so a 20,000-character question needs no more.
        self._work = np.empty((permutations, _SHINGLE_CHUNK), dtype=np.uint64)

    def signature(self, shingles: NDArray[np.uint64]) -> NDArray[np.uint32]:
        keys = (shingles ^ (shingles >> _U32)) & _LOW32  # fold the 64-bit ids to the family's 32-bit keys
        minimum = np.full(len(self._b), np.iinfo(np.uint64).max, dtype=np.uint64)
        for start in range(0, len(keys), _SHINGLE_CHUNK):
            chunk = keys[start : start + _SHINGLE_CHUNK]
            work = self._work[:, : len(chunk)]
            np.multiply(self._a, chunk[None, :], out=work)  # wraps modulo 2**64, as the family wants
            work += self._b
            np.minimum(minimum, work.min(axis=1), out=minimum)
        signature: NDArray[np.uint32] = (minimum >> _U32).astype(np.uint32)
        return signature


class _Bands:
    """LSH band keys of a signature: its first bands*rows values cut into bands of `rows`.

    A band hashes to 32 bits by vector multiply-shift (sum of random 64-bit multipliers times the
    32-bit values, top half kept), a universal family; the band's index goes above those 32 bits so
    two bands never share a key. A key collision only adds a candidate, which is then verified.
    """

    def __init__(self, bands: int, rows: int, seed: int) -> None:
        generator = np.random.default_rng((seed, 1))
        self.bands, self.rows = bands, rows
        self._multipliers = generator.integers(
            0, 1 << 64, size=(bands, rows), dtype=np.uint64, endpoint=False
        )
        self._offsets = generator.integers(0, 1 << 64, size=bands, dtype=np.uint64, endpoint=False)
        self._band_index = np.arange(bands, dtype=np.uint64) << np.uint64(32)

    def keys(self, signature: NDArray[np.uint32]) -> list[int]:
        values = signature[: self.bands * self.rows].reshape(self.bands, self.rows).astype(np.uint64)
        values *= self._multipliers
        hashed = values.sum(axis=1, dtype=np.uint64) + self._offsets
        keys: list[int] = ((hashed >> np.uint64(32)) | self._band_index).tolist()
        return keys


_SCHEMA: Final = """
CREATE TABLE example (
    id INTEGER PRIMARY KEY,
    text_hash INTEGER NOT NULL UNIQUE,
    figures_hash INTEGER NOT NULL,
    key TEXT NOT NULL,
    signature BLOB
);
CREATE TABLE band (
    band_key INTEGER NOT NULL,
    example INTEGER NOT NULL REFERENCES example (id),
    PRIMARY KEY (band_key, example)
) WITHOUT ROWID;
"""
# `band` keeps every (band_key, example) pair: a bucket shared by many examples must lead to all of
# them, or a near duplicate of the second one in a bucket would go unseen.


class DuplicateIndex:
    """Answers "is this question a duplicate of one seen before?" and remembers it when it is not.

    The SQLite file is created in `directory`, which the caller owns; `close` removes that file and
    nothing else. It is a scratch index: journal and syncs are off, and it does not outlive the run.
    """

    def __init__(
        self,
        directory: Path,
        *,
        near_threshold: float | None = 0.8,
        permutations: int = 128,
        shingle_chars: int = 5,
        seed: int = 1,
        cache_mb: int = 16,
    ) -> None:
        if near_threshold is not None and not 0.0 < near_threshold <= 1.0:
            raise ValueError(f"near_threshold must be in (0, 1] or None, not {near_threshold}")
        if permutations < 1 or shingle_chars < 1 or cache_mb < 1:
            raise ValueError("permutations, shingle_chars and cache_mb must be at least 1")
        self._near_threshold = near_threshold
        self._permutations = permutations
        self._shingle_chars = shingle_chars
        self._minhash: _MinHash | None = None
        self._bands: _Bands | None = None
        exact_sql = "SELECT id, key, signature, figures_hash, 1 FROM example WHERE text_hash = ?1"
        self._lookup_sql = exact_sql
        if near_threshold is not None:
            self._minhash = _MinHash(permutations, seed)
            self._bands = _Bands(*lsh_bands(near_threshold, permutations), seed)
            keys = ", ".join(f"?{n}" for n in range(2, self._bands.bands + 2))
            # The exact match, if any, comes first; then every example sharing a band.
            self._lookup_sql = (
                f"{exact_sql} UNION ALL SELECT id, key, signature, figures_hash, 0 FROM example"
                f" WHERE id IN (SELECT example FROM band WHERE band_key IN ({keys}))"
            )
            pairs = ", ".join(f"(?{n}, ?1)" for n in range(2, self._bands.bands + 2))
            self._insert_bands_sql = f"INSERT OR IGNORE INTO band (band_key, example) VALUES {pairs}"
        handle, name = tempfile.mkstemp(prefix="duplicates-", suffix=".sqlite3", dir=directory)
        os.close(handle)
        self._path: Path | None = Path(name)
        self._db = sqlite3.connect(self._path, isolation_level=None)
        for pragma in (
            f"cache_size = -{cache_mb * 1024}",
            "journal_mode = OFF",
            "synchronous = OFF",
            "locking_mode = EXCLUSIVE",
        ):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.executescript(_SCHEMA)
        self._db.execute("BEGIN")
        self._size = 0
        self._uncommitted = 0

    @property
    def size(self) -> int:
        """Examples remembered."""
        return self._size

    def check_and_add(self, key: str, question: str) -> Duplicate | None:
        """None (and the question is remembered) for a first occurrence; else what it duplicates."""
        text = " ".join(question_words(question))
        text_hash = stable_hash64(text)
        # Numbers and signs decide a problem's answer: a template filled with other numbers is another
        # problem, never a near duplicate, however similar the words around them.
        figures_hash = stable_hash64(" ".join(_FIGURES.findall(text)))
        signature: NDArray[np.uint32] | None = None
        band_keys: list[int] = []
        if self._minhash is not None and self._bands is not None:
            signature = self._minhash.signature(_shingle_ids(text, self._shingle_chars))
            band_keys = self._bands.keys(signature)
        duplicate = self._earlier(text_hash, figures_hash, signature, band_keys)
        if duplicate is not None:
            return duplicate
        example = self._db.execute(
            "INSERT INTO example (text_hash, figures_hash, key, signature) VALUES (?, ?, ?, ?)",
            (text_hash, figures_hash, key, None if signature is None else signature.tobytes()),
        ).lastrowid
        if band_keys:
            self._db.execute(self._insert_bands_sql, (example, *band_keys))
        self._size += 1
        self._uncommitted += 1
        if self._uncommitted >= _COMMIT_EVERY:
            self._db.execute("COMMIT")
            self._db.execute("BEGIN")
            self._uncommitted = 0
        return None

    def _earlier(
        self, text_hash: int, figures_hash: int, signature: NDArray[np.uint32] | None, band_keys: list[int]
    ) -> Duplicate | None:
        """The exact duplicate if there is one, else the most similar near one (the earliest on a tie)."""
        best: tuple[float, int, str] | None = None
        rows = self._db.execute(self._lookup_sql, (text_hash, *band_keys))
        for example, key, stored, figures, exact in rows:
            if exact:
                return Duplicate(kind="duplicate", of=key, similarity=1.0)
            if figures != figures_hash:
                continue
            assert signature is not None and self._near_threshold is not None
            agreeing = np.count_nonzero(np.frombuffer(stored, dtype=np.uint32) == signature)
            similarity = int(agreeing) / self._permutations
            if similarity >= self._near_threshold and (
                best is None or similarity > best[0] or (similarity == best[0] and example < best[1])
            ):
                best = (similarity, example, key)
        if best is None:
            return None
        return Duplicate(kind="near_duplicate", of=best[2], similarity=best[0])

    def close(self) -> None:
        """Closes the database and removes its file (only that file)."""
        if self._path is None:
            return
        self._db.close()
        self._path.unlink(missing_ok=True)
        self._path = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
