"""Run bookkeeping in the store: create, resume or refuse a run; record signal types; finish."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import duckdb

from ..signals import SignalType
from .clock import utcnow
from .connection import StoreError
from .transaction import transaction


@dataclass
class RunState:
    """What the store already holds for a run being started or resumed."""

    run_id: str
    resumed: bool
    done: set[str] = field(default_factory=set)  # episodes finished ok: skipped
    failed: dict[str, dict[str, int]] = field(default_factory=dict)  # failed earlier: their costs so far


def begin_run(
    con: duckdb.DuckDBPyConnection,
    *,
    name: str,
    spec: dict[str, Any],
    spec_hash: str,
    model: str,
    base_url: str | None,
    planned: int,
    version: str,
    restart: bool = False,
    kind: str = "synthesis",
) -> RunState:
    """Create the run, or resume it if one with this name and spec exists.

    ``kind`` (``runs.kind``) is ``synthesis`` or ``eval`` (a held-out evaluation run); it is part
    of the spec, so a resumed run keeps it.

    A stored run with the same name but another spec is refused unless ``restart``, which deletes
    that run's episodes, messages and signals (tasks stay: they are shared) and starts afresh.
    """
    now = utcnow()
    row = con.execute("SELECT run_id, spec_hash FROM runs WHERE name = ?", [name]).fetchone()
    if row is not None and not restart and row[1] != spec_hash:
        raise StoreError(
            f"run {name!r} is already stored with a different spec; pass --restart to discard it "
            "and start anew, or choose another run name (--name)"
        )
    with transaction(con):
        if row is not None and restart:
            _delete_run(con, row[0])
            row = None
        if row is None:
            run_id = "r-" + uuid.uuid4().hex[:12]
            con.execute(
                "INSERT INTO runs (run_id, name, spec, spec_hash, model, base_url, status, planned, sessions, created_at,"
                " agentsynth_version, kind) VALUES (?, ?, ?, ?, ?, ?, 'running', ?, 1, ?, ?, ?)",
                [run_id, name, json.dumps(spec, sort_keys=True), spec_hash, model, base_url, planned, now, version, kind],
            )
            return RunState(run_id, resumed=False)
        run_id = row[0]
        con.execute(
            "UPDATE runs SET status = 'running', sessions = sessions + 1, finished_at = NULL, model = ?, base_url = ? WHERE run_id = ?",
            [model, base_url, run_id],
        )
    state = RunState(run_id, resumed=True)
    for eid, status, pt, ct, jt, att, tries in con.execute(
        "SELECT episode_id, status, prompt_tokens, completion_tokens, judge_tokens, attempts, tries FROM episodes WHERE run_id = ?",
        [run_id],
    ).fetchall():
        if status == "ok":
            state.done.add(eid)
        else:
            state.failed[eid] = {"prompt_tokens": pt, "completion_tokens": ct, "judge_tokens": jt, "attempts": att, "tries": tries}
    return state


def _delete_run(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    for t in ("signals", "messages"):
        con.execute(f"DELETE FROM {t} WHERE episode_id IN (SELECT episode_id FROM episodes WHERE run_id = ?)", [run_id])
    con.execute("DELETE FROM episodes WHERE run_id = ?", [run_id])
    con.execute("DELETE FROM runs WHERE run_id = ?", [run_id])


def record_signal_types(con: duckdb.DuckDBPyConnection, types: Iterable[SignalType]) -> None:
    """Add signal types; a name already stored with other labels is an error."""
    wanted = {t.name: t for t in types}
    # fetchall, not fetchone: a result left unfinished on the connection blocks the Arrow insert
    # that follows in the same transaction (DuckDB: "connection has an unfinished result")
    stored = {name: tuple(labels) for name, *labels in con.execute(
        "SELECT name, source, openness, meta_level, task_relevant FROM signal_types WHERE list_contains(?, name)",
        [list(wanted)],
    ).fetchall()}
    for st in wanted.values():
        row = stored.get(st.name)
        labels = (st.source, st.openness, st.meta_level, st.task_relevant)
        if row is None:
            con.execute("INSERT INTO signal_types VALUES (?, ?, ?, ?, ?, ?)", [st.name, *labels, st.description])
        elif tuple(row) != labels:
            raise StoreError(
                f"signal type {st.name!r} is stored with labels {tuple(row)} but a grader now declares {labels}; "
                "give the new grader another name"
            )


def finish_run(con: duckdb.DuckDBPyConnection, run_id: str, status: str) -> None:
    """Set the run's final status and time."""
    con.execute(
        "UPDATE runs SET status = ?, finished_at = ? WHERE run_id = ?",
        [status, utcnow(), run_id],
    )
