"""What a simulated model reads of a request: the question, the system prompt, and the turns before it.

The question is the last user message. Earlier user and assistant turns (few-shot exemplars) change how a
borderline question is worded to the model, so they move its greedy answer on questions it is unsure of;
the system prompt does not (it changes only whether the model feels free to say "I don't know").
OpenAI's chat messages and Bedrock Converse's messages (with `system` as a leading system turn) read alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from synthtune_cli.emulator.abstention import invites_abstention
from synthtune_cli.emulator.draws import token

_SYSTEM_ROLES = ("system", "developer")
_TURN_ROLES = ("user", "assistant")


@dataclass(frozen=True)
class Conversation:
    question: str
    system: str = ""
    earlier: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_messages(cls, messages: Sequence[tuple[str, str]]) -> Conversation:
        """`messages` as (role, text): the last user message is the question, the user and assistant
        turns before it its context; system and developer messages anywhere are the system prompt."""
        last_user = next((i for i in range(len(messages) - 1, -1, -1) if messages[i][0] == "user"), None)
        system = "\n".join(text for role, text in messages if role in _SYSTEM_ROLES and text)
        if last_user is None:
            return cls("", system)
        earlier = tuple((role, text) for role, text in messages[:last_user] if role in _TURN_ROLES)
        return cls(messages[last_user][1], system, earlier)

    @property
    def context_hash(self) -> str | None:
        """A fixed token for the earlier turns (None without any): the wording a greedy answer depends on."""
        if not self.earlier:
            return None
        return token(16, "context", *(f"{role}\x1e{text}" for role, text in self.earlier))

    @property
    def invites_abstention(self) -> bool:
        return invites_abstention(self.system)
