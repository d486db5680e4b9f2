"""Properties of answer verification that hold for any number, text or option, not only the listed ones."""

from __future__ import annotations

import string
from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from synthtune.quality.grading import answers_match, normalise_text, parse_choices

FAST = settings(max_examples=150, deadline=None)

# Answers as models write them: numbers with units and currency, LaTeX, prefixes, letters, words.
ANSWER_PARTS = [
    "1,000", "1000.0", "1 000", "1e3", "3/4", "0.75", "-2", "−2", "\\frac{3}{4}", "\\boxed{12}", "x = 5",
    "1 1/2", "$12", "12 dollars", "USD 12", "€5", "12 km", "12 kilometres", "12 m", "75%", "75 percent",
    "3 apples", "twelve", "twenty-one", "Answer: ", "The answer is ", "**", "(B)", "b)", "Option B", "A",
    "the", "an echo", "Paris", ".", " ", "0.333", "1/3", "0.48", "0.475", "°C", "two thirds", "million",
]  # fmt: skip
answer_like = st.one_of(
    st.text(max_size=30),
    st.lists(st.sampled_from(ANSWER_PARTS), min_size=1, max_size=4).map("".join),
    st.lists(st.sampled_from(ANSWER_PARTS), min_size=1, max_size=3).map(" ".join),
)


@FAST
@given(answer_like)
def test_normalising_twice_changes_nothing(answer: str) -> None:
    once = normalise_text(answer)
    assert normalise_text(once) == once


@FAST
@given(answer_like, answer_like)
def test_matching_is_symmetric(reference: str, candidate: str) -> None:
    assert answers_match(reference, candidate) == answers_match(candidate, reference)
    choices = {"A": "12", "B": "Paris", "C": "3/4"}
    forward = answers_match(reference, candidate, choices=choices)
    assert forward == answers_match(candidate, reference, choices=choices)


def _grouped(digits: str, separator: str) -> str:
    head = len(digits) % 3 or 3
    return separator.join([digits[:head], *(digits[i : i + 3] for i in range(head, len(digits), 3))])


def _integer_renderings(value: int) -> list[str]:
    sign, digits = ("-" if value < 0 else ""), str(abs(value))
    forms = [
        f"{sign}{digits}",
        f"{sign}{_grouped(digits, ',')}",
        f"{sign}{_grouped(digits, ' ')}",
        f"{sign}{_grouped(digits, chr(0x2009))}",  # thin space
        f"{sign}{digits}.0",
        f"{sign}{_grouped(digits, ',')}.00",
        f"{'−' if sign else ''}{digits}",
        f"{sign}${_grouped(digits, ',')}",
        f"{sign}{digits} dollars",
        f"{sign}{digits} km",
        f"{sign}{digits} kilometres",
        f"\\boxed{{{sign}{digits}}}",
        f"x = {sign}{digits}",
        f"The answer is {sign}{digits}.",
    ]
    if value:
        mantissa = digits.rstrip("0")
        forms.append(f"{sign}{mantissa[0]}.{mantissa[1:] or '0'}e{len(digits) - 1}")
    return forms


def _fraction_renderings(value: Fraction) -> list[str]:
    sign, magnitude = ("-" if value < 0 else ""), abs(value)
    p, q = magnitude.numerator, magnitude.denominator
    forms = [
        f"{sign}{p}/{q}",
        f"{sign}{3 * p}/{3 * q}",
        f"{sign}\\frac{{{p}}}{{{q}}}",
        f"${sign}\\dfrac{{{p}}}{{{q}}}$",
    ]
    if q > 1 and p > q:
        forms.append(f"{sign}{p // q} {p % q}/{q}")  # a mixed number
    if q == 1:
        forms += _integer_renderings(int(value))
    elif 10**12 % q == 0:  # an exact decimal exists
        exact = Decimal(p) / Decimal(q)
        forms += [f"{sign}{exact}", f"{sign}{exact}00", f"{sign}${exact}", f"{sign}{exact} kg"]
    return forms


def _decimal_renderings(value: Decimal) -> list[str]:
    text = f"{value:f}"
    sign, magnitude = ("-", text[1:]) if text.startswith("-") else ("", text)
    whole, _, places = magnitude.partition(".")
    grouped = _grouped(whole, ",") + (f".{places}" if places else "")
    fraction = Fraction(value)
    return [
        text,
        f"{text}0" if places else f"{text}.0",
        f"{sign}{grouped}",
        f"{sign}${grouped}",
        f"{text} km",
        f"{text}%",
        f"{fraction.numerator}/{fraction.denominator}",
    ]


