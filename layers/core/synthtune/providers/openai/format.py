"""Checking a chat fine-tuning file as OpenAI will, before it is uploaded.

The format checks are those of OpenAI's data-preparation guide, under its names (the cookbook notebook
"Chat_finetuning_data_prep", https://cookbook.openai.com/examples/chat_finetuning_data_prep), widened
where the fine-tuning API accepts more than the notebook knows: tool calls, the `tool` role and
`refusal` (the API reference's `FineTuneChatRequestInput`). Three more: `weight` must be 0 or 1 and
only on an assistant message (the API reference again), a line must be JSON (`invalid_json`), and an
example over the per-example token limit is refused (`too_many_tokens`) where OpenAI would silently
truncate it.

The validator streams: fed one line at a time, it keeps counters, two fixed-size histograms and the
first MAX_REPORTED_ISSUES issues, so its memory does not grow with the file. A valid line costs a few
dict and isinstance tests and its tokenisation; pydantic models are built only for issues and reports.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from synthtune.contracts.examples import ChatExample
from synthtune.money.catalog import model_info
from synthtune.quality.format_report import (
    FormatReport,
    StreamingValidator,
    json_type,
    show,
    validate_lines,
)
from synthtune.tokens import chat_token_counts, encoding_for

# The message keys of the API reference's FineTuneChatRequestInput (system, user, assistant, tool and
# function messages), which the cookbook's own list (role, content, name, function_call, weight)
# predates. `audio` is left out: fine-tuning accepts no audio messages.
ALLOWED_MESSAGE_KEYS = frozenset(
    {"role", "content", "name", "weight", "function_call", "tool_calls", "tool_call_id", "refusal"}
)
# The cookbook's roles (system, user, assistant, function) and the API's `tool`.
ALLOWED_ROLES = frozenset({"system", "user", "assistant", "tool", "function"})

MIN_TRAINING_EXAMPLES = 10
"""OpenAI rejects a training file with fewer examples."""

CHECKS: dict[str, str] = {
    "invalid_json": "the line is not JSON",
    "data_type": "the line, or one of its messages, is not a JSON object",
    "missing_messages_list": "no non-empty 'messages' list",
    "message_missing_key": "a message without 'role', or without 'content' (which only an assistant "
    "message with tool_calls or function_call may omit)",
    "message_unrecognized_key": "a message key outside ALLOWED_MESSAGE_KEYS",
    "unrecognized_role": "a role outside ALLOWED_ROLES",
    "missing_content": "content that is not a non-empty string (an assistant message with tool_calls or "
    "function_call may have null or empty content)",
    "invalid_weight": "a weight that is not 0 or 1, or a weight on a message that is not the assistant's",
    "example_missing_assistant_message": "no assistant message to learn from",
    "too_many_tokens": "more tokens than the per-example limit (OpenAI would truncate the example)",
}
"""Every check's name, with what it refuses."""


def _missing_messages(example: dict[Any, Any]) -> str:
    if "messages" not in example:
        keys = ", ".join(sorted(show(key) for key in example)) or "none"
        return f"no 'messages' list (keys: {keys})"
    messages = example["messages"]
    if isinstance(messages, list):
        return "'messages' is an empty list"
    return f"'messages' is {json_type(messages)}; expected a list of messages"


def _message_problems(number: int, message: object) -> list[tuple[str, str]]:
    """Every check one message fails, as (check, what is wrong); the slow path, for bad messages only."""
    if not isinstance(message, dict):
        return [
            (
                "data_type",
                f"message {number} is {json_type(message)}; expected an object with 'role' and 'content'",
            )
        ]
    problems: list[tuple[str, str]] = []
    role = message.get("role")
    known_role = isinstance(role, str) and role in ALLOWED_ROLES
    label = f"message {number} ({role})" if known_role else f"message {number}"
    calls_tools = role == "assistant" and bool(message.get("tool_calls") or message.get("function_call"))
    if "role" not in message:
        problems.append(("message_missing_key", f"{label} has no 'role'"))
    elif not known_role:
        expected = ", ".join(sorted(ALLOWED_ROLES))
        problems.append(("unrecognized_role", f"{label} has role {show(role)}; expected one of {expected}"))
    unknown = [key for key in message if key not in ALLOWED_MESSAGE_KEYS]
    if unknown:
        names = ", ".join(sorted(show(key) for key in unknown))
        allowed = ", ".join(sorted(ALLOWED_MESSAGE_KEYS))
        problems.append(
            ("message_unrecognized_key", f"{label} has unrecognized key {names}; allowed: {allowed}")
        )
    if "content" not in message:
        if not calls_tools:
            problems.append(("message_missing_key", f"{label} has no 'content'"))
    else:
        content = message["content"]
        if calls_tools:
            if content is not None and not isinstance(content, str):
                problems.append(
                    (
                        "missing_content",
                        f"the content of {label} is {json_type(content)}; expected a string or null",
                    )
                )
        elif not isinstance(content, str) or not content:
            problems.append(
                (
                    "missing_content",
                    f"the content of {label} is {json_type(content)}; expected a non-empty string",
                )
            )
    if "weight" in message:
        weight = message["weight"]
        if known_role and role != "assistant":
            problems.append(("invalid_weight", f"{label} has a weight; only assistant messages may"))
        elif type(weight) is not int or weight not in (0, 1):
            problems.append(("invalid_weight", f"{label} has weight {show(weight)}; expected 0 or 1"))
    return problems


