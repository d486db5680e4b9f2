"""report.html: the run's report as one page a person opens from the run directory or from S3.

Self-contained: the style is inline, the charts are inline SVG (`synthtune.stages.report_charts`), and
nothing is fetched — no script, no external style sheet, font or image. The verdict comes first, then the
accuracies with their intervals, by category, the accuracy/hallucination trade-off and the outcomes by what
the base student knew of the held-out problems, the loss curve, the cost, the problems fine-tuning fixed and
broke with both answers side by side, and what the dataset left out. Every text a model wrote (and every
text from the problem set) is HTML-escaped. The numbers are report.md's: both are drawn from one
`ReportContents`.
"""

from __future__ import annotations

from html import escape

from synthtune.contracts.models import PROVIDER_TITLES
from synthtune.contracts.usage import Usage
from synthtune.quality.knowledge import KNOWLEDGE_MEANINGS
from synthtune.stages.benchmark import BenchmarkAnswer
from synthtune.stages.report import (
    CONTESTANT_LABELS,
    HOW_TO_READ,
    KNOWLEDGE_INTRO,
    KNOWLEDGE_TITLE,
    SIMULATED_HEADLINE,
    SIMULATED_TEXT,
    AnswerChange,
    ReportContents,
    interval_text,
    knowledge_rows,
)
from synthtune.stages.report_charts import (
    AccuracyBar,
    CategorySeries,
    TradeOffPoint,
    accuracy_chart,
    category_chart,
    loss_chart,
    trade_off_chart,
)
from synthtune.verdict.comparison import p_text, points

CONTESTANT_COLOURS = {"base": "#8c8c8c", "fine_tuned": "#1f5fa8", "teacher": "#d9731a"}
OUTCOME_WORDS = {
    "correct": "right",
    "wrong": "wrong",
    "abstained": "said it does not know",
    "no_answer": "no usable answer",
}

STYLE = """
:root { color-scheme: light; --ink: #1b1b1b; --muted: #5a5a5a; --rule: #d8d8d8; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--ink); max-width: 1040px; margin: 0 auto; padding: 1.5rem 1.25rem 4rem; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; word-break: break-all; }
h2 { font-size: 1.2rem; margin: 2.2rem 0 .6rem; padding-bottom: .2rem; border-bottom: 1px solid var(--rule); }
h3 { font-size: 1rem; margin: 1.2rem 0 .4rem; }
code { font: .9em ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; word-break: break-all; }
.meta, .note { color: var(--muted); }
.banner { border-radius: 6px; padding: .75rem 1rem; margin: 1rem 0; }
.simulated { background: #fff4cc; border: 2px solid #c99a00; }
.failed { background: #fde8e8; border: 2px solid #b42318; }
.warning { background: #fff1e6; border-left: 4px solid #d9731a; padding: .4rem .8rem; margin: .3rem 0 .8rem; }
.verdict { font-size: 1.08rem; margin: .6rem 0 .2rem; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: .92rem; }
th, td { border-bottom: 1px solid var(--rule); padding: .3rem .6rem; text-align: left; vertical-align: top; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: 600; border-top: 2px solid var(--ink); }
figure.chart { margin: .6rem 0 1rem; }
figure.chart svg { max-width: 100%; height: auto; }
.change { border: 1px solid var(--rule); border-radius: 6px; padding: .2rem 1rem .8rem; margin: .8rem 0; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; }
.pair > div { min-width: 0; }
.final { font-weight: 600; }
pre { white-space: pre-wrap; word-wrap: break-word; background: #f6f6f6; padding: .5rem; border-radius: 4px;
  font-size: .85rem; max-height: 24rem; overflow: auto; }
@media (max-width: 700px) { .pair { grid-template-columns: 1fr; } }
"""


def render_report_html(contents: ReportContents) -> str:
    summary = contents.summary
    sections = [
        _header(contents),
        _simulated(contents),
        _failure(contents),
        _verdict(contents),
        _accuracy(contents),
        _categories(contents),
        _knowledge(contents),
        _training(contents),
        _cost(contents),
        _changes(contents),
        _dataset(contents),
    ]
    body = "\n".join(section for section in sections if section)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>synthtune run {escape(summary.run_id)}: {escape(summary.status)}</title>\n"
        f"<style>{STYLE}</style>\n</head>\n<body>\n{body}\n"
        '<footer class="note"><p>Written by synthtune from the run\'s files. This page loads nothing: '
        "its style and charts are part of it.</p></footer>\n</body>\n</html>\n"
    )


