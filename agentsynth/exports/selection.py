"""Reading what an export selects from the store: the run, signal and domains asked for, the
turns the selection signal graded, each episode's first accepted turn, and the episodes' messages.

An episode-turn is *accepted* when the selection signal graded it ``passed = true`` (or, with
``min_value``, ``value >= min_value``) and *rejected* when it graded it ``passed = false`` (or
``value < min_value``). Only ``ok`` episodes count.

Queries over the run go chunk by chunk (:func:`chunk_bounds`, :func:`in_chunk`; the staging of
what is built is :mod:`.staging`'s), and messages are loaded for one batch of episodes at a time,
so nothing here holds anything the size of the run.

Package-internal API (used by the other modules of ``agentsynth.exports``; not public):
:class:`Graded`, ``Bounds``, :func:`resolve_run`, :func:`chunk_bounds`, :func:`in_chunk`,
:func:`check_signal`, :func:`check_domains`, :func:`first_accepted`, :func:`with_ids`,
:func:`load_messages`, and the helpers that locate parts of a loaded conversation:
:func:`answer_index`, :func:`prompt_end`, :func:`uses_tools`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ..store.connection import StoreError
from .errors import ExportError

Bounds = tuple[str | None, str | None]  # a chunk [lo, hi) of episode_id or task_id; None: open end
_SAMPLE = 4096  # ids sampled to place the chunk bounds


@dataclass(frozen=True)
class Graded:
    """One turn the selection signal graded."""

    episode_id: str
    turn: int
    task_id: str
    domain: str | None
    env_id: str
    env_config: str | None
    accepted: bool
    rejected: bool


# ---- checking what was asked for -------------------------------------------------------------


def resolve_run(con: duckdb.DuckDBPyConnection, run: str, store: Path) -> str:
    """The run_id of the synthesis run named ``run``; :class:`ExportError` if there is none."""
    row = con.execute("SELECT run_id, kind FROM runs WHERE name = ?", [run]).fetchone()
    if row is None:
        names = [r[0] for r in con.execute("SELECT name FROM runs WHERE kind = 'synthesis' ORDER BY name").fetchall()]
        raise ExportError(f"no run named {run!r} in {store}; runs: {', '.join(names) or '(none)'}")
    if row[1] != "synthesis":
        raise ExportError(f"run {run!r} is of kind {row[1]!r}; export takes synthesis runs")
    return row[0]


def chunk_bounds(con: duckdb.DuckDBPyConnection, run_id: str, column: str, size: int) -> list[Bounds]:
    """Ranges ``[lo, hi)`` of the run's episodes' ``column`` (``episode_id`` or ``task_id``) that
    split the run into chunks of about ``size`` episodes, in order (``None``: open end). The cuts
    come from a fixed-size reservoir sample: bounded memory whatever the run; they decide how much
    each query holds, never what it selects."""
    (n,), = con.execute("SELECT count(*) FROM episodes WHERE run_id = ?", [run_id]).fetchall()
    k = -(-n // size)
    if k <= 1:
        return [(None, None)]
    sample = sorted(r[0] for r in con.execute(
        f"SELECT {column} FROM (SELECT {column} FROM episodes WHERE run_id = ? AND {column} IS NOT NULL) "
        f"USING SAMPLE reservoir({_SAMPLE} ROWS) REPEATABLE (1)", [run_id]).fetchall())
    cuts = sorted({sample[i * len(sample) // k] for i in range(1, k)} - {sample[0]}) if sample else []
    edges: list[str | None] = [None, *cuts, None]
    return list(pairwise(edges))


def in_chunk(column: str) -> str:
    """SQL: episode ``e``'s ``column`` lies in the chunk ``[$lo, $hi)`` (NULLs: in the last chunk)."""
    return (f"(CASE WHEN e.{column} IS NULL THEN $hi::VARCHAR IS NULL ELSE ($lo::VARCHAR IS NULL OR e.{column} >= $lo::VARCHAR) "
            f"AND ($hi::VARCHAR IS NULL OR e.{column} < $hi::VARCHAR) END)")


