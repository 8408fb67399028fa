"""The ``agentsynth`` command: run, sql, runs, envs, regrade, audit, export, eval, serve, student, train, loop.

Errors print one line on stderr and exit non-zero: 1 when a run ended with failed episodes or a
command failed, 2 for bad input (a malformed spec, an unknown environment, a refused query).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import sys
from typing import Any

import click

from ..store import DEFAULT_STORE
from .progress import Bar

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    from ..credentials import redact

    click.echo(f"error: {redact(message)}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="agentsynth")
def main() -> None:
    """Agentic data synthesis around environments, with a DuckDB trajectory store.

    \b
    Quick start (offline, built-in sim model):
      agentsynth run runs/quickstart.toml
      agentsynth sql "SELECT feedback, avg(passed_last::INT) FROM episodes GROUP BY 1"
    """


@main.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--name", help="Run name (default: the spec's). Same name + same spec resumes.")
@click.option("--model", help="Model name at the endpoint, or 'sim' (overrides the spec).")
@click.option("--base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1.")
@click.option("--api-key-env", help="Environment variable holding the API key (never the key itself).")
@click.option("--store", type=click.Path(dir_okay=False), help="DuckDB store file (overrides the spec).")
@click.option("--concurrency", type=int, help="Episodes in flight at once.")
@click.option("--samples", type=int, help="Samples per task.")
@click.option("--restart", is_flag=True, help="Discard a stored run of this name and start anew.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def run(spec_path: str, quiet: bool, restart: bool, **overrides: Any) -> None:
    """Run the synthesis described by SPEC (a TOML run spec); resumes an interrupted run."""
    from ..models.base import ModelError
    from ..runner import Runner
    from ..spec import SpecError, load_spec
    from ..store import StoreError

    try:
        spec = load_spec(spec_path, **overrides)
    except SpecError as exc:
        _fail(str(exc))
    progress = _Progress(spec.name, enabled=not quiet)
    signal.signal(signal.SIGTERM, _interrupt)  # stop as on Ctrl-C: flush what finished, mark interrupted
    runner = Runner(spec, restart=restart, on_start=progress.start, on_progress=progress.update)
    try:
        result = runner.run()
    except (SpecError, StoreError) as exc:
        progress.stop()
        _fail(str(exc))
    except ModelError as exc:  # raised only while setting up the model (e.g. its key variable unset)
        progress.stop()
        _fail(str(exc))
    except KeyboardInterrupt:
        progress.stop()
        _fail("interrupted; run the same command again to resume", 130)
    progress.stop()
    for line in result.lines():
        click.echo(line)
    if result.status != "completed":
        hint = "; run again to retry the failed episodes" if result.status in ("incomplete", "failed") else ""
        first = f" (e.g. {result.error_examples[0]})" if result.error_examples else ""
        _fail(f"run {result.name} {result.status}: {result.errors} episode(s) failed{first}{hint}", EXIT_FAILED)


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM stops a command exactly as Ctrl-C does.

    Inside ``asyncio.run`` the SIGINT handler is asyncio's, which cancels the main task at its next
    ``await`` (so finished episodes are flushed and the run is marked interrupted); raising from the
    handler instead could land inside a lock or a DuckDB query and leave the process stuck.
    """
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler) and handler is not _interrupt:
        handler(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt


class _Progress:
    """The progress of a run or an evaluation: episodes done, ok and failed."""

    def __init__(self, name: str, enabled: bool):
        self.name = name
        self.bar = Bar(name, enabled, ["{task.fields[status]}"], every=0.1)

    def start(self, total: int, todo: int) -> None:
        if not self.bar.enabled:
            return
        if todo < total:
            click.echo(f"resuming {self.name}: {total - todo} of {total} episodes already stored", err=True)
        self.bar.update(0, todo, status="")

    def update(self, done: int, total: int, ok: int, errors: int) -> None:
        self.bar.update(done, status=f"ok {ok}" + (f" failed {errors}" if errors else ""))

    def stop(self) -> None:
        self.bar.stop()


@main.command()
@click.argument("query")
@click.option("--store", type=click.Path(dir_okay=False), default=str(DEFAULT_STORE), show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "parquet"]), default="table", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), help="Write to a file (required for parquet).")
@click.option("--max-rows", type=int, default=200, show_default=True, help="Rows shown by --format table.")
@click.option("--allow-files", is_flag=True,
              help="Let the query read files besides the store (read_csv, read_parquet, glob, ...), e.g. to join your own data.")
