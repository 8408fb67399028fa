"""Reading what an export selects from the store: the run, signal and domains asked for, the
turns the selection signal graded, each episode's first accepted turn, and the episodes' messages.

An episode-turn is *accepted* when the selection signal graded it ``passed = true`` (or, with
``min_value``, ``value >= min_value``) and *rejected* when it graded it ``passed = false`` (or
``value < min_value``). Only ``ok`` episodes count.

The selection is made in SQL and staged once per export in a temp table (:func:`stage_selection`:
a few tens of bytes per staged turn, in DuckDB); the rows are then built one batch at a time
(:func:`staged_batch`, :func:`load_messages` of the batch's episodes), so what Python holds is
bounded by the batch, not by the run.

Package-internal API (used by the other modules of ``agentsynth.exports``; not public):
:class:`Graded`, :func:`resolve_run`, :func:`check_signal`, :func:`check_domains`,
:class:`Staged`, :func:`stage_selection`, :func:`staged_batch`, :func:`staged_signals`,
:func:`first_accepted`, :func:`with_ids`, :func:`load_messages`, and the helpers that locate parts
of a loaded conversation: :func:`answer_index`, :func:`prompt_end`, :func:`uses_tools`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ..store.connection import StoreError
from .errors import ExportError


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


def check_signal(con: duckdb.DuckDBPyConnection, run_id: str, run: str, signal: str) -> None:
    """:class:`ExportError` unless some episode of the run has a signal named ``signal``."""
    names = [r[0] for r in con.execute(
        "SELECT DISTINCT s.name FROM signals s JOIN episodes e USING (episode_id) WHERE e.run_id = ? ORDER BY 1",
        [run_id]).fetchall()]
    if signal not in names:
        raise ExportError(f"run {run!r} has no signal {signal!r}; its signals: {', '.join(names) or '(none)'}")


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


# ---- staging the selection -----------------------------------------------------------------

# Every turn of the run's ok episodes the signal graded, one row per (episode, turn) (a grader
# recorded under several roles has the same outcome in each), with whether it is accepted or
# rejected. Parameters: $run, $signal, $min, $domains.
_GRADED = """
    graded AS (
        SELECT s.episode_id, s.turn, any_value(e.task_id) AS task_id,
               max(s.value) AS value, bool_or(s.passed) AS passed
        FROM signals s JOIN episodes e USING (episode_id)
        WHERE e.run_id = $run AND e.status = 'ok' AND s.name = $signal
          AND ($domains::VARCHAR[] IS NULL OR list_contains($domains::VARCHAR[], e.domain))
        GROUP BY s.episode_id, s.turn
    ), flagged AS (
        SELECT episode_id, turn, task_id,
               coalesce(CASE WHEN $min::DOUBLE IS NULL THEN passed ELSE value >= $min::DOUBLE END, false) AS accepted,
               coalesce(CASE WHEN $min::DOUBLE IS NULL THEN NOT passed ELSE value < $min::DOUBLE END, false) AS rejected
        FROM graded
    ), first_acc AS (  -- each episode's first accepted turn
        SELECT episode_id, min(turn) AS turn, any_value(task_id) AS task_id FROM flagged WHERE accepted GROUP BY 1
    )"""

# Per format, the staged rows: (b, episode_id, turn, accepted, rejected, kept); ``b`` is the batch
# (NULL: not built). Parameter: $batch.
_STAGE = {
    # each episode's first accepted turn, in episode_id order
    "sft": """
        SELECT (row_number() OVER (ORDER BY episode_id) - 1) // $batch AS b, episode_id, turn,
               true AS accepted, false AS rejected, true AS kept
        FROM first_acc""",
    # the same, of which the first (by episode_id) of each task and answer key is kept
    "parquet": """
        , answers AS (  -- the graded answer of each first accepted turn (as selection.answer_index finds it)
            SELECT m.episode_id, m.turn, m.answer FROM messages m JOIN first_acc f USING (episode_id, turn)
            WHERE m.role = 'assistant' AND m.tool_calls IS NULL
            QUALIFY row_number() OVER (PARTITION BY m.episode_id, m.turn ORDER BY m.position) = 1
        ), keyed AS (
            SELECT f.episode_id, f.turn,
                   row_number() OVER (PARTITION BY f.task_id, a.answer ORDER BY f.episode_id) = 1 AS kept
            FROM first_acc f LEFT JOIN answers a USING (episode_id, turn)
        )
        SELECT CASE WHEN kept THEN (row_number() OVER (PARTITION BY kept ORDER BY episode_id) - 1) // $batch END AS b,
               episode_id, turn, true AS accepted, false AS rejected, kept
        FROM keyed""",
    # every accepted or rejected turn; whole tasks per batch, in task_id order (about $batch turns each)
    "dpo": """
        , turns AS (SELECT * FROM flagged WHERE accepted OR rejected),
        per_task AS (SELECT task_id, count(*) AS n FROM turns GROUP BY 1),
        batched AS (
            SELECT task_id, (sum(n) OVER (ORDER BY task_id ROWS UNBOUNDED PRECEDING) - n) // $batch AS b FROM per_task
        )
        SELECT b, episode_id, turn, accepted, rejected, true AS kept FROM turns JOIN batched USING (task_id)""",
}


@dataclass(frozen=True)
class Staged:
    """The selection staged in the temp table ``_export_selection`` for format ``fmt``."""

    batches: int  # batches 0 .. batches - 1
    accepted_episodes: int  # episodes with an accepted turn
    duplicates: int = 0  # parquet: first accepted turns dropped in SQL (same task and answer key)


def stage_selection(con: duckdb.DuckDBPyConnection, fmt: str, run_id: str, signal: str, min_value: float | None,
                    domains: list[str] | None, batch_size: int) -> Staged:
    """Stage what format ``fmt`` builds from in the temp table ``_export_selection``: DuckDB selects
    the graded turns, each episode's first accepted turn, and (parquet) drops the duplicates; each
    staged row gets its batch number (about ``batch_size`` rows a batch; dpo: whole tasks), so that
    :func:`staged_batch` reads one batch at a time. DuckDB holds a few tens of bytes per staged row."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE _export_selection AS WITH {_GRADED} {_STAGE[fmt]} "
                "ORDER BY b NULLS LAST, episode_id, turn",
                {"run": run_id, "signal": signal, "min": min_value, "domains": domains, "batch": batch_size})
    batches, accepted, dropped = con.execute(
        "SELECT coalesce(max(b) + 1, 0), count(DISTINCT episode_id) FILTER (accepted), count(*) FILTER (NOT kept) "
        "FROM _export_selection").fetchone()
    return Staged(batches, accepted, dropped)


