"""Rendering an :class:`~agentsynth.analysis.results.AuditResult`: terminal tables, JSON, HTML, plots.

Every figure is shown with its interval; a figure without a number shows why (its note). The
plots are a heatmap of feedback gain by channel × domain and a chart of openness and spurious
bits per signal, as PNG or as a self-contained HTML page (matplotlib, the ``plot`` extra).
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .results import AuditResult, AuditRow

AGREEMENT_COLUMNS = [("pass_rate", "pass rate"), ("accuracy", "accuracy vs truth"), ("precision", "precision"),
                     ("recall", "recall"), ("kappa", "Cohen's kappa")]
INFORMATION_COLUMNS = [("mi", "I(S;T) bits"), ("openness", "openness I(S;T|M)"), ("spurious", "spurious I(S;F|T)"),
                       ("acceptance_entropy", "acceptance H"), ("bits_per_episode", "bits/episode"),
                       ("bits_per_1k_tokens", "bits/1k tokens"), ("openness_spread", "openness spread (domains)")]
SIGNAL_COLUMNS = AGREEMENT_COLUMNS + INFORMATION_COLUMNS
CHANNEL_COLUMNS = [("first_pass", "first turn"), ("last_pass", "last turn"), ("gain", "gain"),
                   ("gain_min", "gain min (domains)"), ("gain_max", "gain max"), ("gain_spread", "gain spread"),
                   ("openness", "openness of its signal")]


def cell(r: AuditRow | None, *, digits: int = 3) -> str:
    """'0.421 [0.380, 0.466]', or the reason there is no number."""
    if r is None:
        return "-"
    if r.estimate is None:
        return f"n/a: {r.note}" if r.note else "n/a"
    v = f"{r.estimate:.{digits}f}"
    if r.ci_low is None or r.ci_high is None:
        return v + (f" ({r.note})" if r.note else "")
    return f"{v} [{r.ci_low:.{digits}f}, {r.ci_high:.{digits}f}]"


def _label(res: AuditResult, name: str) -> str:
    lab = res.labels.get(name) or {}
    if not lab:
        return "?"
    return f"{lab['source']}/{lab['openness']}/{lab['meta_level']}" + ("" if lab.get("task_relevant", True) else "/surface")


def signal_table(res: AuditResult, domain: str | None = None,
                 columns: list[tuple[str, str]] = SIGNAL_COLUMNS, *, probe: bool = True) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the per-signal table (pooled, or one domain); with ``probe``, a last column
    of the latest probe flags when the store holds a probe of the runs' environments."""
    head, rows = _table(res, "signal", ["signal", "labels (source/openness/meta)", "n obs / tasks"],
                        lambda n: _label(res, n), "pass_rate", columns, domain)
    if not probe or not res.probe_flags:
        return head, rows
    return head + ["probe (latest)"], [r + [res.probe_flags.get(r[0], "-")] for r in rows]


