"""The SQL of the viewer's data pages: runs, a run's episodes, one episode, signals, the SQL box.

Each function takes a :class:`~agentsynth.viewer.db.Reader` (one request's read-only
connection) and returns plain rows. Values are bound parameters; lists are paged on the server
(:mod:`agentsynth.viewer.filters`), so a page reads a bounded number of rows however large the
store is.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import duckdb

from ..analysis.intervals import wilson
from ..store import StoreError, check_read_only, file_refusal
from ..store.probes import describe_flags, latest_flags
from ..store.run_lock import live_run_id, shown_status
from .db import Reader, time_limit
from .filters import SORTS, BadRequest, EpisodeQuery

RUN_STATS = """
    SELECT run_id, count(*) AS episodes, count(*) FILTER (status = 'ok') AS ok,
           count(*) FILTER (status <> 'ok') AS failed,
           avg(passed_first::INT) FILTER (status = 'ok') AS pass_first,
           avg(passed_last::INT) FILTER (status = 'ok') AS pass_last,
           sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens,
           sum(judge_tokens) AS judge_tokens, max(finished_at) AS last_finished
    FROM episodes {where} GROUP BY run_id"""


def runs(r: Reader, run_id: str | None = None) -> list[dict[str, Any]]:
    """Every run (or the one ``run_id``) with its counts, pass rates at the first and last
    answer (of ok episodes) and tokens; newest first. ``status`` is as ``agentsynth runs`` shows
    it: ``running`` only while the run's process runs (else ``interrupted``)."""
    where, params = ("WHERE run_id = $run", {"run": run_id}) if run_id else ("", {})
    rows = r.rows(f"""
        SELECT r.run_id, r.name, r.kind, r.status, r.planned, r.sessions, r.model, r.base_url,
               r.created_at, r.finished_at, r.agentsynth_version,
               coalesce(a.episodes, 0) AS episodes, coalesce(a.ok, 0) AS ok, coalesce(a.failed, 0) AS failed,
               a.pass_first, a.pass_last, coalesce(a.prompt_tokens, 0) AS prompt_tokens,
               coalesce(a.completion_tokens, 0) AS completion_tokens, coalesce(a.judge_tokens, 0) AS judge_tokens,
               a.last_finished
        FROM runs r LEFT JOIN ({RUN_STATS.format(where=where)}) a USING (run_id)
        {"WHERE r.run_id = $run" if run_id else ""}
        ORDER BY r.created_at DESC, r.name""", params)
    live = live_run_id(r.path) if any(row["status"] == "running" for row in rows) else None
    for row in rows:
        row["status"] = shown_status(row["status"], row["run_id"], live)
    return rows


def run_spec(r: Reader, run_id: str) -> str | None:
    """The run's spec (JSON text as stored)."""
    return r.value("SELECT spec::VARCHAR FROM runs WHERE run_id = $run", {"run": run_id})


EPISODE_COLUMNS = ("e.episode_id, e.task_id, e.env_id, e.domain, e.feedback, e.seed, e.sample, e.status, e.turns, "
                   "e.passed_first, e.passed_last, e.reward, e.prompt_tokens + e.completion_tokens + e.judge_tokens AS tokens, "
                   "e.latency_s, e.finished_at")


@dataclass
class EpisodePage:
    """One page of a run's episodes: its rows, how many match the filters, and the neighbours."""

    rows: list[dict[str, Any]]
    matching: int
    has_prev: bool
    has_next: bool


def episode_page(r: Reader, q: EpisodeQuery) -> EpisodePage:
    """The page ``q`` asks for (:class:`BadRequest` when its cursor episode is not in the run)."""
    cursor = q.after or q.before
    key = None
    if cursor is not None:
        found = r.one(f"SELECT {SORTS[q.sort].key} AS k FROM episodes e WHERE e.episode_id = $id AND e.run_id = $run",
                      {"id": cursor, "run": q.run_id})
        if found is None:
            raise BadRequest(f"{'after' if q.after else 'before'}: episode {cursor!r} is not in this run")
        key = found["k"]
    if q.signal:  # a join: find the matching episodes once, then fetch the page's rows by id
        sql, params, backwards = q.page_ids_sql(key)
        found, ids = r.con.execute(sql, params).fetchone()
        ids = ids or []
        by_id = {row["episode_id"]: row for row in r.rows(
            f"SELECT {EPISODE_COLUMNS} FROM episodes e WHERE list_contains($ids, e.episode_id)", {"ids": ids})}
        rows = [by_id[i] for i in ids if i in by_id]
    else:
        sql, params, backwards = q.page_sql(EPISODE_COLUMNS, key)
        rows = r.rows(sql, params)
        found = matching(r, q)
    more = len(rows) > q.size
    rows = rows[: q.size]
    if backwards:
        rows.reverse()
        return EpisodePage(rows, found, has_prev=more, has_next=q.before is not None)
    return EpisodePage(rows, found, has_prev=q.after is not None, has_next=more)


