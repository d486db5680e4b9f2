"""Reading a Bedrock fine-tuning file (`bedrock-conversation-2024` JSONL) the way Bedrock's validation does.

One record per line:
`{"schemaVersion": "bedrock-conversation-2024", "system": [{"text": ...}],
  "messages": [{"role": "user", "content": [{"text": ...}]}, {"role": "assistant", "content": [...]}]}`.
The rules are Nova's: roles user and assistant only, the first message the user's, the last the
assistant's, turns alternating; none of Nova's reserved strings anywhere in the text; between a minimum
(8, or 200 for Nova 2 Lite) and 20,000 records. The emulator reads text content blocks only. Records become
the same `TrainingExample`s the OpenAI side learns from, so a custom model learns by the same rules.
"""

from __future__ import annotations

import json
from typing import Any

from synthtune_cli.emulator.training_data import TrainingDataError, TrainingExample

# Nova fails a job whose data contains any of these, anywhere.
RESERVED_STRINGS = ("User:", "Bot:", "Assistant:", "System:", "<image>", "<video>", "[EOS]")
_ROLES = ("user", "assistant")


def read_conversations(content: bytes, minimum: int, maximum: int) -> list[TrainingExample]:
    """Every record of a conversation JSONL file, or TrainingDataError naming the first bad line."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise TrainingDataError(f"the file is not UTF-8 text (byte {error.start})") from error
    examples = [
        _read_record(number, line) for number, line in enumerate(text.splitlines(), start=1) if line.strip()
    ]
    if len(examples) < minimum:
        raise TrainingDataError(f"the file has {len(examples)} record(s); at least {minimum} are required")
    if len(examples) > maximum:
        raise TrainingDataError(f"the file has {len(examples)} records; at most {maximum} are allowed")
    return examples


def _read_record(number: int, line: str) -> TrainingExample:
    where = f"line {number}"
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise TrainingDataError(f"{where}: not valid JSON ({error.msg})") from error
    if not isinstance(record, dict):
        raise TrainingDataError(f"{where}: expected a JSON object")
    if not isinstance(record.get("schemaVersion"), str):
        raise TrainingDataError(f'{where}: "schemaVersion" is missing (use "bedrock-conversation-2024")')
    read: list[tuple[str, str]] = []
    system = record.get("system")
    if system is not None:
        if not isinstance(system, list):
            raise TrainingDataError(f'{where}: "system" must be a list of {{"text": ...}} blocks')
        read.append(("system", _blocks_text(system, f"{where}, system")))
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        raise TrainingDataError(f'{where}: "messages" must be a non-empty list')
    for index, message in enumerate(messages):
        at = f"{where}, message {index}"
        if not isinstance(message, dict):
            raise TrainingDataError(f"{at}: expected an object with role and content")
        role = message.get("role")
        if role not in _ROLES:
            raise TrainingDataError(f"{at}: role {role!r} is not user or assistant")
        expected = _ROLES[index % 2]
        if role != expected:
            raise TrainingDataError(
                f"{at}: expected a {expected} message (conversations start with the user and alternate)"
            )
        content = message.get("content")
        if not isinstance(content, list) or not content:
            raise TrainingDataError(f'{at}: "content" must be a non-empty list of {{"text": ...}} blocks')
        read.append((role, _blocks_text(content, at)))
    if read[-1][0] != "assistant":
        raise TrainingDataError(f"{where}: the last message must be the assistant's")
    return TrainingExample(number, tuple(read))


def _blocks_text(blocks: list[Any], at: str) -> str:
    texts = []
    for block in blocks:
        if not isinstance(block, dict) or not isinstance(block.get("text"), str):
            raise TrainingDataError(
                f'{at}: every content block must be {{"text": "..."}} (the emulator reads text)'
            )
        text = block["text"]
        reserved = next((word for word in RESERVED_STRINGS if word in text), None)
        if reserved is not None:
            raise TrainingDataError(f"{at}: the text contains the reserved string {reserved!r}")
        texts.append(text)
    return "\n".join(texts)
