"""The loop's plot: held-out accuracy by generation, one line per arm with its 95% band, one panel
per split, and pass@K and distinct answers per generation beside them (matplotlib, the ``plot``
extra). PNG, or a self-contained HTML page."""

from __future__ import annotations

from pathlib import Path

from ..analysis.report import save_figure
from .report import LoopReport


def figure(rep: LoopReport):  # -> matplotlib.figure.Figure
    """Accuracy per split (with bands) and diversity per generation."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    panels = len(rep.splits) + 2
    fig = Figure(figsize=(4.2 * panels, 4.2), layout="constrained")
    axes = fig.subplots(1, panels)
    colours = {a: f"C{i % 10}" for i, a in enumerate(rep.arms)}
    for ax, split in zip(axes, rep.splits):
        for arm in rep.arms:
            cells = [c for c in rep.accuracy if c.arm == arm and c.split == split and c.accuracy is not None]
            if not cells:
                continue
            g = [c.generation for c in cells]
            ax.plot(g, [c.accuracy for c in cells], marker="o", color=colours[arm], label=arm)
            ax.fill_between(g, [c.ci_low for c in cells], [c.ci_high for c in cells], color=colours[arm], alpha=0.07)
        doms = ", ".join(rep.domains.get(split, []))
        ax.set_title(f"{split} domains ({doms})", fontsize=10)
        ax.set_xlabel("generation")
        ax.set_ylabel("greedy held-out accuracy")
        ax.grid(alpha=0.3)
    for ax, attrs, title in ((axes[-2], ("pass_at_1", "pass_at_k"), "samples: pass@1 (solid), pass@K (dashed)"),
                             (axes[-1], ("distinct_answers",), "samples: distinct answers per task")):
        for arm in rep.arms:
            cells = [c for c in rep.diversity if c.arm == arm]
            for attr, style in zip(attrs, ("-", "--")):
                if cells:
                    ax.plot([c.generation - 1 for c in cells], [getattr(c, attr) for c in cells], marker="o",
                            linestyle=style, color=colours[arm], label=arm if style == "-" else None)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("generation of the student sampled")
        ax.grid(alpha=0.3)
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].legend(fontsize=8)
    fig.suptitle(f"loop {rep.loop}")
    return fig


def write_plot(rep: LoopReport, path: str | Path) -> Path:
    """Write the plot to ``path``: ``.png`` or ``.html`` (self-contained)."""
    return save_figure(lambda: figure(rep), path, f"loop {rep.loop}")