def matching(r: Reader, q: EpisodeQuery) -> int:
    """How many of the run's episodes match ``q``'s filters."""
    where, params = q.where()
    return r.value(f"SELECT count(*) FROM episodes e WHERE {where}", params)


def choices(r: Reader, run_id: str) -> dict[str, list[tuple[Any, int]]]:
    """The values each filter can take in the run, with their episode counts (one scan), and the
    signal names of the store."""
    out: dict[str, list[tuple[Any, int]]] = {"env": [], "domain": [], "feedback": [], "status": []}
    for env, domain, feedback, status, n in r.con.execute(
        """SELECT env_id, domain, feedback, status, count(*) FROM episodes WHERE run_id = $run
           GROUP BY GROUPING SETS ((env_id), (domain), (feedback), (status))""", {"run": run_id}).fetchall():
        for name, value in (("env", env), ("domain", domain), ("feedback", feedback), ("status", status)):
            if value is not None:
                out[name].append((value, n))
    for v in out.values():
        v.sort(key=lambda x: str(x[0]))
    out["signal"] = [(n, 0) for (n,) in r.con.execute("SELECT name FROM signal_types ORDER BY name").fetchall()]
    return out


def episode(r: Reader, episode_id: str) -> dict[str, Any] | None:
    """One episode with its run's name and its task (prompt, reference answer, metadata): key
    lookups only (each table's primary key)."""
    ep = r.one("SELECT * FROM episodes WHERE episode_id = $id", {"id": episode_id})
    if ep is None:
        return None
    run = r.one("SELECT name, kind FROM runs WHERE run_id = $run", {"run": ep["run_id"]}) or {"name": ep["run_id"], "kind": None}
    task = r.one("SELECT prompt, answer, metadata::VARCHAR AS metadata FROM tasks WHERE task_id = $t", {"t": ep["task_id"]}) \
        if ep["task_id"] else None
    task = task or {"prompt": None, "answer": None, "metadata": None}
    return ep | {"run_name": run["name"], "run_kind": run["kind"], "task_prompt": task["prompt"],
                 "task_answer": task["answer"], "task_metadata": task["metadata"]}


def _of_episode(seq: int | None) -> str:
    """The WHERE clause finding one episode's rows: by ``episode_seq`` too when the episode has one
    (migration m006: DuckDB then reads one row group instead of scanning the table)."""
    return "episode_seq = $seq AND episode_id = $id" if seq is not None else "episode_id = $id"


def _params(episode_id: str, seq: int | None) -> dict[str, Any]:
    return {"id": episode_id} if seq is None else {"id": episode_id, "seq": seq}


def messages(r: Reader, episode_id: str, seq: int | None = None) -> list[dict[str, Any]]:
    """The episode's chat messages in order (``seq``: its ``episode_seq``, when stored)."""
    return r.rows(f"""SELECT position, turn, role, content, tool_calls::VARCHAR AS tool_calls, tool_call_id, answer
                      FROM messages WHERE {_of_episode(seq)} ORDER BY position""", _params(episode_id, seq))


ROLE_ORDER = {"truth": 0, "feedback": 1, "reward": 2}


def signals(r: Reader, episode_id: str, seq: int | None = None) -> list[dict[str, Any]]:
    """The episode's signal outcomes with their grader's labels, by turn (truth first). The scan
    of ``signals`` has no join or sort (a store's signals are the largest table): labels are
    looked up in ``signal_types`` (one row per grader) and the rows sorted here."""
    rows = r.rows(f"""SELECT turn, name, role, value, passed, feedback, details::VARCHAR AS details, tokens
                      FROM signals WHERE {_of_episode(seq)}""", _params(episode_id, seq))
    types = {t["name"]: t for t in r.rows(
        "SELECT name, source, openness, meta_level, task_relevant, description FROM signal_types WHERE list_contains($n, name)",
        {"n": sorted({row["name"] for row in rows})})} if rows else {}
    none = {"source": None, "openness": None, "meta_level": None, "task_relevant": None, "description": None}
    out = [row | {k: v for k, v in types.get(row["name"], none).items() if k != "name"} for row in rows]
    out.sort(key=lambda s: (s["turn"], ROLE_ORDER.get(s["role"], 3), s["name"]))
    return out


