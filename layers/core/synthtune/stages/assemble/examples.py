"""A teacher's answer as a training example, asked exactly as the benchmark asks the student."""

from __future__ import annotations

from synthtune.contracts.examples import ChatExample, ChatMessage
from synthtune.prompts import SOLVER_SYSTEM_PROMPT, Solution, render_solution
from synthtune.stages.generate import GeneratedAnswer


def training_example(
    answer: GeneratedAnswer, *, system: str = SOLVER_SYSTEM_PROMPT, target: Solution | None = None
) -> ChatExample:
    """The example teaching `answer`'s solution, or `target` in its place (an abstention), under `system`
    (the run's solver prompt, `prompts.solver_system_prompt`)."""
    solution = target or Solution(steps=answer.steps, final_answer=answer.final_answer or "")
    return ChatExample(
        messages=[
            ChatMessage(role="system", content=system),
            ChatMessage(role="user", content=answer.question),
            ChatMessage(role="assistant", content=render_solution(solution)),
        ]
    )
