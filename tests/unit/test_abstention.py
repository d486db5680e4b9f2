"""Telling "I don't know" from a wrong answer (quality.abstention): conservative, whole statements only."""

from __future__ import annotations

import pytest

from synthtune.quality.abstention import is_abstention, reply_abstains


@pytest.mark.parametrize(
    "text",
    [
        "I don't know",
        "I do not know.",
        "I don\u2019t know the answer.",
        "I dont know",
        "**Unknown**",
        "unknown",
        "Unknown.",
        "(unknown)",
        "The answer is unknown",
        "Not known",
        "Not sure",
        "I'm not sure.",
        "im not sure",
        "I am not sure about this",
        "Honestly, I'm not sure",
        "uncertain",
        "Cannot be determined",
        "It cannot be determined from the given information.",
        "cannot determine",
        "I cannot determine the answer",
        "I'm unable to answer this.",
        "I am unable to determine this question",
        "I can't say for sure",
        "It is impossible to tell",
        "Insufficient information",
        "insufficient information to answer this question",
        "There is not enough information to determine the answer.",
        "not enough info",
        "The information is insufficient",
        "I have no idea",
        "No idea!",
        "Sorry, I don't know.",
        "I'm sorry, but I cannot determine this without more information.",
        "  I   DON'T   KNOW  ",
    ],
)
def test_statements_of_not_knowing_are_abstentions(text: str) -> None:
    assert is_abstention(text)


@pytest.mark.parametrize(
    "text",
    [
        "42",
        "Paris",
        "No",
        "None",
        "N/A",
        "impossible",
        "undefined",
        "indeterminate",
        "no solution",
        "Known",
        "Sure",
        "I know",
        "",
        "   ",
        # Answers that mention the words, about the problem
        "the unknown is 5",
        "The unknown number is 7",
        "x = 5, where x was the unknown",
        "unknowns: 2",
        "unknown soldier",
        "Unknown Pleasures",
        "x cannot be negative",
        "It is not possible",
        "Cannot",
        "The data is 5",
        # Hedged answers are answers
        "I don't know how, but it's 42",
        "Not sure, but probably 12",
        "12 (not sure)",
        "I don't know what 'flurb' means, so: 3",
    ],
)
def test_answers_that_only_mention_not_knowing_are_not_abstentions(text: str) -> None:
    assert not is_abstention(text)


def test_none_is_not_an_abstention() -> None:
    assert not is_abstention(None)


@pytest.mark.parametrize(
    ("reply", "final_answer", "abstains"),
    [
        # The final answer decides when there is one.
        ("Step 1: no data.\nAnswer: I don't know", "I don't know", True),
        ("I am not sure.\nStep 1: 3 + 4 = 7\nAnswer: 7", "7", False),
        ("Step 1\nAnswer: unknown", "unknown", True),
        # Without one: the whole reply, or its last line.
        ("I don't know.", None, True),
        ("Let me think.\nThe question gives no numbers.\nI cannot determine the answer.", None, True),
        ("The unknown is x.\nx is 5", None, False),
        ("I'm not sure. The speed depends on the wind, which the problem does not give, so", None, False),
        ("", None, False),
        (None, None, False),
    ],
)
def test_a_reply_abstains_by_its_final_answer_or_else_its_last_line(
    reply: str | None, final_answer: str | None, abstains: bool
) -> None:
    assert reply_abstains(reply, final_answer) is abstains
