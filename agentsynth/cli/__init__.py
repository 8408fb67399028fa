"""The ``agentsynth`` command: run, sql, runs, envs, regrade, audit, export, eval, serve, student, train, loop, probe, view.

Errors print one line on stderr and exit non-zero: 1 when a run ended with failed episodes or a
command failed, 2 for bad input (a malformed spec, an unknown environment, a refused query).
"""

from __future__ import annotations

import csv
import json
import signal
import sys
from typing import Any

import click

from ..store import DEFAULT_STORE
from .common import (
    EXIT_BAD_INPUT as EXIT_BAD_INPUT, EXIT_FAILED, RunProgress, base_url_option, check_out, fail, interrupt,
    one_line_warnings, print_table,
)

RAY_FROM_SPEC = "(spec)"
"""``--ray`` given without an address: the spec's ``[ray]`` table, else a local instance."""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="agentsynth")
def main() -> None:
    """Agentic data synthesis around environments, with a DuckDB trajectory store.

    \b
    Quick start (offline, built-in sim model):
      agentsynth run runs/quickstart.toml
      agentsynth sql "SELECT feedback, avg(passed_last::INT) FROM episodes GROUP BY 1"
    """
    one_line_warnings()


@main.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--name", help="Run name (default: the spec's). Same name + same spec resumes.")
@click.option("--model", help="Model name at the endpoint, or 'sim' (overrides the spec).")
@click.option("--base-url", "base_urls", multiple=True, metavar="URL",
              help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1; repeat for several endpoints serving the "
                   "model (calls spread across them).")
@click.option("--api-key-env", help="Environment variable holding the API key (never the key itself).")
@click.option("--store", type=click.Path(dir_okay=False), help="DuckDB store file (overrides the spec).")
@click.option("--concurrency", type=int, help="Episodes in flight at once.")
@click.option("--samples", type=int, help="Samples per task.")
@click.option("--restart", is_flag=True, help="Discard a stored run of this name and start anew.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option("--ray", "ray_address", is_flag=False, flag_value=RAY_FROM_SPEC, default=None, metavar="[ADDRESS]",
              help="Run the episodes on Ray workers (pip install 'agentsynth[ray]'): alone, the spec's [ray] table or a "
                   "local Ray instance with one worker per core; or a cluster's ADDRESS (auto, HOST:PORT, ray://HOST:10001).")
def run(spec_path: str, quiet: bool, restart: bool, base_urls: tuple[str, ...], ray_address: str | None,
        **overrides: Any) -> None:
    """Run the synthesis described by SPEC (a TOML run spec); resumes an interrupted run."""
    from ..launch import make_runner
    from ..models.base import ModelError
    from ..scaleout.cluster import ClusterLost
    from ..spec import SpecError, load_spec
    from ..store import StoreError

    try:
        spec = load_spec(spec_path, base_url=base_url_option(base_urls), **overrides)
    except SpecError as exc:
        fail(str(exc))
    progress = RunProgress(spec.name, enabled=not quiet)
    signal.signal(signal.SIGTERM, interrupt)  # stop as on Ctrl-C: flush what finished, mark interrupted
    ray = None if ray_address is None else True if ray_address == RAY_FROM_SPEC else ray_address
    try:
        runner = make_runner(spec, ray=ray, restart=restart, on_start=progress.start, on_progress=progress.update,
                             on_status=progress.status if not quiet else None)
        result = runner.run()
    except (SpecError, StoreError) as exc:
        progress.stop()
        fail(str(exc))
    except ClusterLost as exc:  # the Ray cluster went away: finished episodes are stored, the run is interrupted
        progress.stop()
        fail(f"run {spec.name} interrupted: {exc}", EXIT_FAILED)
    except ModelError as exc:  # raised only while setting up the model (e.g. its key variable unset)
        progress.stop()
        fail(str(exc))
    except KeyboardInterrupt:
        progress.stop()
        fail("interrupted; run the same command again to resume", 130)
    progress.stop()
    for line in result.lines():
        click.echo(line)
    if result.message:  # stopped early (the endpoint went down): one line that says how to resume
        fail(f"run {result.name} {result.status}: {result.message}", EXIT_FAILED)
    if result.status != "completed":
        hint = "; run again to retry the failed episodes" if result.status in ("incomplete", "failed") else ""
        first = f" (e.g. {result.error_examples[0]})" if result.error_examples else ""
        fail(f"run {result.name} {result.status}: {result.errors} episode(s) failed{first}{hint}", EXIT_FAILED)


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
    exports, export_items, evaluations, loops, probes; view: generalization.
    Example: agentsynth sql "SELECT domain, avg(reward) FROM episodes GROUP BY 1"
    The query reads the store only, unless --allow-files.
    """
    import duckdb

    from ..store import StoreError, file_refusal, open_store

    if query == "-":
        query = sys.stdin.read()
    if fmt == "parquet" and not out:
        fail("--format parquet needs --out FILE")
    if max_rows < 0:
        fail(f"--max-rows must be 0 or more, not {max_rows}")
    if out:
        check_out(out)
    try:
        with open_store(store, allow_files=allow_files) as s:
            rel = s.sql(query)
            if rel is None:
                fail("the query returned no result set")
            if fmt == "parquet":  # written here, not by DuckDB: the connection may not write files
                import pyarrow.parquet as pq

                table = rel.to_arrow_table()
                try:
                    pq.write_table(table, out)
                except OSError as exc:
                    fail(f"cannot write {out}: {exc.strerror or exc}")
                click.echo(f"wrote {out}", err=True)
                return
            cols = rel.columns
            rows = rel.fetchall()
    except StoreError as exc:
        fail(str(exc))
    except duckdb.PermissionException as exc:
        fail(file_refusal(exc))
    except duckdb.Error as exc:
        fail(" ".join(str(exc).split()))
    try:
        stream = open(out, "w", newline="") if out else sys.stdout
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")
    try:
        if fmt == "csv":
            w = csv.writer(stream)
            w.writerow(cols)
            w.writerows(rows)
        elif fmt == "json":
            json.dump([dict(zip(cols, r)) for r in rows], stream, default=str, indent=1)
            stream.write("\n")
        else:
            print_table(cols, rows, max_rows, stream)
    finally:
        if out:
            stream.close()


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
        fail(str(exc))
    for ref in graders:
        named = "" if result.names[ref] == ref else f" as {result.names[ref]!r}"
        click.echo(f"{ref}: {result.added[ref]} signal(s) added{named}, {result.skipped[ref]} already stored")


@main.command()
@click.option("--store", type=click.Path(dir_okay=False), default=str(DEFAULT_STORE), show_default=True)
def runs(store: str) -> None:
    """List the runs in a store with episode counts and pass rates (a run shows as running only
    while its process runs)."""
    from ..store import StoreError, open_store
    from ..store.run_lock import live_run_id, shown_status

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
        fail(str(exc))
    live = live_run_id(store)  # a run stored as running whose process ended shows as interrupted
    status = cols.index("status")
    rows = [(*r[:status], shown_status(r[status], r[1], live), *r[status + 1:]) for r in rows]
    print_table(cols, rows, 1000, sys.stdout)


def _probe_flags(store: str | None) -> dict[tuple[str, str], list[str]]:
    """The latest probe flags per (environment, grader) in ``store`` (default: the default store when
    it exists and can be read; otherwise none); an explicit store that cannot be read fails."""
    from ..store import StoreError
    from ..store.connection import connect
    from ..store.probes import latest_flags

    path = store or str(DEFAULT_STORE)
    if store is None and not DEFAULT_STORE.exists():
        return {}
    try:
        con = connect(path, read_only=True)
    except StoreError as exc:
        if store is None:
            return {}
        fail(str(exc))
    try:
        return latest_flags(con)
    finally:
        con.close()


@main.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--store", type=click.Path(dir_okay=False),
              help=f"Show each grader's flags from the latest `agentsynth probe` in this store (default: {DEFAULT_STORE}, if it exists).")
@click.option("--spec", "spec_path", type=click.Path(dir_okay=False), metavar="SPEC",
              help="List the environments this run spec names (with their kwargs: task sets, module:Class) instead.")
def envs(fmt: str, store: str | None, spec_path: str | None) -> None:
    """List registered environments (or with --spec, a run spec's): domain, feedback channels,
    graders, their labels, the tasks (a task set's rows and split) and (when the store holds a probe
    of them) their probe flags: hackable, brittle or ok."""
    from ..registry import available, resolve
    from ..store.probes import describe_flags
    from .common import spec_envs

    probed = _probe_flags(store)
    rows = []
    if spec_path:
        ids, kwargs = spec_envs(spec_path, [])
        listed = {i: (i, kwargs.get(i, {})) for i in ids}
    else:
        listed = {name: (target, {}) for name, target in available().items()}
    for name, (target, env_kwargs) in listed.items():
        row: dict[str, Any] = {"name": name, "gymnasium_id": f"agentsynth/{name}-v0" if not spec_path else "", "target": target}
        try:
            env = resolve(name).cls(**env_kwargs)
        except Exception as exc:  # noqa: BLE001 - a broken plugin should not hide the others
            rows.append({**row, "error": f"cannot load {target}: {type(exc).__name__}: {exc}"})
            continue
        row["tasks"] = env.describe()
        row["domain"] = row["tasks"].get("domain") or type(env).domain or name
        row["channels"] = list(env.channels)
        row["graders"] = [
            {"name": g.name, "source": g.signal_type.source, "openness": g.signal_type.openness,
             "meta_level": g.signal_type.meta_level, "task_relevant": g.signal_type.task_relevant,
             **({"probe": probed[(name, g.name)]} if (name, g.name) in probed else {})}
            for g in env.all_graders().values()
        ]
        env.close()
        rows.append(row)
    if fmt == "json":
        click.echo(json.dumps(rows, indent=1))
        return
    cols = ["name", "gymnasium id", "domain", "tasks", "feedback channels", "graders (source/openness/meta-level/task-relevant)"]
    if probed:
        cols[-1] = "graders (source/openness/meta-level/task-relevant; latest probe)"
    table = []
    for r in rows:
        if "error" in r:
            table.append((r["name"], r["gymnasium_id"], "?", "?", "?", r["error"]))
            continue
        graders = ", ".join(
            f"{g['name']} ({g['source']}/{g['openness']}/{g['meta_level']}/{'yes' if g['task_relevant'] else 'no'}"
            + (f"; probe: {describe_flags(g['probe'])}" if "probe" in g else "") + ")"
            for g in r["graders"]
        )
        table.append((r["name"], r["gymnasium_id"], r["domain"], _tasks_cell(r["tasks"]), ", ".join(r["channels"]), graders))
    print_table(cols, table, 10_000, sys.stdout)


def _tasks_cell(facts: dict[str, Any]) -> str:
    """The ``tasks`` cell of ``agentsynth envs``: a task set's rows and split, else procedural."""
    if "rows" not in facts:
        return "procedural (from seeds)"
    dup = f"; {facts['duplicates']} repeated questions (same side)" if facts.get("duplicates") else ""
    return (f"{facts['rows']} rows ({facts.get('format', '?')}): {facts.get('train', '?')} train, "
            f"{facts.get('held_out', '?')} held out{dup}")


def _register_commands() -> None:
    from .analysis import audit, eval_cmd, export_cmd
    from .loop import loop
    from .probe import probe
    from .serve import serve
    from .student import student, train_cmd
    from .view import view

    for cmd in (serve, audit, export_cmd, eval_cmd, student, train_cmd, loop, probe, view):
        main.add_command(cmd)


_register_commands()

if __name__ == "__main__":  # pragma: no cover
    main()
