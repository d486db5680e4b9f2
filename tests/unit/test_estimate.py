import pytest

from synthtune.contracts.config import FineTuneHyperparameters, RunConfig
from synthtune.contracts.errors import BudgetExceeded, InvalidConfig
from synthtune.contracts.problems import Problem
from synthtune.contracts.usage import Usage
from synthtune.money.estimate import (
    SCHEMA_OVERHEAD_TOKENS,
    CostEstimate,
    describe_estimate,
    epochs_for,
    estimate_run_cost,
    probe_prompt_tokens,
    solver_prompt_tokens,
    worst_case_answer_usage,
    worst_case_answer_usd,
    worst_case_judge_usd,
    worst_case_probe_usage,
    worst_case_solve_usd,
)
from synthtune.money.usage import inference_cost_usd
from synthtune.prompts import ABSTAINING_SYSTEM_PROMPT, SOLVER_SYSTEM_PROMPT, Exemplar
from synthtune.stages.plan import check_budget

TEACHER = "gpt-4.1-2025-04-14"  # $2 input, $8 output per million tokens
STUDENT = "gpt-4.1-nano-2025-04-14"  # $0.10 input, $0.40 output, $1.50 training; fine-tuned $0.20/$0.80
QUESTION = "A train leaves at 3 pm and travels 120 km at 60 km/h. When does it arrive?"

TRAIN = [
    Problem(id="t1", question="What is 17 times 23?", answer="391", split="train"),
    Problem(
        id="t2", question="Name the largest planet of the solar system.", answer="Jupiter", split="train"
    ),
]
VALIDATION = [Problem(id="v1", question="What is 2 to the power 10?", answer="1024", split="validation")]
HOLDOUT = [Problem(id="h1", question="What is 9 squared?", answer="81", split="holdout")]


def test_worst_case_solve_is_the_prompt_once_plus_every_token_every_sample_may_write() -> None:
    prompt = solver_prompt_tokens(TEACHER, QUESTION) + SCHEMA_OVERHEAD_TOKENS
    assert worst_case_solve_usd(TEACHER, QUESTION, 1000, 1) == pytest.approx((prompt * 2 + 1000 * 8) / 1e6)
    one, three = (
        worst_case_solve_usd(TEACHER, QUESTION, 1000, 1),
        worst_case_solve_usd(TEACHER, QUESTION, 1000, 3),
    )
    assert three - one == pytest.approx(2 * 1000 * 8 / 1e6)  # n samples share one billed prompt
    assert worst_case_solve_usd(TEACHER, QUESTION, 2000, 1) - one == pytest.approx(1000 * 8 / 1e6)
    longer = QUESTION + " Show every step, and check the answer by working backwards from it."
    assert worst_case_solve_usd(TEACHER, longer, 1000, 1) > one


def test_batch_calls_cost_half() -> None:
    for samples in (1, 4):
        standard = worst_case_solve_usd(TEACHER, QUESTION, 512, samples)
        assert worst_case_solve_usd(TEACHER, QUESTION, 512, samples, batch=True) == pytest.approx(
            standard / 2
        )
    usage = Usage(requests=3, input_tokens=10_000, cached_input_tokens=2_000, output_tokens=5_000)
    assert inference_cost_usd(TEACHER, usage, batch=True) == pytest.approx(
        inference_cost_usd(TEACHER, usage) / 2  # type: ignore[operator]
    )


def test_worst_case_answer_and_judge_are_priced_from_their_own_prompts() -> None:
    answer_prompt = solver_prompt_tokens(STUDENT, QUESTION)
    assert worst_case_answer_usd(STUDENT, QUESTION, 700) == pytest.approx(
        (answer_prompt * 0.10 + 700 * 0.40) / 1e6
    )
    judge = "gpt-4.1-mini-2025-04-14"
    short = worst_case_judge_usd(judge, QUESTION, "5 pm", "five in the afternoon")
    long = worst_case_judge_usd(judge, QUESTION, "5 pm", "five in the afternoon, " * 20)
    assert 0 < short < long


@pytest.mark.parametrize(
    "cost",
    [
        lambda: worst_case_solve_usd("house-model", QUESTION, 100, 1),
        lambda: worst_case_answer_usd("house-model", QUESTION, 100),
        lambda: worst_case_judge_usd("house-model", QUESTION, "1", "2"),
    ],
)
def test_an_unpriced_model_cannot_have_a_worst_case(cost: object) -> None:
    with pytest.raises(InvalidConfig, match=r"house-model has no price in the catalog"):
        cost()  # type: ignore[operator]