def signal_types(r: Reader) -> list[dict[str, Any]]:
    """Every grader's declared labels, and what the latest ``agentsynth probe`` of it found per
    environment (``probe``: ``"arithmetic: ok; pairs: hackable"``, empty when never probed)."""
    rows = r.rows("SELECT name, source, openness, meta_level, task_relevant, description FROM signal_types ORDER BY name")
    probed: dict[str, list[str]] = {}
    for (env, grader), flags in sorted(latest_flags(r.con).items()):
        probed.setdefault(grader, []).append(f"{env}: {describe_flags(flags)}")
    for row in rows:
        row["probe"] = "; ".join(probed.get(row["name"], []))
    return rows


def signal_agreement(r: Reader, run_id: str | None) -> list[dict[str, Any]]:
    """Per signal and role (in the run's episodes, or the whole store): its rows, pass rate, and
    agreement with truth P(S = T) over the turns where both have a verdict, with a 95% Wilson
    interval (None for the truth role itself). One scan of ``signals`` and a join with its truth rows."""
    scope = "AND s.episode_id IN (SELECT episode_id FROM episodes WHERE run_id = $run)" if run_id else ""
    rows = r.rows(f"""
        WITH s AS (SELECT s.episode_id, s.turn, s.name, s.role, s.passed FROM signals s WHERE true {scope}),
        t AS (SELECT episode_id, turn, passed AS truth FROM s WHERE role = 'truth' AND passed IS NOT NULL),
        counts AS (SELECT name, role, count(*) AS rows, avg(passed::INT) AS pass_rate FROM s GROUP BY ALL),
        agree AS (
            SELECT x.name, x.role, count(*) AS compared, count(*) FILTER (x.passed = t.truth) AS agreed
            FROM s x JOIN t USING (episode_id, turn)
            WHERE x.passed IS NOT NULL AND x.role <> 'truth' GROUP BY ALL)
        SELECT c.*, a.compared, a.agreed FROM counts c LEFT JOIN agree a USING (name, role)
        ORDER BY c.name, c.role""", {"run": run_id} if run_id else {})
    for row in rows:
        n, k = row["compared"] or 0, row["agreed"] or 0
        row["agreement"] = k / n if n else None
        row["ci"] = wilson(k, n) if n else None
    return rows


# ---- the SQL box ------------------------------------------------------------------------------

MAX_QUERY = 20_000
SQL_TIMEOUT_S = 30.0
"""A typed query is interrupted after this long (so it cannot keep the store from a run)."""


class QueryRefused(BadRequest):
    """A typed query that writes, reads files, does not parse or fails (the message says why)."""


def check_query(sql: str) -> str:
    """``sql`` stripped, if it only reads (the check of ``agentsynth sql``); :class:`QueryRefused` otherwise."""
    sql = sql.strip()
    if not sql:
        raise QueryRefused("empty query")
    if len(sql) > MAX_QUERY:
        raise QueryRefused(f"the query is longer than {MAX_QUERY:,} characters")
    try:
        check_read_only(sql)
    except StoreError as exc:
        raise QueryRefused(str(exc)) from None
    return sql


@dataclass
class QueryResult:
    """The first rows of a typed query."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    more: bool


def run_query(r: Reader, sql: str, limit: int) -> QueryResult:
    """The first ``limit`` rows of a read-only query (checked with :func:`check_query` first), on
    this request's read-only connection, interrupted after :data:`SQL_TIMEOUT_S`."""
    sql = check_query(sql)
    with query_errors(), time_limit(r.con, SQL_TIMEOUT_S):
        cur = r.con.execute(sql)
        if cur.description is None:
            raise QueryRefused("the query returned no result set")
        rows = cur.fetchmany(limit + 1)
    return QueryResult([d[0] for d in cur.description], rows[:limit], len(rows) > limit)


@contextlib.contextmanager
def query_errors() -> Iterator[None]:
    """Turn DuckDB's errors from a typed query into :class:`QueryRefused` with one line."""
    try:
        yield
    except duckdb.PermissionException as exc:  # a file read, found when the query binds or runs
        raise QueryRefused(file_refusal(exc).split("; pass --allow-files")[0]) from None
    except duckdb.InterruptException:
        raise QueryRefused(f"the query ran longer than {SQL_TIMEOUT_S:.0f} s and was stopped") from None
    except duckdb.Error as exc:
        raise QueryRefused(" ".join(str(exc).split())) from None
