"""Reading a fine-tuning file the way OpenAI's data checks do, and what each example teaches."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

MIN_TRAINING_EXAMPLES = 10
_ROLES = ("system", "user", "assistant")
_MESSAGE_KEYS = {"role", "content", "name", "weight"}
# The answer-format contract: the last line starting with "Answer:" (or "Final answer:"), markdown allowed
# around the label and the answer.
_ANSWER_LINE = re.compile(
    r"^[\s*_#>]*(?:final\s+)?answer\s*[:：][\s*_]*(?P<answer>.*?)[\s*_]*$", re.IGNORECASE
)


class TrainingDataError(ValueError):
    """The file fails a data check; the message names the line."""


@dataclass(frozen=True)
class TrainingExample:
    line: int
    messages: tuple[tuple[str, str], ...]

    @property
    def question(self) -> str:
        return next((text for role, text in reversed(self.messages) if role == "user"), "")

    @property
    def reply(self) -> str:
        return next(text for role, text in reversed(self.messages) if role == "assistant")


@dataclass(frozen=True)
class AnsweredReply:
    steps: tuple[str, ...]
    final_answer: str


def read_examples(content: bytes, minimum: int) -> list[TrainingExample]:
    """Every example of a JSONL chat file, or TrainingDataError on the first line that fails a check."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise TrainingDataError(f"the file is not UTF-8 text (byte {error.start})") from error
    examples = [
        _read_line(number, line) for number, line in enumerate(text.splitlines(), start=1) if line.strip()
    ]
    if len(examples) < minimum:
        raise TrainingDataError(f"the file has {len(examples)} example(s); at least {minimum} are required")
    return examples


def _read_line(number: int, line: str) -> TrainingExample:
    where = f"line {number}"
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise TrainingDataError(f"{where}: not valid JSON ({error.msg})") from error
    if not isinstance(record, dict):
        raise TrainingDataError(f'{where}: expected a JSON object with a "messages" list')
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        raise TrainingDataError(f'{where}: "messages" must be a non-empty list')
    read: list[tuple[str, str]] = []
    for index, message in enumerate(messages):
        at = f"{where}, message {index}"
        if not isinstance(message, dict):
            raise TrainingDataError(f"{at}: expected an object with role and content")
        unexpected = sorted(set(message) - _MESSAGE_KEYS)
        if unexpected:
            raise TrainingDataError(f"{at}: unexpected key {unexpected[0]!r}")
        role, content = message.get("role"), message.get("content")
        if role not in _ROLES:
            raise TrainingDataError(f"{at}: role {role!r} is not one of system, user, assistant")
        if not isinstance(content, str):
            raise TrainingDataError(f'{at}: "content" must be a string')
        if "weight" in message and (role != "assistant" or message["weight"] not in (0, 1)):
            raise TrainingDataError(f'{at}: "weight" must be 0 or 1, on assistant messages only')
        read.append((role, content))
    if not any(role == "assistant" for role, _ in read):
        raise TrainingDataError(f"{where}: no assistant message to learn from")
    return TrainingExample(number, tuple(read))


def split_answer(reply: str) -> AnsweredReply | None:
    """The reasoning lines and the final answer of a reply, or None when it has no answer line."""
    lines = reply.strip().splitlines()
    for index in range(len(lines) - 1, -1, -1):
        match = _ANSWER_LINE.match(lines[index])
        if match and match.group("answer").strip():
            steps = tuple(line.strip() for line in lines[:index] if line.strip())
            return AnsweredReply(steps, match.group("answer").strip())
    return None
