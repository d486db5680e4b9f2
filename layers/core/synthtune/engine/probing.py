"""Probing the base student: what it answers to a problem, asked the way it will be trained and tested.

`probe_problem` asks the student `greedy` times at temperature 0 — the first with the training prompt
alone, each further one with other worked examples before the question (`exemplar_sets`), since a
deterministic provider answers one prompt one way and Gekhman et al. varied the few-shot exemplars —
and `samples` times at `probe.temperature`, in as few requests as the provider allows. Every request is
saved (`save`) the moment it is paid for, as the teacher's replies are, so a retried invocation asks only
for what is missing; then each answer is graded against the target with the run's grading (the judge
only where normalised matching cannot decide), and the verdicts saved when a judge was paid.

It runs inside `engine.asking`'s machinery (the chat handed in is paced and budgeted): Generate probes
training and validation problems before Assemble, Benchmark probes the held-out ones after the base
student's benchmark, for analysis only.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from synthtune.contracts.config import RunConfig
from synthtune.contracts.usage import UsageByModel, add_usage
from synthtune.engine.chat import grade_with_run_judge
from synthtune.prompts import ANSWER_PREFIX, Exemplar, parse_final_answer, solver_system_prompt
from synthtune.providers.ports import ChatPort, Replies
from synthtune.quality.knowledge import Probe, ProbeAnswer, ProbeMode

ExemplarSource = tuple[str, str, str]
"""(problem id, question, reference answer): a problem that may be shown as a worked example."""


def exemplar_sets(
    problem_id: str, candidates: Sequence[ExemplarSource], greedy: int, per_set: int
) -> list[tuple[Exemplar, ...]]:
    """The exemplars of each greedy answer: none for the first, then `per_set` other problems for each
    further one, a different choice each time (fixed by the problem's id, so a retry asks the same)."""
    others = [candidate for candidate in candidates if candidate[0] != problem_id]
    sets: list[tuple[Exemplar, ...]] = [()]
    for variant in range(1, greedy):
        # A string seeds `random` the same way in every process (Python hashes it with SHA-512).
        chosen = random.Random(f"{problem_id}\x1f{variant}").sample(others, min(per_set, len(others)))
        sets.append(
            tuple(
                Exemplar(question=question, reply=f"{ANSWER_PREFIX} {answer}")
                for _, question, answer in chosen
            )
        )
    return sets


def probe_problem(
    problem_id: str,
    question: str,
    target: str,
    *,
    config: RunConfig,
    candidates: Sequence[ExemplarSource],
    chat: ChatPort,
    saved: Probe | None,
    save: Callable[[Probe], object],
) -> Probe:
    """The problem's graded probe by the run's student, asking only for the answers `saved` does not hold
    yet (a probe of another model or target is started again): asked with the run's system prompt and
    `max_output_tokens`, the exemplars drawn from `candidates`, graded with the run's judge."""
    probe = config.dataset.probe
    model = config.student_model
    system = solver_system_prompt(config.dataset.abstains)
    exemplars = exemplar_sets(problem_id, candidates, probe.greedy, probe.exemplars)
    max_tokens = config.max_output_tokens
    reusable = saved is not None and (saved.model, saved.target) == (model, target)
    current = saved if saved is not None and reusable else Probe(model=model, target=target)

    def record(mode: ProbeMode, asked: Replies) -> None:
        nonlocal current
        answers = [
            ProbeAnswer(
                mode=mode,
                text=reply.text,
                final_answer=parse_final_answer(reply.text),
                finish_reason=reply.finish_reason,
            )
            for reply in asked.replies
        ]
        current = current.model_copy(
            update={"answers": [*current.answers, *answers], "usage": current.usage + asked.usage}
        )
        save(current)

    while (have := len(current.of_mode("greedy"))) < probe.greedy:
        shown = exemplars[have] if have < len(exemplars) else ()
        record(
            "greedy",
            chat.replies(
                model, question, system=system, exemplars=shown, temperature=0.0, max_tokens=max_tokens
            ),
        )
    per_request = max(1, chat.samples_per_request(model))
    while (have := len(current.of_mode("sampled"))) < probe.samples:
        record(
            "sampled",
            chat.replies(
                model,
                question,
                system=system,
                temperature=probe.temperature,
                max_tokens=max_tokens,
                samples=min(per_request, probe.samples - have),
            ),
        )
    if current.graded:
        return current
    judge_usage: UsageByModel = {}
    graded = [
        answer
        if answer.grade is not None
        else answer.model_copy(
            update={
                "grade": grade_with_run_judge(
                    chat, config.judge_model, question, current.target, answer.final_answer, judge_usage
                )
            }
        )
        for answer in current.answers
    ]
    paid_judge = dict(current.judge_usage)
    for judge, used in judge_usage.items():
        add_usage(paid_judge, judge, used)
    current = current.model_copy(update={"answers": graded, "judge_usage": paid_judge})
    if judge_usage:  # the verdicts were paid for: keep them with the answers
        save(current)
    return current
