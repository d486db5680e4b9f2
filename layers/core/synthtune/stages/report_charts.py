"""report.html's charts: drawn by matplotlib, written as SVG to sit inline in the page.

No pyplot (its global figures are not for a server) and no font file: the Agg canvas lays the text out and
`svg.fonttype: none` keeps it text, in the reader's own sans-serif font. `svg.hashsalt` fixes the ids
matplotlib generates, so the same numbers draw the same file; each chart's ids carry its name, so several
charts share a page without clashing. matplotlib is imported on first use, not with the Report handler.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.typing import RcKeyType

STYLE: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "synthtune-report",
    "font.family": "sans-serif",
    "font.size": 9.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10.0,
    "axes.titleweight": "bold",
}
NO_METADATA = {"Creator": None, "Date": None, "Format": None, "Type": None}
"""No date (the file would change on every render) and no links to metadata vocabularies."""
WIDTH = 7.0
"""Inches; the page scales every chart to its column."""

_drawing = threading.Lock()
"""matplotlib's style (rcParams) is global to the process: one chart is drawn at a time."""


@dataclass(frozen=True)
class AccuracyBar:
    """One contestant's accuracy and its 95 % interval, as fractions."""

    label: str
    accuracy: float
    ci95: tuple[float, float]
    colour: str


def accuracy_chart(bars: Sequence[AccuracyBar]) -> str:
    """Accuracy per contestant: a bar each, its interval as an error bar, the numbers written beside."""
    with _drawing, _style():
        figure = _figure(height=0.9 + 0.5 * len(bars))
        axes = figure.subplots()
        positions = list(range(len(bars)))[::-1]
        axes.barh(
            positions,
            [bar.accuracy * 100 for bar in bars],
            xerr=_errors([(bar.accuracy, bar.ci95) for bar in bars]),
            color=[bar.colour for bar in bars],
            height=0.6,
            capsize=4,
            error_kw={"ecolor": "#333333", "elinewidth": 1},
        )
        for position, bar in zip(positions, bars, strict=True):
            axes.text(
                min(bar.ci95[1] * 100 + 2, 101),
                position,
                f"{bar.accuracy * 100:.1f}% ({bar.ci95[0] * 100:.1f}–{bar.ci95[1] * 100:.1f}%)",
                va="center",
                fontsize=8,
            )
        axes.set_yticks(positions, [bar.label for bar in bars])
        _percent_axis(axes)
        axes.set_title("Accuracy on the held-out problems, with 95 % intervals (Wilson)", loc="left")
        return _svg(figure, "accuracy")


@dataclass(frozen=True)
class CategorySeries:
    """One contestant's accuracy in each category, with the intervals."""

    label: str
    accuracies: Sequence[float | None]
    ci95: Sequence[tuple[float, float] | None]
    colour: str


def category_chart(categories: Sequence[str], series: Sequence[CategorySeries]) -> str:
    """Accuracy by category: a group of bars per category, one per contestant, with its interval."""
    with _drawing, _style():
        group = 0.8
        bar_height = group / max(len(series), 1)
        figure = _figure(height=1.2 + 0.22 * len(categories) * max(len(series), 1))
        axes = figure.subplots()
        for index, line in enumerate(series):
            shown = [
                (position, accuracy, interval)
                for position, (accuracy, interval) in enumerate(zip(line.accuracies, line.ci95, strict=True))
                if accuracy is not None and interval is not None
            ]
            positions = [
                len(categories) - 1 - position + group / 2 - bar_height * (index + 0.5)
                for position, _, _ in shown
            ]
            axes.barh(
                positions,
                [accuracy * 100 for _, accuracy, _ in shown],
                xerr=_errors([(accuracy, interval) for _, accuracy, interval in shown]),
                height=bar_height * 0.9,
                color=line.colour,
                label=line.label,
                capsize=2,
                error_kw={"ecolor": "#333333", "elinewidth": 0.8},
            )
        axes.set_yticks(list(range(len(categories)))[::-1], list(categories))
        _percent_axis(axes)
        figure.legend(loc="outside lower center", ncols=len(series), fontsize=8, frameon=False)
        axes.set_title("Accuracy by category, with 95 % intervals", loc="left")
        return _svg(figure, "categories")


@dataclass(frozen=True)
class TradeOffPoint:
    """One contestant's accuracy (with its 95 % interval) and hallucination rate, as fractions."""

    label: str
    accuracy: float
    ci95: tuple[float, float]
    hallucination_rate: float
    colour: str


