"""The `synthtune` command."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, cast

from synthtune.contracts.config import RunConfig, load_run_config
from synthtune.contracts.errors import ErrorName, InvalidConfig, SynthtuneError
from synthtune.contracts.models import provider_of
from synthtune.money.catalog import training_example_limit
from synthtune.money.estimate import describe_estimate
from synthtune.providers.registry import dataset_format
from synthtune.quality.format_report import describe_issues, describe_tokens
from synthtune_cli.providers import ProviderMode, plan_local_run, run_providers
from synthtune_cli.runner import (
    RunInterrupted,
    RunOutcome,
    RunSetupError,
    resume_locally,
    run_locally,
)


def _read_config(path: Path | None) -> dict[str, Any] | None:
    """The --config file's fields, validated as RunConfig here so a typo fails before anything runs."""
    if path is None:
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidConfig(f"{path}: no such file") from None
    except json.JSONDecodeError as error:
        raise InvalidConfig(f"{path}: not valid JSON ({error.msg} at line {error.lineno})") from None
    load_run_config(document, source=str(path))
    return dict(document)


def _run(args: argparse.Namespace) -> int:
    try:
        config = _read_config(args.config)
        if args.budget_usd is not None:
            config = {**(config or {}), "budget_usd": args.budget_usd}
        outcome = _resume(args, config) if args.resume is not None else _start(args, config)
    except SynthtuneError as error:
        return _refused(error)
    except RunSetupError as error:
        print(f"synthtune: {error}", file=sys.stderr)
        return 2
    except RunInterrupted as stopped:
        print(
            f"synthtune: interrupted; the run is kept in {stopped.run_dir}/ ({stopped.answers} teacher "
            "answers paid for, in answers.jsonl)",
            file=sys.stderr,
        )
        print(f"  resume it with: {stopped.resume_command}", file=sys.stderr, flush=True)
        if stopped.abandoned:
            # Lambda invocations still in flight would hold the process open until they finish: leave
            # them, as kill -9 would (the run directory is consistent either way).
            sys.stdout.flush()
            os._exit(130)
        return 130
    except KeyboardInterrupt:
        # Before the execution started, or while its directory was being written: what is on disk is
        # whole (every file is written atomically), and a run directory with a run.json can be resumed.
        print("synthtune: interrupted", file=sys.stderr)
        return 130
    _print_outcome(outcome)
    return 0 if outcome.status == "SUCCEEDED" else 1


def _start(args: argparse.Namespace, config: dict[str, Any] | None) -> RunOutcome:
    if args.problem_set is None:
        raise RunSetupError("give the PROBLEM_SET to run, or --resume RUN_DIR to go on with a run")
    openai, bedrock = _modes(args)
    return run_locally(
        args.problem_set,
        config=config,
        out_dir=args.out or Path("runs"),
        openai=openai,
        bedrock=bedrock,
        run_id=args.run_id,
    )


def _resume(args: argparse.Namespace, changes: dict[str, Any] | None) -> RunOutcome:
    given = [
        name
        for name, value in (("PROBLEM_SET", args.problem_set), ("--run-id", args.run_id), ("--out", args.out))
        if value is not None
    ]
    if given:
        raise RunSetupError(
            f"--resume goes on with the run in {args.resume} as it was started: its problem set, run id "
            f"and directory; drop {', '.join(given)}"
        )
    source = str(args.config) if args.config is not None else "--budget-usd"
    return resume_locally(
        args.resume, config_changes=changes, config_source=source, openai=args.openai, bedrock=args.bedrock
    )


