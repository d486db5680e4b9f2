"""The dataset for other trainers: the same examples in Amazon Bedrock's and Hugging Face's formats.

Bedrock's model customisation reads `bedrock-conversation-2024` records (the Converse API's shape: the
system prompt apart, each message's content a list of text blocks); Hugging Face's chat templates
(TRL's SFTTrainer, `tokenizer.apply_chat_template`) read a plain `messages` list of role and content.
Both are written line by line beside the OpenAI files, from the same examples.
"""

from __future__ import annotations

from typing import Any

from synthtune.contracts.config import ExportFormat
from synthtune.stages.assemble.examples import ChatExample

BEDROCK_SCHEMA_VERSION = "bedrock-conversation-2024"


def bedrock_record(example: ChatExample) -> dict[str, Any]:
    system = [{"text": message.content} for message in example.messages if message.role == "system"]
    messages = [
        {"role": message.role, "content": [{"text": message.content}]}
        for message in example.messages
        if message.role != "system"
    ]
    record: dict[str, Any] = {"schemaVersion": BEDROCK_SCHEMA_VERSION}
    if system:
        record["system"] = system
    record["messages"] = messages
    return record


def huggingface_record(example: ChatExample) -> dict[str, Any]:
    return {"messages": [{"role": message.role, "content": message.content} for message in example.messages]}


EXPORTERS = {"bedrock": bedrock_record, "huggingface": huggingface_record}


def export_record(export: ExportFormat, example: ChatExample) -> dict[str, Any]:
    return EXPORTERS[export](example)