def _header(contents: ReportContents) -> str:
    summary = contents.summary
    parts = [f"status <strong>{escape(summary.status)}</strong>"]
    if summary.started_at:
        parts.append(f"started {escape(summary.started_at)}")
    if summary.finished_at:
        parts.append(f"finished {escape(summary.finished_at)}")
    problem_set = ""
    if summary.problem_set:
        uri = f"s3://{summary.problem_set.get('bucket')}/{summary.problem_set.get('key')}"
        problem_set = f'<p class="meta">Problem set <code>{escape(uri)}</code></p>'
    return (
        f"<header>\n<h1>synthtune run <code>{escape(summary.run_id)}</code></h1>\n"
        f'<p class="meta">{" · ".join(parts)}</p>\n{problem_set}\n</header>'
    )


def _simulated(contents: ReportContents) -> str:
    models = contents.summary.simulated_models
    if not models:
        return ""
    names = ", ".join(f"<code>{escape(model)}</code>" for model in models)
    return (
        '<div class="banner simulated" id="simulated" role="note">'
        f"<strong>{escape(SIMULATED_HEADLINE)}</strong> {escape(SIMULATED_TEXT)} Simulated: {names}.</div>"
    )


def _failure(contents: ReportContents) -> str:
    summary = contents.summary
    if summary.error is None:
        return ""
    return (
        '<section id="failure" class="banner failed">\n'
        f"<h2>Failed in {escape(summary.failed_state or 'an unknown state')}: "
        f"<code>{escape(summary.error)}</code></h2>\n"
        f"<pre>{escape(summary.cause or '(no cause recorded)')}</pre>\n"
        "<p>What the run produced before it failed stays in the bucket under its prefix.</p>\n</section>"
    )


def _verdict(contents: ReportContents) -> str:
    lines = ['<section id="verdict">', "<h2>Verdict</h2>"]
    if not contents.comparisons:
        ran = ", ".join(CONTESTANT_LABELS[result.score.contestant] for result in contents.results)
        why = (
            f"only {escape(ran)} answered the held-out problems"
            if ran
            else "no contestant answered the held-out problems"
        )
        lines.append(f'<p class="verdict">No verdict: {why}.</p>')
        return "\n".join([*lines, "</section>"])
    for comparison in contents.comparisons:
        lines.append(f'<p class="verdict">{escape(comparison.verdict)}</p>')
        if comparison.warning:
            lines.append(f'<p class="warning">{escape(comparison.warning)}</p>')
    lines += [
        "<table>",
        "<thead><tr><th>comparison</th><th class=n>problems</th><th class=n>right only for the first</th>"
        "<th class=n>right only for the second</th><th class=n>difference</th><th>95 % CI</th>"
        "<th class=n>p (exact McNemar)</th><th class=n>smallest detectable (80 % power)</th></tr></thead>",
        "<tbody>",
    ]
    for comparison in contents.comparisons:
        detectable = comparison.min_detectable_difference
        smallest = "none at this size" if detectable is None else f"{points(detectable, signed=False)} points"
        pair = f"{CONTESTANT_LABELS[comparison.a]} vs {CONTESTANT_LABELS[comparison.b]}"
        lines.append(
            f"<tr><td>{escape(pair)}</td>"
            + _numbers(
                comparison.n, comparison.a_only, comparison.b_only, f"{points(comparison.difference)} points"
            )
            + f"<td>{points(comparison.ci95[0])} to {points(comparison.ci95[1])}</td>"
            + _numbers(escape(p_text(comparison.p_value).removeprefix("p = ")), smallest)
            + "</tr>"
        )
    lines += ["</tbody>", "</table>", f'<p class="note">{escape(HOW_TO_READ)}</p>', "</section>"]
    return "\n".join(lines)


