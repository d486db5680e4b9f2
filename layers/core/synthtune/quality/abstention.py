"""Did the model say it does not know? An abstention is not a wrong answer: it is honest, not hallucinated.

The benchmark counts it apart (`abstained`), so a model that declines when unsure is told from one
that makes something up. The matcher is conservative, since a false abstention would hide a wrong
answer: the whole final answer (or, for a reply without one, the whole reply or its last line) must
be a statement of not knowing —

    "I don't know", "I do not know the answer", "Unknown", "Not sure.", "I'm not sure",
    "Cannot be determined from the given information", "It is impossible to determine",
    "Insufficient information", "Not enough information to answer", "I have no idea"

— optionally with an apology or a hedge before it ("Sorry, ...", "Honestly, ...") and a reason after it
("... from the information given", "... without more data", "... for this question"). An answer that
only mentions such words — "the unknown is 5", "I don't know how, but it's 42", "x cannot be negative",
"Not sure, but probably 12" — is an answer, graded as one. Whether an answer is right is for grading
alone: `correct` always wins over this (a reference can itself be "unknown").
"""

from __future__ import annotations

import re
import unicodedata

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
_WRAPPING = " \t\r\n*_\"'“”«»()[]"
_TRAILING = ".!?…;:,"


_PIECES = {
    "i_am": r"(?:i\s*'\s*m\s+|i\s+am\s+|im\s+)",
    "cannot": r"(?:cannot|can'?t|can\s+not|could\s+not|couldn'?t)",
    "find_out": r"(?:determine|answer|tell|say|know|calculate|compute|work\s+out)",
    "what": r"(?:\s+(?:(?:this|that|the)\s+(?:question|problem)|this|that|it"
    r"|the\s+(?:answer|result|value)))?",
    "information": r"(?:information|info|data|context|details)",
}
_ABSTENTION = re.compile(
    r"""
    (?: (?: sorry | i'?m\s+sorry | i\s+am\s+sorry | unfortunately | honestly | to\s+be\s+honest | apologies )
        \s* [,:;.!-]? \s* (?:but\s+)? )?                                  # Sorry, (but) ...
    (?:
        (?:i\s+)? (?:do\s+not|don'?t|dont) \s+ know {what}                # I don't know (the answer)
      | {i_am}? (?:not\s+sure|not\s+certain|unsure|uncertain)             # I'm not sure (about it)
        (?:\s+(?:of|about)\s+(?:the\s+answer|this|that|it))?
      | (?:(?:the\s+)?answer\s+is\s+)? (?:unknown|unknowable|undetermined|not\s+known)
      | (?:(?:it|this|that|the\s+answer)\s+)? {cannot} \s+ be \s+         # (It) cannot be determined
        (?:determined|answered|known|calculated|computed|found|said)
      | (?:{i_am}|i\s+)? (?:{cannot}|unable\s+to|not\s+able\s+to)         # I cannot determine (this)
        \s+ {find_out} {what}
      | (?:it\s+is\s+|it'?s\s+)? (?:not\s+possible|impossible)            # It is impossible to tell
        \s+ to \s+ {find_out} {what}
      | (?:there\s+is\s+|there'?s\s+)? (?:insufficient|not\s+enough|too\s+little)
        \s+ {information} (?:\s+ to \s+ {find_out} {what})?               # Not enough information (to ...)
      | (?:the\s+)? (?:information|data) \s+ (?:is|are) \s+ (?:insufficient|not\s+enough)
      | (?:i\s+have\s+)? no \s+ idea                                      # No idea
    )
    (?: \s* ,? \s*
        (?: (?:from|with|given|based\s+on|using) \s+ (?:the\s+|this\s+)?  # ... from the given information
            (?:(?:given|provided|available)\s+)? (?:{information}|question|problem|facts)
            (?:\s+(?:given|provided|available))?
          | without \s+ (?:more|further|additional|enough|sufficient) \s+ {information}
          | (?:to|for) \s+ (?:this|the|that) \s+ (?:question|problem)      # ... to this question
          | for \s+ (?:sure|certain)
          | (?:with\s+)? (?:any\s+)? certainty
        )
    )?
    """.format(**_PIECES),
    re.IGNORECASE | re.VERBOSE,
)


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES)
    text = " ".join(text.split())
    previous = None
    while previous != text:
        previous = text
        text = text.strip(_WRAPPING).rstrip(_TRAILING)
    return text


def is_abstention(text: str | None) -> bool:
    """Whether `text`, as a whole, says the model does not know (see the module's docstring)."""
    if not text:
        return False
    normalised = _normalise(text)
    return bool(normalised) and _ABSTENTION.fullmatch(normalised) is not None


def reply_abstains(reply: str | None, final_answer: str | None) -> bool:
    """Whether a reply abstained: its final answer says it does not know, or — a reply with no final
    answer — the whole reply or its last line does."""
    if final_answer is not None:
        return is_abstention(final_answer)
    if not reply or not reply.strip():
        return False
    lines = [line for line in reply.strip().splitlines() if line.strip()]
    return is_abstention(reply) or is_abstention(lines[-1])
