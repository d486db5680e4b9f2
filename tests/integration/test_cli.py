"""`synthtune` as a user runs it: exit codes, progress, and the files a run leaves in its directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthtune_cli.clock import ScaledClock
from synthtune_cli.emulator import KnowledgeItem, OpenAIEmulator
from synthtune_cli.main import main
from tests.support import OPENAI_MODELS, SAMPLE_PROBLEM_SET, jsonl, sample_rows
from tests.support_report import Page

RUN_FILES = {
    "summary.json",
    "train.jsonl",
    "validation.jsonl",
    "dataset_card.md",
    "dataset_card.json",
    "dropped.jsonl",
    "bedrock",
    "huggingface",
    "benchmark.json",
    "report.md",
    "report.html",
    "training_metrics.csv",
    "records.json",
    "history.json",
    "lambda.log",
    "benchmark",
    "run.json",
    "run.lock",
    "answers.jsonl",
    "state",
}


def test_run_writes_every_artifact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", str(SAMPLE_PROBLEM_SET), "--out", str(tmp_path), "--run-id", "demo"])

    out, err = capsys.readouterr()
    assert code == 0, err
    run_dir = tmp_path / "demo"
    assert {path.name for path in run_dir.iterdir()} == RUN_FILES
    assert out.startswith("SUCCEEDED  demo")
    assert "accuracy on held-out problems: base" in out
    assert "  verdict: The fine-tuned student is " in out
    for stage in (
        "Prepare",
        "Generate",
        "Assemble",
        "StartFineTune",
        "fine-tuning job",
        "Benchmark",
        "Report",
    ):
        assert stage in err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "SUCCEEDED"
    assert summary["execution"]["status"] == "SUCCEEDED"
    assert {score["contestant"] for score in summary["scores"]} == {"base", "fine_tuned", "teacher"}
    train_lines = (run_dir / "train.jsonl").read_text().splitlines()
    assert len(train_lines) == summary["dataset"]["train_examples"]
    records = json.loads((run_dir / "records.json").read_text())
    assert {item["sk"] for item in records} >= {"RUN", "DATASET", "FINETUNE", "SCORE#base"}
    history = json.loads((run_dir / "history.json").read_text())
    assert history[-1]["type"] == "ExecutionSucceeded"
    report = (run_dir / "report.md").read_text()
    assert "| Fine-tuned student |" in report
    # The emulator answered: both reports say so at the top; report.html has its charts and fetches nothing.
    assert "**Simulated models.**" in report.split("\n## ", 1)[0]
    page = Page.parse((run_dir / "report.html").read_text())
    assert page.charts == {
        "chart-accuracy": 1,
        "chart-categories": 1,
        "chart-trade-off": 1,
        "chart-loss": 1,
    }
    assert page.external_references() == []
    assert "simulated" in page.ids()
    benchmark = json.loads((run_dir / "benchmark.json").read_text())
    assert [(c["a"], c["b"]) for c in benchmark["comparisons"]] == [
        ("fine_tuned", "base"),
        ("fine_tuned", "teacher"),
    ]
    assert all(len(score["ci95"]) == 2 for score in benchmark["scores"])
    # What the base student knew of each held-out problem, beside the answers; the outcomes by it.
    assert (run_dir / "benchmark" / "holdout_knowledge.jsonl").is_file()
    assert set(benchmark["knowledge"]) == {"base", "fine_tuned", "teacher"}
    assert '"correlation_id":"demo"' in (run_dir / "lambda.log").read_text()
    # Every answer the teacher was paid for, readable; and how the run went, for --resume.
    answers = [json.loads(line) for line in (run_dir / "answers.jsonl").read_text().splitlines()]
    assert len(answers) == summary["generation"]["problems"]
    manifest = json.loads((run_dir / "run.json").read_text())
    assert (manifest["run_id"], manifest["status"]) == ("demo", "SUCCEEDED")


def test_a_bad_problem_set_is_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(jsonl([*sample_rows(per_category=5), {"question": ""}]))

    code = main(["run", str(bad), "--out", str(tmp_path / "runs"), "--run-id", "bad"])

    _, err = capsys.readouterr()
    assert code == 2
    # Prepare's own message, naming the user's file rather than the emulated bucket it would be read from.
    assert err.startswith(f"InvalidProblemSet: {bad}: 1 error\n  line 16: field 'question' is required")
    assert "s3://" not in err
    assert not (tmp_path / "runs").exists()


def test_failed_run_exits_non_zero_and_keeps_what_it_has(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A weak teacher gets most answers wrong: too few survive to fine-tune on, which only Assemble can know.
    problem_set = tmp_path / "weak.jsonl"
    problem_set.write_bytes(jsonl(sample_rows(per_category=6)))
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**OPENAI_MODELS, "teacher_model": "gpt-4.1-nano-2025-04-14"}))

    code = main(
        [
            "run",
            str(problem_set),
            "--config",
            str(config),
            "--out",
            str(tmp_path / "runs"),
            "--run-id",
            "weak",
        ]
    )

    _, err = capsys.readouterr()
    assert code == 1
    assert "error: InvalidDataset" in err
    assert "needs at least 10" in err
    run_dir = tmp_path / "runs" / "weak"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["status"], summary["failed_state"], summary["error"]) == (
        "FAILED",
        "Assemble",
        "InvalidDataset",
    )
    assert "needs at least 10" in (run_dir / "report.md").read_text()
    page = Page.parse((run_dir / "report.html").read_text())
    assert page.ids()[:2] == ["simulated", "failure"]
    assert "needs at least 10" in " ".join(page.text)
    assert page.external_references() == []


def test_bad_config_is_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"shard_sise": 10}))

    code = main(["run", str(SAMPLE_PROBLEM_SET), "--config", str(config), "--out", str(tmp_path / "runs")])

    assert code == 2
    assert "shard_sise: not a field here; did you mean 'shard_size'?" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_validate_reports_the_split(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(SAMPLE_PROBLEM_SET)]) == 0
    out = capsys.readouterr().out
    assert "60 problems, 60 with reference answers" in out
    assert "split: 43 train, 5 validation, 12 holdout" in out


def test_live_mode_talks_to_any_openai_compatible_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The emulator served over HTTP stands in for the live API; Wait states sleep for real here,
    # so its clock runs 600 times faster than real time and the run polls every second.
    emulator = OpenAIEmulator(clock=ScaledClock(600))
    emulator.add_knowledge(
        KnowledgeItem(**{k: row[k] for k in ("question", "answer", "category")}) for row in sample_rows()
    )
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {"poll_interval_seconds": 1, "benchmark_contestants": ["base", "fine_tuned"], **OPENAI_MODELS}
        )
    )
    with emulator.serve() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-live-test")
        code = main(
            [
                "run",
                str(SAMPLE_PROBLEM_SET),
                "--openai",
                "live",
                "--config",
                str(config),
                "--out",
                str(tmp_path),
            ]
        )

    err = capsys.readouterr().err
    assert code == 0, err
    assert f"OpenAI: {server.base_url}" in err
    assert len(emulator.fine_tuning_jobs) == 1
    # Every model of this run answered through the live setting: nothing says simulated.
    (run_dir,) = [path for path in tmp_path.iterdir() if path.is_dir()]
    assert "Simulated models" not in (run_dir / "report.md").read_text()
    assert "simulated" not in Page.parse((run_dir / "report.html").read_text()).ids()
    assert {request.path for request in emulator.requests} >= {
        "/v1/chat/completions",
        "/v1/files",
        "/v1/fine_tuning/jobs",
    }


def test_live_openai_needs_a_key_when_the_run_names_an_openai_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(OPENAI_MODELS))
    code = main(
        ["run", str(SAMPLE_PROBLEM_SET), "--openai", "live", "--config", str(config), "--out", str(tmp_path)]
    )

    assert code == 2
    assert "OPENAI_API_KEY" in capsys.readouterr().err


def test_bedrock_live_mode_talks_to_any_bedrock_compatible_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The emulator's Bedrock over HTTP stands in for the service, reached through the standard endpoint
    # variables; S3, DynamoDB and Step Functions stay emulated, so the emulator reads the dataset from moto.
    emulator = OpenAIEmulator(clock=ScaledClock(600))
    emulator.add_knowledge(
        KnowledgeItem(**{k: row[k] for k in ("question", "answer", "category")}) for row in sample_rows()
    )
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps({"poll_interval_seconds": 1, "benchmark_contestants": ["base", "fine_tuned"]})
    )
    with emulator.serve() as server:
        for name, value in server.bedrock_environment().items():
            monkeypatch.setenv(name, value)
        code = main(
            [
                "run",
                str(SAMPLE_PROBLEM_SET),
                "--bedrock",
                "live",
                "--config",
                str(config),
                "--out",
                str(tmp_path),
            ]
        )

    err = capsys.readouterr().err
    assert code == 0, err
    assert f"Bedrock: {server.root_url}" in err
    assert len(emulator.customization_jobs) == 1
    created = [
        r for r in emulator.requests if r.method == "POST" and r.path.endswith("custom-model-deployments")
    ]
    deleted = [r for r in emulator.requests if r.method == "DELETE" and "custom-model-deployment" in r.path]
    assert (len(created), len(deleted)) == (1, 1)
    assert emulator.custom_model_deployments == {}
    assert not [request for request in emulator.requests if request.path.startswith("/v1/")]


def test_validate_refuses_a_retired_student_naming_the_date(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)  # the official API, whose dates apply
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"student_model": "gpt-4.1-nano-2025-04-14"}))

    # Refused from the dated catalog, before any request (none could leave this machine).
    assert main(["validate", str(SAMPLE_PROBLEM_SET), "--config", str(config), "--openai", "live"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("FineTuneUnavailable: student_model 'gpt-4.1-nano-2025-04-14' was shut down")
    assert "on 2026-10-23" in err
    assert "'bedrock/amazon.nova-micro-v1:0'" in err  # what to use instead


def test_validate_live_asks_each_provider(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator = OpenAIEmulator()
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"judge_model": "gpt-4.1-mini-2025-04-14"}))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with emulator.serve() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-live-test")
        for name, value in server.bedrock_environment().items():
            monkeypatch.setenv(name, value)
        code = main(["validate", str(SAMPLE_PROBLEM_SET), "--config", str(config), "--live"])

    out = capsys.readouterr().out
    assert code == 0, out
    assert "  teacher bedrock/us.amazon.nova-2-lite-v1:0: ok (lifecycle ACTIVE" in out
    assert "  student bedrock/amazon.nova-micro-v1:0: ok (lifecycle ACTIVE" in out
    assert "fine-tunable" in out
    assert "  judge gpt-4.1-mini-2025-04-14: ok (served by" in out
    assert "shutdown_date 2027-01-14" in out
    assert {request.path for request in emulator.requests} >= {
        "/v1/models/gpt-4.1-mini-2025-04-14",
        "/foundation-models/amazon.nova-micro-v1:0",
    }


def test_a_run_id_that_cannot_name_an_execution_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", str(SAMPLE_PROBLEM_SET), "--run-id", "my run!", "--out", str(tmp_path)])

    assert code == 2
    assert "run id 'my run!'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("problem_set", "config", "code", "says"),
    [
        (SAMPLE_PROBLEM_SET, None, 0, ""),
        (Path("missing.jsonl"), None, 2, "InvalidProblemSet: missing.jsonl: no such file"),
        (SAMPLE_PROBLEM_SET, "{not json", 2, "InvalidConfig: "),
        (
            SAMPLE_PROBLEM_SET,
            '{"shard_sise": 10}',
            2,
            "shard_sise: not a field here; did you mean 'shard_size'?",
        ),
        (SAMPLE_PROBLEM_SET, '{"teacher_model": "gpt-9-ultra"}', 2, "teacher_model 'gpt-9-ultra': http"),
        (SAMPLE_PROBLEM_SET, '{"budget_usd": 0.01}', 2, "BudgetExceeded: "),
    ],
    ids=["valid", "no such file", "config not JSON", "misspelt config field", "unknown model", "over budget"],
)
def test_validate_exits_0_when_the_run_would_start_and_2_when_it_is_refused(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    problem_set: Path,
    config: str | None,
    code: int,
    says: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    arguments = ["validate", str(problem_set)]
    if config is not None:
        Path("config.json").write_text(config)
        arguments += ["--config", "config.json"]

    assert main(arguments) == code
    out, err = capsys.readouterr()
    assert says in (err if code else out)
    assert "Traceback" not in err


def test_an_unknown_model_is_refused_before_the_run_starts_and_costs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from synthtune_cli import emulator as emulator_package

    started: list[OpenAIEmulator] = []

    class Recorded(OpenAIEmulator):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            started.append(self)

    monkeypatch.setattr(emulator_package, "OpenAIEmulator", Recorded)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"teacher_model": "gpt-9-ultra"}))

    code = main(["run", str(SAMPLE_PROBLEM_SET), "--config", str(config), "--out", str(tmp_path / "runs")])

    _, err = capsys.readouterr()
    assert code == 2
    assert err.startswith("InvalidConfig: teacher_model 'gpt-9-ultra': http://127.0.0.1:")
    assert "is the project's emulator" in err
    assert not (tmp_path / "runs").exists()  # no run directory, no offline stack, no execution
    # The run's own emulator was asked where the teacher is, and nothing was paid for.
    (emulator,) = started
    assert emulator.billed == []
    assert [(request.method, request.path) for request in emulator.requests] == [
        ("GET", "/v1/models/gpt-9-ultra"),
        ("GET", "/v1/models"),
    ]


def test_run_and_validate_refuse_with_the_same_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    problem_set = tmp_path / "problems.csv"
    problem_set.write_text("What is 2+2?,4\nWhat is 3+3?,6\n")

    assert main(["validate", str(problem_set)]) == 2
    validated = capsys.readouterr().err
    assert main(["run", str(problem_set), "--out", str(tmp_path / "runs")]) == 2
    ran = capsys.readouterr().err

    assert validated == ran
    assert validated.startswith(f"InvalidProblemSet: {problem_set}: 1 error\n  line 1: the first row must")


def test_an_unreachable_endpoint_is_refused_at_once_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], closed_port: int
) -> None:
    endpoint = f"http://127.0.0.1:{closed_port}/v1"
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**OPENAI_MODELS, "judge_model": None}))
    monkeypatch.setenv("OPENAI_BASE_URL", endpoint)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-live-test")

    arguments = ["--openai", "live", "--config", str(config), "--out", str(tmp_path / "runs")]
    code = main(["run", str(SAMPLE_PROBLEM_SET), *arguments])

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("EndpointUnreachable: ")
    assert f"cannot reach GET {endpoint}/models/" in err
    assert "connection refused" in err
    assert not (tmp_path / "runs").exists()  # refused by the plan: nothing started
