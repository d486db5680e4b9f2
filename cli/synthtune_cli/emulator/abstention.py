"""When a simulated model says "I don't know" instead of guessing, and how the emulator recognises it.

A model abstains only on a question whose answer draw came out wrong (it does not know it), with a
probability that depends on the prompt and on what fine-tuning taught it (`SimulatedModel.abstention_rate`).
The matcher is the emulator's own, deliberately independent of synthtune's: the emulator plays the outside
world, so a bug in the pipeline's abstention detector must not be mirrored here.
"""

from __future__ import annotations

import re
import unicodedata

ABSTENTION_ANSWER = "I don't know"

BASE_ABSTENTION_RATE = 0.05
"""How often a base model admits it does not know, when nothing invites it to."""

INVITED_ABSTENTION_RATE = 0.25
"""How often a base model admits it does not know when its system prompt says it may ("I don't know")."""

_ABSTENTIONS = re.compile(
    r"^(?:"
    r"(?:i )?(?:do not|don't|dont) know(?: the answer| this| that)?"
    r"|(?:i am|i'm|im) not (?:sure|certain)(?: of the answer)?"
    r"|not sure|unknown|(?:i have )?no idea"
    r"|(?:i )?(?:cannot|can't|cant|am unable to) (?:answer|say|tell)(?: this| that)?"
    r")$"
)
_NOT_LETTERS = re.compile(r"[^a-z' ]+")
_SPACES = re.compile(r"\s+")


def _phrase(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold().replace("\u2019", "'").replace("`", "'")
    return _SPACES.sub(" ", _NOT_LETTERS.sub(" ", folded)).strip(" '")


def is_abstention(answer: str) -> bool:
    """Whether a final answer declines to answer: "I don't know" and close variants ("I do not know.",
    "Unknown", "I'm not sure", "I cannot answer this")."""
    return bool(_ABSTENTIONS.match(_phrase(answer)))


def invites_abstention(system_prompt: str) -> bool:
    """Whether a system prompt tells the model it may answer "I don't know"."""
    phrase = _phrase(system_prompt)
    return "i don't know" in phrase or "i do not know" in phrase