def channel_table(res: AuditResult, domain: str | None = None) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the per-feedback-channel table."""
    return _table(res, "channel", ["channel", "its signal", "episodes / tasks"],
                  lambda n: res.channel_signal.get(n, "-"), "gain", CHANNEL_COLUMNS, domain)


def _table(res: AuditResult, scope: str, head: list[str], describe: Any, base_metric: str,
           columns: list[tuple[str, str]], domain: str | None) -> tuple[list[str], list[list[str]]]:
    rows = []
    for n in sorted({r.name for r in res.rows if r.scope == scope}):
        base = res.get(scope, n, base_metric, domain)
        if base is None:
            continue
        rows.append([n, describe(n), f"{base.n} / {base.n_tasks}"] + [
            _with_n(res.get(scope, n, m, None if _across(m) else domain), base) for m, _ in columns
        ])
    return head + [h for _, h in columns], rows


def _across(metric: str) -> bool:
    """An across-domain summary (stored with domain NULL)."""
    return metric.endswith(("_min", "_max", "_spread"))


def _with_n(r: AuditRow | None, base: AuditRow) -> str:
    s = cell(r)
    if r is not None and r.estimate is not None and (r.n, r.n_tasks) != (base.n, base.n_tasks) and not _across(r.metric):
        s += f" (n={r.n})"
    return s


def print_tables(res: AuditResult, *, by_domain: bool, stream: Any) -> None:
    """The terminal report (rich tables)."""
    from rich.text import Text

    from ..console import data_console, data_table

    console = data_console(stream, width=250)
    console.print(Text.assemble((f"audit {res.audit_id}", "bold"), f" of run(s) {', '.join(res.runs)}: "
                                f"{res.bootstrap} task-level bootstrap resamples, {res.confidence:.0%} intervals"
                                + ("" if res.saved else " (not saved)")))
    for domain in [None, *(res.domains if by_domain else [])]:
        where = "all domains" if domain is None else f"domain {domain}"
        for title, (cols, rows) in ((f"signals: agreement with truth, {where}", signal_table(res, domain, AGREEMENT_COLUMNS)),
                                    (f"signals: information in bits, {where}", signal_table(res, domain, INFORMATION_COLUMNS, probe=False)),
                                    (f"feedback channels, {where}", channel_table(res, domain))):
            console.print(data_table(cols, rows, title=title))
    query = (f"Query them: agentsynth sql \"SELECT * FROM audit_results WHERE audit_id = '{res.audit_id}'\"" if res.saved
             else "Not saved (--no-save): run the audit without --no-save to query these figures in SQL.")
    console.print(Text("M = the model's own assessment (self-consistency, else its self-review); F = surface features "
                       f"(length, answer line, hedging). {query}", style="dim"))


def to_json(res: AuditResult) -> str:
    """``--format json``."""
    return json.dumps(res.to_dict(), indent=1, default=str)


def to_html(res: AuditResult, *, by_domain: bool) -> str:
    """A self-contained HTML report: the tables and, when matplotlib is installed, the plots."""
    parts = [f"<h1>agentsynth audit {html.escape(res.audit_id)}</h1>",
             f"<p>run(s) {html.escape(', '.join(res.runs))}; {res.bootstrap} task-level bootstrap resamples; "
             f"{res.confidence:.0%} intervals.</p>"]
    try:
        parts.append(figure_html(res))
    except ImportError:
        parts.append("<p><em>plots need matplotlib: pip install 'agentsynth[plot]'</em></p>")
    for domain in [None, *(res.domains if by_domain else [])]:
        where = "all domains" if domain is None else f"domain {html.escape(domain)}"
        for title, (cols, rows) in ((f"Signals, {where}", signal_table(res, domain)),
                                    (f"Feedback channels, {where}", channel_table(res, domain))):
            parts.append(f"<h2>{title}</h2><table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in cols) + "</tr>")
            parts.extend("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in r) + "</tr>" for r in rows)
            parts.append("</table>")
    style = ("body{font-family:sans-serif;margin:2em} table{border-collapse:collapse;font-size:13px}"
             "td,th{border:1px solid #ccc;padding:3px 6px;text-align:left} img{max-width:100%}")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>agentsynth audit</title><style>{style}</style></head><body>{''.join(parts)}</body></html>\n"


def figure(res: AuditResult):  # -> matplotlib.figure.Figure
    """The two plots: feedback gain by channel × domain, and openness / spurious bits per signal."""
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    from matplotlib.figure import Figure

    channels = sorted({r.name for r in res.rows if r.scope == "channel"})
    domains = res.domains
    gain = np.full((len(channels), len(domains)), np.nan)
    for i, c in enumerate(channels):
        for j, d in enumerate(domains):
            r = res.get("channel", c, "gain", d)
            if r is not None and r.estimate is not None:
                gain[i, j] = r.estimate
    signals = sorted({r.name for r in res.rows if r.scope == "signal"})
    fig = Figure(figsize=(max(8, 1.1 * len(domains) + 3), 4 + 0.35 * (len(channels) + len(signals))), layout="constrained")
    ax1, ax2 = fig.subplots(2, 1, height_ratios=[max(len(channels), 1), max(len(signals), 1)])
    lim = np.nanmax(np.abs(gain)) if np.isfinite(gain).any() else 1.0
    im = ax1.imshow(gain, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
    ax1.set_xticks(range(len(domains)), domains, rotation=30, ha="right")
    ax1.set_yticks(range(len(channels)), channels)
    for i in range(len(channels)):
        for j in range(len(domains)):
            ax1.text(j, i, "n/a" if np.isnan(gain[i, j]) else f"{gain[i, j]:+.2f}", ha="center", va="center", fontsize=8)
    ax1.set_title("feedback gain: truth pass rate, last turn minus first")
    fig.colorbar(im, ax=ax1, shrink=0.8)
    y = np.arange(len(signals))
    for off, metric, colour in ((-0.2, "openness", "tab:blue"), (0.2, "spurious", "tab:red")):
        vals, lo, hi = [], [], []
        for s in signals:
            r = res.get("signal", s, metric)
            v = r.estimate if r is not None and r.estimate is not None else np.nan
            vals.append(v)
            lo.append(v - r.ci_low if r is not None and r.ci_low is not None else 0)
            hi.append(r.ci_high - v if r is not None and r.ci_high is not None else 0)
        ax2.barh(y + off, vals, height=0.4, xerr=[np.maximum(lo, 0), np.maximum(hi, 0)], color=colour, label=metric)
    ax2.set_yticks(y, [f"{s} ({_label(res, s)})" for s in signals])
    ax2.axvline(0, color="k", lw=0.5)
    ax2.set_xlabel("bits")
    ax2.set_title("openness I(S;T|M) and spurious component I(S;F|T) per signal")
    ax2.legend(loc="lower right")
    return fig


def img_tag(fig: Any, alt: str) -> str:
    """A matplotlib figure as an inline PNG ``<img>`` (so an HTML file needs nothing else)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}'>"


def figure_html(res: AuditResult) -> str:
    """The plots as an inline PNG ``<img>``."""
    return img_tag(figure(res), "audit plots")


def save_figure(make: Callable[[], Any], path: str | Path, title: str) -> Path:
    """Write the figure ``make()`` draws to ``path``: ``.png``, or ``.html`` (a self-contained page
    titled ``title``). :class:`ValueError` for another suffix (checked before drawing)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".png", ".html", ".htm"):
        raise ValueError(f"--plot {p}: use a .png or .html file name")
    if suffix == ".png":
        make().savefig(p, format="png", dpi=110)
    else:
        p.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
                     f"<body>{img_tag(make(), title)}</body></html>\n")
    return p


def write_plot(res: AuditResult, path: str | Path) -> Path:
    """Write the plots to ``path``: ``.png`` or ``.html`` (self-contained)."""
    return save_figure(lambda: figure(res), path, "agentsynth audit plots")
