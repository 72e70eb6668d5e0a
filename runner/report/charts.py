"""The report's charts, drawn with matplotlib: inline SVG for the HTML, PNG for a ticket.

Figures are built with the object-oriented API (no pyplot, no global figure state) and saved
with a fixed hash salt and no date, so the same run gives the same bytes.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from runner.report.model import (
    FIRST_TIME,
    INTERRUPTION_BINS,
    NOT_FINISHED,
    ON_RETRY,
    OUTCOME_BINS,
    OUTCOME_NAMES,
    RUNTIME_BINS,
    STILL_FAILED,
    Report,
)

_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.DOTALL)
_NAMESPACES = re.compile(r'\s+xmlns(?::xlink)?="[^"]*"')
WIDTH = 10.0  # inches; the page scales the SVG to its column
BLUE, GREEN, RED, TEAL, GREY, INK = "#1f5fa8", "#2e7d32", "#c62828", "#00838f", "#9e9e9e", "#333333"
OUTCOME_COLORS = {NOT_FINISHED: GREY, FIRST_TIME: GREEN, ON_RETRY: TEAL, STILL_FAILED: RED}
CLASS_COLORS = {
    "spot": "#ef6c00",
    "oom": "#6a1b9a",
    "timeout": "#ad1457",
    "infra": "#5d4037",
    "config": "#455a64",
    "cancelled": GREY,
    "dependency": "#827717",
    "app": RED,
    "unknown": INK,
}
STYLE = {
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.edgecolor": "#bbbbbb",
    "axes.labelcolor": INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.color": INK,
    "ytick.color": INK,
    "legend.frameon": False,
}


@dataclass(frozen=True)
class Chart:
    """A drawn chart: its file stem, alt text, and figure."""

    name: str
    title: str
    figure: Figure

    def svg(self) -> str:
        """The ``<svg>`` element alone, text kept as text, ids unique to this chart."""
        buffer = io.StringIO()
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": self.name, "svg.id": self.name}):
            self.figure.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
        text = buffer.getvalue()
        text = text[text.index("<svg") :]
        # Inline in HTML the namespaces are implied, and the RDF metadata only names matplotlib:
        # without them the page holds no URL at all.
        text = _METADATA.sub("", text, count=1)
        return _NAMESPACES.sub("", text[: text.index(">") + 1], count=2) + text[text.index(">") + 1 :]

    def save_png(self, directory: Path) -> Path:
        path = directory / f"{self.name}.png"
        self.figure.savefig(path, format="png", dpi=150, bbox_inches="tight", metadata={"Software": None})
        return path


def time_unit(span_seconds: float) -> tuple[float, str]:
    """Divide seconds by this and label the axis so: s up to 3 min, min up to 3 h, then h."""
    if span_seconds <= 180:
        return 1.0, "s"
    if span_seconds <= 3 * 3600:
        return 60.0, "min"
    return 3600.0, "h"


def _legend_outside(ax) -> None:
    """Legends in a row above the plot: they never hide a bar or a line, and every chart's plot
    spans the same width, so the time axes of the timeline and the attempts line up."""
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.01), borderaxespad=0, ncol=5, handlelength=1.5)


def _figure(height: float, rows: int = 1, ratios: list[float] | None = None) -> tuple[Figure, list]:
    """A figure with ``rows`` axes sharing x; call within the chart's ``rc_context(STYLE)``."""
    figure = Figure(figsize=(WIDTH, height), layout="constrained")
    axes = figure.subplots(rows, 1, sharex=True, height_ratios=ratios, squeeze=False)[:, 0]
    return figure, list(axes)