def sql(query: str, store: str, fmt: str, out: str | None, max_rows: int, allow_files: bool) -> None:
    """Run a read-only SQL QUERY on the store ('-' reads it from stdin).

    \b
    Tables: runs, tasks, episodes, messages, signals, signal_types, audits, audit_results,
    exports, export_items, evaluations; view: generalization.
    Example: agentsynth sql "SELECT domain, avg(reward) FROM episodes GROUP BY 1"
    The query reads the store only, unless --allow-files.
    """
    import duckdb

    from ..store import StoreError, file_refusal, open_store

    if query == "-":
        query = sys.stdin.read()
    if fmt == "parquet" and not out:
        _fail("--format parquet needs --out FILE")
    try:
        with open_store(store, allow_files=allow_files) as s:
            rel = s.sql(query)
            if rel is None:
                _fail("the query returned no result set")
            if fmt == "parquet":  # written here, not by DuckDB: the connection may not write files
                import pyarrow.parquet as pq

                pq.write_table(rel.to_arrow_table(), out)
                click.echo(f"wrote {out}", err=True)
                return
            cols = rel.columns
            rows = rel.fetchall()
    except StoreError as exc:
        _fail(str(exc))
    except duckdb.PermissionException as exc:
        _fail(file_refusal(exc))
    except duckdb.Error as exc:
        _fail(" ".join(str(exc).split()))
    stream = open(out, "w", newline="") if out else sys.stdout
    try:
        if fmt == "csv":
            w = csv.writer(stream)
            w.writerow(cols)
            w.writerows(rows)
        elif fmt == "json":
            json.dump([dict(zip(cols, r)) for r in rows], stream, default=str, indent=1)
            stream.write("\n")
        else:
            _print_table(cols, rows, max_rows, stream)
    finally:
        if out:
            stream.close()


def _print_table(cols: list[str], rows: list[tuple[Any, ...]], max_rows: int, stream: Any) -> None:
    from ..console import data_console, data_table

    console = data_console(stream)
    console.print(data_table(cols, rows[:max_rows]))
    more = f" (showing {max_rows}; use --max-rows or --format csv)" if len(rows) > max_rows else ""
    console.print(f"{len(rows)} row{'s' if len(rows) != 1 else ''}{more}", style="dim")


@main.command()
@click.option("--run", "run_name", required=True, help="Name of the stored run to regrade.")
@click.option("--grader", "graders", required=True, multiple=True,
              help="module:attr (a Grader or a factory, e.g. rubrics:exact_match), env:<name> (a grader of "
                   "the episode's environment, e.g. env:hint), or self_consistency. Repeatable.")
@click.option("--role", default="score", show_default=True, type=click.Choice(["score", "feedback", "truth", "reward"]))
@click.option("--store", type=click.Path(dir_okay=False), default=str(DEFAULT_STORE), show_default=True)
def regrade(run_name: str, graders: tuple[str, ...], role: str, store: str) -> None:
    """Apply graders to a stored run's trajectories (no policy calls); idempotent."""
    from ..regrade import regrade as do_regrade
    from ..store import StoreError

    try:
        result = do_regrade(store, run_name, list(graders), role=role)
    except StoreError as exc:
        _fail(str(exc))
    for ref in graders:
        click.echo(f"{ref}: {result.added[ref]} signal(s) added, {result.skipped[ref]} already stored")


@main.command()
@click.option("--store", type=click.Path(dir_okay=False), default=str(DEFAULT_STORE), show_default=True)
def runs(store: str) -> None:
    """List the runs in a store with episode counts and pass rates."""
    from ..store import StoreError, open_store

    query = """
        SELECT r.name, r.run_id, r.model, r.status, r.planned,
               count(e.episode_id) FILTER (e.status = 'ok') AS ok,
               count(e.episode_id) FILTER (e.status <> 'ok') AS failed,
               round(avg(e.passed_first::INT) FILTER (e.status = 'ok'), 3) AS pass_first,
               round(avg(e.passed_last::INT) FILTER (e.status = 'ok'), 3) AS pass_last,
               coalesce(sum(e.prompt_tokens + e.completion_tokens + e.judge_tokens), 0) AS tokens,
               strftime(r.created_at, '%Y-%m-%d %H:%M') AS created
        FROM runs r LEFT JOIN episodes e USING (run_id)
        GROUP BY ALL ORDER BY created"""
    try:
        with open_store(store) as s:
            rel = s.sql(query)
            cols, rows = rel.columns, rel.fetchall()
    except StoreError as exc:
        _fail(str(exc))
    _print_table(cols, rows, 1000, sys.stdout)