def _accuracy(contents: ReportContents) -> str:
    results = contents.results
    if not results:
        return ""
    chart = accuracy_chart(
        [
            AccuracyBar(
                label=result.label,
                accuracy=result.score.accuracy,
                ci95=result.ci95,
                colour=CONTESTANT_COLOURS[result.score.contestant],
            )
            for result in results
        ]
    )
    rows = []
    for result in results:
        score = result.score
        hallucination = "–" if score.hallucination_rate is None else f"{score.hallucination_rate * 100:.1f}%"
        rows.append(
            f"<tr><td>{escape(result.label)}</td><td><code>{escape(score.model)}</code></td>"
            + _numbers(f"{score.accuracy * 100:.1f}%")
            + f"<td>{interval_text(result.ci95)}</td>"
            + _numbers(
                f"{score.correct}/{score.total}",
                f"{score.answered}/{score.total}",
                score.abstained,
                score.no_answer,
                hallucination,
            )
            + "</tr>"
        )
    return "\n".join(
        [
            '<section id="accuracy">',
            f"<h2>Accuracy on {results[0].score.total} held-out problems</h2>",
            f'<figure class="chart" id="chart-accuracy">{chart}</figure>',
            "<table>",
            "<thead><tr><th>contestant</th><th>model</th><th class=n>accuracy</th><th>95 % CI</th>"
            "<th class=n>correct</th><th class=n>gave an answer</th><th class=n>abstained</th>"
            "<th class=n>no answer</th><th class=n>wrong among attempted</th></tr></thead>",
            "<tbody>",
            *rows,
            "</tbody>",
            "</table>",
            "</section>",
        ]
    )


def _categories(contents: ReportContents) -> str:
    results = [result for result in contents.results if result.by_category]
    categories = sorted({category for result in results for category in result.by_category})
    if not categories:
        return ""
    series = []
    for result in results:
        cells = [result.by_category.get(category) for category in categories]
        series.append(
            CategorySeries(
                label=result.label,
                accuracies=[cell.accuracy if cell else None for cell in cells],
                ci95=[cell.ci95 if cell else None for cell in cells],
                colour=CONTESTANT_COLOURS[result.score.contestant],
            )
        )
    chart = category_chart(categories, series)
    header = "".join(f"<th>{escape(result.label)}</th>" for result in results)
    rows = []
    for category in categories:
        shown = []
        for result in results:
            cell = result.by_category.get(category)
            shown.append(
                f"{cell.accuracy * 100:.1f}% ({cell.correct}/{cell.total}; {interval_text(cell.ci95)})"
                if cell
                else "–"
            )
        rows.append(f"<tr><td>{escape(category)}</td>{''.join(f'<td>{text}</td>' for text in shown)}</tr>")
    return "\n".join(
        [
            '<section id="categories">',
            "<h2>Accuracy by category</h2>",
            f'<figure class="chart" id="chart-categories">{chart}</figure>',
            f"<table><thead><tr><th>category</th>{header}</tr></thead><tbody>",
            *rows,
            "</tbody></table>",
            "</section>",
        ]
    )