def timeline(report: Report) -> Chart | None:
    """Tasks running over time, retry runs marked, Spot reclaims counted beneath."""
    curve = report.concurrency
    if curve is None:
        return None
    with matplotlib.rc_context(STYLE):
        interrupted = len(curve.interruptions) > 0
        figure, axes = _figure(
            3.4 if interrupted else 2.8, 2 if interrupted else 1, [4, 1] if interrupted else None
        )
        scale, unit = time_unit(float(curve.seconds[-1]))
        x = curve.seconds / scale
        ax = axes[0]
        how = "" if curve.exact else " (mean per interval)"
        ax.fill_between(x, curve.running, step="post", color=BLUE, alpha=0.25, linewidth=0)
        ax.step(
            x,
            curve.running,
            where="post",
            color=BLUE,
            linewidth=1.2,
            label=f"tasks running{how}; peak {curve.peak:,}",
        )
        end = float(x[-1]) or 1.0
        for run_id, start in curve.run_starts:
            ax.axvline(start / scale, color=TEAL, linestyle="--", linewidth=1)
            right_half = start / scale > end / 2  # write toward the middle, never off the plot
            ax.annotate(
                f"retry {run_id}",
                (start / scale, 1),
                xycoords=("data", "axes fraction"),
                xytext=(-3 if right_half else 3, -2),
                textcoords="offset points",
                va="top",
                ha="right" if right_half else "left",
                color=TEAL,
                fontsize=8,
            )
        ax.set_ylabel("tasks running")
        ax.set_ylim(bottom=0)
        ax.set_xlim(0, max(float(x[-1]), 1e-9))
        if interrupted:
            low = axes[1]
            edges = np.linspace(0.0, float(curve.seconds[-1]) or 1.0, INTERRUPTION_BINS + 1) / scale
            counts, _ = np.histogram(curve.interruptions / scale, bins=edges)
            low.bar(
                edges[:-1],
                counts,
                width=np.diff(edges),
                align="edge",
                color=CLASS_COLORS["spot"],
                label=f"Spot reclaims, beneath ({len(curve.interruptions):,})",
            )
            low.set_ylabel("reclaims")
            low.yaxis.get_major_locator().set_params(integer=True)
        # One legend above the plot for both panels.
        handles = [h for a in axes for h in a.get_legend_handles_labels()[0]]
        ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 1.01), borderaxespad=0, ncol=3)
        axes[-1].set_xlabel(f"time since the first task started ({unit})")
    return Chart("timeline", "Tasks running over time", figure)


def runtimes(report: Report) -> Chart | None:
    """How long each task's latest attempt ran, with p50, p90 and max marked."""
    if not len(report.runtimes) or report.runtime is None:
        return None
    with matplotlib.rc_context(STYLE):
        figure, (ax,) = _figure(2.6)
        stats = report.runtime
        scale, unit = time_unit(stats.max)
        values = report.runtimes / scale
        top = max(float(values.max()), 1e-9)
        ax.hist(values, bins=np.linspace(0.0, top, RUNTIME_BINS + 1), color=BLUE, alpha=0.8)
        for label, value, style in (
            ("p50", stats.p50, "-"),
            ("p90", stats.p90, "--"),
            ("max", stats.max, ":"),
        ):
            ax.axvline(
                value / scale,
                color=INK,
                linestyle=style,
                linewidth=1,
                label=f"{label} {value / scale:.3g} {unit}",
            )
        ax.set_xlabel(f"runtime of each task's latest attempt ({unit})")
        ax.set_ylabel("tasks")
        _legend_outside(ax)
    return Chart("runtimes", "Runtime distribution", figure)


def outcomes(report: Report) -> Chart | None:
    """Each logical index's latest outcome, as a strip over the index space."""
    codes = report.outcomes
    unfinished = report.rows is not None and not report.rows.complete
    if codes is None or not len(codes) or not (report.has_retries or report.summary.failures or unfinished):
        return None  # every index succeeded the first time: nothing to see
    with matplotlib.rc_context(STYLE):
        figure, (ax,) = _figure(1.9)
        bins = min(len(codes), OUTCOME_BINS)
        edges = np.linspace(0, len(codes), bins + 1)
        which = np.minimum((np.arange(len(codes)) * bins) // len(codes), bins - 1)
        bottom = np.zeros(bins)
        for code in (FIRST_TIME, ON_RETRY, STILL_FAILED, NOT_FINISHED):
            counts = np.bincount(which[codes == code], minlength=bins).astype(float)
            if not counts.any():
                continue
            ax.bar(
                edges[:-1],
                counts,
                width=np.diff(edges),
                align="edge",
                bottom=bottom,
                color=OUTCOME_COLORS[code],
                label=f"{OUTCOME_NAMES[code]} ({int(counts.sum()):,})",
                linewidth=0,
            )
            bottom += counts
        ax.set_xlim(0, len(codes))
        ax.set_xlabel(report.outcome_unit)
        ax.set_ylabel(("rows" if report.rows is not None else "tasks") if bins < len(codes) else "")
        if bins == len(codes):
            ax.set_yticks([])
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.45), ncol=4)
    return Chart("outcomes", f"Latest outcome by {report.outcome_unit}", figure)


