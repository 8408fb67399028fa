"""Reading a store for the audit: the observations, as small integer codes in numpy arrays.

Per graded turn: which signals graded it and how (flags), the truth, the model's own assessment
(self-consistency and self-review), the reply's surface features F and its answer key; per
episode: task, domain, channel, first and last truth. Nothing here computes a figure; that is
:mod:`agentsynth.analysis.figures`.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np

from ..store.queries import turn_answers_sql
from .resampling import bootstrap_weights

HEDGES = ("i think", "maybe", "perhaps", "probably", "possibly", "likely", "might", "not sure", "i believe", "i guess")
LENGTH_BUCKETS = (60, 200, 600)  # characters: < 60, < 200, < 600, longer
N_FEATURES = (len(LENGTH_BUCKETS) + 1) * 4  # length bucket x has an answer line x hedges


# The store is read in a few queries that return small integer codes, never text: one row per
# episode; one row per graded turn, every signal's rows at that turn folded into one byte of
# flags; one row per answered turn. Rows are matched on the episode's ``rowid`` and the turn.
# Tasks, domains and channels are coded by their position in sorted order, so codes (and with
# them the bootstrap's task order) do not depend on the order rows come back in. The bootstrap
# weights are drawn in a thread meanwhile (numpy releases the GIL, DuckDB runs on its own).

_SELECTED = "list_contains($runs, run_id) AND status = 'ok'"  # the runs' finished episodes
# a signal's flags at a turn: bool_or over its rows there (a signal may have rows in several roles)
_PRESENT, _PASSED, _FAILED, _FEEDBACK, _TRUTH = 1, 2, 4, 8, 16
_GRADED = _PASSED | _FAILED  # `passed` not null: an observation of the signal
_FLAGS_SQL = ("(1 + 2 * coalesce(passed::UTINYINT, 0) + 4 * coalesce((NOT passed)::UTINYINT, 0)"
              " + 8 * (role = 'feedback')::UTINYINT + 16 * (role = 'truth')::UTINYINT)::UBIGINT")
_PER_WORD = 8  # signals' flag bytes packed in one UBIGINT column


def _features_sql() -> str:
    """SQL: the surface-feature code F of the message ``m`` (NULL without content)."""
    hedge = "|".join(HEDGES)
    b1, b2, b3 = LENGTH_BUCKETS
    return f"""(CASE WHEN length(m.content) < {b1} THEN 0 WHEN length(m.content) < {b2} THEN 1
                     WHEN length(m.content) < {b3} THEN 2 ELSE 3 END) * 4
               + 2 * regexp_matches(m.content, '(?i)answer[ \\t]*[:=]')::INT
               + regexp_matches(lower(m.content), '\\b({hedge})\\b')::INT"""


def _episodes_sql() -> str:
    """The runs' ok episodes: ``ei`` (rowid), ``task`` (index among the sorted task ids), ``dom``
    / ``chan`` (index in $domains / $channels), ``first`` / ``last`` (1, 0; every code -1 for NULL)."""
    return f"""
        WITH ep AS MATERIALIZED (
            SELECT rowid AS ei, task_id, domain, feedback, passed_first, passed_last FROM episodes WHERE {_SELECTED}
        ), _task AS (
            SELECT task_id, (row_number() OVER (ORDER BY task_id) - 1)::INT AS task
            FROM (SELECT DISTINCT task_id FROM ep WHERE task_id IS NOT NULL)
        )
        SELECT ei, coalesce(_task.task, -1) AS task,
               (coalesce(list_position($domains, domain), 0) - 1)::INT AS dom,
               (coalesce(list_position($channels, feedback), 0) - 1)::INT AS chan,
               coalesce(passed_first::TINYINT, -1) AS first, coalesce(passed_last::TINYINT, -1) AS last
        FROM ep LEFT JOIN _task USING (task_id)"""


def _signals_sql(names: list[str], costly: list[int], key: str, filter_first: bool) -> str:
    """One row per graded turn of the runs' ok episodes: ``ei``, ``turn``, the signals' flag
    bytes packed in ``g0``, ``g1``, ... (signal ``k`` = ``$names[k]`` in byte ``k % 8`` of
    ``g{k // 8}``) and ``tok{k}`` (its tokens at that turn) for the signals in ``costly``.

    Signal rows are folded by (``key``, turn), ``key`` an expression of the episode id (the id,
    or its 64-bit hash when no two episodes share one: a cheaper key). ``filter_first`` keeps
    only the runs' rows before (a join of every row on the text id: worth it when the runs are
    a small part of the store); otherwise every row is folded and the runs' turns kept after.
    """
    folded = [f"coalesce(bit_or(flags << (8 * (k % {_PER_WORD}))::UBIGINT) FILTER (k // {_PER_WORD} = {w}), 0) AS g{w}"
              for w in range(_words(names))]
    folded += [f"coalesce(max(tokens) FILTER (k = {k}), 0) AS tok{k}" for k in costly]
    runs_only = f"WHERE episode_id IN (SELECT episode_id FROM episodes WHERE {_SELECTED})" if filter_first else ""
    return f"""
        WITH sig AS (
            SELECT ep_key, turn, {', '.join(folded) or 'count(*) AS n_rows'}
            FROM (SELECT {key} AS ep_key, turn, list_position($names, name) - 1 AS k, {_FLAGS_SQL} AS flags, tokens
                  FROM signals {runs_only})
            GROUP BY ep_key, turn
        )
        SELECT ep.ei, sig.* EXCLUDE (ep_key)
        FROM sig JOIN (SELECT {key} AS ep_key, rowid AS ei FROM episodes WHERE {_SELECTED}) ep USING (ep_key)"""


def _answers_sql() -> str:
    """One row per answered turn of the runs' ok episodes: ``ei``, ``turn``, ``m_sc``
    (self-consistent: 1, 0, -1 unknown), ``f`` (surface features, -1 unknown) and ``key`` (the
    answer key's index among the store's sorted keys, -1 none)."""
    return f"""
        WITH _key AS (
            SELECT answer, (row_number() OVER (ORDER BY answer) - 1)::INT AS key
            FROM (SELECT DISTINCT answer FROM messages WHERE answer IS NOT NULL)
        )
        SELECT ans.episode_row AS ei, ans.turn, coalesce(ans.self_consistent::TINYINT, -1) AS m_sc,
               coalesce(ans.features, -1)::TINYINT AS f, coalesce(_key.key, -1) AS key
        FROM ({turn_answers_sql("$runs", columns={"features": _features_sql()})}) ans LEFT JOIN _key USING (answer)"""


def _words(names: list[str]) -> int:
    return -(-len(names) // _PER_WORD)


@dataclass
class _Data:
    n_tasks: int
    domains: list[str]
    task_domain: np.ndarray  # domain index per task (non-decreasing: a domain's tasks are contiguous)
    weights: Future[np.ndarray]  # (B, n_tasks) float32 bootstrap weights, being drawn
    signals: list[str]
    turns: dict[str, np.ndarray]  # per graded turn: task, chan, t, m_review, m_sc, f, answer
    flags: dict[str, np.ndarray]  # signal -> per graded turn: its flag byte (0: no rows there)
    channels: list[str]
    eps: dict[str, np.ndarray]  # per episode: task, chan, first, last
    episodes_with: dict[str, int]  # signal -> episodes it graded
    tokens: dict[str, int]  # signal -> model tokens spent producing it
    labels: dict[str, dict[str, Any]]
    channel_signal: dict[str, str]


def _numpy(con: Any, sql: str, params: dict[str, Any]) -> dict[str, np.ndarray]:
    """A query's columns (numeric, no NULLs) as numpy arrays; then has DuckDB give back the
    memory the query used."""
    out = con.execute(sql, params).fetchnumpy()
    _release(con)
    return out


def _release(con: Any) -> None:
    """Have DuckDB give back memory it holds for reuse (cached blocks of the store, freed query
    memory) until the connection closes: a brief low memory limit evicts and flushes it. Best
    effort: if DuckDB cannot go that low, the limit stays as it was."""
    try:
        con.execute("SET memory_limit = '64MB'")
    except duckdb.Error:
        return
    con.execute("RESET memory_limit")


def _bool_or(flags: list[np.ndarray], n: int, role: int = 0) -> np.ndarray:
    """Per turn, SQL ``bool_or`` of the signals' (own ``bool_or``) ``passed``, over the signals
    in ``flags`` that have a row in ``role`` at that turn (any row: ``role`` 0): int8 1, 0, -1 (NULL)."""
    passed, failed = np.zeros(n, bool), np.zeros(n, bool)
    for b in flags:
        if role:
            b = np.where((b & role) != 0, b, 0)
        passed |= (b & _PASSED) != 0
        failed |= (b & _FAILED) != 0
    return np.where(passed, 1, np.where(failed, 0, -1)).astype(np.int8)


def _unpack(sig: dict[str, np.ndarray], names: list[str]) -> dict[str, np.ndarray]:
    """Signal name -> its flag byte per row of :func:`_signals_sql` (0: no rows of it there)."""
    n = len(sig["turn"])
    words = [sig[f"g{w}"].astype("<u8").view(np.uint8).reshape(n, _PER_WORD) for w in range(_words(names))]
    return {name: np.ascontiguousarray(words[k // _PER_WORD][:, k % _PER_WORD]) for k, name in enumerate(names)}


def _match(keys: np.ndarray, lookup: np.ndarray) -> np.ndarray:
    """For each of ``keys``, its index in ``lookup`` (unique keys), or -1."""
    if not len(lookup):
        return np.full(len(keys), -1, np.int64)
    order = np.argsort(lookup, kind="stable")
    found = order[np.minimum(np.searchsorted(lookup, keys, sorter=order), len(lookup) - 1)]
    return np.where(lookup[found] == keys, found, -1)


def channel_signals(con: Any, run_ids: list[str]) -> dict[str, str]:
    """Feedback channel -> the signal shown to the agent on it (its ``feedback`` role), in the runs."""
    return dict(con.execute(
        """SELECT e.feedback, any_value(s.name) FROM signals s JOIN episodes e USING (episode_id)
           WHERE list_contains($runs, e.run_id) AND s.role = 'feedback' GROUP BY 1""", {"runs": run_ids},
    ).fetchall())


def _load(con: Any, run_ids: list[str], pool: ThreadPoolExecutor, bootstrap: int, seed: int) -> _Data:
    """Read the runs' data; the bootstrap weights are drawn in ``pool`` meanwhile (numpy releases the GIL)."""
    params: dict[str, Any] = {"runs": run_ids}
    ((domains, channels, n_selected, n_all, unique_hashes),) = con.execute(
        f"""SELECT list_sort(list(DISTINCT domain) FILTER (domain IS NOT NULL AND {_SELECTED})),
                   list_sort(list(DISTINCT feedback) FILTER ({_SELECTED})), count(*) FILTER ({_SELECTED}),
                   count(*), count(DISTINCT hash(episode_id)) = count(*)
            FROM episodes""", params,
    ).fetchall()
    domains, channels = domains or [], channels or []
    eps = _numpy(con, _episodes_sql(), params | {"domains": domains, "channels": channels})
    n_tasks = int(eps["task"].max(initial=-1)) + 1
    task_domain = np.zeros(n_tasks, np.int32)
    task_domain[eps["task"]] = eps["dom"]
    # a domain's tasks contiguous: per-domain tables and bootstrap weights are slices, not copies
    order = np.argsort(task_domain, kind="stable")
    new_code = np.empty(n_tasks, np.int32)
    new_code[order] = np.arange(n_tasks, dtype=np.int32)
    eps["task"] = np.where(eps["task"] >= 0, new_code[eps["task"]], -1).astype(np.int32)
    position = np.full(int(eps["ei"].max(initial=-1)) + 1, -1, np.int64)  # episode rowid -> index in eps
    position[eps["ei"]] = np.arange(n_selected)

    kinds = con.execute("SELECT name, bool_or(tokens <> 0) FROM signals GROUP BY name ORDER BY name").fetchall()
    names = [name for name, _ in kinds]
    costly = [k for k, (_, has_tokens) in enumerate(kinds) if has_tokens]
    ans = _numpy(con, _answers_sql(), params)
    sig = _numpy(con, _signals_sql(names, costly, "hash(episode_id)" if unique_hashes else "episode_id",
                                   filter_first=2 * n_selected < n_all), params | {"names": names})
    weights = pool.submit(bootstrap_weights, n_tasks, bootstrap, np.random.default_rng(seed), order)
    labels = {
        name: {"source": src, "openness": op, "meta_level": ml, "task_relevant": tr}
        for name, src, op, ml, tr in con.execute(
            "SELECT name, source, openness, meta_level, task_relevant FROM signal_types"
        ).fetchall()
    }
    channel_signal = channel_signals(con, run_ids)
    _release(con)
    ep = position[sig["ei"]]  # per graded turn: its episode's index
    n = len(ep)
    flags = _unpack(sig, names)
    episodes_with, tokens = {}, {}
    for k, name in enumerate(names):
        seen = np.zeros(n_selected, bool)
        seen[ep[(flags[name] & _PRESENT) != 0]] = True
        episodes_with[name] = int(seen.sum())
        tokens[name] = int(sig[f"tok{k}"].sum(dtype=np.int64)) if k in costly else 0
    # the answer of each graded turn (episode, turn), if any
    span = int(max(sig["turn"].max(initial=0), ans["turn"].max(initial=0))) + 1
    at = _match(ep * span + sig["turn"], position[ans["ei"]] * span + ans["turn"])
    truth = [b for b in flags.values() if (b & _TRUTH).any()]
    review = [b for name, b in flags.items()
              if labels.get(name, {}).get("source") == "self" and name != "self_consistency"]
    turns = {"task": eps["task"][ep], "chan": eps["chan"][ep], "t": _bool_or(truth, n, _TRUTH),
             "m_review": _bool_or(review, n)}
    for col, key in (("m_sc", "m_sc"), ("f", "f"), ("answer", "key")):
        turns[col] = np.where(at >= 0, ans[key][at], -1).astype(ans[key].dtype)
    signals = [name for name in names if (flags[name] & _GRADED).any()]
    # turns in task order: the per-task tables are then counted with sequential memory access
    by_task = np.argsort(turns["task"], kind="stable")
    turns = {col: values[by_task] for col, values in turns.items()}
    flags = {name: flags[name][by_task] for name in signals}
    return _Data(
        n_tasks=n_tasks, domains=domains, task_domain=task_domain[order], weights=weights, signals=signals,
        turns=turns, flags=flags, channels=channels,
        eps={"task": eps["task"], "chan": eps["chan"], "first": eps["first"], "last": eps["last"]},
        episodes_with=episodes_with, tokens=tokens, labels=labels, channel_signal=channel_signal,
    )
