"""The emulator's world: the questions its simulated models know, with reference answers and categories."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from synthtune_cli.emulator.answers import strip_surrounding
from synthtune_cli.emulator.draws import pick

_WHITESPACE = re.compile(r"\s+")
# Resolutions are cached per text; a long-lived server sees many distinct prompts, so the cache is bounded.
_RESOLUTION_CACHE_LIMIT = 10_000


class KnowledgeItem(BaseModel):
    """One question the simulated models may be asked, with its reference answer and category."""

    model_config = ConfigDict(frozen=True)

    question: str = Field(min_length=1)
    answer: str | None = None
    category: str | None = None


@dataclass(frozen=True)
class KnownQuestion:
    key: str
    question: str
    reference: str
    category: str | None


def normalise_question(text: str) -> str:
    """Case-folded, whitespace collapsed, surrounding punctuation stripped."""
    return strip_surrounding(_WHITESPACE.sub(" ", text.casefold()))


def hidden_reference(key: str) -> str:
    """The true answer of a question added without one: a whole number fixed by the question, so every
    model that gets it right agrees with every other."""
    return str(100 + pick(900, "hidden-reference", key))


class Knowledge:
    """Known questions by normalised text. Not thread-safe: the emulator's state lock guards it."""

    def __init__(self) -> None:
        self._questions: dict[str, KnownQuestion] = {}
        self._resolved: dict[str, str] = {}
        self._answers_by_category: dict[str | None, list[str]] | None = None
        self._longest_first: list[str] | None = None

    def __len__(self) -> int:
        return len(self._questions)

    def add(self, items: Iterable[KnowledgeItem]) -> int:
        """Add or replace questions; returns how many items were read."""
        count = 0
        for item in items:
            key = normalise_question(item.question)
            if not key:
                raise ValueError(f"knowledge question {item.question!r} is empty after normalisation")
            reference = item.answer if item.answer and item.answer.strip() else hidden_reference(key)
            self._questions[key] = KnownQuestion(key, item.question, reference.strip(), item.category)
            count += 1
        self._forget_derived()
        return count

    def clear(self) -> None:
        self._questions.clear()
        self._forget_derived()

    def _forget_derived(self) -> None:
        self._resolved.clear()
        self._answers_by_category = None
        self._longest_first = None

    def items(self) -> list[KnownQuestion]:
        return list(self._questions.values())

    def get(self, key: str) -> KnownQuestion | None:
        return self._questions.get(key)

    def resolve(self, text: str) -> str:
        """The key a prompt is answered under.

        The normalised prompt itself when it is a known question; otherwise the longest known question
        the prompt contains as whole words (prompts often wrap the question in an instruction); otherwise
        the normalised prompt, which is then an unknown question.
        """
        key = normalise_question(text)
        if key in self._questions:
            return key
        cached = self._resolved.get(key)
        if cached is not None:
            return cached
        if self._longest_first is None:
            self._longest_first = sorted(self._questions, key=len, reverse=True)
        resolved = key
        for known in self._longest_first:
            if _contains_words(key, known):
                resolved = known
                break
        if len(self._resolved) >= _RESOLUTION_CACHE_LIMIT:
            self._resolved.clear()
        self._resolved[key] = resolved
        return resolved

    def answers_in(self, category: str | None) -> list[str]:
        """Reference answers of a category: the pool wrong text answers are drawn from."""
        if category is None:
            return []
        if self._answers_by_category is None:
            grouped: dict[str | None, list[str]] = {}
            for known in self._questions.values():
                grouped.setdefault(known.category, []).append(known.reference)
            self._answers_by_category = grouped
        return self._answers_by_category.get(category, [])


def _contains_words(text: str, phrase: str) -> bool:
    start = text.find(phrase)
    while start != -1:
        end = start + len(phrase)
        before_ok = start == 0 or not text[start - 1].isalnum()
        after_ok = end == len(text) or not text[end].isalnum()
        if before_ok and after_ok:
            return True
        start = text.find(phrase, start + 1)
    return False
