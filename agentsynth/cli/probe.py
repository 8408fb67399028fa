"""``agentsynth probe --env ID``: can this environment's graders be hacked, or are they brittle?
Registered on the main command group in :mod:`agentsynth.cli`.

Exit 0 when the truth grader is not flagged, 1 when it is (so an environment package can run the
probe in its own CI), 2 with one ``error:`` line for bad input (an unknown environment or grader,
a grader, strategy or environment hook that raises): nothing is stored then.
"""

from __future__ import annotations

import json
import sys

import click

from ..store import DEFAULT_STORE
from .common import EXIT_FAILED, fail
from .progress import Bar

EXAMPLE_WIDTH = 70


def _example(text: str) -> str:
    """One line of an example reply for a table cell (newlines shown as ⏎, cut at 70 characters)."""
    flat = text.replace("\r", "").replace("\n", "⏎")
    return flat if len(flat) <= EXAMPLE_WIDTH else flat[:EXAMPLE_WIDTH - 1] + "…"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}"


@click.command("probe")
@click.option("--env", "env_ref", required=True, metavar="ID",
              help="Environment: a registered name (arithmetic, ...) or module:Class / path.py:Class.")
@click.option("--grader", "graders", multiple=True, metavar="NAME",
              help="Only this grader (repeatable). Default: every grader that needs no model (with --judge-model or "
                   "--base-url, those that do too); name judge, judge_same_model or self to probe them against the judge.")
@click.option("--spec", "spec_path", type=click.Path(dir_okay=False), metavar="SPEC",
              help="Build the environment with the kwargs its entry in this run spec gives (a task set's column mapping).")
@click.option("--strategy", "strategies", multiple=True, metavar="NAME",
              help="Only this strategy (repeatable; env:<label> for an environment's own). Default: all.")
@click.option("--judge-model", metavar="M", help="The model judge and self-review graders ask (default: the in-process "
              "sim); with --base-url, a model at that OpenAI-compatible endpoint. Probes those graders by default.")
@click.option("--base-url", metavar="URL", help="The judge model's OpenAI-compatible endpoint (e.g. http://127.0.0.1:8000/v1).")
@click.option("--api-key-env", metavar="VAR", help="The environment variable holding the endpoint's key (local: none needed).")
@click.option("--tasks", default=50, show_default=True, type=click.IntRange(1, 100_000), help="Tasks per difficulty (seeds 0..N-1).")
@click.option("--difficulty", "difficulties", multiple=True, type=click.IntRange(1, 10), metavar="D",
              help="Task difficulty (repeatable: pooled over the levels given). Default: 1.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--all", "show_all", is_flag=True, help="List every grader x strategy, not only those with failures.")
@click.option("--store", type=click.Path(dir_okay=False), default=str(DEFAULT_STORE), show_default=True)
@click.option("--no-save", is_flag=True, help="Do not record the figures in the store's probes table.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def probe(env_ref: str, graders: tuple[str, ...], spec_path: str | None, strategies: tuple[str, ...], judge_model: str | None,
          base_url: str | None, api_key_env: str | None, tasks: int, difficulties: tuple[int, ...], fmt: str,
          show_all: bool, store: str, no_save: bool, quiet: bool) -> None:
    """Probe an environment's graders with replies built to pass without solving the task (false
    accepts: hackable) and correct replies in equivalent forms (false rejects: brittle), per grader
    x strategy with 95% Wilson intervals; recorded in the probes table.

    \b
    Example: agentsynth probe --env pairs --tasks 50 --difficulty 1 --difficulty 2 --difficulty 3
    \b
    A judge at an endpoint: agentsynth probe --env arithmetic --grader judge --strategy verdict_token
        --judge-model gpt-4o-mini --base-url https://api.openai.com/v1 --api-key-env OPENAI_API_KEY
    """
    from ..probes import ProbeError
    from ..probes import probe as run_probe
    from ..registry import UnknownEnvironment
    from ..store import StoreError

    from .common import spec_envs

    kwargs = spec_envs(spec_path, [env_ref])[1].get(env_ref) if spec_path else None
    levels = list(difficulties) or [1]
    bar = Bar(f"probe {env_ref}", not quiet, [], every=0.2)
    try:
        result = run_probe(env_ref, graders=list(graders) or None, tasks=tasks, difficulty=levels,
                           store=None if no_save else store, strategies=list(strategies) or None, env_kwargs=kwargs,
                           judge_model=judge_model, judge_base_url=base_url, judge_api_key_env=api_key_env,
                           on_progress=lambda done, total: bar.update(done, total))
    except (UnknownEnvironment, ProbeError, StoreError) as exc:
        bar.stop()
        fail(str(exc))
    except KeyboardInterrupt:
        bar.stop()
        fail("interrupted; nothing was stored", 130)
    bar.stop()
    if fmt == "json":
        click.echo(json.dumps(result.to_dict(), indent=1))
    else:
        _print(result, show_all)
    if result.truth_flagged:
        click.echo(f"truth grader {result.truth!r} of {result.env_id} is {' and '.join(result.flags(result.truth))}: "
                   "do not use it as truth until it is fixed", err=True)
        sys.exit(EXIT_FAILED)


def _print(result, show_all: bool) -> None:  # noqa: ANN001 - a ProbeResult
    from rich.text import Text

    from ..console import data_console, data_table

    con = data_console(sys.stdout)
    head = ["grader", "labels", "role", "false accepts / hack replies", "false rejects / equivalent replies", "flags"]
    rows = []
    for g in result.graders:
        t = result.totals(g)
        role = "truth" if g == result.truth else "surface" if g in result.surface else "feedback / score"
        cells = [f"{t[k][0]} / {t[k][1]}" if k in t else "-" for k in ("hack", "brittle")]
        flags = ", ".join(result.flags(g)) or ("not flagged (surface)" if g in result.surface else "ok")
        rows.append([g, result.labels.get(g, "?"), role, *cells, flags])
    levels = ", ".join(map(str, result.difficulties))
    con.print(data_table(head, rows, title=f"probe {result.probe_id} of {result.env_id}: {result.tasks} tasks x "
                                             f"difficulty {levels} (seeds 0..{result.tasks - 1})"))
    shown = [r for r in result.rows if show_all or (r.failures and not r.surface)]
    if shown:
        detail = [[r.grader, r.strategy, r.kind, str(r.n), str(r.failures), f"{_pct(r.rate)} [{_pct(r.ci_low)}, {_pct(r.ci_high)}]",
                   "yes" if r.flagged else "", _example(r.example)] for r in shown]
        con.print(data_table(["grader", "strategy", "kind", "n", "failures", "rate % [95% CI]", "flags", "example reply"],
                             detail, title="per grader x strategy" + ("" if show_all else ": those with failures")))
    hidden = len(result.rows) - len(shown)
    notes = []
    if hidden:
        notes.append(f"{hidden} grader x strategy rows not shown (no failures, or a surface grader's): --all lists them.")
    for g, why in result.skipped.items():
        notes.append(f"{g} not probed: {why}.")
    notes.append(f"{result.seconds:.1f} s. " + (
        f"Stored: agentsynth sql \"SELECT * FROM probes WHERE probe_id = '{result.probe_id}'\"" if result.saved
        else "Not stored (--no-save)."))
    con.print(Text("\n".join(notes), style="dim"))