def _knowledge(contents: ReportContents) -> str:
    """The accuracy/hallucination trade-off, and each contestant's outcomes by what the base student knew
    of the held-out problems (where they were probed)."""
    trade_offs = [
        TradeOffPoint(
            label=result.label,
            accuracy=result.score.accuracy,
            ci95=result.ci95,
            hallucination_rate=result.score.hallucination_rate,
            colour=CONTESTANT_COLOURS[result.score.contestant],
        )
        for result in contents.results
        if result.score.hallucination_rate is not None
    ]
    rows = knowledge_rows(contents)
    if not trade_offs and not rows:
        return ""
    lines = ['<section id="knowledge">', f"<h2>{escape(KNOWLEDGE_TITLE)}</h2>"]
    if trade_offs:
        lines.append(f'<figure class="chart" id="chart-trade-off">{trade_off_chart(trade_offs)}</figure>')
    if not rows:
        lines.append(
            '<p class="note">The held-out problems were not probed (dataset.probe is off, or the run is '
            "from before probing): no breakdown by what the base student knew.</p>"
        )
        return "\n".join([*lines, "</section>"])
    counts = ", ".join(
        f"{escape(category)} {count}" for category, count in contents.held_out_knowledge.items() if count
    )
    lines += [
        f"<p>{escape(KNOWLEDGE_INTRO)}</p>",
        f"<p>Held-out problems by what the base student knew: {counts}.</p>",
        "<table><thead><tr><th>knowledge (base student)</th><th>contestant</th><th class=n>problems</th>"
        "<th class=n>accuracy</th><th class=n>wrong among attempted</th><th class=n>abstained</th></tr>"
        "</thead><tbody>",
    ]
    for category, result, cell in rows:
        lines.append(
            f'<tr><td><code title="{escape(KNOWLEDGE_MEANINGS[category])}">{escape(category)}</code></td>'
            f"<td>{escape(result.label)}</td>"
            + _numbers(
                cell.n, _rate(cell.accuracy), _rate(cell.hallucination_rate), _rate(cell.abstention_rate)
            )
            + "</tr>"
        )
    lines.append("</tbody></table>")
    meanings = "; ".join(
        f"{category}: {KNOWLEDGE_MEANINGS[category]}" for category in contents.held_out_knowledge
    )
    lines += [f'<p class="note">{escape(meanings)}.</p>', "</section>"]
    return "\n".join(lines)


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _numbers(*values: object) -> str:
    """Table cells for numbers, right-aligned (the values are the page's own text, already escaped)."""
    return "".join(f"<td class=n>{value}</td>" for value in values)


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def _training(contents: ReportContents) -> str:
    job = contents.summary.fine_tune
    if job is None:
        return ""
    lines = ['<section id="training">', "<h2>Fine-tuning</h2>"]
    rows = [row for row in contents.curve if _number(row.get("step")) is not None]
    if rows:
        chart = loss_chart(
            [_number(row.get("step")) or 0.0 for row in rows],
            [_number(row.get("training_loss")) for row in rows],
            [_number(row.get("validation_loss")) for row in rows],
        )
        lines.append(f'<figure class="chart" id="chart-loss">{chart}</figure>')
    else:
        lines.append('<p class="note">No loss curve: the job published no per-step metrics.</p>')
    values = [
        ("final training loss", job.training_loss),
        ("best training loss", job.best_training_loss),
        ("final validation loss", job.validation_loss),
        ("best validation loss", job.best_validation_loss),
    ]
    provider = PROVIDER_TITLES.get(job.backend, job.backend)
    items = [
        f"<li>job <code>{escape(job.job_id)}</code> on {escape(provider)}: {escape(job.status)}; "
        f"<code>{escape(job.base_model)}</code> → <code>{escape(job.fine_tuned_model or '–')}</code></li>",
        *(f"<li>{name}: {value:.3f}</li>" for name, value in values if value is not None),
    ]
    lines += ["<ul>", *items, "</ul>", "</section>"]
    return "\n".join(lines)


def _usd(value: float | None) -> str:
    return "unpriced" if value is None else f"${value:,.4f}"


def _cost(contents: ReportContents) -> str:
    summary = contents.summary
    lines = ['<section id="cost">', f"<h2>Cost at list prices (table of {escape(summary.prices_as_of)})</h2>"]
    if not summary.costs.lines:
        return "\n".join([*lines, "<p>Nothing was spent: no model was called.</p>", "</section>"])
    lines.append(
        "<table><thead><tr><th>item</th><th>model</th><th class=n>requests</th><th class=n>input tokens</th>"
        "<th class=n>output tokens</th><th class=n>trained tokens</th><th class=n>USD</th></tr></thead>"
        "<tbody>"
    )
    for line in summary.costs.lines:
        usage = line.usage or Usage()
        lines.append(
            f"<tr><td>{escape(line.item)}</td><td><code>{escape(line.model)}</code></td>"
            + _numbers(
                f"{usage.requests:,}",
                f"{usage.input_tokens:,}",
                f"{usage.output_tokens:,}",
                f"{line.trained_tokens or 0:,}",
                _usd(line.usd),
            )
            + "</tr>"
        )
    lines.append(
        f'<tr class="total"><td>total</td><td></td><td></td><td></td><td></td><td></td>'
        f"<td class=n>{_usd(summary.costs.total_usd)}</td></tr></tbody></table>"
    )
    notes = [f"Model requests answered: {summary.answered.requests:,} ({_usd(summary.answered.usd)})."]
    if summary.paid_but_lost.requests:
        notes.append(
            f"Paid but lost: {summary.paid_but_lost.requests:,} requests whose reply never arrived, counted "
            f"at their worst case ({_usd(summary.paid_but_lost.usd)}): the total is an upper bound."
        )
    if summary.estimate is not None:
        notes.append(f"Estimated before the run: {_usd(summary.estimate.total_usd)}.")
    if summary.budget_usd is not None:
        notes.append(f"Budget: {_usd(summary.budget_usd)}.")
    if summary.costs.unpriced:
        notes.append(f"Not in the price table, so not in the total: {', '.join(summary.costs.unpriced)}.")
    lines += [f'<p class="note">{escape(" ".join(notes))}</p>', "</section>"]
    return "\n".join(lines)