@main.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def envs(fmt: str) -> None:
    """List registered environments: domain, feedback channels, graders and their labels."""
    from ..registry import available, resolve

    rows = []
    for name, target in available().items():
        row: dict[str, Any] = {"name": name, "gymnasium_id": f"agentsynth/{name}-v0", "target": target}
        try:
            env = resolve(name).cls()
        except Exception as exc:  # noqa: BLE001 - a broken plugin should not hide the others
            rows.append({**row, "error": f"cannot load {target}: {type(exc).__name__}: {exc}"})
            continue
        row["domain"] = type(env).domain or name
        row["channels"] = list(env.channels)
        row["graders"] = [
            {"name": g.name, "source": g.signal_type.source, "openness": g.signal_type.openness,
             "meta_level": g.signal_type.meta_level, "task_relevant": g.signal_type.task_relevant}
            for g in env.all_graders().values()
        ]
        env.close()
        rows.append(row)
    if fmt == "json":
        click.echo(json.dumps(rows, indent=1))
        return
    cols = ["name", "gymnasium id", "domain", "feedback channels", "graders (source/openness/meta-level/task-relevant)"]
    table = []
    for r in rows:
        if "error" in r:
            table.append((r["name"], r["gymnasium_id"], "?", "?", r["error"]))
            continue
        graders = ", ".join(
            f"{g['name']} ({g['source']}/{g['openness']}/{g['meta_level']}/{'yes' if g['task_relevant'] else 'no'})"
            for g in r["graders"]
        )
        table.append((r["name"], r["gymnasium_id"], r["domain"], ", ".join(r["channels"]), graders))
    _print_table(cols, table, 10_000, sys.stdout)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--student", "student_path", metavar="PATH", type=click.Path(),
              help="Serve this student checkpoint instead of the sim (agentsynth student init / train).")
@click.option("--model-name", help="Model id the server reports (default: sim, or student with --student).")
@click.option("--latency-ms", default=0.0, show_default=True, type=float, help="Added fixed latency per request.")
@click.option("--fault-429", default=0.0, show_default=True, type=float, help="Fraction of requests answered 429 + Retry-After.")
@click.option("--fault-500", default=0.0, show_default=True, type=float, help="Fraction answered 500.")
@click.option("--fault-hang", default=0.0, show_default=True, type=float, help="Fraction that hang for --hang-s.")
@click.option("--fault-malformed", default=0.0, show_default=True, type=float, help="Fraction answered with broken JSON.")
@click.option("--retry-after", default=1.0, show_default=True, type=float, help="Seconds sent in Retry-After.")
@click.option("--hang-s", default=30.0, show_default=True, type=float, help="How long a hanging request hangs.")
@click.option("--fault-seed", default=0, show_default=True, type=int)
@click.option("--api-key-env", help="Require the key held by this environment variable (401 otherwise).")
@click.option("--sim", "sim_params", metavar="KEY=VALUE", multiple=True, help="A sim parameter, e.g. --sim use_hint=0.7 or --sim skill.arithmetic=0.8.")
def serve(host: str, port: int, student_path: str | None, model_name: str | None, latency_ms: float, fault_429: float,
          fault_500: float, fault_hang: float, fault_malformed: float, retry_after: float, hang_s: float, fault_seed: int,
          api_key_env: str | None, sim_params: tuple[str, ...]) -> None:
    """Serve the built-in sim model (a simulator, for offline use, tests and demos) or, with
    --student, a trained student over an OpenAI-compatible HTTP API, optionally with injected
    faults and latency."""
    from ..sim import SimParams
    from ..sim.server import Faults, serve as serve_app

    if student_path and sim_params:
        _fail("--sim parameters apply to the sim, not to --student")
    model = None
    if student_path:
        from ..student import StudentError

        try:
            from ..student.errors import require_learn_extra

            require_learn_extra()
            from ..student.chat_model import StudentModel

            model = StudentModel(student_path, name=model_name or "student")
        except StudentError as exc:
            _fail(str(exc))
    model_name = model_name or ("student" if student_path else "sim")

    try:
        params = SimParams.from_dict(_parse_sim(sim_params))
        faults = Faults(rate_429=fault_429, rate_500=fault_500, rate_hang=fault_hang, rate_malformed=fault_malformed,
                        retry_after_s=retry_after, hang_s=hang_s, seed=fault_seed)
    except (TypeError, ValueError) as exc:
        _fail(str(exc))
    key = None
    if api_key_env:
        key = os.environ.get(api_key_env) or _fail(f"environment variable {api_key_env} is not set")
    serve_app(host, port, params=params, model_name=model_name, faults=faults, latency_s=latency_ms / 1000, api_key=key,
              model=model)


def _parse_sim(items: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"--sim {item!r}: expected KEY=VALUE")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if key.startswith("skill."):
            out.setdefault("skill", {})[key[6:]] = value
        else:
            out[key] = value
    return out


