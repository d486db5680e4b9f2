"""What a simulated model answers. Everything here is a deterministic simulation, not a language model.

A request is either a judge request (the last user message has labelled `Reference answer:` and
`Candidate answer:` lines, the format of `synthtune.prompts.judge_request`) or a question, looked up in the
knowledge. What the model knows is fixed per (seed, family, question) by its greedy draw
`u0 = draw(seed, family, question, 0)`: it knows the question iff `u0 < skill`, and its confidence `c`
(`confidence.confidence`) is above 0.5 exactly then. Whether an answer is right:

- greedy (sample 0), plain prompt: `u0 < skill`, as it always was;
- greedy with earlier user/assistant turns (few-shot exemplars): `c > 0.5 + 0.2·(draw(seed, family,
  question, context_hash) − 0.5)`, so exemplars flip borderline questions and only those;
- sample i ≥ 1 (temperature > 0): `draw(seed, family, question, i, "sampled") < c`, so a weakly known
  question is sometimes right and a known one sometimes wrong, with mean accuracy the model's skill.

A wrong answer becomes "I don't know" with the model's abstention rate (its own draw, "abstain"), else a
plausible wrong answer (a hallucination); a right one becomes "I don't know" with its over-abstention rate
(fine-tuning on abstentions teaches it, "over-abstain"). The reply is reasoning lines and a final `Answer:`
line, which a model sometimes forgets (its format-miss rate).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from synthtune_cli.emulator.abstention import ABSTENTION_ANSWER
from synthtune_cli.emulator.answers import answers_match, wrong_answer
from synthtune_cli.emulator.catalogue import SimulatedModel
from synthtune_cli.emulator.confidence import confidence
from synthtune_cli.emulator.conversation import Conversation
from synthtune_cli.emulator.draws import draw, pick
from synthtune_cli.emulator.knowledge import Knowledge, KnownQuestion

UNKNOWN_ANSWER = ABSTENTION_ANSWER
ANSWER_PREFIX = "Answer:"

_JUDGE_REQUEST = re.compile(
    r"^[ \t]*Reference answer:[ \t]*(?P<reference>.*?)\s*^[ \t]*Candidate answer:[ \t]*(?P<candidate>.*)\Z",
    re.DOTALL | re.MULTILINE | re.IGNORECASE,
)
_QUESTION_MENTION_LIMIT = 160
_OPENINGS = (
    "The question asks: {question}",
    "We need to find: {question}",
    "Restating the problem: {question}",
)
_WORKING_STEPS = (
    "Identify the facts and quantities the question gives.",
    "Recall the rule or fact that connects them.",
    "Apply it step by step, keeping each intermediate result.",
    "Check the result against what the question asks.",
)
# How far few-shot exemplars move the confidence a greedy answer needs: the threshold is 0.5 ± this / 2.
WORDING_SENSITIVITY = 0.2


@dataclass(frozen=True)
class Reply:
    """A simulated reply before it is rendered as free text or JSON.

    In judge mode `verdict` and `explanation` are set and `final_answer` is "correct" or "incorrect".
    """

    steps: tuple[str, ...]
    final_answer: str
    verdict: bool | None = None
    explanation: str = ""
    verbatim: str | None = None
    omits_answer_line: bool = False

    @property
    def judging(self) -> bool:
        return self.verdict is not None

    def as_text(self) -> str:
        if self.verbatim is not None:
            return self.verbatim
        if self.omits_answer_line:
            return "\n".join(self.steps)
        return "\n".join([*self.steps, f"{ANSWER_PREFIX} {self.final_answer}"])

    def as_json_object(self) -> str:
        if self.judging:
            return json.dumps({"correct": self.verdict, "explanation": self.explanation}, ensure_ascii=False)
        return json.dumps({"steps": list(self.steps), "final_answer": self.final_answer}, ensure_ascii=False)


def reply_to(
    model: SimulatedModel, conversation: Conversation, knowledge: Knowledge, seed: int, sample: int
) -> Reply:
    """The reply of `model` to `conversation`, for one sample of one request."""
    prompt = conversation.question
    judge = _JUDGE_REQUEST.search(prompt)
    if judge:
        return _judge(judge.group("reference").strip(), judge.group("candidate").strip())
    key = knowledge.resolve(prompt)
    memorised = model.memory.get(key)
    if memorised is not None:
        return Reply(memorised.steps, memorised.final_answer, verbatim=memorised.content)
    parts = (seed, model.family, key, sample)
    known = knowledge.get(key)
    steps: tuple[str, ...]
    if known is None:
        mention = _mention(prompt)
        steps = (
            f"The question asks: {mention}",
            "It is not something I have reliable knowledge about.",
            "Rather than guess, I will say so.",
        )
        final = UNKNOWN_ANSWER
    else:
        right = answers_right(model, known, conversation, seed, sample)
        if right:
            abstains = draw(*parts, "over-abstain") < model.over_abstention
        else:
            abstains = draw(*parts, "abstain") < model.abstention_rate(conversation.invites_abstention)
        if abstains:
            final = UNKNOWN_ANSWER
            steps = (
                f"The question asks: {_mention(known.question)}",
                "I am not confident that I know the answer.",
                "Rather than guess, I will say so.",
            )
        else:
            if right:
                final = known.reference
            else:
                final = wrong_answer(known.reference, knowledge.answers_in(known.category), *parts)
            steps = _reasoning(_mention(known.question), final, parts)
    misses = draw(*parts, "format") < model.format_miss_rate
    return Reply(steps, final, omits_answer_line=misses)


def answers_right(
    model: SimulatedModel, known: KnownQuestion, conversation: Conversation, seed: int, sample: int
) -> bool:
    """Whether the model's answer draw for this sample of this conversation comes out right (before it
    decides whether to abstain)."""
    skill = model.skill_for(known.category)
    u0 = draw(seed, model.family, known.key, 0)
    if sample == 0:
        context = conversation.context_hash
        if context is None:
            return u0 < skill
        wording = draw(seed, model.family, known.key, context)
        return confidence(u0, skill) > 0.5 + WORDING_SENSITIVITY * (wording - 0.5)
    return draw(seed, model.family, known.key, sample, "sampled") < confidence(u0, skill)


def _judge(reference: str, candidate: str) -> Reply:
    verdict = answers_match(candidate, reference)
    if verdict:
        explanation = (
            f'The candidate answer "{candidate}" means the same as the reference answer "{reference}".'
        )
    else:
        explanation = f'The candidate answer "{candidate}" differs from the reference answer "{reference}".'
    return Reply(
        (explanation,), "correct" if verdict else "incorrect", verdict=verdict, explanation=explanation
    )


def _mention(text: str) -> str:
    flat = " ".join(text.split())
    if len(flat) <= _QUESTION_MENTION_LIMIT:
        return flat
    return flat[: _QUESTION_MENTION_LIMIT - 1].rstrip() + "…"


def _reasoning(question: str, final: str, parts: tuple[object, ...]) -> tuple[str, ...]:
    """Three to five lines: the question, some working, the result."""
    line_count = 3 + pick(3, *parts, "line-count")
    opening = _OPENINGS[pick(len(_OPENINGS), *parts, "opening")].format(question=question)
    working = _WORKING_STEPS[: line_count - 2]
    return (opening, *working, f"This gives {final}.")
