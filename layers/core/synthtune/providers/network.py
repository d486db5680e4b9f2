"""Why a provider's endpoint could not be connected to, read from the socket's own errors underneath
whatever the SDK raised (httpx2's under openai, urllib3's under botocore)."""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterator

_NO_ROUTE = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH})


def unreachable_because(error: BaseException) -> str | None:
    """Why no connection could be made, when that is what the errors underneath say: a refused
    connection, a host name that does not resolve, no route, or a failed TLS handshake (a certificate
    not trusted, or TLS spoken to a plain-HTTP port). None for anything that may pass by itself (a
    timeout, a connection dropped after it was made)."""
    for underneath in _causes(error):
        if isinstance(underneath, ssl.SSLCertVerificationError):
            detail = getattr(underneath, "verify_message", None) or underneath.strerror or underneath
            return f"its TLS certificate is not trusted ({detail})"
        if isinstance(underneath, ssl.SSLError):
            hint = "; is it plain http?" if underneath.reason == "WRONG_VERSION_NUMBER" else ""
            return f"the TLS handshake failed ({underneath.reason or underneath}{hint})"
        if isinstance(underneath, socket.gaierror):
            return f"its host name does not resolve ({underneath.strerror or underneath})"
        if isinstance(underneath, ConnectionRefusedError):
            return "connection refused (nothing listens there)"
        if isinstance(underneath, OSError) and underneath.errno in _NO_ROUTE:
            return f"no route to it ({underneath.strerror})"
    return None


def _causes(error: BaseException) -> Iterator[BaseException]:
    """`error` and the exceptions under it: causes, contexts, and exceptions passed as arguments (httpx2
    wraps the socket's error that way), breadth first."""
    seen: set[int] = set()
    queue = [error]
    while queue and len(seen) < 32:
        current = queue.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        queue.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        queue.extend(arg for arg in current.args if isinstance(arg, BaseException))
