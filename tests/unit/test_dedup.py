"""Exact and near-duplicate detection for Assemble: crafted cases, the LSH parameters, and properties."""

from __future__ import annotations

import json
import os
import random
import string
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from decimal import Decimal, localcontext
from math import comb
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthtune.quality import dedup
from synthtune.quality.dedup import Duplicate, DuplicateIndex, lsh_bands, question_words, stable_hash64

FAST = settings(max_examples=60, deadline=None)
LAYER = Path(dedup.__file__).parents[2]

QUESTION = (
    "A farmer keeps chickens and goats on a farm near the river. Every morning she collects "
    "the eggs, milks the goats and carries everything to the market in a wooden cart. How many trips "
    "does she make in a week?"
)  # 40 words


@pytest.fixture
def index(tmp_path: Path) -> Iterator[DuplicateIndex]:
    with DuplicateIndex(tmp_path) as duplicates:
        yield duplicates


def test_question_words_are_nfkc_casefolded_letters_and_digits() -> None:
    assert question_words("Straße, ﬁle №５ — snake_case:  ＡＢＣ!") == [
        "strasse", "file", "no5", "snake", "case", "abc",
    ]  # fmt: skip
    assert question_words(" ?! ") == []
    # Combining marks stay in their words: vowel signs, harakat.
    assert question_words("किताब कहाँ है?") == ["किताब", "कहाँ", "है"]
    assert question_words("كَتَبَ الدرس") == ["كَتَبَ", "الدرس"]
    assert question_words("कि") != question_words("का")


def test_exact_duplicate_ignores_case_whitespace_and_punctuation(index: DuplicateIndex) -> None:
    assert index.check_and_add("p1", "What is the capital of France?") is None
    assert index.check_and_add("p2", "  what IS the\tcapital of...\nFRANCE!!") == Duplicate(
        kind="duplicate", of="p1", similarity=1.0
    )
    assert index.check_and_add("p3", "What is the capital of Spain?") is None
    assert index.size == 2


def test_one_word_changed_in_forty_is_a_near_duplicate(index: DuplicateIndex) -> None:
    assert index.check_and_add("p1", QUESTION) is None
    found = index.check_and_add("p2", QUESTION.replace("wooden", "wicker"))
    assert found is not None
    assert (found.kind, found.of) == ("near_duplicate", "p1")
    assert 0.8 <= found.similarity < 1.0
    assert index.size == 1


def test_unrelated_questions_are_kept(index: DuplicateIndex) -> None:
    assert index.check_and_add("p1", QUESTION) is None
    assert index.check_and_add("p2", "Solve for x: 3x + 7 = 22, and explain each step you take.") is None
    assert index.check_and_add("p3", "Which planet in the solar system has the longest day?") is None
    assert index.size == 3


def test_a_template_with_other_numbers_is_another_problem(index: DuplicateIndex) -> None:
    """Numbers and signs decide the answer: a template filled with other numbers is kept, however alike
    its words; the same numbers in slightly other words are a near duplicate; signs are words."""
    template = (
        "A bakery sells {} loaves of bread every weekday and {} loaves on each day of the weekend. "
        "Each loaf costs {} dollars to bake and sells for six dollars at the counter. How much profit "
        "does the bakery make from bread in one full week?"
    )
    assert index.check_and_add("long-1", template.format(120, 200, 2)) is None
    assert index.check_and_add("long-2", template.format(135, 210, 3)) is None
    reworded = template.replace("at the counter", "at its counter").format(120, 200, 2)
    near = index.check_and_add("long-3", reworded)
    assert near is not None and (near.kind, near.of) == ("near_duplicate", "long-1")

    assert index.check_and_add("short-1", "What is 12 + 45?") is None
    assert index.check_and_add("short-2", "What is 37 + 81?") is None
    assert index.check_and_add("short-3", "What is 12 - 45?") is None
    assert index.check_and_add("short-4", "what is 12+45") == Duplicate("duplicate", "short-1", 1.0)
    assert question_words("Is 3.14 - 1,000 = -996.86 for forty-eight?") == [
        "is", "3.14", "-", "1,000", "=", "-", "996.86", "for", "forty", "eight",
    ]  # fmt: skip


