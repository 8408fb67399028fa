"""What an export builds from, selected in SQL and handed out in batches, so that neither DuckDB
nor Python holds anything the size of the run.

The run is split into chunks of about ``CHUNK_EPISODES`` episodes by ranges of ``episode_id``
(dpo: of ``task_id``, so that a task is never split; see :func:`.selection.chunk_bounds`). For a
chunk DuckDB selects the turns the signal graded (accepted or rejected), each episode's first
accepted turn and, for parquet, drops the duplicates, into the temp table ``_export_selection``,
each row numbered with its batch: about ``batch_size`` episodes (dpo: whole tasks, about
``batch_size`` episodes), and with the episode's task, domain and environment. :meth:`Selection.batches` then reads one batch at a time. Chunks and
batches come in ``episode_id`` (dpo: ``task_id``) order, so the rows come out in the order one
query over the whole run would give.

- sft: each episode's first accepted turn; the chunk is staged, built and replaced by the next.
- dpo: every accepted or rejected turn; likewise.
- parquet: the first accepted turns of which the first (by ``episode_id``) of each task and answer
  key is kept, across chunks (a key kept in an earlier chunk drops the later ones). All chunks are
  staged first, because the file's columns (one pair per signal at a kept turn) must be known
  before its first row; the staged rows are the rows written, tens of bytes each.

DuckDB itself is held to ``DUCKDB_MEMORY_MIB`` during an export (:func:`memory_budget`): its
cache of the store's blocks would otherwise grow with the store, whatever the queries hold.

Package-internal API: ``CHUNK_EPISODES``, ``DUCKDB_MEMORY_MIB``, :class:`Selection`, :func:`memory_budget`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb

from .selection import Bounds, Graded, chunk_bounds, in_chunk

CHUNK_EPISODES = 50_000  # episodes a staging query holds at most (about)
DUCKDB_MEMORY_MIB = 128  # DuckDB's memory limit during an export: its block cache and query state
_UNITS = {"bytes": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


@contextmanager
def memory_budget(con: duckdb.DuckDBPyConnection, mib: int) -> Iterator[None]:
    """Lower DuckDB's ``memory_limit`` to ``mib`` MiB for the block (never raise it), then set it
    back. The limit is the database instance's: it caps the cache of the store's blocks (which
    grows with what was scanned) and makes big query state spill to disk instead of growing.
    Set back exactly if it was DuckDB's default (``RESET``), else to the value DuckDB displayed."""
    def limit() -> str:
        return str(con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])

    old = limit()
    m = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]+)\s*", old)
    if m and m[2].lower() in _UNITS and float(m[1]) * _UNITS[m[2].lower()] <= mib * 2**20:
        yield
        return
    con.execute("RESET memory_limit")
    default = limit() == old
    con.execute(f"SET memory_limit = '{mib}MiB'")
    try:
        yield
    finally:
        for restore in ([] if default else [f"SET memory_limit = '{old}'"]) + ["RESET memory_limit"]:
            try:
                con.execute(restore)
                break
            except duckdb.Error:
                continue  # not a value DuckDB takes back, or a failing connection (the limit goes with it)


# The turns of the chunk's ok episodes the signal graded, one row per (episode, turn) (a grader
# recorded under several roles has the same outcome in each), accepted or rejected, and each
# episode's first accepted turn. Parameters: $run, $signal, $min, $domains, $lo, $hi.
_GRADED = """
    graded AS (
        SELECT s.episode_id, s.turn, any_value(e.task_id) AS task_id, any_value(e.domain) AS domain,
               any_value(e.env_id) AS env_id, any_value(e.env_config) AS env_config,
               max(s.value) AS value, bool_or(s.passed) AS passed
        FROM signals s JOIN episodes e USING (episode_id)
        WHERE e.run_id = $run AND e.status = 'ok' AND s.name = $signal AND {chunk}
          AND ($domains::VARCHAR[] IS NULL OR list_contains($domains::VARCHAR[], e.domain))
        GROUP BY s.episode_id, s.turn
    ), flagged AS (
        SELECT episode_id, turn, task_id, domain, env_id, env_config,
               coalesce(CASE WHEN $min::DOUBLE IS NULL THEN passed ELSE value >= $min::DOUBLE END, false) AS accepted,
               coalesce(CASE WHEN $min::DOUBLE IS NULL THEN NOT passed ELSE value < $min::DOUBLE END, false) AS rejected
        FROM graded
    ), first_acc AS (
        SELECT episode_id, min(turn) AS turn, any_value(task_id) AS task_id, any_value(domain) AS domain,
               any_value(env_id) AS env_id, any_value(env_config) AS env_config
        FROM flagged WHERE accepted GROUP BY 1
    )"""

