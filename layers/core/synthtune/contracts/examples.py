"""A training example as the pipeline holds it, before a provider's format writes it down.

One system prompt, the question as the user's message, the rendered solution as the assistant's: the
same conversation whether it goes to OpenAI's chat format, Bedrock's conversation format or Hugging Face.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class ChatMessage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str


class ChatExample(BaseModel):
    """One conversation to learn from; the last assistant message is the target."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    messages: list[ChatMessage]
