"""What each `dataset.knowledge_policy` does to the student: keep_all vs drop_unknown vs abstain_unknown,
side by side, offline — a measurement run on demand (`make bench-knowledge`, about two minutes), never a
timed test.

Each policy runs the whole pipeline once — the real state machine on moto's interpreter, the handlers in
this process, the project's emulator as the models (gpt-4.1 teaching gpt-4.1-mini, no judge) — on the
same problem set, with the same seed: half factual questions (`facts`: reference answers the student
either knows or does not), half arithmetic (`math`: a reasoning category, whose unknown examples every
policy keeps by default). The base and fine-tuned students answer the same held-out problems.

For each policy and category the table gives the fine-tuned student's accuracy, hallucination rate (wrong
among attempted) and abstention rate, and what the probe cost. **The models are simulated**: the numbers
show what the emulator's documented rules make of each policy (cli/synthtune_cli/emulator/README.md,
"What fine-tuning teaches about knowledge", after Gekhman et al., EMNLP 2024), not what a real model does.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(PROJECT_ROOT / "layers" / "core"), str(PROJECT_ROOT / "cli")]

POLICIES = ("keep_all", "drop_unknown", "abstain_unknown")
MODELS = {
    "teacher_model": "gpt-4.1-2025-04-14",
    "student_model": "gpt-4.1-mini-2025-04-14",
    "judge_model": None,
}
_WORDS = (
    "amber", "basalt", "cinder", "delta", "ember", "fjord", "garnet", "harbor", "indigo", "juniper",
    "kestrel", "lantern", "meadow", "nickel", "onyx", "pewter", "quartz", "russet", "saffron", "tundra",
)  # fmt: skip


def problem_set(count: int, seed: int) -> list[dict[str, Any]]:
    """`count` problems: factual look-ups (answers a word pair) and arithmetic, alternating."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for number in range(count):
        if number % 2 == 0:
            answer = f"{rng.choice(_WORDS)} {rng.choice(_WORDS)}"
            rows.append(
                {
                    "id": f"fact-{number}",
                    "category": "facts",
                    "question": f"In the harbour registry, what was vessel number {number + 1000} named?",
                    "answer": answer,
                }
            )
        else:
            a, b = rng.randint(12, 99), rng.randint(12, 99)
            rows.append(
                {
                    "id": f"math-{number}",
                    "category": "math",
                    "question": f"A crate holds {a} jars. How many jars are in {b} crates and {number} more?",
                    "answer": str(a * b + number),
                }
            )
    return rows