def staged_batch(con: duckdb.DuckDBPyConnection, b: int) -> list[Graded]:
    """Batch ``b`` of the staged selection, by (episode_id, turn)."""
    rows = con.execute(
        """SELECT x.episode_id, x.turn, e.task_id, e.domain, e.env_id, e.env_config, x.accepted, x.rejected
           FROM _export_selection x JOIN episodes e USING (episode_id) WHERE x.b = ? ORDER BY x.episode_id, x.turn""",
        [b]).fetchall()
    return [Graded(*r) for r in rows]


def staged_signals(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The names of every signal recorded at a staged turn that is built (the parquet columns)."""
    return [r[0] for r in con.execute(
        """SELECT DISTINCT s.name FROM signals s JOIN _export_selection x USING (episode_id, turn)
           WHERE x.b IS NOT NULL ORDER BY 1""").fetchall()]


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
    """Run ``sql`` with the episode ids registered as the table ``_export_ids(episode_id)``."""
    con.register("_export_ids", pa.table({"episode_id": pa.array(sorted(set(ids)), pa.string())}))
    try:
        return con.execute(sql).fetchall()
    finally:
        con.unregister("_export_ids")


def load_messages(con: duckdb.DuckDBPyConnection, ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """The stored messages of each episode in ``ids``, in order, as dicts keyed by column name."""
    rows = with_ids(con, ids, """
        SELECT episode_id, list(struct_pack(turn := turn, role := role, content := content, tool_calls := tool_calls,
                                            tool_call_id := tool_call_id, answer := answer) ORDER BY position)
        FROM messages WHERE episode_id IN (SELECT episode_id FROM _export_ids) GROUP BY 1""")
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
