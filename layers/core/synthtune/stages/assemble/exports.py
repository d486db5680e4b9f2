"""The dataset for other trainers: the same examples in Amazon Bedrock's and Hugging Face's formats.

Hugging Face's chat templates (TRL's SFTTrainer, `tokenizer.apply_chat_template`) read a plain `messages`
list of role and content; Bedrock's model customisation reads `bedrock-conversation-2024` records, which
its provider's dataset format writes (`providers/bedrock/format.py`). Both are written line by line beside
the run's own files, from the same examples.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from synthtune.contracts.config import ExportFormat
from synthtune.contracts.examples import ChatExample
from synthtune.providers.ports import DatasetFormat


def huggingface_record(example: ChatExample) -> dict[str, Any]:
    return {"messages": [{"role": message.role, "content": message.content} for message in example.messages]}


def exporter(
    export: ExportFormat, formats: Callable[[str], DatasetFormat]
) -> Callable[[ChatExample], dict[str, Any]]:
    """The record writer of an export: Hugging Face's here, a model provider's from its dataset format."""
    if export == "huggingface":
        return huggingface_record
    return formats(export).record
