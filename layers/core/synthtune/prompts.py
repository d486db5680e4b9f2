"""What the models are asked and how their answers are read.

One format serves every stage: the teacher's structured solution is rendered into it for the training
set, and the benchmark asks base student, fine-tuned student and teacher to answer in it, so the student
is tested in exactly the format it was trained on.

The format: reasoning steps, one per line, then a last line `Answer: <final answer>`.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

SOLVER_SYSTEM_PROMPT = (
    "You are a careful problem solver. Work through the problem step by step, one short step per line. "
    "Then give the final answer on the last line, in the form 'Answer: <answer>'. "
    "Keep the final answer short: a number, a word or a short phrase."
)

JUDGE_SYSTEM_PROMPT = (
    "You grade answers to problems. Decide whether the candidate answer means the same as the reference "
    "answer. Ignore wording, formatting, units written differently and equivalent numeric forms; "
    "a candidate that gives a different value, names a different thing or hedges between options is wrong."
)

ANSWER_PREFIX = "Answer:"

JUDGE_MAX_TOKENS = 256
"""A verdict is one boolean and one sentence."""

# The last line that starts with "Answer:" (or "Final answer:"), tolerating markdown emphasis around it.
_ANSWER_LINE = re.compile(
    r"^[\s*_#>]*(?:final\s+)?answer\s*[:：][\s*_]*(?P<answer>.*?)[\s*_]*$", re.IGNORECASE
)


class Solution(BaseModel):
    """The teacher's structured answer (sent as a strict json_schema through structured outputs)."""

    model_config = ConfigDict(extra="forbid")

    steps: list[str] = Field(description="The reasoning, one short step per item, in order.")
    final_answer: str = Field(description="The final answer alone: a number, a word or a short phrase.")


class Verdict(BaseModel):
    """A judge model's decision on one candidate answer."""

    model_config = ConfigDict(extra="forbid")

    correct: bool = Field(description="True if the candidate answer means the same as the reference.")
    explanation: str = Field(description="One sentence on why.")


def render_solution(solution: Solution) -> str:
    """The assistant message a student is trained on: the steps, then the answer line."""
    steps = [step.strip() for step in solution.steps if step.strip()]
    return "\n".join([*steps, f"{ANSWER_PREFIX} {solution.final_answer.strip()}"])


def parse_final_answer(text: str | None) -> str | None:
    """The final answer in a free-text reply, or None when the reply has no answer line."""
    if not text:
        return None
    for line in reversed(text.strip().splitlines()):
        match = _ANSWER_LINE.match(line)
        if match:
            answer = match.group("answer").strip()
            return answer or None
    return None


def judge_request(question: str, reference: str, candidate: str) -> str:
    """The user message a judge model grades: the labelled lines are part of the contract."""
    return f"Question: {question}\nReference answer: {reference}\nCandidate answer: {candidate}"