def check_signal(con: duckdb.DuckDBPyConnection, run_id: str, run: str, signal: str, size: int) -> None:
    """:class:`ExportError` unless some episode of the run has a signal named ``signal`` (looked for
    chunk by chunk of about ``size`` episodes, so the query holds one chunk's episodes at most)."""
    names: set[str] = set()
    for lo, hi in chunk_bounds(con, run_id, "episode_id", size):
        names.update(r[0] for r in con.execute(
            f"SELECT DISTINCT s.name FROM signals s JOIN episodes e USING (episode_id) "
            f"WHERE e.run_id = $run AND {in_chunk('episode_id')}", {"run": run_id, "lo": lo, "hi": hi}).fetchall())
        if signal in names:
            return
    raise ExportError(f"run {run!r} has no signal {signal!r}; its signals: {', '.join(sorted(names)) or '(none)'}")


def check_domains(con: duckdb.DuckDBPyConnection, run_id: str, run: str, domains: Sequence[str] | None) -> list[str] | None:
    """The sorted domain filter (None for no filter); :class:`ExportError` for a domain the run lacks."""
    if not domains:
        return None
    have = [r[0] for r in con.execute(
        "SELECT DISTINCT domain FROM episodes WHERE run_id = ? AND domain IS NOT NULL ORDER BY 1", [run_id]).fetchall()]
    unknown = [d for d in dict.fromkeys(domains) if d not in have]
    if unknown:
        raise ExportError(f"run {run!r} has no domain {', '.join(map(repr, unknown))}; its domains: {', '.join(have)}")
    return sorted(set(domains))


# ---- reading the store ---------------------------------------------------------------------


def first_accepted(graded: Iterable[Graded]) -> list[Graded]:
    """Each episode's first accepted turn, by episode_id."""
    seen: set[str] = set()
    out = []
    for g in graded:
        if g.accepted and g.episode_id not in seen:
            seen.add(g.episode_id)
            out.append(g)
    return out


def with_ids(con: duckdb.DuckDBPyConnection, ids: Iterable[str], sql: str) -> list[tuple[Any, ...]]:
    """Run ``sql`` with the episode ids registered as the table ``_export_ids(episode_id)`` and
    their least and greatest as ``$lo`` and ``$hi``: a batch's ids are contiguous in episode_id
    order (sft, parquet), so ``episode_id BETWEEN $lo AND $hi`` lets a scan skip most rows before
    it joins ``_export_ids``."""
    ordered = sorted(set(ids))
    con.register("_export_ids", pa.table({"episode_id": pa.array(ordered, pa.string())}))
    try:
        return con.execute(sql, {"lo": ordered[0] if ordered else "", "hi": ordered[-1] if ordered else ""}).fetchall()
    finally:
        con.unregister("_export_ids")


def load_messages(con: duckdb.DuckDBPyConnection, ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """The stored messages of each episode in ``ids``, in order, as dicts keyed by column name."""
    rows = with_ids(con, ids, """
        SELECT episode_id, list(struct_pack(turn := turn, role := role, content := content, tool_calls := tool_calls,
                                            tool_call_id := tool_call_id, answer := answer) ORDER BY position)
        FROM messages WHERE episode_id BETWEEN $lo AND $hi AND episode_id IN (SELECT episode_id FROM _export_ids)
        GROUP BY 1""")
    return {eid: msgs for eid, msgs in rows}


# ---- the parts of a loaded conversation ----------------------------------------------------


def answer_index(msgs: list[dict[str, Any]], turn: int) -> int:
    """Position in ``msgs`` of the graded assistant answer of ``turn``."""
    for i, m in enumerate(msgs):
        if m["turn"] == turn and m["role"] == "assistant" and m["tool_calls"] is None:
            return i
    raise StoreError(f"the store has a signal at turn {turn} but no assistant answer at that turn")


def prompt_end(msgs: list[dict[str, Any]]) -> int:
    """Index just past the task prompt (the first user message; system messages before it)."""
    for i, m in enumerate(msgs):
        if m["role"] == "user":
            return i + 1
    return 0


def uses_tools(msgs: list[dict[str, Any]]) -> bool:
    """Whether the conversation holds a tool call or a tool result."""
    return any(m["tool_calls"] is not None or m["role"] == "tool" for m in msgs)