def trade_off_chart(points: Sequence[TradeOffPoint]) -> str:
    """Accuracy against hallucination rate (wrong among attempted): a labelled point per contestant, its
    accuracy's interval as a vertical error bar. Up is better, and so is left."""
    with _drawing, _style():
        figure = _figure(height=3.4)
        axes = figure.subplots()
        for point in points:
            x, y = point.hallucination_rate * 100, point.accuracy * 100
            axes.errorbar(
                [x],
                [y],
                yerr=_errors([(point.accuracy, point.ci95)]),
                fmt="o",
                color=point.colour,
                ecolor=point.colour,
                elinewidth=1,
                capsize=3,
                markersize=6,
            )
            right = x > 75  # a label near the right edge is written to the point's left
            axes.annotate(
                point.label,
                (x, y),
                xytext=(-6 if right else 6, 4),
                textcoords="offset points",
                ha="right" if right else "left",
                fontsize=8,
                color="#1b1b1b",
            )
        from matplotlib.ticker import PercentFormatter

        for axis in (axes.xaxis, axes.yaxis):
            axis.set_major_formatter(PercentFormatter())
        axes.set_xlim(-4, 104)  # a point at 0 % or 100 % is drawn whole
        axes.set_ylim(-4, 108)
        axes.set_xticks([0, 20, 40, 60, 80, 100])
        axes.set_yticks([0, 20, 40, 60, 80, 100])
        axes.set_xlabel("hallucination rate (wrong among attempted)")
        axes.set_ylabel("accuracy")
        axes.grid(color="#dddddd", linewidth=0.6)
        axes.set_axisbelow(True)
        axes.set_title("Accuracy against hallucination, with 95 % intervals (Wilson)", loc="left")
        return _svg(figure, "trade-off")


def loss_chart(
    steps: Sequence[float],
    training: Sequence[float | None],
    validation: Sequence[float | None],
) -> str:
    """The fine-tuning job's loss per step: training as a line, validation where the job reported it."""
    with _drawing, _style():
        figure = _figure(height=3.0)
        axes = figure.subplots()
        trained = [(step, loss) for step, loss in zip(steps, training, strict=True) if loss is not None]
        validated = [(step, loss) for step, loss in zip(steps, validation, strict=True) if loss is not None]
        if trained:
            axes.plot(*zip(*trained, strict=True), color="#1f5fa8", linewidth=1.5, label="training loss")
        if validated:
            axes.plot(
                *zip(*validated, strict=True),
                color="#d9731a",
                linewidth=1.2,
                marker="o",
                markersize=3,
                label="validation loss",
            )
        from matplotlib.ticker import MaxNLocator

        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel("step")
        axes.set_ylabel("loss")
        axes.grid(axis="y", color="#dddddd", linewidth=0.6)
        axes.legend(loc="upper right", fontsize=8, frameon=False)
        axes.set_title("Fine-tuning loss per step", loc="left")
        return _svg(figure, "loss")


def _errors(points: Sequence[tuple[float, tuple[float, float]]]) -> list[list[float]]:
    """matplotlib's asymmetric error bars: how far below and above each value its interval reaches."""
    return [
        [max(0.0, (value - low) * 100) for value, (low, _) in points],
        [max(0.0, (high - value) * 100) for value, (_, high) in points],
    ]


def _percent_axis(axes: Axes) -> None:
    from matplotlib.ticker import PercentFormatter

    axes.set_xlim(0, 118)  # room for the numbers written beside a full bar
    axes.set_xticks([0, 20, 40, 60, 80, 100])
    axes.xaxis.set_major_formatter(PercentFormatter())
    axes.grid(axis="x", color="#dddddd", linewidth=0.6)
    axes.set_axisbelow(True)


@contextmanager
def _style() -> Iterator[None]:
    """The report's matplotlib style, for the chart being drawn."""
    # Lambda's file system is read-only outside /tmp: matplotlib keeps its font cache there.
    os.environ.setdefault("MPLCONFIGDIR", os.path.join(tempfile.gettempdir(), "matplotlib"))
    import matplotlib

    with matplotlib.rc_context(STYLE):
        yield


def _figure(height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


_IDS = re.compile(r'(\bid="|href="#|url\(#)')


def _svg(figure: Figure, name: str) -> str:
    """The figure as an <svg> element: no XML prolog or DOCTYPE (which names a DTD on the web), ids
    prefixed with the chart's name."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata=NO_METADATA)
    text = buffer.getvalue()
    element = text[text.index("<svg") :]
    return _IDS.sub(lambda match: f"{match.group(1)}{name}-", element).strip()