@pytest.mark.parametrize(
    ("examples", "epochs"),
    [
        (0, 3),
        (1, 25),  # raised toward 100 examples x epochs, capped at 25
        (3, 25),
        (4, 25),
        (10, 10),
        (33, 4),
        (34, 3),
        (1000, 3),
        (8333, 3),
        (8334, 2),  # lowered so examples x epochs stays within 25,000
        (12_501, 1),
        (100_000, 1),
    ],
)
def test_auto_epochs_follow_openais_rule(examples: int, epochs: int) -> None:
    assert epochs_for(FineTuneHyperparameters(), examples) == epochs


def test_auto_epochs_keep_examples_times_epochs_within_100_to_25000() -> None:
    for examples in [*range(4, 200), *range(200, 25_001, 97)]:
        epochs = epochs_for(FineTuneHyperparameters(), examples)
        assert 1 <= epochs <= 25
        assert 100 <= examples * epochs <= 25_000, examples


def test_configured_epochs_are_used_as_they_are() -> None:
    assert epochs_for(FineTuneHyperparameters(n_epochs=7), 1) == 7
    assert epochs_for(FineTuneHyperparameters(n_epochs=7), 50_000) == 7


def config(**changes: object) -> RunConfig:
    return RunConfig.model_validate({"teacher_model": TEACHER, "student_model": STUDENT, **changes})


NO_PROBE = {"probe": {"enabled": False}, "knowledge_policy": "keep_all"}


def test_the_estimate_prices_generation_fine_tuning_and_benchmark() -> None:
    estimate = estimate_run_cost(
        config(max_output_tokens=200, dataset=NO_PROBE), [*TRAIN, *VALIDATION], HOLDOUT
    )
    assert estimate is not None
    assert estimate.probe_usd == 0.0  # the student is not probed
    # Every generated problem (validation too) is answered by the teacher; answers of 200 tokens here,
    # since max_output_tokens is below the assumed 300.
    prompts = sum(
        solver_prompt_tokens(TEACHER, p.question) + SCHEMA_OVERHEAD_TOKENS for p in [*TRAIN, *VALIDATION]
    )
    assert estimate.generation_usd == pytest.approx((prompts * 2 + 3 * 200 * 8) / 1e6)
    assert estimate.generation_worst_case_usd == pytest.approx((prompts * 2 + 3 * 200 * 8) / 1e6)
    # Only train problems are trained on, for the auto epochs of 2 examples (25).
    trained = sum(solver_prompt_tokens(STUDENT, p.question) + 200 for p in TRAIN)
    assert estimate.fine_tuning_usd == pytest.approx(trained * 25 * 1.50 / 1e6)
    assert "25 epochs" in estimate.assumptions
    # Each contestant answers each held-out problem at its own price.
    question = HOLDOUT[0].question
    base = (solver_prompt_tokens(STUDENT, question) * 0.10 + 200 * 0.40) / 1e6
    teacher = (solver_prompt_tokens(TEACHER, question) * 2 + 200 * 8) / 1e6
    fine_tuned = (solver_prompt_tokens(STUDENT, question) * 0.20 + 200 * 0.80) / 1e6
    assert estimate.benchmark_usd == pytest.approx(base + teacher + fine_tuned)
    assert estimate.total_usd == pytest.approx(
        estimate.generation_usd + estimate.fine_tuning_usd + estimate.benchmark_usd
    )


def test_the_estimate_follows_the_knobs_that_change_the_bill() -> None:
    problems = [*TRAIN, *VALIDATION]
    usual = estimate_run_cost(config(), problems, HOLDOUT)
    assert usual is not None
    assert usual.generation_usd < usual.generation_worst_case_usd  # 300-token answers, 1024 allowed
    batch = estimate_run_cost(config(generation={"mode": "batch"}), problems, HOLDOUT)
    assert batch is not None
    assert batch.generation_usd == pytest.approx(usual.generation_usd / 2)
    assert batch.generation_worst_case_usd == pytest.approx(usual.generation_worst_case_usd / 2)
    assert batch.fine_tuning_usd == pytest.approx(usual.fine_tuning_usd)
    assert batch.benchmark_usd == pytest.approx(usual.benchmark_usd)
    sampled = estimate_run_cost(config(teacher_temperature=0.7, generation={"samples": 3}), problems, HOLDOUT)
    assert sampled is not None
    output_share = 3 * 300 * 8 / 1e6  # three problems' expected answers
    assert sampled.generation_usd - usual.generation_usd == pytest.approx(2 * output_share)
    assert sampled.fine_tuning_usd == pytest.approx(usual.fine_tuning_usd)  # one example per problem
    two_epochs = estimate_run_cost(config(fine_tune={"n_epochs": 2}), problems, HOLDOUT)
    assert two_epochs is not None
    assert two_epochs.fine_tuning_usd == pytest.approx(usual.fine_tuning_usd * 2 / 25)
    base_only = estimate_run_cost(config(benchmark_contestants=["base"]), problems, HOLDOUT)
    assert base_only is not None
    assert 0 < base_only.benchmark_usd < usual.benchmark_usd
    assert base_only.generation_usd == pytest.approx(usual.generation_usd)


