"""What an error's text may carry out of a function: no secret, and no more than a few kilobytes.

Provider errors quote what they were sent, keys included: even OpenAI's masked "Incorrect API key
provided: sk-abc***********xyz" gives a key's first and last characters away. And whatever a Lambda
raises becomes a Step Functions cause, then a run record's `cause`, a log line and a report. So every
such text passes through `redact`, the one redaction, where errors leave the providers (`SynthtuneError`
redacts its own message), where a handler's error leaves the function, where a cause is recorded and in
every log line.

Size matters as much: a message that echoes user data (25 bad rows of 40,000-character values) can pass
the 256 KB Step Functions allows a state, and the execution then fails with `States.DataLimitExceeded`,
which no Catch catches (not even `States.ALL`). `bounded` cuts a text to a size that fits anywhere,
saying how much was cut and where the rest is.

The patterns are hand-written: the secret scanners on PyPI (detect-secrets, trufflehog's rules) find
secrets in files to report them, not in a sentence to mask them, and know nothing of masked keys.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

REDACTED = "[redacted]"

MAX_CAUSE_CHARS = 4_096
"""A failure's cause as the run record, the report and the execution keep it (the full text is in S3)."""
MAX_ERROR_MESSAGE_CHARS = 8_192
"""A Lambda's error message: it becomes the Catch's Cause, inside the state (256 KB in all)."""
MAX_PROVIDER_MESSAGE_CHARS = 2_048
"""A provider's own account of a failed job or deployment, carried in the state and on the record."""
MAX_QUOTED_CHARS = 80
"""A value from the user's data quoted in an error message."""

_KEY_CHARACTERS = r"[A-Za-z0-9_\-*]"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # OpenAI, Anthropic and most "sk-" keys, whole or masked: sk-..., sk-proj-..., sk-abc****xyz.
    (re.compile(rf"(?<![A-Za-z0-9_])sk-{_KEY_CHARACTERS}{{3,}}"), f"sk-{REDACTED}"),
    # AWS access key ids (long-term AKIA, temporary ASIA, ...), whole or masked.
    (re.compile(r"(?<![A-Z0-9])(AKIA|ASIA|ABIA|ACCA)[A-Z0-9*]{12,}(?![A-Z0-9])"), rf"\1{REDACTED}"),
    # Amazon Bedrock API keys.
    (re.compile(r"(?<![A-Za-z0-9])ABSK[A-Za-z0-9+/=]{16,}"), f"ABSK{REDACTED}"),
    # Bearer tokens, as an Authorization header or quoted in a message.
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/*]+=*"), rf"\1 {REDACTED}"),
    # A named credential and its value: api-key: ..., "api_key": "...", aws_secret_access_key=...
    (
        re.compile(
            r"(?i)\b(x-api-key|api[-_]?key|authorization|access[-_]?token|client[-_]?secret|"
            r"aws[-_]?secret[-_]?access[-_]?key|secret[-_]?access[-_]?key|password)"
            r"(\\?[\"']?\s*[:=]\s*\\?[\"']?)(?!\[redacted\]|bearer\s)[^\s\"'\\,;&}]+"
        ),
        rf"\1\2{REDACTED}",
    ),
    # Credentials in a URL: https://user:password@host/.
    (re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+@"), f"{REDACTED}@"),
)


def redact(text: str) -> str:
    """`text` with every key, token and credential it quotes replaced by `[redacted]`."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def bounded(text: str, limit: int, *, rest: str | None = None) -> str:
    """`text` if it fits in `limit` characters; else its beginning and end around a note of what was cut
    and, if `rest` says, where the whole of it is."""
    if len(text) <= limit:
        return text
    where = f"; the full text is {rest}" if rest else ""
    note = f"\n[... {{cut:,}} of {len(text):,} characters cut{where} ...]\n"
    room = max(0, limit - len(note.format(cut=len(text))))
    head = room * 3 // 4
    tail = room - head
    cut = len(text) - head - tail
    return text[:head] + note.format(cut=cut) + (text[-tail:] if tail else "")


def safe_text(text: str, limit: int, *, rest: str | None = None) -> str:
    """Redacted, then bounded: what may be recorded, logged or handed to Step Functions."""
    return bounded(redact(text), limit, rest=rest)


def quoted(value: object, limit: int = MAX_QUOTED_CHARS) -> str:
    """`repr(value)` for an error message, cut in the middle if it is long (user data can be huge)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    keep = max(2, limit - 25)
    return f"{text[: keep - keep // 3]}...{text[-(keep // 3) :]} ({len(text):,} characters)"


def _provider_message(text: str) -> str:
    return safe_text(text, MAX_PROVIDER_MESSAGE_CHARS)


ProviderMessage = Annotated[str, AfterValidator(_provider_message)]
"""A provider's own words about a failure, redacted and bounded as they enter a contract."""