numbers = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12).map(Fraction),
    st.fractions(min_value=-1000, max_value=1000, max_denominator=1000),
    st.decimals(min_value=-(10**6), max_value=10**6, places=3, allow_nan=False, allow_infinity=False).map(
        Fraction
    ),
)


def _renderings(value: Fraction) -> list[str]:
    if value.denominator == 1:
        return _integer_renderings(int(value))
    if 1000 % value.denominator == 0:
        return _decimal_renderings(
            Decimal(value.numerator) / Decimal(value.denominator)
        ) + _fraction_renderings(value)
    return _fraction_renderings(value)


@FAST
@given(numbers)
def test_a_number_matches_itself_in_any_format_and_not_one_more(value: Fraction) -> None:
    renderings, one_more = _renderings(value), _renderings(value + 1)
    plain = renderings[0]
    for rendering in renderings:
        assert answers_match(plain, rendering) == "numeric", (plain, rendering)
    for rendering in renderings:
        for other in (one_more[0], *one_more[len(one_more) // 2 :]):
            assert answers_match(rendering, other) == "mismatch", (rendering, other)


words = st.text(alphabet=string.ascii_letters, min_size=1, max_size=8).filter(
    lambda word: word.casefold() not in {"answer", "is", "final"}
)


@st.composite
def restyled(draw: st.DrawFn, phrase: list[str]) -> str:
    """The same words with another case, spacing, punctuation between words and quotes around them."""
    spaces = st.sampled_from([" ", "  ", "\t", " \n "])
    pieces = []
    for word in phrase:
        cased = "".join(draw(st.sampled_from([c.lower(), c.upper()])) for c in word)
        pieces.append(cased + draw(st.sampled_from(["", "", ",", ";", "!", "?"])))
    text = "".join(piece + draw(spaces) for piece in pieces[:-1]) + pieces[-1]
    opening, closing = draw(
        st.sampled_from([("", ""), ('"', '"'), ("“", "”"), ("**", "**"), ("`", "`"), ("'", "'")])
    )
    return draw(spaces) + opening + text + closing + draw(st.sampled_from(["", ".", "!", " "]))


@FAST
@given(st.data(), st.lists(words, min_size=1, max_size=5))
def test_text_matches_under_case_spacing_punctuation_and_quotes(
    data: st.DataObject, phrase: list[str]
) -> None:
    reference = " ".join(phrase)
    candidate = data.draw(restyled(phrase))
    assert answers_match(reference, candidate) != "mismatch", (reference, candidate)


option_texts = st.lists(
    st.one_of(
        st.integers(min_value=0, max_value=999).map(str), st.text(alphabet="xyz", min_size=3, max_size=6)
    ),
    min_size=2,
    max_size=6,
    unique=True,
)


# How a model may name option {l} whose text is {t}.
LETTER_FORMS = [
    "{l}", "({l})", "{l})", "{l}.", "Option {l}", "Choice ({l})", "{l}) {t}", "({l}) {t}", "{l}: {t}",
    "The answer is ({l}).", "Answer: {l}", "**{l}**", "\\boxed{{{l}}}", "{t}",
]  # fmt: skip


@st.composite
def letter_rendering(draw: st.DrawFn, letter: str, option: str) -> str:
    case = draw(st.sampled_from([str.upper, str.lower]))
    form = draw(st.sampled_from(LETTER_FORMS))
    return form.format(l=case(letter), t=option)


@FAST
@given(st.data(), option_texts)
def test_a_chosen_option_matches_its_letter_and_text_and_no_other(
    data: st.DataObject, texts: list[str]
) -> None:
    letters = string.ascii_uppercase[: len(texts)]
    style = data.draw(st.sampled_from(["{l}) {t}", "({l}) {t}", "{l}. {t}", "{l}: {t}"]))
    joiner = data.draw(st.sampled_from(["\n", " ", "  "]))
    question = (
        "Which one?"
        + joiner
        + joiner.join(style.format(l=letter, t=text) for letter, text in zip(letters, texts, strict=True))
    )
    choices = parse_choices(question)
    assert choices == dict(zip(letters, texts, strict=True))
    index = data.draw(st.integers(min_value=0, max_value=len(texts) - 1))
    candidate = data.draw(letter_rendering(letters[index], texts[index]))
    assert answers_match(letters[index], candidate, choices=choices) == "choice", candidate
    assert answers_match(texts[index], candidate, choices=choices) == "choice", candidate
    for other, other_text in zip(letters, texts, strict=True):
        if other != letters[index]:
            assert answers_match(other, candidate, choices=choices) == "mismatch", (other, candidate)
            assert answers_match(other_text, candidate, choices=choices) == "mismatch", (
                other_text,
                candidate,
            )
