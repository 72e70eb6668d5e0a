"""The report as one self-contained HTML file: a Jinja2 template, charts inlined as SVG."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from runner.report.charts import DRAWERS, Chart, draw
from runner.report.model import Report


def duration(seconds: float | None) -> str:
    """``0.4 s``, ``12.3 s``, ``4 min 05 s``, ``2 h 03 min``."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def usd(value: float) -> str:
    """Dollars to the cent, and small amounts to their first significant digits (not ``$0.00``)."""
    if value == 0:
        return "$0"
    if value < 0.000001:
        return "<$0.000001"
    if value < 0.01:
        return f"${value:.{1 - math.floor(math.log10(value))}f}"
    return f"${value:,.2f}"


def hours(value: float) -> str:
    return f"{value:,.2f}" if value >= 10 else f"{value:.3g}"


def when(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def commands(text: str) -> Markup:
    """A hint with its `commands` set as code."""
    parts = str(text).split("`")
    return Markup("").join(
        Markup("<code>{}</code>").format(part) if odd else escape(part)
        for odd, part in ((i % 2 == 1, p) for i, p in enumerate(parts))
    )


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("runner.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        duration=duration,
        usd=usd,
        hours=hours,
        when=when,
        commands=commands,
        num=lambda n: f"{n:,}",
        price=lambda p: f"{p:g}",
    )
    return env


def render(report: Report, charts: list[Chart], generated: datetime) -> str:
    template = environment().get_template("report.html.j2")
    return template.render(
        r=report,
        s=report.summary,
        charts={drawer.__name__: None for drawer in DRAWERS} | {chart.name: chart for chart in charts},
        generated=generated.strftime("%Y-%m-%d %H:%M UTC"),
    )


def write_report(report: Report, out: Path, png_dir: Path | None, generated: datetime) -> list[Path]:
    """Write the HTML (and each chart as PNG into ``png_dir``); the paths written, HTML first."""
    charts = list(draw(report))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(report, charts, generated), encoding="utf-8")
    written = [out]
    if png_dir is not None:
        png_dir.mkdir(parents=True, exist_ok=True)
        written.extend(chart.save_png(png_dir) for chart in charts)
    return written