def _changes(contents: ReportContents) -> str:
    if not contents.fixed and not contents.broke:
        return ""
    lines = [
        '<section id="changes">',
        "<h2>What fine-tuning changed</h2>",
        f"<p>Fine-tuning fixed {contents.fixed} held-out problems (the base model wrong, the fine-tuned "
        f"student right) and broke {contents.broke} (the other way round).</p>",
    ]
    for change, title in (("fixed", "Fixed"), ("broke", "Broke")):
        shown = [item for item in contents.changes if item.change == change]
        total = contents.fixed if change == "fixed" else contents.broke
        if not total:
            continue
        lines.append(f"<h3>{title} ({total})</h3>")
        lines += [_change(item) for item in shown]
        if total > len(shown):
            lines.append(
                f'<p class="note">{total - len(shown)} more: benchmark/base.jsonl and '
                "benchmark/fine_tuned.jsonl hold every answer.</p>"
            )
    lines.append("</section>")
    return "\n".join(lines)


def _change(item: AnswerChange) -> str:
    problem = item.base
    return "\n".join(
        [
            f'<article class="change {item.change}">',
            f"<h4><code>{escape(problem.problem_id)}</code> · {escape(problem.category)}</h4>",
            f"<p>{escape(problem.question)}</p>",
            f"<p>Reference answer: <strong>{escape(problem.reference)}</strong></p>",
            '<div class="pair">',
            _answer("Base student", item.base),
            _answer("Fine-tuned student", item.fine_tuned),
            "</div>",
            "</article>",
        ]
    )


def _answer(label: str, answer: BenchmarkAnswer) -> str:
    final = answer.final_answer if answer.final_answer is not None else "(no final answer)"
    return "\n".join(
        [
            "<div>",
            f"<p>{escape(label)}: {escape(OUTCOME_WORDS.get(answer.outcome, answer.outcome))}</p>",
            f'<p class="final">{escape(final)}</p>',
            "<details><summary>whole reply</summary>"
            f"<pre>{escape(answer.reply or '(empty)')}</pre></details>",
            "</div>",
        ]
    )


def _dataset(contents: ReportContents) -> str:
    drops = contents.drops
    if drops is None:
        return ""
    lines = ['<section id="dataset">', "<h2>What the dataset left out</h2>"]
    counts = [
        f"{name} {value:,}"
        for name, value in (
            ("problems sent to the teacher", drops.considered),
            ("training examples", drops.train_examples),
            ("validation examples", drops.validation_examples),
        )
        if value is not None
    ]
    total = sum(drop.count for drop in drops.dropped)
    counts.append(f"dropped {total:,}")
    lines.append(f"<p>{escape(', '.join(counts))}.</p>")
    if not drops.dropped:
        return "\n".join([*lines, "<p>Nothing was dropped.</p>", "</section>"])
    lines.append(
        "<table><thead><tr><th>reason</th><th class=n>examples</th><th>meaning</th></tr></thead><tbody>"
    )
    lines += [
        f"<tr><td><code>{escape(drop.reason)}</code></td><td class=n>{drop.count:,}</td>"
        f"<td>{escape(drop.meaning)}</td></tr>"
        for drop in drops.dropped
    ]
    lines.append("</tbody></table>")
    reasons = [drop.reason for drop in drops.dropped]
    by_category = {name: counts for name, counts in sorted(drops.by_category.items()) if any(counts.values())}
    if by_category:
        lines.append(
            "<table><thead><tr><th>category</th>"
            + "".join(f"<th class=n><code>{escape(reason)}</code></th>" for reason in reasons)
            + "</tr></thead><tbody>"
        )
        lines += [
            f"<tr><td>{escape(name)}</td>"
            + "".join(f"<td class=n>{counts.get(reason, 0):,}</td>" for reason in reasons)
            + "</tr>"
            for name, counts in by_category.items()
        ]
        lines.append("</tbody></table>")
    lines += [
        '<p class="note">dropped.jsonl names each dropped problem with its evidence; dataset_card.md has the '
        "whole card.</p>",
        "</section>",
    ]
    return "\n".join(lines)
