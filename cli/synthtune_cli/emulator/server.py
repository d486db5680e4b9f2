"""The emulator on a loopback port, for code that needs a real URL (a subprocess, boto3, another SDK)."""

from __future__ import annotations

import ipaddress
import threading
from types import TracebackType
from typing import TYPE_CHECKING

from werkzeug.serving import WSGIRequestHandler, make_server

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


class _QuietRequestHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Tests start many servers; an access log would only bury their output. Errors are still logged."""


def require_loopback(host: str) -> None:
    """The emulator accepts any API key, so it must never listen beyond this machine."""
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(
            f"the emulator serves loopback addresses only (127.0.0.1, ::1, localhost), not {host!r}"
        )


class EmulatorServer:
    """A threaded werkzeug server in a daemon thread. Use as a context manager, or call `close()`."""

    def __init__(
        self, app: WSGIApplication, host: str = "127.0.0.1", port: int = 0, log_requests: bool = False
    ) -> None:
        require_loopback(host)
        self.host = host
        handler = WSGIRequestHandler if log_requests else _QuietRequestHandler
        self._server = make_server(host, port, app, threaded=True, request_handler=handler)
        # A short poll interval makes close() quick; the default half second adds up over a test suite.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="openai-emulator",
            daemon=True,
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    @property
    def root_url(self) -> str:
        """The server's root: Bedrock's endpoint (its paths are not under /v1)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """OpenAI's base URL, for `OPENAI_BASE_URL` or `openai.OpenAI(base_url=...)`."""
        return f"{self.root_url}/v1"

    def bedrock_environment(self) -> dict[str, str]:
        """The variables that point boto3's `bedrock` and `bedrock-runtime` clients at this server."""
        return {"AWS_ENDPOINT_URL_BEDROCK": self.root_url, "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": self.root_url}

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> EmulatorServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
