"""A training example: OpenAI's chat fine-tuning format, asked exactly as the benchmark asks the student."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from synthtune.prompts import SOLVER_SYSTEM_PROMPT, Solution, render_solution
from synthtune.stages.generate import GeneratedAnswer

MIN_TRAINING_EXAMPLES = 10
"""OpenAI rejects a training file with fewer examples."""


class ChatMessage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str


class ChatExample(BaseModel):
    """One line of a chat fine-tuning file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    messages: list[ChatMessage]


def training_example(answer: GeneratedAnswer) -> ChatExample:
    solution = Solution(steps=answer.steps, final_answer=answer.final_answer or "")
    return ChatExample(
        messages=[
            ChatMessage(role="system", content=SOLVER_SYSTEM_PROMPT),
            ChatMessage(role="user", content=answer.question),
            ChatMessage(role="assistant", content=render_solution(solution)),
        ]
    )