@pytest.mark.parametrize(
    "unpriced",
    [{"teacher_model": "house-teacher"}, {"student_model": "house-student"}, {"judge_model": "house-judge"}],
)
def test_no_estimate_when_a_model_of_the_run_has_no_price(unpriced: dict[str, str]) -> None:
    assert estimate_run_cost(config(**unpriced), TRAIN, HOLDOUT) is None


def test_the_probe_is_priced_per_problem_greedy_with_exemplars_and_sampled_at_the_students_price() -> None:
    probe = {"greedy": 3, "samples": 4, "exemplars": 2}
    estimate = estimate_run_cost(
        config(max_output_tokens=200, dataset={"probe": probe}), [*TRAIN, *VALIDATION], HOLDOUT
    )
    without = estimate_run_cost(
        config(max_output_tokens=200, dataset=NO_PROBE), [*TRAIN, *VALIDATION], HOLDOUT
    )
    assert estimate is not None and without is not None
    expected = 0.0
    for problem in [*TRAIN, *VALIDATION, *HOLDOUT]:  # held-out problems too, probed after the benchmark
        alone = solver_prompt_tokens(STUDENT, problem.question)
        # Each exemplar counted as large as the problem itself and a 200-token answer.
        shown = [Exemplar(question=problem.question, reply="")] * 2
        with_exemplars = probe_prompt_tokens(STUDENT, problem.question, SOLVER_SYSTEM_PROMPT, shown) + 2 * 200
        greedy = (alone + 2 * with_exemplars) * 0.10 + 3 * 200 * 0.40
        sampled = alone * 0.10 + 4 * 200 * 0.40  # OpenAI: the 4 samples in one request (`n`)
        expected += (greedy + sampled) / 1e6
    assert estimate.probe_usd == pytest.approx(expected)
    # Nothing else moves: the probe is its own part of the total.
    assert (estimate.generation_usd, estimate.fine_tuning_usd, estimate.benchmark_usd) == pytest.approx(
        (without.generation_usd, without.fine_tuning_usd, without.benchmark_usd)
    )
    assert estimate.total_usd == pytest.approx(without.total_usd + expected)
    assert "probed 7 times on every problem" in estimate.assumptions
    assert "probed" not in without.assumptions
    line = describe_estimate(estimate, None)
    assert f"probe ${expected:,.4f}" in line
    assert f"${estimate.total_usd:,.4f} (" in line
    assert "probe $" not in describe_estimate(without, None)


def test_a_bedrock_student_is_probed_one_request_per_sample() -> None:
    nova = "bedrock/amazon.nova-micro-v1:0"
    problems = [TRAIN[0]]
    probe = {"greedy": 1, "samples": 3, "exemplars": 0}
    estimate = estimate_run_cost(config(student_model=nova, dataset={"probe": probe}), problems, [])
    without = estimate_run_cost(config(student_model=nova, dataset=NO_PROBE), problems, [])
    assert estimate is not None and without is not None
    alone = solver_prompt_tokens(nova, TRAIN[0].question)
    usage = Usage(requests=4, input_tokens=4 * alone, output_tokens=4 * 300)  # greedy + 3 sampled requests
    assert estimate.probe_usd == pytest.approx(inference_cost_usd(nova, usage))
    # The worst case of one probe call pays the prompt once per Converse request, once for OpenAI's `n`.
    worst = worst_case_probe_usage(nova, TRAIN[0].question, SOLVER_SYSTEM_PROMPT, (), 500, 3)
    assert worst == Usage(requests=3, input_tokens=3 * alone, output_tokens=1500)
    openai_worst = worst_case_probe_usage(STUDENT, TRAIN[0].question, SOLVER_SYSTEM_PROMPT, (), 500, 3)
    assert openai_worst.requests == 1
    assert openai_worst.input_tokens == solver_prompt_tokens(STUDENT, TRAIN[0].question)


