"""What the models are asked and how their answers are read.

One format serves every stage: the teacher's structured solution is rendered into it for the training
set, and the benchmark asks base student, fine-tuned student and teacher to answer in it, so the student
is tested in exactly the format it was trained on.

The format: reasoning steps, one per line, then a last line `Answer: <final answer>`.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

ANSWER_PREFIX = "Answer:"

SOLVER_SYSTEM_PROMPT = (
    "You are a careful problem solver. Work through the problem step by step, one short step per line. "
    "Then give the final answer on the last line, in the form 'Answer: <answer>'. "
    "Keep the final answer short: a number, a word or a short phrase."
)

ABSTENTION_ANSWER = "I don't know"
"""The final answer of an honest abstention: what an abstaining student is taught to say, and what
`quality.abstention` recognises."""

ABSTAINING_SYSTEM_PROMPT = (
    SOLVER_SYSTEM_PROMPT
    + f" If you are not confident that you know the answer, do not guess: say so, and give the final answer "
    f"as '{ANSWER_PREFIX} {ABSTENTION_ANSWER}'."
)
"""The system prompt of a run that teaches abstention (`dataset.knowledge_policy` abstain_unknown), in
its training examples and in its benchmark alike."""

ABSTENTION_STEPS = (
    "I do not reliably know the fact this question depends on.",
    "A guess would be likely to be wrong, so I will not give one.",
)
"""The reasoning of the abstention the pipeline writes in place of an unknown example's target."""

JUDGE_SYSTEM_PROMPT = (
    "You grade answers to problems. Decide whether the candidate answer means the same as the reference "
    "answer. Ignore wording, formatting, units written differently and equivalent numeric forms; "
    "a candidate that gives a different value, names a different thing or hedges between options is wrong."
)


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


def solver_system_prompt(abstains: bool) -> str:
    """The system prompt students are trained and benchmarked with: asking for "I don't know" when unsure
    in a run that teaches abstention."""
    return ABSTAINING_SYSTEM_PROMPT if abstains else SOLVER_SYSTEM_PROMPT


def abstention_solution() -> Solution:
    """The short, honest abstention an unknown example is taught instead of the teacher's answer."""
    return Solution(steps=list(ABSTENTION_STEPS), final_answer=ABSTENTION_ANSWER)


class Exemplar(BaseModel):
    """A worked example shown before a question (a user turn and the assistant's reply in the training
    format): probing varies them to word a greedy question apart."""

    model_config = ConfigDict(frozen=True)

    question: str
    reply: str