def failures(report: Report) -> Chart | None:
    """Tasks that failed per class: still failed, and recovered by a retry."""
    classes = report.failure_classes
    if not classes:
        return None
    with matplotlib.rc_context(STYLE):
        figure, (ax,) = _figure(0.7 + 0.32 * len(classes))
        rows = classes[::-1]
        names = [c.name for c in rows]
        colors = [CLASS_COLORS.get(n, INK) for n in names]
        still = ax.barh(
            names,
            [c.still_failed for c in rows],
            color=colors,
            label="still failed" if any(c.still_failed for c in rows) else None,
        )
        if any(c.recovered for c in rows):
            ax.barh(
                names,
                [c.recovered for c in rows],
                left=[c.still_failed for c in rows],
                color=colors,
                alpha=0.3,
                hatch="///",
                edgecolor="white",
                label="recovered by a retry",
            )
        for position, row in zip(still.patches, rows, strict=True):  # the total, after the stacked bar
            ax.annotate(
                f"{row.failed:,}",
                (row.failed, position.get_y() + position.get_height() / 2),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
            )
        ax.set_xlabel("failed tasks")
        ax.set_xlim(0, max(c.failed for c in classes) * 1.12)
        ax.xaxis.get_major_locator().set_params(integer=True)
        _legend_outside(ax)
    return Chart("failures", "Failures by class", figure)


# The Gantt panel draws one bar per attempt, so only small runs get one.
GANTT_ATTEMPTS = 1_000
KIND_COLORS = {"S": GREEN, "F": RED, "R": CLASS_COLORS["spot"], "f": "#ef9a9a", "r": "#ffcc80"}
KIND_LABELS = {
    "S": "succeeded",
    "F": "failed",
    "R": "reclaimed (last attempt)",
    "f": "failed, retried",
    "r": "reclaimed, retried",
}


def attempts(report: Report) -> Chart | None:
    """Each attempt as a bar at its logical index (small runs only): who ran when, and how it ended."""
    parts = [p for p in report.parts if p.times is not None and len(p.times)]
    total = sum(len(p.times) for p in parts)  # type: ignore[arg-type]
    if not parts or total > GANTT_ATTEMPTS or report.started_ms is None:
        return None
    with matplotlib.rc_context(STYLE):
        figure, (ax,) = _figure(min(6.0, 1.4 + 0.03 * report.summary.size))
        origin = report.started_ms
        span = max((max(p.times.stopped) for p in parts), default=origin) - origin  # type: ignore[union-attr]
        scale, unit = time_unit(span / 1000.0)
        by_kind: dict[str, tuple[list[float], list[float], list[int]]] = {}
        for part in parts:
            times = part.times
            for index, started, stopped, kind in zip(
                times.index,
                times.started,
                times.stopped,
                times.kind,  # type: ignore[union-attr]
                strict=True,
            ):
                lefts, widths, rows = by_kind.setdefault(kind, ([], [], []))
                lefts.append((started - origin) / 1000.0 / scale)
                widths.append(max((stopped - started) / 1000.0 / scale, span / 1000.0 / scale / 800))
                rows.append(index)
        for kind in "SFRfr":
            if kind in by_kind:
                lefts, widths, rows = by_kind[kind]
                ax.barh(
                    rows,
                    widths,
                    left=lefts,
                    height=0.8,
                    color=KIND_COLORS[kind],
                    label=f"{KIND_LABELS[kind]} ({len(rows):,})",
                    linewidth=0,
                )
        ax.set_ylim(report.summary.size - 0.5, -0.5)
        ax.set_ylabel("logical index")
        ax.set_xlabel(f"time since the first task started ({unit})")
        ax.set_xlim(0, max(span / 1000.0 / scale, 1e-9))  # the timeline's axis, to line up with it
        _legend_outside(ax)
    return Chart("attempts", "Every attempt by logical index", figure)


DRAWERS: tuple[Callable[[Report], Chart | None], ...] = (timeline, attempts, runtimes, failures, outcomes)


def draw(report: Report) -> Iterator[Chart]:
    """Every chart the report has data for, in page order."""
    for drawer in DRAWERS:
        chart = drawer(report)
        if chart is not None:
            yield chart