def run_policy(rows: list[dict[str, Any]], policy: str, seed: int, share: float) -> dict[str, Any]:
    """One run with `policy`: the fine-tuned and base students' outcomes by category, and the probe's cost."""
    from synthtune.contracts.problems import parse_problem_set
    from synthtune.records.layout import RunLayout
    from synthtune_cli.clock import VirtualClock
    from synthtune_cli.emulator import KnowledgeItem, OpenAIEmulator
    from synthtune_cli.offline import OfflineStack

    clock = VirtualClock(start=1_800_000_000.0)
    emulator = OpenAIEmulator(clock=clock, seed=seed)
    body = b"".join(json.dumps(row).encode() + b"\n" for row in rows)
    problems = parse_problem_set(body.splitlines(), "experiment", "jsonl")
    emulator.add_knowledge(
        KnowledgeItem(question=p.question, answer=p.answer, category=p.category) for p in problems
    )
    config = {
        **MODELS,
        "shard_size": 25,
        "max_concurrency": 10,
        "holdout_fraction": 0.3,
        "split_seed": str(seed),
        "benchmark_contestants": ["base", "fine_tuned"],
        "dataset": {"knowledge_policy": policy, "max_abstention_share": share},
    }
    layout = RunLayout(f"knowledge-{policy.replace('_', '-')}")
    started = time.perf_counter()
    with (
        emulator.serve() as server,
        OfflineStack(
            openai_api_key="sk-experiment",
            parameters={"OpenAIBaseUrl": server.base_url},
            clock=clock,
            extra_environment={"OPENAI_MAX_RETRIES": "0", "SIMULATED_PROVIDERS": "openai"},
            log_stream=io.StringIO(),  # the functions' logs, which `synthtune run` keeps in lambda.log
        ) as stack,
    ):
        key = "problem-sets/experiment.jsonl"
        stack.upload(key, body)
        execution = stack.wait(stack.start_execution(layout.run_id, {"key": key, "config": config}))
        if execution["status"] != "SUCCEEDED":
            raise RuntimeError(f"{policy}: the run ended {execution['status']}: {execution.get('cause')}")

        def lines(key: str) -> list[dict[str, Any]]:
            return [json.loads(line) for line in (stack.download(key) or b"").splitlines() if line.strip()]

        outcomes = {
            contestant: Counter(
                (row["category"], row["outcome"]) for row in lines(layout.benchmark_answers(contestant))
            )
            for contestant in ("base", "fine_tuned")
        }
        card = json.loads(stack.download(layout.dataset_card) or b"{}")
        shards = json.loads(stack.download(layout.manifest) or b"[]")
        probe_usd = sum(
            call["usd"] or 0.0
            for shard in shards
            for answer in lines(layout.shard_output(shard["index"]))
            for call in answer["calls"]
            if call["purpose"] == "probe"
        )
    return {
        "policy": policy,
        "outcomes": outcomes,
        "train_examples": card["train_examples"],
        "unknown": card["knowledge"]["by_knowledge"]["unknown"],
        "abstained": sum(row["abstained"] for row in card["knowledge"]["rows"]),
        "probe_usd": probe_usd,
        "seconds": time.perf_counter() - started,
    }


def rates(outcomes: Counter[tuple[str, str]], category: str) -> tuple[float, float | None, float]:
    """Accuracy, hallucination rate (wrong among attempted) and abstention rate in `category`."""
    counts = {outcome: n for (name, outcome), n in outcomes.items() if name == category}
    total = sum(counts.values())
    correct, wrong, abstained = (counts.get(o, 0) for o in ("correct", "wrong", "abstained"))
    attempted = correct + wrong
    return correct / total, (wrong / attempted if attempted else None), abstained / total


def render(results: list[dict[str, Any]], *, markdown: bool) -> str:
    header = ["policy", "category", "student", "accuracy", "hallucination", "abstention", "train examples",
              "unknown (probed)", "abstentions taught", "probe cost"]  # fmt: skip
    rows = [header]
    for result in results:
        for category in ("facts", "math"):
            for contestant in ("base", "fine_tuned"):
                accuracy, hallucination, abstention = rates(result["outcomes"][contestant], category)
                rows.append(
                    [
                        result["policy"],
                        category,
                        "fine-tuned" if contestant == "fine_tuned" else "base",
                        f"{accuracy:.1%}",
                        "–" if hallucination is None else f"{hallucination:.1%}",
                        f"{abstention:.1%}",
                        f"{result['train_examples']}",
                        f"{result['unknown']}",
                        f"{result['abstained']}",
                        f"${result['probe_usd']:.4f}",
                    ]
                )
    if markdown:
        lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows[1:]])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--problems", type=int, default=1000, help="problems in the set (half facts, half math)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="the problem set's, the split's and the emulator's"
    )
    parser.add_argument("--max-abstention-share", type=float, default=0.2, help="abstain_unknown's cap")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    rows = problem_set(args.problems, args.seed)
    results = [run_policy(rows, policy, args.seed, args.max_abstention_share) for policy in POLICIES]
    print(render(results, markdown=args.markdown))
    seconds = sum(result["seconds"] for result in results)
    print(f"\n{args.problems} problems, seed {args.seed}, 3 runs in {seconds:.0f} s (simulated models).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