class ChatFormatValidator(StreamingValidator):
    """Checks the lines of one chat fine-tuning file, in order, and reports on them all."""

    def __init__(self, file: str, model: str, max_example_tokens: int) -> None:
        super().__init__(file, max_example_tokens)
        self.model = model
        self._encoding = encoding_for(model)
        self._repeated_tokens: dict[str, int] = {}

    def check(self, line: int, example: object, counted: tuple[int, int] | None = None) -> int | None:
        """Validate one parsed line; returns its token count when it is a valid example, None otherwise
        (issue recorded). `counted`: the example's (tokens, assistant tokens) from `count_tokens`, when
        the caller has counted them already."""
        issues_before = self.start_example()
        if not isinstance(example, dict):
            self.record(
                line, "data_type", f"expected a JSON object with a 'messages' list, got {json_type(example)}"
            )
            return None
        messages = example.get("messages")
        if not isinstance(messages, list) or not messages:
            self.record(line, "missing_messages_list", _missing_messages(example))
            return None
        roles: set[str] = set()
        for number, message in enumerate(messages, 1):
            if type(message) is dict:
                role = message.get("role")
                content = message.get("content")
                # The common case, a valid message, in a handful of cheap tests.
                if (
                    type(content) is str
                    and content
                    and type(role) is str
                    and role in ALLOWED_ROLES
                    and "weight" not in message
                    and message.keys() <= ALLOWED_MESSAGE_KEYS
                ):
                    roles.add(role)
                    continue
                if type(role) is str:
                    roles.add(role)
            for check, problem in _message_problems(number, message):
                self.record(line, check, problem)
        if "assistant" not in roles:
            self.record(
                line, "example_missing_assistant_message", "no assistant message; an example needs one"
            )
        if self.issue_total > issues_before:
            return None
        tokens, assistant_tokens = counted if counted is not None else self.count_tokens(messages)
        return self.accept(
            line,
            tokens,
            assistant_tokens,
            has_system="system" in roles,
            has_user="user" in roles,
            limit_note="OpenAI would truncate it",
        )

    def count_tokens(self, messages: list[dict[str, Any]]) -> tuple[int, int]:
        """The example's tokens and its assistant content's (`synthtune.tokens.chat_token_counts`)."""
        return chat_token_counts(messages, self._encoding, self._repeated_tokens)

    def check_file_name(self, key: str) -> None:
        """OpenAI takes any file name: the upload names the file, not the S3 key."""


def validate_chat_file(
    lines: Iterable[bytes | str], file: str, model: str, max_example_tokens: int
) -> FormatReport:
    """Check every line of a chat fine-tuning file (numbered from 1, blank lines included)."""
    return validate_lines(ChatFormatValidator(file, model, max_example_tokens), lines)


class OpenAIChatFormat:
    """OpenAI's chat fine-tuning format: `{"messages": [{"role", "content"}, ...]}`, one example a line.

    The run's top-level dataset/train.jsonl is written in it whatever the student (it is also what
    Hugging Face chat templates read), so its files live in dataset/ itself.
    """

    name = "openai-chat"
    folder: str | None = None

    def record(self, example: ChatExample) -> dict[str, Any]:
        return example.model_dump()

    def validator(self, source: str, model: str, max_example_tokens: int) -> ChatFormatValidator:
        return ChatFormatValidator(source, model, max_example_tokens)

    def accepts_validation(self, model: str) -> bool:
        return True

    def unfit(self, example: ChatExample) -> str | None:
        """OpenAI has no rule that fails a whole job over one example's text."""
        return None

    def example_bounds(self, model: str) -> tuple[int, int | None]:
        info = model_info(model)
        if info is None or info.fine_tuning is None:
            return MIN_TRAINING_EXAMPLES, None
        return info.fine_tuning.min_examples, info.fine_tuning.max_examples
