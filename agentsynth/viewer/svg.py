"""Interval plots as inline SVG, drawn on the server: one row per figure, a dot at the estimate
and a bar across its interval, on a shared axis. No script, no style attributes (colours come
from ``viewer.css`` classes), every label escaped through :mod:`agentsynth.viewer.html`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .html import Html, el

ROW = 22
LABEL = 260
PLOT = 420
PAD = 12


@dataclass(frozen=True)
class Point:
    """One row of an interval plot: a label, the estimate and its interval (None: not estimable)."""

    label: str
    estimate: float | None
    low: float | None = None
    high: float | None = None
    note: str = ""


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering ``[lo, hi]``."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks, t = [], start
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 12))
        t += step
    return ticks


def interval_plot(points: Sequence[Point], *, title: str, axis: str = "", domain: tuple[float, float] | None = None,
                  reference: float | None = None) -> Html:
    """An SVG plot of ``points`` (top to bottom) titled ``title``; the x axis spans ``domain``
    (default: the data, with the ``reference`` line, e.g. 0, inside it)."""
    values = [v for p in points for v in (p.estimate, p.low, p.high) if v is not None and math.isfinite(v)]
    if reference is not None:
        values.append(reference)
    lo, hi = domain if domain else ((min(values), max(values)) if values else (0.0, 1.0))
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    ticks = nice_ticks(lo, hi)
    lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])

    def x(v: float) -> float:
        return round(LABEL + PLOT * (min(max(v, lo), hi) - lo) / (hi - lo), 1)

    top = 28
    height = top + ROW * max(len(points), 1) + 34
    parts: list[Html] = [el("title", title), el("text", title, x=PAD, y=16, class_="plot-title")]
    for t in ticks:
        parts.append(el("line", x1=x(t), x2=x(t), y1=top - 4, y2=height - 30, class_="grid"))
        parts.append(el("text", f"{t:g}", x=x(t), y=height - 16, class_="tick"))
    if reference is not None and lo <= reference <= hi:
        parts.append(el("line", x1=x(reference), x2=x(reference), y1=top - 4, y2=height - 30, class_="ref"))
    for i, p in enumerate(points):
        y = top + ROW * i + ROW / 2
        parts.append(el("text", _short(p.label), x=LABEL - 8, y=y + 4, class_="label"))
        if p.estimate is None or not math.isfinite(p.estimate):
            parts.append(el("text", "n/a" + (f": {p.note}" if p.note else ""), x=LABEL + 4, y=y + 4, class_="na"))
            continue
        if p.low is not None and p.high is not None and math.isfinite(p.low) and math.isfinite(p.high):
            parts.append(el("line", x1=x(p.low), x2=x(p.high), y1=y, y2=y, class_="ci"))
        text = f"{p.estimate:.3f}" + (f" [{p.low:.3f}, {p.high:.3f}]" if p.low is not None and p.high is not None else "")
        parts.append(el("circle", el("title", f"{p.label}: {text}"), cx=x(p.estimate), cy=y, r=4, class_="pt"))
    if axis:
        parts.append(el("text", axis, x=LABEL + PLOT / 2, y=height - 2, class_="axis"))
    width = LABEL + PLOT + 2 * PAD
    return el("svg", *parts, xmlns="http://www.w3.org/2000/svg", viewBox=f"0 0 {width} {height}", width=width,
              height=height, role="img", class_="plot", aria_label=title)


def _short(label: str, limit: int = 40) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"