def test_without_a_near_threshold_only_exact_duplicates_count(tmp_path: Path) -> None:
    with DuplicateIndex(tmp_path, near_threshold=None) as exact_only:
        assert exact_only.check_and_add("p1", QUESTION) is None
        assert exact_only.check_and_add("p2", QUESTION.replace("wooden", "wicker")) is None
        assert exact_only.check_and_add("p3", QUESTION.upper()) == Duplicate("duplicate", "p1", 1.0)
        assert exact_only.size == 2


def test_a_duplicate_names_the_first_key_and_is_not_remembered(index: DuplicateIndex) -> None:
    assert index.check_and_add("first", QUESTION) is None
    assert index.check_and_add("second", QUESTION.lower()) == Duplicate("duplicate", "first", 1.0)
    assert index.check_and_add("third", QUESTION + " ") == Duplicate("duplicate", "first", 1.0)
    near = index.check_and_add("fourth", QUESTION.replace("river", "road"))
    assert near is not None and near.of == "first"
    # "fourth" was not remembered, so a question nearer to it than to "first" still names "first".
    nearer = index.check_and_add("fifth", QUESTION.replace("river", "road").replace("week", "month"))
    assert nearer is not None and nearer.of == "first"
    assert index.size == 1


def test_close_removes_only_its_own_file(tmp_path: Path) -> None:
    neighbour = tmp_path / "shard-000.jsonl"
    neighbour.write_text("{}\n")
    with DuplicateIndex(tmp_path) as duplicates:
        duplicates.check_and_add("p1", QUESTION)
        assert len(list(tmp_path.iterdir())) == 2
    assert list(tmp_path.iterdir()) == [neighbour]
    duplicates.close()  # a second close is harmless


def _random_question(rng: random.Random, vocabulary: list[str], words: int = 40) -> str:
    return " ".join(rng.choices(vocabulary, k=words)) + "?"


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    return ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))) for _ in range(size)]


def test_works_after_ten_thousand_random_inserts(index: DuplicateIndex) -> None:
    rng = random.Random(11)
    vocabulary = _vocabulary(rng, 5000)
    questions = [_random_question(rng, vocabulary) for _ in range(10_000)]
    results = [index.check_and_add(f"p{i}", question) for i, question in enumerate(questions)]
    assert results.count(None) == index.size == 10_000

    assert index.check_and_add("again", questions[1234].upper()) == Duplicate("duplicate", "p1234", 1.0)
    words = questions[5678].split()
    words[20] = "zzzzzz"
    paraphrase = index.check_and_add("paraphrase", " ".join(words))
    assert paraphrase is not None and (paraphrase.kind, paraphrase.of) == ("near_duplicate", "p5678")
    assert index.check_and_add("new", _random_question(rng, vocabulary)) is None
    assert index.size == 10_001


def test_a_shared_band_bucket_keeps_every_example(tmp_path: Path) -> None:
    """Questions on one long preamble often share a band's bucket. The bucket must list every example
    in it, not the first: a near duplicate of a later one would go unseen. (Reads the table: which
    buckets are shared cannot be arranged from the text.)"""
    rng = random.Random(5)
    vocabulary = _vocabulary(rng, 3000)
    preamble = "Read the list of words below carefully and then answer the question that follows it."
    with DuplicateIndex(tmp_path) as duplicates:
        for i in range(300):
            duplicates.check_and_add(f"p{i}", f"{preamble} {_random_question(rng, vocabulary, 4)}")
        entries, keys = duplicates._db.execute(
            "SELECT count(*), count(DISTINCT band_key) FROM band"
        ).fetchone()
        bands, _ = lsh_bands(0.8, 128)
        assert keys < entries == bands * duplicates.size


def test_a_shared_band_alone_is_not_a_near_duplicate(tmp_path: Path) -> None:
    """At 0.5 a band is 5 rows, so questions on one preamble (similarity about 0.2) share bands now
    and then; each such candidate must be checked against the threshold, and none reaches it."""
    rng = random.Random(3)
    vocabulary = _vocabulary(rng, 3000)
    preamble = "Read the list of words below and answer the question that follows it."
    with DuplicateIndex(tmp_path, near_threshold=0.5) as duplicates:
        for i in range(300):
            question = f"{preamble} {_random_question(rng, vocabulary, 25)}"
            assert duplicates.check_and_add(f"p{i}", question) is None
        shared = duplicates._db.execute(
            "SELECT count(*) FROM (SELECT band_key FROM band GROUP BY band_key HAVING count(*) > 1)"
        ).fetchone()[0]
    assert shared > 0


