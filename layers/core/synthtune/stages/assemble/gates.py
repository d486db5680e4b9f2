"""The gates one answer must pass before it may become a training example, and the names of every drop.

The cheap, per-answer gates live here: did the teacher answer at all, is the answer verified, does it
refuse or hedge, was it cut off, does it reason. The gates that need the whole dataset (length in
tokens, decontamination, duplicates) run in `assemble`, after these, so that an answer that would be
dropped anyway never claims a duplicate's first place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from synthtune.contracts.config import DatasetConfig
from synthtune.stages.generate import GeneratedAnswer

DROP_REASONS: dict[str, str] = {
    "shard_failed": "its Generate shard failed for good (within generation.tolerated_failure_percent)",
    "teacher_refused": "the teacher refused to answer",
    "teacher_truncated": "the teacher's reply hit max_output_tokens (finish_reason length)",
    "teacher_no_answer": "the teacher's reply held no usable answer",
    "teacher_batch_request_failed": "the Batch API request failed or expired in every round",
    "wrong_answer": "the final answer does not match the reference answer",
    "no_reference": "no reference answer to verify against and dataset.keep_unreferenced is false",
    "low_agreement": "no reference, and fewer of the samples agreed than dataset.min_agreement",
    "refusal": "the answer declines or disclaims instead of solving",
    "hedging": "the final answer is uncertain (dataset.drop_hedging)",
    "empty_reasoning": "no reasoning steps, only an answer",
    "format_rule": "the example breaks a rule of the student's fine-tuning format that would fail the "
    "whole job (Bedrock's Nova: a reserved keyword such as 'User:' in the text)",
    "too_long": "the example has more tokens than dataset.max_example_tokens (or the student's limit)",
    "contaminated": "the question shares dataset.contamination_ngram consecutive words with a held-out "
    "problem",
    "student_unknown": "the base student never answered it right when probed (dataset.knowledge_policy "
    "drop_unknown, or abstain_unknown past dataset.max_abstention_share)",
    "duplicate": "the same question (case, spacing and punctuation aside) as an earlier example",
    "near_duplicate": "a question at least dataset.near_duplicate_threshold similar to an earlier example",
}
"""Every reason an example can be dropped for, with what it means: the dataset card's legend."""

# Declining or disclaiming anywhere in the answer: a student trained on it learns to decline.
_REFUSAL = re.compile(
    r"\b(?:i(?:'m| am) sorry,? but|i (?:cannot|can't|can not|won't|am unable to|'m unable to) "
    r"(?:help|assist|answer|provide|solve|determine)|as an ai\b|as a language model)",
    re.IGNORECASE,
)
# Uncertainty in the final answer, or in the reasoning about itself: a student trained on it learns to
# guess with a disclaimer, or worse, to sound sure where the teacher was not.
_HEDGE_IN_ANSWER = re.compile(
    r"\b(?:i don't know|i do not know|not sure|unsure|uncertain|unclear|probably|possibly|perhaps|maybe"
    r"|might be|it depends|cannot be determined with certainty|my best guess|i guess|i think|i believe)\b",
    re.IGNORECASE,
)
_HEDGE_IN_REASONING = re.compile(
    r"\b(?:i(?:'m| am) not (?:sure|certain|confident)|i don't know|i do not know|my best guess|i'll guess"
    r"|i will guess|rather than guess)\b",
    re.IGNORECASE,
)


# Every pattern above needs one of these words: a plain substring scan rules out almost every answer
# before a regular expression runs (the patterns cost ~40 µs on a long answer, the scan ~2 µs).
_REFUSAL_HINTS = ("sorry", "cannot", "can't", "can not", "won't", "unable", " ai", "language model")
_HEDGE_HINTS = (
    "know", "sure", "certain", "confident", "unclear", "probably", "possibly", "perhaps", "maybe", "might",
    "depends", "determined", "guess", "think", "believe",
)  # fmt: skip


def _search(pattern: re.Pattern[str], hints: tuple[str, ...], text: str) -> re.Match[str] | None:
    lowered = text.lower()
    if not any(hint in lowered for hint in hints):
        return None
    return pattern.search(text)


@dataclass(frozen=True)
class Drop:
    reason: str
    detail: str = ""


def _quote(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 1] + "…")


def answer_gate(answer: GeneratedAnswer, gates: DatasetConfig) -> Drop | None:
    """Why this answer must not be trained on, or None when it passes every per-answer gate."""
    if answer.status == "failed":
        return Drop(f"teacher_{answer.failure or 'no_answer'}")
    if answer.finish_reason == "length":
        return Drop("teacher_truncated")
    if answer.status == "rejected":
        return Drop(
            "wrong_answer", f"answered {_quote(answer.final_answer or '')}, reference {answer.reference!r}"
        )
    if answer.status == "unverified":
        if not gates.keep_unreferenced:
            return Drop("no_reference")
        if gates.min_agreement is not None and (answer.agreement or 0.0) < gates.min_agreement:
            return Drop("low_agreement", f"{answer.agreement or 0:.0%} of {answer.samples} samples agreed")
    steps = [step for step in answer.steps if step.strip()]
    if not steps:
        return Drop("empty_reasoning")
    final = answer.final_answer or ""
    reasoning = "\n".join(steps)  # one search per pattern, not one per step
    refusal = _search(_REFUSAL, _REFUSAL_HINTS, final) or _search(_REFUSAL, _REFUSAL_HINTS, reasoning)
    if refusal:
        return Drop("refusal", _quote(refusal.group(0)))
    if gates.drop_hedging:
        hedge = _search(_HEDGE_IN_ANSWER, _HEDGE_HINTS, final) or _search(
            _HEDGE_IN_REASONING, _HEDGE_HINTS, reasoning
        )
        if hedge is not None:
            return Drop("hedging", _quote(hedge.group(0)))
    return None
