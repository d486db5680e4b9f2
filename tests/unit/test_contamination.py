"""Benchmark decontamination: training questions sharing a run of n words with a held-out question."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from synthtune.quality.contamination import Contamination, ContaminationIndex, _GramHasher

FAST = settings(max_examples=150, deadline=None)

HELD_OUT = (
    "Natalia sold clips to forty-eight of her friends in April, and then she sold half as many clips in "
    "May. How many clips did Natalia sell altogether in April and May?"
)  # 30 words
OTHER = "Weng earns twelve dollars an hour for babysitting. Yesterday she did fifty minutes of babysitting."


@pytest.fixture
def holdout() -> ContaminationIndex:
    return ContaminationIndex(
        [("gsm-1", HELD_OUT), ("gsm-2", OTHER), ("short", "Simplify sqrt(72)."), ("x", "?!")]
    )


def test_thirteen_shared_words_contaminate(holdout: ContaminationIndex) -> None:
    training = (
        "Tell me: in April, and then she sold half as many clips in May. How many clips did Natalia sell "
        "in total?"
    )
    assert holdout.match(training) == Contamination(
        holdout_id="gsm-1", ngram="in april and then she sold half as many clips in may how"
    )


def test_case_and_punctuation_do_not_hide_a_shared_run(holdout: ContaminationIndex) -> None:
    assert holdout.match(HELD_OUT.upper().replace(" ", " ... ")) is not None
    found = holdout.match(
        "WENG earns twelve dollars, an hour, for BABYSITTING; yesterday she did fifty minutes"
    )
    assert found is not None and found.holdout_id == "gsm-2"


def test_twelve_shared_words_are_not_enough(holdout: ContaminationIndex) -> None:
    assert holdout.match("Dana sold clips to forty-eight of her friends in April, and then rested.") is None


def test_a_short_held_out_question_counts_whole_and_contiguous(holdout: ContaminationIndex) -> None:
    assert holdout.match("First, simplify sqrt(72), then square it.") == Contamination(
        "short", "simplify sqrt 72"
    )
    assert holdout.match("Simplify the expression sqrt(72).") is None
    assert holdout.match("Simplify sqrt(7)") is None


def test_questions_without_words_are_skipped(holdout: ContaminationIndex) -> None:
    assert holdout.size == 3
    assert holdout.match("?!") is None
    assert holdout.match("") is None
    assert ContaminationIndex([]).match(HELD_OUT) is None


def test_a_hash_hit_is_confirmed_against_the_words(monkeypatch: pytest.MonkeyPatch) -> None:
    """With every run hashing alike, only the words decide: no false hit, and no real one lost."""

    def one_hash(self: _GramHasher, words: list[str], lengths: NDArray[np.uint64]) -> NDArray[np.uint64]:
        return np.zeros((len(lengths), len(words)), dtype=np.uint64)

    monkeypatch.setattr(_GramHasher, "keys", one_hash)
    index = ContaminationIndex([("gsm-1", HELD_OUT), ("gsm-2", OTHER), ("short", "Simplify sqrt(72).")])
    assert (
        index.match("A completely different question about trains leaving a station at noon today.") is None
    )
    found = index.match(f"Before that: {OTHER}")
    assert found is not None and found.holdout_id == "gsm-2"
    assert index.match("Now simplify sqrt(72) please") == Contamination("short", "simplify sqrt 72")


def test_another_n() -> None:
    index = ContaminationIndex([("gsm-2", OTHER)], n=4)
    assert index.match("I also earn twelve dollars an hour") == Contamination(
        "gsm-2", "twelve dollars an hour"
    )
    assert index.match("twelve dollars per hour") is None
    with pytest.raises(ValueError, match="at least 1"):
        ContaminationIndex([], n=0)


# Held-out words and filler words come from disjoint vocabularies, so the only shared run is the one
# the test puts there.
HELD_OUT_WORDS = [f"{stem}{i}" for stem in ("alpha", "beta", "gamma", "delta") for i in range(10)]
FILLER_WORDS = ["the", "a", "of", "and", "train", "apple", "seven", "why", "x", "pi"]
held_out_questions = st.lists(st.sampled_from(HELD_OUT_WORDS), min_size=14, max_size=60)
filler = st.lists(st.sampled_from(FILLER_WORDS), max_size=20)
spacing = st.sampled_from([" ", "  ", ", ", "; ", " — ", "\n"])  # " - " would be a minus sign


def _write(words: list[str], gap: str, shout: bool) -> str:
    text = gap.join(words)
    return text.upper() if shout else text


@FAST
@given(held_out_questions, st.data(), filler, filler, spacing, st.booleans())
def test_any_embedded_thirteen_word_run_is_caught(
    held_out: list[str], data: st.DataObject, before: list[str], after: list[str], gap: str, shout: bool
) -> None:
    start = data.draw(st.integers(0, len(held_out) - 13))
    run = held_out[start : start + 13]
    index = ContaminationIndex([("other", "unrelated words only here"), ("target", " ".join(held_out))])
    assert index.match(_write([*before, *run, *after], gap, shout)) == Contamination("target", " ".join(run))


@FAST
@given(held_out_questions, st.data(), filler, filler, spacing)
def test_a_twelve_word_run_is_not_caught(
    held_out: list[str], data: st.DataObject, before: list[str], after: list[str], gap: str
) -> None:
    start = data.draw(st.integers(0, len(held_out) - 12))
    run = held_out[start : start + 12]
    index = ContaminationIndex([("target", " ".join(held_out))])
    assert index.match(gap.join([*before, *run, *after])) is None


@FAST
@given(st.lists(st.sampled_from(HELD_OUT_WORDS), min_size=1, max_size=12), filler, filler, st.data())
def test_a_short_held_out_question_is_caught_only_whole(
    held_out: list[str], before: list[str], after: list[str], data: st.DataObject
) -> None:
    index = ContaminationIndex([("short", " ".join(held_out))])
    assert index.match(" ".join([*before, *held_out, *after])) == Contamination("short", " ".join(held_out))
    if len(held_out) > 1:
        cut = data.draw(st.integers(1, len(held_out) - 1))
        broken = [*held_out[:cut], data.draw(st.sampled_from(FILLER_WORDS)), *held_out[cut:]]
        assert index.match(" ".join([*before, *broken, *after])) is None


def _contains(words: list[str], run: list[str]) -> bool:
    return any(words[i : i + len(run)] == run for i in range(len(words) - len(run) + 1))


@FAST
@given(
    st.lists(st.lists(st.sampled_from("abcd"), max_size=8), min_size=1, max_size=5),
    st.lists(st.sampled_from("abcd"), max_size=30),
    st.integers(1, 5),
)
def test_agrees_with_a_brute_force_search(holdout: list[list[str]], training: list[str], n: int) -> None:
    """On a four-word vocabulary runs overlap all the time; the index finds one exactly when there is one."""
    index = ContaminationIndex([(f"h{i}", " ".join(words)) for i, words in enumerate(holdout)], n=n)
    grams = {
        f"h{i}": [words[j : j + min(n, len(words))] for j in range(max(len(words) - n, 0) + 1)]
        for i, words in enumerate(holdout)
        if words
    }
    found = index.match(" ".join(training))
    assert (found is not None) == any(_contains(training, g) for gs in grams.values() for g in gs)
    if found is not None:
        assert found.ngram.split() in grams[found.holdout_id]
        assert _contains(training, found.ngram.split())
