"""Amazon Bedrock's fine-tuning format, `bedrock-conversation-2024`, and the rules Nova jobs enforce.

One record a line: `{"schemaVersion": "bedrock-conversation-2024", "system": [{"text"}], "messages":
[{"role": "user" | "assistant", "content": [{"text"}]}, ...]}` (the Converse API's shape). A Nova job fails
as a whole, after its validation, on a record that breaks a rule, so each rule is checked here, line by
line, before anything is uploaded (Amazon Nova user guide, "Preparing data for fine-tuning"):

- the first message is the user's and the last the assistant's, and turns alternate;
- no text anywhere holds a reserved keyword: `User:`, `Bot:`, `Assistant:`, `System:`, `<image>`,
  `<video>`, `[EOS]` (matched as written: "Solve the system: x + y = 2" is fine);
- file names use only letters, digits, `_`, `-`, `/` and `.`;
- the number of examples is within the model's bounds (Nova v1: 8 to 20,000; Nova 2 Lite: 200 to 20,000),
  and Nova 2 takes no validation file (`accepts_validation`, `example_bounds`; Assemble and
  `synthtune check-dataset` apply them to the whole file).

Nova's tokenizer is not published: tokens are counted with o200k_base, as for OpenAI's models, an
approximation good enough for limits in the hundreds of thousands.
"""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Any

from synthtune.contracts.examples import ChatExample
from synthtune.money.catalog import model_info
from synthtune.quality.format_report import FormatReport, StreamingValidator, json_type, show, validate_lines
from synthtune.tokens import chat_token_counts, encoding_for

SCHEMA_VERSION = "bedrock-conversation-2024"
RESERVED_KEYWORDS = ("User:", "Bot:", "Assistant:", "System:", "<image>", "<video>", "[EOS]")
ROLES = ("user", "assistant")
_FILE_NAME = re.compile(r"^[A-Za-z0-9_\-/.]+$")
_RESERVED = re.compile("|".join(re.escape(keyword) for keyword in RESERVED_KEYWORDS))

CHECKS: dict[str, str] = {
    "invalid_json": "the line is not JSON",
    "data_type": "the line is not a JSON object",
    "schema_version": "no 'schemaVersion' string",
    "system_format": "'system' is not a list of {\"text\": ...} blocks",
    "missing_messages_list": "no non-empty 'messages' list",
    "message_format": 'a message that is not {"role", "content": [{"text": ...}]} with non-empty text',
    "unrecognized_role": "a role other than user or assistant",
    "turn_order": "the first turn is not the user's, the last not the assistant's, or two turns in a row "
    "are the same role's",
    "reserved_keyword": "a text holds a keyword Nova reserves (User:, Bot:, Assistant:, System:, <image>, "
    "<video>, [EOS]): the job would fail",
    "too_many_tokens": "more tokens than the per-example limit",
    "file_name": "the file's name has characters other than letters, digits, '_', '-', '/' and '.'",
}
"""Every check's name, with what it refuses."""


def reserved_keyword(text: str) -> str | None:
    """The first reserved keyword in `text`, if any."""
    match = _RESERVED.search(text)
    return match.group(0) if match else None


def conversation_record(example: ChatExample) -> dict[str, Any]:
    """An example as a bedrock-conversation-2024 record: the system prompt apart, text blocks."""
    system = [{"text": message.content} for message in example.messages if message.role == "system"]
    messages = [
        {"role": message.role, "content": [{"text": message.content}]}
        for message in example.messages
        if message.role != "system"
    ]
    record: dict[str, Any] = {"schemaVersion": SCHEMA_VERSION}
    if system:
        record["system"] = system
    record["messages"] = messages
    return record


def _texts(blocks: object) -> list[str] | None:
    """The texts of a content or system list, or None when it is not a list of {"text": str} blocks."""
    if not isinstance(blocks, list) or not blocks:
        return None
    texts = []
    for block in blocks:
        if not isinstance(block, dict) or not isinstance(block.get("text"), str):
            return None
        texts.append(block["text"])
    return texts