@pytest.mark.parametrize("count", [1, 7, 511, 512, 513, 1500])
def test_signatures_are_exact_minima_of_the_multiply_add_shift_hashes(count: int) -> None:
    """The numpy arithmetic equals min(((a*x + b) mod 2**64) >> 32) in Python integers, over the 32-bit
    folds of the shingle ids, with a (made odd) and b drawn from Generator(seed), across chunks."""
    generator = np.random.default_rng(3)
    a = [value | 1 for value in generator.integers(0, 1 << 64, size=16, dtype=np.uint64).tolist()]
    b = generator.integers(0, 1 << 64, size=16, dtype=np.uint64).tolist()
    rng = random.Random(count)
    edges = [0, (1 << 64) - 1, 1 << 32, (1 << 32) - 1, 1 << 63]
    shingles = [*edges, *(rng.getrandbits(64) for _ in range(count))][:count]
    keys = [(x ^ (x >> 32)) & 0xFFFF_FFFF for x in shingles]
    expected = [min(((a[i] * key + b[i]) % (1 << 64)) >> 32 for key in keys) for i in range(16)]
    signature = dedup._MinHash(16, seed=3).signature(np.array(shingles, dtype=np.uint64))
    assert signature.dtype == np.uint32
    assert signature.tolist() == expected


def _closed_form_error_mass(threshold: Decimal, bands: int, rows: int) -> Decimal:
    """Half the false-positive plus half the false-negative mass, from the binomial expansion of
    (1 - s**rows)**bands integrated term by term; 100 digits outlast the alternating sum's cancellation."""
    false_positive, false_negative = threshold, Decimal(0)
    for k in range(bands + 1):
        term = Decimal((-1) ** k * comb(bands, k)) / (rows * k + 1)
        power = threshold ** (rows * k + 1)
        false_positive -= term * power
        false_negative += term * (1 - power)
    return (false_positive + false_negative) / 2