@main.command()
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
        _fail(f"--plot {plot}: use a .png or .html file name")
    try:
        res = do_audit(store, list(runs) or None, bootstrap=bootstrap, confidence=confidence, seed=seed,
                       min_tasks=min_tasks, save=not no_save)
    except StoreError as exc:
        _fail(str(exc))
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
            _fail("plots need matplotlib: pip install 'agentsynth[plot]'", EXIT_FAILED)
        click.echo(f"wrote {plot}", err=True)


@main.command("export")
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
        _fail("--trajectory applies to --format sft only")
    wanted = [d.strip() for item in domains for d in item.split(",") if d.strip()]
    try:
        result = do_export(store, run_name, signal_name, min_value=min_value, domains=wanted or None, format=fmt,
                           out=out, trajectory=trajectory or "final")
    except NothingToExport as exc:
        _fail(str(exc), EXIT_FAILED)
    except (ExportError, StoreError) as exc:
        _fail(str(exc))
    click.echo(result.summary())


@main.command("eval")
@click.option("--model", required=True, help="Model name at the endpoint, or 'sim' (the built-in simulator).")
@click.option("--base-url", help="OpenAI-compatible endpoint serving the model, e.g. http://127.0.0.1:8000/v1.")
@click.option("--api-key-env", help="Environment variable holding the API key (never the key itself).")
@click.option("--envs", "env_lists", multiple=True, required=True, metavar="ENVS",
              help="Environments to evaluate on: repeat, or comma-separate (e.g. arithmetic,units).")
@click.option("--tasks", default=100, show_default=True, type=click.IntRange(1, None), help="Held-out tasks per environment.")
@click.option("--seed-offset", default=0, show_default=True, type=click.IntRange(0, None),
              help="Shift the task seeds within the evaluation range (another held-out set).")
@click.option("--difficulty", type=click.IntRange(1, 10), help="Task difficulty (default: 1).")
@click.option("--trained-on", metavar="EXPORT_ID", help="The export the model was fine-tuned on (needs --base-model).")
@click.option("--base-model", help="With --trained-on: the model it was fine-tuned from, as evaluated by agentsynth eval.")
@click.option("--store", type=click.Path(dir_okay=False), default=str(DEFAULT_STORE), show_default=True)
@click.option("--concurrency", default=16, show_default=True, type=click.IntRange(1, 4096), help="Episodes in flight at once.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def eval_cmd(model: str, base_url: str | None, api_key_env: str | None, env_lists: tuple[str, ...], tasks: int,
             seed_offset: int, difficulty: int | None, trained_on: str | None, base_model: str | None, store: str,
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

    progress = _Progress(f"eval {model}", enabled=not quiet)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        rows = evaluate(store, model, base_url=base_url, api_key_env=api_key_env, envs=list(env_lists), tasks=tasks,
                        seed_offset=seed_offset, difficulty=difficulty, trained_on=trained_on, base_model=base_model,
                        concurrency=concurrency, on_start=progress.start, on_progress=progress.update)
    except (EvalError, SpecError, StoreError) as exc:
        progress.stop()
        _fail(str(exc))
    except EvalFailed as exc:
        progress.stop()
        _fail(str(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        progress.stop()
        _fail("interrupted; run the same command again to resume", 130)
    progress.stop()
    if not rows:
        _fail("the evaluation stored no scored episodes", EXIT_FAILED)
    pct = lambda x: "n/a" if x is None else f"{100 * x:.1f}%"  # noqa: E731
    table = [(r.env_id, r.domain, str(r.n), f"{pct(r.accuracy)} [{pct(r.ci_low)}, {pct(r.ci_high)}]", str(r.excluded))
             for r in rows]
    _print_table(["env", "domain", "n", "accuracy [95% CI]", "excluded"], table, 10_000, sys.stdout)
    r0 = rows[0]
    trained = f", trained on {r0.trained_on} from {r0.base_model}" if r0.trained_on else ""
    dups = sum(r.duplicates for r in rows)
    repeats = f"; {dups} episode(s) drew a task an earlier seed drew (counted once)" if dups else ""
    click.echo(f"run {r0.run_name} ({r0.run_id}): seeds {r0.seed_start:,}..{r0.seed_end - 1:,}, one greedy answer "
               f"per task{trained}; excluded = tasks a synthesis run in this store also drew{repeats}; "
               "stored in the evaluations table")


def _register_commands() -> None:
    from .loop import loop
    from .student import student, train_cmd

    main.add_command(student)
    main.add_command(train_cmd)
    main.add_command(loop)


_register_commands()

if __name__ == "__main__":  # pragma: no cover
    main()