def test_a_run_that_teaches_abstention_prices_its_longer_system_prompt() -> None:
    abstaining = config(dataset={"knowledge_policy": "abstain_unknown"})
    usual = config()
    assert abstaining.dataset.abstains and not usual.dataset.abstains
    more = estimate_run_cost(abstaining, TRAIN, HOLDOUT)
    less = estimate_run_cost(usual, TRAIN, HOLDOUT)
    assert more is not None and less is not None
    assert more.benchmark_usd > less.benchmark_usd
    assert more.fine_tuning_usd > less.fine_tuning_usd
    assert more.probe_usd > less.probe_usd
    assert more.generation_usd == pytest.approx(less.generation_usd)  # the teacher's prompt is its own
    question = HOLDOUT[0].question
    assert worst_case_answer_usage(STUDENT, question, 100, ABSTAINING_SYSTEM_PROMPT).input_tokens == (
        solver_prompt_tokens(STUDENT, question, ABSTAINING_SYSTEM_PROMPT)
    )
    assert worst_case_answer_usage(STUDENT, question, 100).input_tokens == solver_prompt_tokens(
        STUDENT, question
    )


def estimate_of(total: float) -> CostEstimate:
    return CostEstimate(
        generation_usd=total * 0.5,
        fine_tuning_usd=total * 0.3,
        benchmark_usd=total * 0.2,
        generation_worst_case_usd=total,
        assumptions="answers of about 300 tokens, 3 epochs",
    )


def test_check_budget_refuses_a_run_expected_to_cost_more_than_its_budget() -> None:
    with pytest.raises(BudgetExceeded) as refused:
        check_budget(config(budget_usd=10.0), estimate_of(12.0), "s3://bucket/problems.jsonl")
    message = str(refused.value)
    assert message.startswith("s3://bucket/problems.jsonl: this run is expected to cost $12.00")
    assert "generation $6.00, fine-tuning $3.60, benchmark $2.40" in message
    assert "budget_usd $10.00" in message
    assert "Nothing has been spent" in message
    check_budget(config(budget_usd=10.0), estimate_of(10.0), "s3://bucket/problems.jsonl")
    check_budget(config(budget_usd=10.0), estimate_of(9.0), "s3://bucket/problems.jsonl")
    check_budget(config(), estimate_of(1_000_000.0), "s3://bucket/problems.jsonl")  # no budget, no limit


def test_check_budget_on_a_real_estimate() -> None:
    problems = [*TRAIN, *VALIDATION]
    estimate = estimate_run_cost(config(), problems, HOLDOUT)
    assert estimate is not None
    check_budget(config(budget_usd=estimate.total_usd * 1.01), estimate, "src")
    with pytest.raises(BudgetExceeded):
        check_budget(config(budget_usd=estimate.total_usd * 0.99), estimate, "src")


def test_check_budget_refuses_a_budget_it_cannot_count() -> None:
    unpriced = config(teacher_model="house-teacher", budget_usd=10.0)
    with pytest.raises(InvalidConfig, match=r"budget_usd is set but .* has no price in the catalog"):
        check_budget(unpriced, estimate_run_cost(unpriced, TRAIN, HOLDOUT), "src")
    check_budget(config(teacher_model="house-teacher"), None, "src")  # without a budget: fine


def test_check_budget_refuses_an_unpriced_judge() -> None:
    # Otherwise Prepare would pass and Generate fail at the first judge call, the teacher already paid.
    unpriced_judge = config(judge_model="house-judge", budget_usd=100.0)
    with pytest.raises(InvalidConfig, match=r"has no price in the catalog"):
        check_budget(unpriced_judge, estimate_run_cost(unpriced_judge, TRAIN, HOLDOUT), "src")
    no_judge = config(judge_model=None, budget_usd=100.0)
    check_budget(no_judge, estimate_run_cost(no_judge, TRAIN, HOLDOUT), "src")


def test_the_held_out_problems_are_probed_only_when_the_base_student_is_benchmarked() -> None:
    with_base = estimate_run_cost(config(), [*TRAIN, *VALIDATION], HOLDOUT)
    without_base = estimate_run_cost(
        config(benchmark_contestants=["fine_tuned"]), [*TRAIN, *VALIDATION], HOLDOUT
    )
    generated_only = estimate_run_cost(config(), [*TRAIN, *VALIDATION], [])
    assert with_base is not None and without_base is not None and generated_only is not None
    assert without_base.probe_usd == pytest.approx(generated_only.probe_usd)
    assert without_base.probe_usd < with_base.probe_usd
