"""What a call or a whole run may cost, before it is made.

Two figures: the worst case, which a request can never exceed (its prompt's tokens, counted with the
offline tokenizer, plus every token it may write, `max_output_tokens` per sample), reserved against
the budget call by call; and the expected cost of a run, shown before it starts, which assumes
answers of `EXPECTED_ANSWER_TOKENS` and every generated training problem kept.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field

from synthtune.contracts.config import FineTuneHyperparameters, RunConfig
from synthtune.contracts.errors import InvalidConfig
from synthtune.contracts.models import provider_of
from synthtune.contracts.problems import Problem
from synthtune.contracts.usage import Usage
from synthtune.money.catalog import model_info
from synthtune.money.usage import inference_cost_usd, training_cost_usd
from synthtune.prompts import (
    JUDGE_MAX_TOKENS,
    JUDGE_SYSTEM_PROMPT,
    SOLVER_SYSTEM_PROMPT,
    Exemplar,
    judge_request,
    solver_system_prompt,
)
from synthtune.tokens import count_chat_tokens

EXPECTED_ANSWER_TOKENS = 300
"""A typical step-by-step answer to a riddle, math or logic problem; the expected cost's assumption."""


def epochs_for(hyperparameters: FineTuneHyperparameters, examples: int, model: str | None = None) -> int:
    """The epochs a job will run: as configured, else the student's default from the catalog (Nova: 2),
    else OpenAI's documented "auto" rule (3 epochs, moved so that examples x epochs stays within
    100..25,000)."""
    if isinstance(hyperparameters.n_epochs, int):
        return hyperparameters.n_epochs
    info = model_info(model) if model is not None else None
    if info is not None and info.fine_tuning is not None and info.fine_tuning.default_epochs is not None:
        return info.fine_tuning.default_epochs
    epochs = 3
    if examples and examples * epochs < 100:
        epochs = min(25, math.ceil(100 / examples))
    elif examples * epochs > 25_000:
        epochs = max(1, 25_000 // examples)
    return epochs


def fine_tuning_usd(model: str, train_tokens: int, epochs: int) -> float | None:
    return training_cost_usd(model, train_tokens * epochs)


SCHEMA_OVERHEAD_TOKENS = 120
"""The structured-output schema the teacher request carries, as the provider bills it (measured: ~100)."""


def solver_prompt_tokens(model: str, question: str, system: str = SOLVER_SYSTEM_PROMPT) -> int:
    messages = [{"role": "system", "content": system}, {"role": "user", "content": question}]
    return count_chat_tokens(messages, model)


def probe_prompt_tokens(model: str, question: str, system: str, exemplars: Sequence[Exemplar]) -> int:
    """A probe request's prompt: the system prompt, each exemplar as a user and an assistant turn, the
    question."""
    messages = [{"role": "system", "content": system}]
    for exemplar in exemplars:
        messages.append({"role": "user", "content": exemplar.question})
        messages.append({"role": "assistant", "content": exemplar.reply})
    messages.append({"role": "user", "content": question})
    return count_chat_tokens(messages, model)


def probe_requests(model: str, samples: int) -> int:
    """The requests `samples` probe answers take: one per sample on Bedrock (Converse has no `n`), one for
    all of them elsewhere (OpenAI's `n` goes far beyond a probe's samples)."""
    if samples <= 0:
        return 0
    return samples if provider_of(model) == "bedrock" else 1


def _priced(model: str, usage: Usage, *, batch: bool = False) -> float:
    cost = inference_cost_usd(model, usage, batch=batch)
    if cost is None:
        raise InvalidConfig(
            f"{model} has no price in the catalog (synthtune.money.catalog), so budget_usd cannot be "
            "enforced; add it to the catalog or run without a budget"
        )
    return cost


def worst_case_solve_usage(model: str, question: str, max_tokens: int, samples: int) -> Usage:
    prompt = solver_prompt_tokens(model, question) + SCHEMA_OVERHEAD_TOKENS
    return Usage(requests=1, input_tokens=prompt, output_tokens=max_tokens * samples)


def worst_case_solve_usd(
    model: str, question: str, max_tokens: int, samples: int, *, batch: bool = False
) -> float:
    return _priced(model, worst_case_solve_usage(model, question, max_tokens, samples), batch=batch)


def worst_case_answer_usage(
    model: str, question: str, max_tokens: int, system: str = SOLVER_SYSTEM_PROMPT
) -> Usage:
    return Usage(
        requests=1, input_tokens=solver_prompt_tokens(model, question, system), output_tokens=max_tokens
    )


def worst_case_answer_usd(model: str, question: str, max_tokens: int) -> float:
    return _priced(model, worst_case_answer_usage(model, question, max_tokens))


def worst_case_probe_usage(
    model: str, question: str, system: str, exemplars: Sequence[Exemplar], max_tokens: int, samples: int
) -> Usage:
    """One `ChatPort.replies` call: its prompt billed once per request it takes, every token each sample
    may write."""
    requests = max(1, probe_requests(model, samples))
    prompt = probe_prompt_tokens(model, question, system, exemplars)
    return Usage(requests=requests, input_tokens=prompt * requests, output_tokens=max_tokens * samples)


def worst_case_judge_usage(model: str, question: str, reference: str, candidate: str) -> Usage:
    messages = [
        {"role": "system", "content": JUDGE_SYSTEM_PROMPT},
        {"role": "user", "content": judge_request(question, reference, candidate)},
    ]
    prompt = count_chat_tokens(messages, model) + SCHEMA_OVERHEAD_TOKENS
    return Usage(requests=1, input_tokens=prompt, output_tokens=JUDGE_MAX_TOKENS)


def worst_case_judge_usd(model: str, question: str, reference: str, candidate: str) -> float:
    return _priced(model, worst_case_judge_usage(model, question, reference, candidate))


def priced_worst_case(model: str, usage: Usage) -> float:
    """The list price of a worst-case usage, refusing (InvalidConfig) a model the catalog cannot price."""
    return _priced(model, usage)


class CostEstimate(BaseModel):
    """The pre-flight estimate Prepare records on the run and shows in the report."""

    model_config = ConfigDict(frozen=True)

    generation_usd: float
    fine_tuning_usd: float
    benchmark_usd: float
    generation_worst_case_usd: float
    serving_usd: float = Field(
        default=0.0, description="Provisioned Throughput for the benchmark, when the student needs it."
    )
    probe_usd: float = Field(
        default=0.0,
        description="Probing the base student: training problems before Assemble, held-out problems after "
        "the benchmark.",
    )
    assumptions: str
    unpriced: list[str] = Field(
        default_factory=list, description="What the catalog has no price for, and so is not in the total."
    )

    @property
    def total_usd(self) -> float:
        return (
            self.generation_usd
            + self.fine_tuning_usd
            + self.benchmark_usd
            + self.serving_usd
            + self.probe_usd
        )


def expected_probe_usage(config: RunConfig, question: str, expected_answer: int) -> Usage:
    """What probing the student on one problem is expected to take: `greedy` requests, the first without
    exemplars and each further one with `exemplars` of them (each counted as large as this problem and its
    answer), and `samples` sampled answers in as few requests as the provider allows."""
    probe, student = config.dataset.probe, config.student_model
    if not probe.enabled:
        return Usage()
    system = solver_system_prompt(config.dataset.abstains)
    alone = solver_prompt_tokens(student, question, system)
    shown = [Exemplar(question=question, reply="")] * probe.exemplars
    with_exemplars = probe_prompt_tokens(student, question, system, shown) + probe.exemplars * expected_answer
    usage = Usage(requests=1, input_tokens=alone, output_tokens=expected_answer)
    usage += Usage(
        requests=probe.greedy - 1,
        input_tokens=with_exemplars * (probe.greedy - 1),
        output_tokens=expected_answer * (probe.greedy - 1),
    )
    sampled = probe_requests(student, probe.samples)
    return usage + Usage(
        requests=sampled, input_tokens=alone * sampled, output_tokens=expected_answer * probe.samples
    )


def estimate_run_cost(
    config: RunConfig, generated: Iterable[Problem], holdout: Iterable[Problem]
) -> CostEstimate | None:
    """The run's expected cost at list prices; None when a model it uses has no price."""
    teacher, student = config.teacher_model, config.student_model
    if any(model_info(model) is None for model in (teacher, student, config.judge_model) if model):
        return None
    batch = config.generation.mode == "batch"
    samples = config.generation.samples
    expected_answer = min(EXPECTED_ANSWER_TOKENS, config.max_output_tokens)
    # Every contestant is asked, and the student trained, with the run's solver prompt.
    student_system = solver_system_prompt(config.dataset.abstains)
    generation = Usage()
    worst = Usage()
    probing = Usage()
    training_tokens = 0
    train_count = 0
    for problem in generated:
        prompt = solver_prompt_tokens(teacher, problem.question) + SCHEMA_OVERHEAD_TOKENS
        generation += Usage(requests=1, input_tokens=prompt, output_tokens=expected_answer * samples)
        worst += Usage(requests=1, input_tokens=prompt, output_tokens=config.max_output_tokens * samples)
        probing += expected_probe_usage(config, problem.question, expected_answer)
        if problem.split != "validation":
            training_tokens += (
                solver_prompt_tokens(student, problem.question, student_system) + expected_answer
            )
            train_count += 1
    epochs = epochs_for(config.fine_tune, train_count, student)
    unpriced: list[str] = []
    fine_tuning = fine_tuning_usd(student, training_tokens, epochs)
    if fine_tuning is None:
        unpriced.append(f"training {student}")
    benchmark = 0.0
    contestants = {"base": student, "teacher": teacher, "fine_tuned": student}
    for problem in holdout:
        if "base" in config.benchmark_contestants:  # the base contestant's iteration probes the holdout
            probing += expected_probe_usage(config, problem.question, expected_answer)
        for contestant in config.benchmark_contestants:
            model = contestants[contestant]
            prompt = solver_prompt_tokens(model, problem.question, student_system)
            usage = Usage(requests=1, input_tokens=prompt, output_tokens=expected_answer)
            cost = inference_cost_usd(model, usage, fine_tuned=contestant == "fine_tuned")
            if cost is None and f"answers of the {contestant} contestant" not in unpriced:
                unpriced.append(f"answers of the {contestant} contestant")
            benchmark += cost or 0.0
    probe_cost = inference_cost_usd(student, probing) if probing.requests else 0.0
    if probe_cost is None:
        unpriced.append(f"probing {student}")
    serving, serving_note = provisioned_throughput_usd(config)
    if serving_note.endswith("unpriced"):
        unpriced.append("Provisioned Throughput")
    probe = config.dataset.probe
    probe_note = (
        f", the base student probed {probe.greedy + probe.samples} times on every problem"
        if probe.enabled
        else ""
    )
    return CostEstimate(
        generation_usd=inference_cost_usd(teacher, generation, batch=batch) or 0.0,
        fine_tuning_usd=fine_tuning or 0.0,
        benchmark_usd=benchmark,
        generation_worst_case_usd=inference_cost_usd(teacher, worst, batch=batch) or 0.0,
        serving_usd=serving,
        probe_usd=probe_cost or 0.0,
        unpriced=unpriced,
        assumptions=(
            f"answers of about {expected_answer} tokens, {epochs} epochs, every generated train problem "
            f"kept{probe_note}{serving_note}; judge calls not included (made only where the normalised "
            "match cannot decide)"
        ),
    )


PROVISIONED_HOURS = 1
"""Hours of Provisioned Throughput a benchmark is expected to hold (billed by the started hour)."""


def provisioned_throughput_usd(config: RunConfig, hours: int = PROVISIONED_HOURS) -> tuple[float, str]:
    """What serving the fine-tuned student costs when it needs Provisioned Throughput, and the assumption
    for the estimate's text; (0, "") when it is served on demand."""
    info = model_info(config.student_model)
    if info is None or info.fine_tuning is None or info.fine_tuning.serving != "provisioned_throughput":
        return 0.0, ""
    if not config.allow_provisioned_throughput:
        return 0.0, ""
    hourly = info.price.provisioned_throughput_per_hour if info.price else None
    if hourly is None:
        return 0.0, ", Provisioned Throughput unpriced"
    return hourly * hours, f", {hours} hour of Provisioned Throughput at ${hourly:,.2f}"


def describe_estimate(estimate: CostEstimate | None, budget_usd: float | None) -> str:
    """One line for a person: the expected cost, its parts, the worst case and the budget."""
    budget = f"; budget ${budget_usd:,.2f}" if budget_usd is not None else ""
    if estimate is None:
        return f"estimated cost: unknown (a model has no price in the catalog){budget}"
    parts = (
        f"generation ${estimate.generation_usd:,.4f}",
        f"fine-tuning ${estimate.fine_tuning_usd:,.4f}",
        f"benchmark ${estimate.benchmark_usd:,.4f}",
        *([f"probe ${estimate.probe_usd:,.4f}"] if estimate.probe_usd else []),
        *([f"serving ${estimate.serving_usd:,.2f}"] if estimate.serving_usd else []),
        f"at most ${estimate.generation_worst_case_usd:,.4f} for generation",
    )
    missing = f"; not priced: {', '.join(estimate.unpriced)}" if estimate.unpriced else ""
    return f"estimated cost at list prices: ${estimate.total_usd:,.4f} ({', '.join(parts)}){missing}{budget}"