@pytest.mark.parametrize(("threshold", "permutations"), [(0.8, 128), (0.5, 64), (0.9, 32)])
def test_bands_minimise_the_error_integrated_in_closed_form(threshold: float, permutations: int) -> None:
    with localcontext(prec=100):
        errors = {
            (bands, rows): _closed_form_error_mass(Decimal(threshold), bands, rows)
            for bands in range(1, permutations + 1)
            for rows in range(1, permutations // bands + 1)
        }
    assert lsh_bands(threshold, permutations) == min(errors, key=errors.__getitem__)


def test_bands_for_the_default_threshold() -> None:
    assert lsh_bands(0.8, 128) == (9, 13)  # as datasketch's MinHashLSH(threshold=0.8, num_perm=128)


# Properties. Words are ASCII and a few Latin letters: casefold(upper(c)) == casefold(c) for these
# (not for every letter: Turkish dotless ı upper-cases to I, which folds to i).
word = st.text(alphabet=string.ascii_letters + string.digits + "éüßñ", min_size=1, max_size=8)
# Punctuation only: arithmetic signs are words to the index ("12 + 45" is not "12 - 45").
# (after a space, so that "0" and "0" never fuse into the number "0.0").
separator = st.text(alphabet=" \t\n.,;:!?()[]'\"", max_size=3).map(lambda gap: " " + gap)


@st.composite
def respelled(draw: st.DrawFn, words: list[str]) -> str:
    """The same words with other case, whitespace and punctuation around them."""
    cased = [w.upper() if draw(st.booleans()) else w.lower() if draw(st.booleans()) else w for w in words]
    gaps = [draw(separator) for _ in words]
    edge = draw(st.text(alphabet=" .?!\n", max_size=3))
    return edge + "".join(w + gap for w, gap in zip(cased, gaps, strict=True))


@FAST
@given(st.lists(word, min_size=1, max_size=30), st.data())
def test_any_respelling_is_an_exact_duplicate(words: list[str], data: st.DataObject) -> None:
    original = " ".join(words)
    variant = data.draw(respelled(words))
    with tempfile.TemporaryDirectory() as directory, DuplicateIndex(Path(directory)) as duplicates:
        assert duplicates.check_and_add("original", original) is None
        assert duplicates.check_and_add("variant", variant) == Duplicate("duplicate", "original", 1.0)


BASES = [
    QUESTION,
    "Two trains leave the same station an hour apart, the first at sixty and the second at eighty "
    "miles an hour along the same straight track. After how many hours does the second train catch "
    "up with the first one, and how far from the station are they then?",
    "What is 7 + 5?",
]


@st.composite
def question_streams(draw: st.DrawFn) -> list[str]:
    """Questions with repeats, respellings, one-word edits and new text, as a problem set has."""
    stream: list[str] = []
    for _ in range(draw(st.integers(1, 25))):
        kind = draw(st.sampled_from(["base", "respelled", "edited", "new", "earlier"]))
        if kind == "earlier" and stream:
            stream.append(draw(st.sampled_from(stream)))
        elif kind == "new":
            stream.append(" ".join(draw(st.lists(word, min_size=1, max_size=40))))
        else:
            words = draw(st.sampled_from(BASES)).split()
            if kind == "respelled":
                stream.append(draw(respelled(words)))
            elif kind == "edited":
                words[draw(st.integers(0, len(words) - 1))] = draw(word)
                stream.append(" ".join(words))
            else:
                stream.append(" ".join(words))
    return stream


def _decisions(stream: list[str], near_threshold: float | None = 0.8) -> list[Duplicate | None]:
    with (
        tempfile.TemporaryDirectory() as directory,
        DuplicateIndex(Path(directory), near_threshold=near_threshold) as index,
    ):
        return [index.check_and_add(f"p{i}", question) for i, question in enumerate(stream)]


@FAST
@given(question_streams())
def test_the_same_stream_gets_the_same_decisions(stream: list[str]) -> None:
    assert _decisions(stream) == _decisions(stream)


@FAST
@given(question_streams(), st.sampled_from([0.8, None]))
def test_a_first_occurrence_is_never_a_duplicate(stream: list[str], near: float | None) -> None:
    decisions = _decisions(stream, near_threshold=near)
    remembered: dict[str, str] = {}  # key -> normalised text
    for i, (question, decision) in enumerate(zip(stream, decisions, strict=True)):
        text = " ".join(question_words(question))
        if decision is None:
            assert text not in remembered.values()
            remembered[f"p{i}"] = text
            continue
        assert decision.of in remembered
        if decision.kind == "duplicate":
            assert remembered[decision.of] == text and decision.similarity == 1.0
        else:
            assert near is not None and text not in remembered.values()
            assert near <= decision.similarity <= 1.0
        if near is None:
            assert decision.kind == "duplicate"
    assert decisions[0] is None


_OTHER_PROCESS = """
import json, sys, tempfile
from pathlib import Path
from synthtune.quality.dedup import DuplicateIndex, stable_hash64
stream = json.load(sys.stdin)
with tempfile.TemporaryDirectory() as directory, DuplicateIndex(Path(directory)) as index:
    decisions = [index.check_and_add(f"p{i}", q) for i, q in enumerate(stream)]
found = [d and [d.kind, d.of, d.similarity] for d in decisions]
print(json.dumps([found, [stable_hash64(q) for q in stream]]))
"""


def test_decisions_and_hashes_do_not_depend_on_the_process() -> None:
    """No salted hash anywhere: another process, with another PYTHONHASHSEED, agrees on every decision
    and every text hash."""
    stream = [BASES[0], BASES[1], BASES[0].replace("river", "road"), BASES[1].replace("eighty", "ninety")]
    decisions = [d and [d.kind, d.of, d.similarity] for d in _decisions(stream)]
    assert decisions[2] is not None and decisions[3] is not None
    here = [decisions, [stable_hash64(q) for q in stream]]
    for hash_seed in ("1", "2"):
        result = subprocess.run(
            [sys.executable, "-c", _OTHER_PROCESS],
            input=json.dumps(stream),
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(LAYER)},
        )
        assert json.loads(result.stdout) == here