def _print_outcome(outcome: RunOutcome) -> None:
    timing = f"{outcome.wall_seconds:.1f} s"
    if outcome.emulated_seconds is not None:
        timing += f" (emulated time {outcome.emulated_seconds / 60:.0f} min)"
    print(f"{outcome.status}  {outcome.run_id}  in {timing}")
    if outcome.status == "SUCCEEDED":
        accuracy = {score["contestant"]: score["accuracy"] for score in outcome.summary.get("scores", [])}
        parts = [f"{name} {value * 100:.1f}%" for name, value in accuracy.items()]
        if "base" in accuracy and "fine_tuned" in accuracy:
            parts.append(f"fine-tuning {100 * (accuracy['fine_tuned'] - accuracy['base']):+.1f} points")
        print(f"  accuracy on held-out problems: {', '.join(parts)}")
        for verdict in _verdicts(outcome.run_dir):
            print(f"  verdict: {verdict}")
        dataset = outcome.summary.get("dataset") or {}
        dropped = sum((dataset.get("dropped") or {}).values())
        print(
            f"  dataset: {dataset.get('train_examples', 0)} train / {dataset.get('validation_examples', 0)} "
            f"validation examples, {dropped} answers dropped"
        )
        print(f"  cost at list prices: ${outcome.summary.get('cost_usd', 0):.4f}")
    else:
        print(f"  error: {outcome.error}", file=sys.stderr)
        print(f"  cause: {outcome.cause}", file=sys.stderr)
        if outcome.summary.get("failed_state") not in {None, "Prepare"}:
            kept = f"{outcome.answers} teacher answers paid for are kept in {outcome.run_dir}/answers.jsonl"
            if outcome.error == ErrorName.BudgetExceeded:
                print(f"  {kept}; raise the budget and go on:", file=sys.stderr)
                print(f"  {outcome.resume_command} --budget-usd <more>", file=sys.stderr)
            else:
                print(f"  {kept}; once the cause is fixed, go on: {outcome.resume_command}", file=sys.stderr)
    print(f"  artifacts: {outcome.run_dir}/")