class ConversationValidator(StreamingValidator):
    """Checks the lines of one bedrock-conversation-2024 file, in order, and reports on them all."""

    def __init__(self, file: str, model: str, max_example_tokens: int) -> None:
        super().__init__(file, max_example_tokens)
        self.model = model
        self._encoding = encoding_for(model)
        self._repeated_tokens: dict[str, int] = {}

    def check_file_name(self, key: str) -> None:
        """The S3 key the job will read (for a local file, its name)."""
        if not _FILE_NAME.match(key):
            bad = ", ".join(
                repr(char) for char in sorted({char for char in key if not _FILE_NAME.match(char)})
            )
            self.record_file(
                "file_name", f"its name has {bad}; Bedrock takes only letters, digits, '_', '-', '/' and '.'"
            )

    def check(self, line: int, example: object, counted: tuple[int, int] | None = None) -> int | None:
        issues_before = self.start_example()
        if not isinstance(example, dict):
            self.record(line, "data_type", f"expected a JSON object, got {json_type(example)}")
            return None
        if not isinstance(example.get("schemaVersion"), str):
            self.record(line, "schema_version", f"no 'schemaVersion' string (write {SCHEMA_VERSION!r})")
        texts: list[str] = []
        system = example.get("system")
        if system is not None:
            system_texts = _texts(system)
            if system_texts is None:
                self.record(
                    line, "system_format", f"'system' is {json_type(system)}; expected [{{\"text\": ...}}]"
                )
            else:
                texts += system_texts
        messages = example.get("messages")
        if not isinstance(messages, list) or not messages:
            self.record(line, "missing_messages_list", "no non-empty 'messages' list")
            return None
        roles: list[str] = []
        chat: list[dict[str, Any]] = [{"role": "system", "content": "\n".join(texts)}] if texts else []
        for number, message in enumerate(messages, 1):
            if not isinstance(message, dict):
                self.record(
                    line, "message_format", f"message {number} is {json_type(message)}; expected an object"
                )
                continue
            role = message.get("role")
            if role not in ROLES:
                self.record(
                    line,
                    "unrecognized_role",
                    f"message {number} has role {show(role)}; expected user or assistant",
                )
            else:
                roles.append(role)
            content = _texts(message.get("content"))
            if content is None or not "".join(content).strip():
                self.record(
                    line,
                    "message_format",
                    f"message {number}'s content is {json_type(message.get('content'))}; expected "
                    '[{"text": ...}] with some text',
                )
                continue
            texts += content
            chat.append({"role": str(role), "content": "\n".join(content)})
        self._check_turns(line, roles)
        for text in texts:
            keyword = reserved_keyword(text)
            if keyword is not None:
                self.record(
                    line,
                    "reserved_keyword",
                    f"the text holds {keyword!r}, which Nova reserves; the job would fail",
                )
                break
        if self.issue_total > issues_before:
            return None
        tokens, assistant_tokens = counted if counted is not None else self.count_tokens(chat)
        return self.accept(
            line,
            tokens,
            assistant_tokens,
            has_system=bool(system),
            has_user="user" in roles,
            limit_note="Bedrock would refuse it",
        )

    def _check_turns(self, line: int, roles: list[str]) -> None:
        if not roles:
            return
        if roles[0] != "user":
            self.record(line, "turn_order", f"the first message is the {roles[0]}'s; it must be the user's")
        if roles[-1] != "assistant":
            self.record(
                line, "turn_order", f"the last message is the {roles[-1]}'s; it must be the assistant's"
            )
        for number, (before, after) in enumerate(pairwise(roles), 2):
            if before == after:
                self.record(
                    line,
                    "turn_order",
                    f"messages {number - 1} and {number} are both the {after}'s; turns must alternate",
                )
                break

    def count_tokens(self, messages: list[dict[str, Any]]) -> tuple[int, int]:
        """OpenAI-style chat messages' tokens (o200k_base: Nova's own tokenizer is not published)."""
        return chat_token_counts(messages, self._encoding, self._repeated_tokens)


def validate_conversation_file(lines: Any, file: str, model: str, max_example_tokens: int) -> FormatReport:
    return validate_lines(ConversationValidator(file, model, max_example_tokens), lines)


class ConversationFormat:
    """bedrock-conversation-2024: the files live in the run's dataset/bedrock/."""

    name = SCHEMA_VERSION
    folder: str | None = "bedrock"

    def record(self, example: ChatExample) -> dict[str, Any]:
        return conversation_record(example)

    def validator(self, source: str, model: str, max_example_tokens: int) -> ConversationValidator:
        return ConversationValidator(source, model, max_example_tokens)

    def accepts_validation(self, model: str) -> bool:
        info = model_info(model)
        return info is None or info.fine_tuning is None or info.fine_tuning.validation_file

    def example_bounds(self, model: str) -> tuple[int, int | None]:
        info = model_info(model)
        if info is None or info.fine_tuning is None:
            return 8, 20_000
        return info.fine_tuning.min_examples, info.fine_tuning.max_examples

    def unfit(self, example: ChatExample) -> str | None:
        """Why the example cannot be written for Bedrock (a rule that would fail the whole job), if so."""
        for message in example.messages:
            keyword = reserved_keyword(message.content)
            if keyword is not None:
                return f"the {message.role}'s text holds {keyword!r}, which Nova reserves"
        return None
