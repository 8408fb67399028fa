"""``agentsynth loop SPEC`` (run or resume a generation-training loop) and ``agentsynth loop
report`` (its table and plot). Registered on the main command group in :mod:`agentsynth.cli`.

Bad input (a malformed spec, an unknown arm, an arm whose signal the domains do not record, a
missing or corrupt checkpoint) prints one line and exits 2 before anything runs; a step that
fails later exits 1; an interrupted loop exits 130, and running the same command resumes it.
"""

from __future__ import annotations

import json
import signal
import sys
from typing import Any

import click

from ..loop.spec import DEFAULT_LOOP_STORE
from .common import EXIT_FAILED, fail, interrupt
from .progress import Bar


class _LoopGroup(click.Group):
    """``loop SPEC`` runs a spec; ``loop report`` is a subcommand."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group("loop", cls=_LoopGroup, invoke_without_command=False)
def loop() -> None:
    """Close the loop: synthesize with a student, select with each arm's signal, train the next
    student on the selection, evaluate it on held-out tasks; repeat for every generation.

    \b
    agentsynth loop runs/loop-smoke.toml          # run, or resume after a kill
    agentsynth loop report --plot loop.png        # accuracy per arm x generation, with intervals
    """


class _Progress:
    """One line per finished step, a bar for each synthesis, evaluation and training."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.bar: Bar | None = None

    def event(self, text: str) -> None:
        self.done()
        click.echo(text, err=True)

    def run_start(self, title: str) -> Any:
        self.done()
        self.bar = Bar(title, not self.quiet, ["ok {task.fields[ok]}"], every=0.25)
        return lambda total, todo: None

    def run_progress(self, done: int, total: int, ok: int, errors: int) -> None:
        if self.bar is not None:
            self.bar.update(done, total, ok=str(ok))

    def train(self, title: str) -> Any:
        self.done()
        bar = Bar(title, not self.quiet, ["loss {task.fields[loss]}", "{task.fields[speed]}"], every=0.25)
        self.bar = bar

        def update(p: Any) -> None:
            bar.update(p.step, p.steps, loss=f"{p.loss:.3f}", speed=f"{p.tokens_per_s:,.0f} tok/s")

        return update

    def done(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


@loop.command("run")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--store", type=click.Path(dir_okay=False), help="DuckDB store file (overrides the spec).")
@click.option("--workdir", type=click.Path(file_okay=False), help="Checkpoints and exports (overrides the spec).")
@click.option("--plot", type=click.Path(dir_okay=False),
              help="Where to write the report's plot (.png or .html; default: <workdir>/<name>.png).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars (step lines still print).")
def run_cmd(spec_path: str, store: str | None, workdir: str | None, plot: str | None, quiet: bool) -> None:
    """Run the loop described by SPEC (a TOML loop spec), or resume it."""
    from ..loop import LoopCallbacks, LoopError, LoopSpecError, check_loop, load_loop_spec, run_loop
    from ..store import StoreError

    try:
        spec = load_loop_spec(spec_path, store=store, workdir=workdir)
        check_loop(spec)
    except (LoopSpecError, LoopError, StoreError) as exc:
        fail(str(exc))
    progress = _Progress(quiet)
    signal.signal(signal.SIGTERM, interrupt)
    cb = LoopCallbacks(on_event=progress.event, on_run_start=progress.run_start, on_run_progress=progress.run_progress,
                       on_train=progress.train, on_done=progress.done)
    try:
        result = run_loop(spec, cb)
    except KeyboardInterrupt:
        progress.done()
        fail("interrupted; run the same command again to resume", 130)
    except (LoopError, StoreError) as exc:
        progress.done()
        fail(str(exc), EXIT_FAILED)
    progress.done()
    click.echo(f"loop {result.name}: {result.ran} step(s) run, {result.skipped} already done, {result.wall_s / 60:.1f} min; "
               f"store {result.store}")
    _show(str(result.store), result.name, plot or str(spec.work_path() / f"{spec.name}.png"), "table",
          plot_optional=plot is None)


@loop.command("report")
@click.option("--store", type=click.Path(dir_okay=False), default=DEFAULT_LOOP_STORE, show_default=True)
@click.option("--loop", "loop_name", help="Which loop (default: the most recently updated).")
@click.option("--plot", type=click.Path(dir_okay=False), help="Write the plot (.png or .html).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def report_cmd(store: str, loop_name: str | None, plot: str | None, fmt: str) -> None:
    """Held-out accuracy per arm x generation x split (loop and held-out domains) with 95% intervals
    across seeds and tasks, and each generation's diversity (distinct answers, pass@1, pass@K)."""
    _show(store, loop_name, plot, fmt)


def _show(store: str, loop_name: str | None, plot: str | None, fmt: str, *, plot_optional: bool = False) -> None:
    from ..console import data_console, data_table
    from ..loop.report import loop_report
    from ..store import StoreError

    try:
        rep = loop_report(store, loop_name)
    except StoreError as exc:
        fail(str(exc))
    if fmt == "json":
        click.echo(json.dumps(rep.to_dict(), indent=1))
    else:
        con = data_console(sys.stdout)
        pct = lambda x: "n/a" if x is None else f"{100 * x:.1f}"  # noqa: E731
        head = ["arm", "signal (openness, meta-level)", *[f"gen {g}" for g in rep.generations]]
        for split in rep.splits:
            rows = []
            for arm in rep.arms:
                lab = rep.labels.get(arm, {})
                row = [arm, f"{lab.get('signal')} ({lab.get('openness')}, {lab.get('meta_level')})"]
                for g in rep.generations:
                    c = rep.cell(arm, g, split)
                    row.append("-" if c is None or c.accuracy is None else
                               f"{pct(c.accuracy)} [{pct(c.ci_low)}, {pct(c.ci_high)}]")
                rows.append(row)
            title = (f"loop {rep.loop}: greedy accuracy % [95% interval over seeds and tasks], {split} domains "
                     f"({', '.join(rep.domains.get(split, []))})")
            con.print(data_table(head, rows, title=title))
            rows = []
            for arm in rep.arms:
                row = [arm]
                for g in rep.generations[1:]:
                    c = rep.cell(arm, g, split)
                    row.append("-" if c is None or c.gain is None else
                               f"{100 * c.gain:+.1f} [{100 * c.gain_low:+.1f}, {100 * c.gain_high:+.1f}]")
                rows.append(row)
            con.print(data_table(["arm", *[f"gen {g}" for g in rep.generations[1:]]], rows,
                                 title=f"change from generation 0, points [paired 95% interval], {split} domains"))
        if rep.diversity:
            rows = [[d.arm, str(d.generation - 1), f"{d.distinct_answers:.2f}", pct(d.pass_at_1), pct(d.pass_at_k),
                     pct(d.majority_right), pct(d.selected), str(d.samples)] for d in rep.diversity]
            con.print(data_table(["arm", "student of gen", "distinct answers/task", "pass@1 %", "pass@K %",
                                  "majority right %", "selected %", "samples"], rows,
                                 title="what each generation's student sampled on the loop domains (synthesis of the next)"))
    if plot:
        try:
            from ..loop.plot import write_plot

            click.echo(f"wrote {write_plot(rep, plot)}", err=True)
        except ImportError:
            if plot_optional:
                click.echo("(no plot: pip install 'agentsynth[plot]' for one)", err=True)
                return
            fail("plots need matplotlib: pip install 'agentsynth[plot]'", EXIT_FAILED)
        except ValueError as exc:
            fail(str(exc))