def _verdicts(run_dir: Path) -> list[str]:
    """benchmark.json's comparisons in words: what the accuracies above do and do not show."""
    try:
        benchmark = json.loads((run_dir / "benchmark.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    comparisons = benchmark.get("comparisons") if isinstance(benchmark, dict) else None
    return [str(c["verdict"]) for c in comparisons or [] if isinstance(c, dict) and c.get("verdict")]


def _modes(args: argparse.Namespace) -> tuple[ProviderMode, ProviderMode]:
    """The providers' modes `validate` plans for: as `run` takes them, `--live` for both live."""
    default = "live" if getattr(args, "live", False) else "emulator"
    return cast(ProviderMode, args.openai or default), cast(ProviderMode, args.bedrock or default)


def _refused(error: SynthtuneError) -> int:
    """A problem set, configuration or model the plan refuses: what is wrong and where, exit status 2."""
    print(f"{type(error).__name__}: {error}", file=sys.stderr)
    for note in getattr(error, "__notes__", []):
        print(f"  {note}", file=sys.stderr)
    return 2


def _validate(args: argparse.Namespace) -> int:
    """The plan Prepare will make, without starting anything: 0 when the run would start, 2 when not."""
    try:
        config = load_run_config(_read_config(args.config), source=str(args.config or "config"))
        with run_providers(*_modes(args)) as providers:
            plan = plan_local_run(args.problem_set, config, providers.registry, providers.emulator_url)
    except SynthtuneError as error:
        return _refused(error)
    problems, config, counts = plan.problems, plan.config, plan.split.counts
    categories = sorted({problem.category for problem in problems})
    with_answers = sum(problem.answer is not None for problem in problems)
    print(f"{plan.problem_set}: {len(problems)} problems, {with_answers} with reference answers")
    print(f"  categories: {', '.join(categories)}")
    print(f"  split: {counts.train} train, {counts.validation} validation, {counts.holdout} holdout")
    print(f"  shards of {config.shard_size}: {plan.shard_count}")
    print(f"  {describe_estimate(plan.estimate, config.budget_usd)}")
    for role, status in plan.models.items():
        print(f"  {role} {status.model}: ok ({status.detail})")
    return 0


def _check_dataset(args: argparse.Namespace) -> int:
    """Check a fine-tuning file in its provider's format: exit 0 when valid, 1 when not, 2 when unreadable."""
    try:
        with args.file.open("rb") as lines:
            first = next((line for line in lines if line.strip()), b"")
    except FileNotFoundError:
        print(f"synthtune: {args.file}: no such file", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"synthtune: {args.file}: cannot read it ({error.strerror or error})", file=sys.stderr)
        return 2
    provider = args.format or detect_dataset_provider(first)
    model = args.model or default_student(provider)
    dataset = dataset_format(provider)
    limit = args.max_example_tokens or training_example_limit(model)
    with args.file.open("rb") as lines:
        validator = dataset.validator(str(args.file), model, limit)
        validator.check_file_name(args.file.name)
        for number, raw in enumerate(lines, 1):
            validator.check_line(number, raw)
    report = validator.report()
    fewest, most = dataset.example_bounds(model)
    print(f"{report.file}: {report.examples:,} examples for {model}, at most {limit:,} tokens each")
    print(f"  format: {dataset.name}")
    print(f"  tokens per example: {describe_tokens(report.tokens)}")
    print(f"  assistant tokens per example: {describe_tokens(report.assistant_tokens)}")
    print(f"  billed tokens per epoch: {report.billed_tokens:,}")
    print(
        f"  examples without a system message: {report.examples_without_system:,}, "
        f"without a user message: {report.examples_without_user:,}"
    )
    print(describe_issues(report))
    within = fewest <= report.examples and (most is None or report.examples <= most)
    if not within:
        bounds = f"{fewest:,} to {most:,}" if most is not None else f"at least {fewest:,}"
        print(f"{report.file}: {report.examples:,} examples; fine-tuning {model} takes {bounds}")
    return 0 if report.valid and within else 2  # an invalid file is invalid input, as for every command


def detect_dataset_provider(first_line: bytes) -> str:
    """bedrock for bedrock-conversation-2024 records (schemaVersion, or content as text blocks); else
    openai (whose chat format Hugging Face reads too)."""
    try:
        record = json.loads(first_line)
    except (ValueError, RecursionError):
        return "openai"
    if not isinstance(record, dict):
        return "openai"
    messages = record.get("messages")
    blocks = isinstance(messages, list) and any(
        isinstance(message, dict) and isinstance(message.get("content"), list) for message in messages
    )
    return "bedrock" if "schemaVersion" in record or blocks else "openai"


def default_student(provider: str) -> str:
    """The student whose tokenizer and limits a file is checked against, when --model is not given."""
    student = RunConfig().student_model
    return student if provider_of(student) == provider else OPENAI_REFERENCE_STUDENT


OPENAI_REFERENCE_STUDENT = "gpt-4.1-mini-2025-04-14"
"""An OpenAI model that fine-tunes with the chat format's usual 65,536-token limit."""


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a number of dollars more than 0, not {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


RUN_EXAMPLES = (
    "examples:\n"
    "  synthtune run events/problem-set.sample.jsonl\n"
    "  synthtune run my-problems.jsonl --config config.json --budget-usd 2\n"
    "  synthtune run --resume runs/my-problems-20261201-081500-a1b2c3 --budget-usd 5\n"
    "  OPENAI_API_KEY=sk-... synthtune run my-problems.jsonl --openai live"
)
VALIDATE_EXAMPLES = (
    "examples:\n"
    "  synthtune validate my-problems.jsonl\n"
    "  synthtune validate my-problems.csv --config config.json --live"
)
REPORT_EXAMPLES = (
    "examples:\n"
    "  synthtune report runs/my-problems-20261201-081500-a1b2c3\n"
    "  aws s3 cp --recursive s3://BUCKET/runs/RUN_ID/ run-copy && synthtune report run-copy"
)


class _ExamplesFormatter(argparse.HelpFormatter):
    """Wraps descriptions as argparse does, and keeps the lines of an epilog of examples (and of the
    exit-status table) as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith(("example", "exit status")):
            return text
        return super()._fill_text(text, width, indent)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("synthtune")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


def build_parser() -> argparse.ArgumentParser:
    from synthtune_cli.emulator.command import add_emulator_arguments

    parser = argparse.ArgumentParser(
        prog="synthtune",
        description="Distil a strong teacher model into a cheaper student: generate verified step-by-step "
        "answers, fine-tune, and benchmark base vs fine-tuned vs teacher.",
        epilog=EXIT_CODES,
        formatter_class=_ExamplesFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run",
        help="run the whole pipeline locally (AWS emulated; the models emulated by default), or resume one",
        description="Runs statemachine/pipeline.asl.json on moto's Step Functions interpreter with the "
        "Lambda handlers in-process, and writes the run's artifacts to OUT/<run id>/. The run directory is "
        "kept up to date as the run happens — every teacher answer paid for, the dataset, the fine-tuning "
        "job — so a run stopped by Ctrl-C, kill -9, a crash or its budget goes on with --resume RUN_DIR: "
        "a new execution of the same run id that pays for nothing already answered and finds the run's "
        "fine-tuning job instead of starting another.",
        epilog=RUN_EXAMPLES,
        formatter_class=_ExamplesFormatter,
    )
    run.add_argument(
        "problem_set",
        type=Path,
        nargs="?",
        metavar="PROBLEM_SET",
        help=".jsonl, .json (array) or .csv (not with --resume)",
    )
    run.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="go on with the run in RUN_DIR (e.g. runs/<run id>), with its problem set, run id, "
        "configuration and providers; --config and --budget-usd change its configuration, except what the "
        "answers already paid for depend on (the split, shard_size, teacher, student, fine-tuning)",
    )
    run.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="JSON object of RunConfig fields to change (with --resume: to change from the run's)",
    )
    run.add_argument(
        "--budget-usd",
        type=_positive_float,
        metavar="USD",
        help="most the run may spend at list prices (RunConfig's budget_usd, over --config's); with "
        "--resume, raise it to go on after BudgetExceeded",
    )
    run.add_argument("--out", type=Path, metavar="DIR", help="where run directories go (default: runs/)")
    run.add_argument(
        "--openai",
        choices=["emulator", "live"],
        help="emulator (default): the project's simulated OpenAI on loopback; live: the OpenAI API, or the "
        "OpenAI-compatible server in OPENAI_BASE_URL, with OPENAI_API_KEY (a resumed run keeps its own)",
    )
    run.add_argument(
        "--bedrock",
        choices=["emulator", "live"],
        help="emulator (default): the project's simulated Amazon Bedrock on loopback; live: Amazon Bedrock "
        "with boto3's usual credentials, or the endpoints AWS_ENDPOINT_URL_BEDROCK and "
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME name (a resumed run keeps its own)",
    )
    run.add_argument("--run-id", help="execution name (default: <problem set>-<UTC time>-<random>)")
    run.set_defaults(handler=_run)

    validate = commands.add_parser(
        "validate",
        help="make the run's plan as Prepare will, without running anything",
        description="Makes the plan Prepare will make of this run, and prints it: the problem set read and "
        "checked, the configuration checked against the dated catalog and the student's provider, the "
        "split, the shards, the estimate against the budget, and each model looked up where the run will "
        "call it (OpenAI's GET /models/{id}, Bedrock's GetFoundationModel: free). The providers are those "
        "`synthtune run` would use with the same --openai and --bedrock: the emulator by default. Whatever "
        "Prepare would refuse is refused here, with the same message. Exit status: 0 the run would start, "
        "2 refused.",
        epilog=VALIDATE_EXAMPLES,
        formatter_class=_ExamplesFormatter,
    )
    validate.add_argument("problem_set", type=Path, metavar="PROBLEM_SET")
    validate.add_argument("--config", type=Path, metavar="FILE")
    validate.add_argument(
        "--openai",
        choices=["emulator", "live"],
        help="where OpenAI models are looked up, as for run: the emulator (default), or the OpenAI API with "
        "OPENAI_API_KEY, whose dates then apply (or the OpenAI-compatible server in OPENAI_BASE_URL)",
    )
    validate.add_argument(
        "--bedrock",
        choices=["emulator", "live"],
        help="where Bedrock models are looked up, as for run: the emulator (default), or Amazon Bedrock in "
        "us-east-1, a local run's Region, with boto3's credentials (or at AWS_ENDPOINT_URL_BEDROCK)",
    )
    validate.add_argument(
        "--live",
        action="store_true",
        help="both providers live: --openai live --bedrock live",
    )
    validate.set_defaults(handler=_validate)

    check_dataset = commands.add_parser(
        "check-dataset",
        help="check a fine-tuning JSONL file as its provider will (OpenAI or Bedrock), and count its tokens",
        description="Runs the provider's format checks on every line — OpenAI's data-preparation guide for "
        "chat files, Amazon Bedrock's rules for bedrock-conversation-2024 files (turn order, reserved "
        "keywords, file name, example counts) — counts each example's tokens offline, and refuses examples "
        "over the per-example limit. The format is read from the first line unless --format says. Exit "
        "status: 0 valid, 2 invalid or unreadable.",
    )
    check_dataset.add_argument("file", type=Path, metavar="FILE", help="a .jsonl file, one example a line")
    check_dataset.add_argument(
        "--format",
        choices=["openai", "bedrock"],
        help="the file's provider format (default: read from the file)",
    )
    check_dataset.add_argument(
        "--model",
        help="the model to fine-tune, whose tokenizer and limits apply (default: RunConfig's student_model "
        f"for a file in its format, else {OPENAI_REFERENCE_STUDENT})",
    )
    check_dataset.add_argument(
        "--max-example-tokens",
        type=_positive_int,
        metavar="N",
        help="the longest example allowed, in tokens (default: the model's fine-tuning limit from the "
        "catalog)",
    )
    check_dataset.set_defaults(handler=_check_dataset)

    report = commands.add_parser(
        "report",
        help="draw a run's report.md and report.html again from its files",
        description="Reads a run's files and writes its report.md and report.html again, with this version's "
        "statistics and charts: a run directory of `synthtune run` (runs/<run id>/; the reports go beside "
        "its files), or a run copied from S3 with `aws s3 cp --recursive s3://BUCKET/runs/RUN_ID/ DIR` (the "
        "reports go to DIR/report/). Runs written by older versions render too. Exit status: 0 written, 2 "
        "not a run directory or a file of it unreadable.",
        epilog=REPORT_EXAMPLES,
        formatter_class=_ExamplesFormatter,
    )
    report.add_argument(
        "run_dir",
        type=Path,
        metavar="RUN_DIR",
        help="runs/<run id>, or the directory a run's S3 prefix was copied to",
    )
    report.set_defaults(handler=_report)

    emulator = commands.add_parser(
        "emulator",
        help="serve the OpenAI emulator over HTTP on loopback",
        description="Serves the project's model emulator — OpenAI's chat, files, batches, fine-tuning and "
        "models endpoints, and Bedrock's — on 127.0.0.1, with knobs for latency, rate limits and errors, "
        "for trying a client or `synthtune run --openai live` against a server that behaves like a "
        "provider and bills nothing.",
        epilog="example:\n  synthtune emulator --port 8787 --rpm 600 --latency 0.3 &\n"
        "  OPENAI_BASE_URL=http://127.0.0.1:8787/v1 OPENAI_API_KEY=sk-local synthtune run PROBLEMS.jsonl "
        "--openai live",
        formatter_class=_ExamplesFormatter,
    )
    add_emulator_arguments(emulator)
    emulator.set_defaults(handler=_emulator)
    return parser


def _report(args: argparse.Namespace) -> int:
    from synthtune_cli.run_reports import RunFilesError, render_run_reports

    try:
        files = render_run_reports(args.run_dir)
    except RunFilesError as error:
        print(f"synthtune: {error}", file=sys.stderr)
        return 2
    print(f"{files.report}\n{files.report_html}")
    return 0


def _emulator(args: argparse.Namespace) -> int:
    from synthtune_cli.emulator.command import run_emulator

    return run_emulator(args)


EXIT_CODES = """exit status:
  0    succeeded (validate: the run would start; report: drawn again)
  1    the run failed (its run directory says why and keeps what it paid for)
  2    the input, the configuration or the command line is invalid: nothing was started or spent
  130  interrupted (Ctrl-C); a run keeps its directory and can be resumed"""


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        result: int = args.handler(args)
    except BrokenPipeError:
        # The reader went away (`synthtune validate ... | head`): no traceback, and none at exit when Python
        # flushes stdout again (the recipe in Python's documentation for SIGPIPE).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as error:  # a path the user gave that cannot be read or written (--out /proc/nope)
        where = f"{error.filename}: " if error.filename else ""
        print(f"synthtune: {where}{error.strerror or error}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