_STAGE = {
    # each episode's first accepted turn, $batch episodes a batch
    "sft": """
        SELECT (row_number() OVER (ORDER BY episode_id) - 1) // $batch AS b, episode_id, turn, task_id, domain, env_id,
               env_config, true AS accepted, false AS rejected
        FROM first_acc""",
    # every accepted or rejected turn; whole tasks a batch, about $batch episodes each
    "dpo": """
        , turns AS (SELECT * FROM flagged WHERE accepted OR rejected),
        per_task AS (SELECT task_id, count(DISTINCT episode_id) AS n FROM turns GROUP BY 1),
        batched AS (
            SELECT task_id, (sum(n) OVER (ORDER BY task_id ROWS UNBOUNDED PRECEDING) - n) // $batch AS b FROM per_task
        )
        SELECT b, episode_id, turn, task_id, domain, env_id, env_config, accepted, rejected
        FROM turns JOIN batched USING (task_id)""",
    # parquet: each first accepted turn with its answer key (the graded answer, as
    # selection.answer_index finds it), and whether it is the first of its task and key: in the
    # chunk (by episode_id) and in no earlier chunk
    "parquet": """
        , answers AS (
            SELECT m.episode_id, m.turn, m.answer FROM messages m JOIN first_acc f USING (episode_id, turn)
            WHERE m.role = 'assistant' AND m.tool_calls IS NULL
            QUALIFY row_number() OVER (PARTITION BY m.episode_id, m.turn ORDER BY m.position) = 1
        ), keyed AS (
            SELECT f.*, a.answer,
                   row_number() OVER (PARTITION BY f.task_id, a.answer ORDER BY f.episode_id) = 1 AS first_of_key
            FROM first_acc f LEFT JOIN answers a USING (episode_id, turn)
        )
        SELECT k.* EXCLUDE (first_of_key),
               k.first_of_key AND NOT EXISTS (
                   SELECT 1 FROM _export_kept x
                   WHERE x.task_id IS NOT DISTINCT FROM k.task_id AND x.answer IS NOT DISTINCT FROM k.answer) AS kept
        FROM keyed k""",
}


class Selection:
    """The turns format ``fmt`` builds from, for run ``run_id``, signal ``signal`` (accepted:
    ``passed``, or ``value >= min_value``), the domain filter ``domains``, in batches of about
    ``batch_size`` episodes. ``accepted_episodes`` (episodes with an accepted turn) and
    ``duplicates`` (parquet rows dropped in SQL) count what was staged so far; for sft and dpo
    they are complete once :meth:`batches` is exhausted."""

    def __init__(self, con: duckdb.DuckDBPyConnection, fmt: str, run_id: str, signal: str, min_value: float | None,
                 domains: list[str] | None, batch_size: int) -> None:
        self._con, self._fmt = con, fmt
        self._params: dict[str, Any] = {"run": run_id, "signal": signal, "min": min_value, "domains": domains}
        self._batch = batch_size
        self._chunks = chunk_bounds(con, run_id, "task_id" if fmt == "dpo" else "episode_id", CHUNK_EPISODES)
        self.accepted_episodes = 0
        self.duplicates = 0
        if fmt == "parquet":
            self._stage_parquet()

    @property
    def chunks(self) -> int:
        """How many chunks the run is staged in."""
        return len(self._chunks)

    def _query(self, body: str, bounds: Bounds, **params: Any) -> tuple[str, dict[str, Any]]:
        """The staging SQL ``body`` for chunk ``bounds``, and its parameters."""
        column = "task_id" if self._fmt == "dpo" else "episode_id"
        return "WITH " + _GRADED.format(chunk=in_chunk(column)) + body, {**self._params, "lo": bounds[0], "hi": bounds[1], **params}

    def _stage(self, bounds: Bounds) -> int:
        """Stage chunk ``bounds`` (sft, dpo) in place of the previous one; its number of batches."""
        sql, params = self._query(_STAGE[self._fmt], bounds, batch=self._batch)
        self._con.execute(f"CREATE OR REPLACE TEMP TABLE _export_selection AS {sql} ORDER BY b, episode_id, turn", params)
        (batches, accepted), = self._con.execute(
            "SELECT coalesce(max(b) + 1, 0), count(DISTINCT episode_id) FILTER (accepted) FROM _export_selection").fetchall()
        self.accepted_episodes += accepted
        return batches

    def _stage_parquet(self) -> None:
        """Stage the kept first accepted turns of every chunk, then number them in batches."""
        con = self._con
        con.execute("CREATE OR REPLACE TEMP TABLE _export_kept (episode_id VARCHAR, turn INTEGER, task_id VARCHAR, "
                    "domain VARCHAR, env_id VARCHAR, env_config VARCHAR, answer VARCHAR)")
        for bounds in self._chunks:
            sql, params = self._query(_STAGE["parquet"], bounds)
            con.execute(f"CREATE OR REPLACE TEMP TABLE _export_chunk AS {sql}", params)
            (first, kept), = con.execute("SELECT count(*), count(*) FILTER (kept) FROM _export_chunk").fetchall()
            con.execute("INSERT INTO _export_kept BY NAME SELECT * EXCLUDE (kept) FROM _export_chunk WHERE kept")
            self.accepted_episodes += first
            self.duplicates += first - kept
        con.execute("""CREATE OR REPLACE TEMP TABLE _export_selection AS
                       SELECT (row_number() OVER (ORDER BY episode_id) - 1) // ? AS b, episode_id, turn, task_id,
                              domain, env_id, env_config, true AS accepted, false AS rejected
                       FROM _export_kept ORDER BY b, episode_id""", [self._batch])
        con.execute("DROP TABLE _export_chunk")
        con.execute("DROP TABLE _export_kept")

    def signals(self) -> list[str]:
        """Parquet: the names of every signal recorded at a staged turn (the file's signal columns)."""
        return [r[0] for r in self._con.execute(
            "SELECT DISTINCT s.name FROM signals s JOIN _export_selection x USING (episode_id, turn) ORDER BY 1").fetchall()]

    def batches(self) -> Iterator[list[Graded]]:
        """The batches in file order, each by (episode_id, turn)."""
        if self._fmt == "parquet":
            (n,), = self._con.execute("SELECT coalesce(max(b) + 1, 0) FROM _export_selection").fetchall()
            yield from self._read(n)
            return
        for bounds in self._chunks:
            yield from self._read(self._stage(bounds))

    def _read(self, batches: int) -> Iterator[list[Graded]]:
        for b in range(batches):
            rows = self._con.execute(
                """SELECT episode_id, turn, task_id, domain, env_id, env_config, accepted, rejected
                   FROM _export_selection WHERE b = ? ORDER BY episode_id, turn""", [b]).fetchall()
            yield [Graded(*r) for r in rows]
