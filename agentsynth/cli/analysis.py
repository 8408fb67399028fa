"""The commands that read what runs stored: ``audit``, ``export`` and ``eval`` (which runs a
held-out evaluation and scores it)."""

from __future__ import annotations

import signal
import sys

import click

from ..store import DEFAULT_STORE
from .common import EXIT_FAILED, RunProgress, base_url_option, check_out, fail, interrupt, print_table, spec_envs


@click.command("audit")
@click.option("--run", "runs", multiple=True, help="Run to audit (repeatable; default: the latest synthesis run).")
@click.option("--by", "by", type=click.Choice(["domain"]), help="Also show every figure per domain.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "html"]), default="table", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), help="Write the report to a file instead of stdout.")
@click.option("--plot", type=click.Path(dir_okay=False), help="Write the plots to FILE (.png or self-contained .html).")
@click.option("--bootstrap", default=500, show_default=True, type=click.IntRange(50, 100_000),
              help="Task-level bootstrap resamples.")
@click.option("--confidence", default=0.95, show_default=True, type=click.FloatRange(0.5, 0.999))
@click.option("--min-tasks", default=10, show_default=True, type=click.IntRange(2, None),
              help="Fewer tasks than this: no number, a note instead.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the bootstrap resamples.")
@click.option("--no-save", is_flag=True, help="Do not record the figures in the store (opens it read-only).")
@click.option("--store", type=click.Path(dir_okay=False), default=str(DEFAULT_STORE), show_default=True)
def audit(runs: tuple[str, ...], by: str | None, fmt: str, out: str | None, plot: str | None, bootstrap: int,
          confidence: float, min_tasks: int, seed: int, no_save: bool, store: str) -> None:
    """Measure what each signal and feedback channel tells about truth: agreement, I(S;T),
    openness I(S;T|M), spurious I(S;F|T), acceptance entropy, efficiency and feedback gain,
    with task-level bootstrap intervals; recorded in the audits / audit_results tables.

    \b
    Example: agentsynth audit --run feedback-sweep --by domain --plot audit.png
    """
    from ..analysis import report
    from ..analysis.audit import audit as do_audit
    from ..store import StoreError

    if plot and not plot.lower().endswith((".png", ".html", ".htm")):
        fail(f"--plot {plot}: use a .png or .html file name")
    for option, path in (("--out", out), ("--plot", plot)):
        if path:
            check_out(path, option)
    try:
        res = do_audit(store, list(runs) or None, bootstrap=bootstrap, confidence=confidence, seed=seed,
                       min_tasks=min_tasks, save=not no_save)
    except StoreError as exc:
        fail(str(exc))
    stream = open(out, "w") if out else sys.stdout
    try:
        if fmt == "json":
            stream.write(report.to_json(res) + "\n")
        elif fmt == "html":
            stream.write(report.to_html(res, by_domain=by == "domain"))
        else:
            report.print_tables(res, by_domain=by == "domain", stream=stream)
    finally:
        if out:
            stream.close()
    if plot:
        try:
            report.write_plot(res, plot)
        except ImportError:
            fail("plots need matplotlib: pip install 'agentsynth[plot]'", EXIT_FAILED)
        click.echo(f"wrote {plot}", err=True)


@click.command("export")
@click.option("--run", "run_name", required=True, help="Name of the stored synthesis run to export.")
@click.option("--select", "signal_name", required=True, metavar="SIGNAL",
              help="Signal that accepts an episode-turn (passed = true, or value >= --min), e.g. correct.")
@click.option("--min", "min_value", type=float, help="Accept when the signal's value is >= this (instead of passed).")
@click.option("--domains", multiple=True, metavar="D", help="Only these domains (repeat, or comma-separate).")
@click.option("--format", "fmt", required=True, type=click.Choice(["sft", "dpo", "parquet"]),
              help="sft: chat JSONL; dpo: preference JSONL; parquet: flat table.")
@click.option("--out", required=True, type=click.Path(), help="Output file.")
@click.option("--store", type=click.Path(dir_okay=False), default=str(DEFAULT_STORE), show_default=True)
@click.option("--trajectory", type=click.Choice(["final", "full", "reference"]), default=None,
              help="sft: final = prompt + tool calls + accepted answer (default); full = the whole conversation; "
                   "reference = the prompt and the task's reference reply instead of the model's.")
def export_cmd(run_name: str, signal_name: str, min_value: float | None, domains: tuple[str, ...], fmt: str, out: str,
               store: str, trajectory: str | None) -> None:
    """Write the episodes SIGNAL accepted as training data, and record the export in the store.

    \b
    Example: agentsynth export --run quickstart --select correct --format sft --out train.jsonl
    """
    from ..exports import ExportError, NothingToExport
    from ..exports import export as do_export
    from ..store import StoreError

    if trajectory is not None and fmt != "sft":
        fail("--trajectory applies to --format sft only")
    wanted = [d.strip() for item in domains for d in item.split(",") if d.strip()]
    try:
        result = do_export(store, run_name, signal_name, min_value=min_value, domains=wanted or None, format=fmt,
                           out=out, trajectory=trajectory or "final")
    except NothingToExport as exc:
        fail(str(exc), EXIT_FAILED)
    except (ExportError, StoreError) as exc:
        fail(str(exc))
    click.echo(result.summary())


@click.command("eval")
@click.option("--model", required=True, help="Model name at the endpoint, or 'sim' (the built-in simulator).")
@click.option("--base-url", "base_urls", multiple=True, metavar="URL",
              help="OpenAI-compatible endpoint serving the model, e.g. http://127.0.0.1:8000/v1; repeat for several "
                   "endpoints (calls spread across them).")
@click.option("--api-key-env", help="Environment variable holding the API key (never the key itself).")
@click.option("--envs", "env_lists", multiple=True, metavar="ENVS",
              help="Environments to evaluate on: repeat, or comma-separate (e.g. arithmetic,units).")
@click.option("--spec", "spec_path", type=click.Path(dir_okay=False), metavar="SPEC",
              help="Evaluate on the environments of this run spec, with their kwargs (a task set's column mapping); "
                   "with --envs, only those of them.")
@click.option("--tasks", default=100, show_default=True, type=click.IntRange(1, None), help="Held-out tasks per environment.")
@click.option("--seed-offset", default=0, show_default=True, type=click.IntRange(0, None),
              help="Shift the task seeds within the evaluation range (another held-out set).")
@click.option("--difficulty", type=click.IntRange(1, 10), help="Task difficulty (default: 1).")
@click.option("--trained-on", metavar="EXPORT_ID", help="The export the model was fine-tuned on (needs --base-model).")
@click.option("--base-model", help="With --trained-on: the model it was fine-tuned from, as evaluated by agentsynth eval.")
@click.option("--store", type=click.Path(dir_okay=False), default=str(DEFAULT_STORE), show_default=True)
@click.option("--concurrency", default=16, show_default=True, type=click.IntRange(1, 4096), help="Episodes in flight at once.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def eval_cmd(model: str, base_urls: tuple[str, ...], api_key_env: str | None, env_lists: tuple[str, ...],
             spec_path: str | None, tasks: int, seed_offset: int, difficulty: int | None, trained_on: str | None, base_model: str | None, store: str,
             concurrency: int, quiet: bool) -> None:
    """Score a model on held-out tasks (seeds from 1,000,000,000 up, which synthesis runs never use),
    one greedy answer per task, and record accuracy with a 95% interval per environment in the
    evaluations table. Tasks that a synthesis run in the store also drew are excluded.

    \b
    Example: agentsynth eval --model sim --envs arithmetic,units --tasks 200
    """
    from ..evaluation import EvalError, EvalFailed, evaluate
    from ..spec import SpecError
    from ..store import StoreError

    envs, env_kwargs = list(env_lists), None
    if spec_path is not None:
        envs, env_kwargs = spec_envs(spec_path, envs)
    elif not envs:
        fail("name the environments: --envs arithmetic,units (or --spec SPEC: the environments of a run spec)")
    progress = RunProgress(f"eval {model}", enabled=not quiet)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        rows = evaluate(store, model, base_url=base_url_option(base_urls), api_key_env=api_key_env, envs=envs, tasks=tasks,
                        seed_offset=seed_offset, difficulty=difficulty, trained_on=trained_on, base_model=base_model,
                        concurrency=concurrency, env_kwargs=env_kwargs, on_start=progress.start,
                        on_progress=progress.update)
    except (EvalError, SpecError, StoreError) as exc:
        progress.stop()
        fail(str(exc))
    except EvalFailed as exc:
        progress.stop()
        fail(str(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        progress.stop()
        fail("interrupted; run the same command again to resume", 130)
    progress.stop()
    if not rows:
        fail("the evaluation stored no scored episodes", EXIT_FAILED)
    pct = lambda x: "n/a" if x is None else f"{100 * x:.1f}%"  # noqa: E731
    table = [(r.env_id, r.domain, str(r.n), f"{pct(r.accuracy)} [{pct(r.ci_low)}, {pct(r.ci_high)}]", str(r.excluded))
             for r in rows]
    print_table(["env", "domain", "n", "accuracy [95% CI]", "excluded"], table, 10_000, sys.stdout)
    r0 = rows[0]
    trained = f", trained on {r0.trained_on} from {r0.base_model}" if r0.trained_on else ""
    dups = sum(r.duplicates for r in rows)
    repeats = f"; {dups} episode(s) drew a task an earlier seed drew (counted once)" if dups else ""
    click.echo(f"run {r0.run_name} ({r0.run_id}): seeds {r0.seed_start:,}..{r0.seed_end - 1:,}, one greedy answer "
               f"per task{trained}; excluded = tasks a synthesis run in this store also drew{repeats}; "
               "stored in the evaluations table")
