"""The episodes list's request: filters, sort and page, parsed from the URL into SQL.

Every value a user sends is a bound parameter; the only SQL text that depends on the request
is chosen from the tables below (:data:`SORTS`, :data:`EQUALS`, :data:`PASSED`, :data:`OPS`), so
a parameter can select a column or an operator but never write one. A value that fits none of
them is a :class:`BadRequest` naming the parameter (a 400 page).

Pages are keyset pages: a page starts after (or ends before) an episode, named by its id, and
the sort key of that episode is looked up again for each request, so paging costs the same on
the first page and the millionth, and episodes a running run adds do not shift the pages.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BadRequest", "EpisodeQuery", "OPS", "PAGE_SIZES", "SORTS", "parse_episode_query"]


class BadRequest(ValueError):
    """A request parameter the viewer cannot use; the message names it and what it may be."""


@dataclass(frozen=True)
class Sort:
    """A sortable column: its label and its SQL key over ``episodes e`` (never NULL, so that
    keyset comparisons are total: NULLs sort as the lowest value); a key that is not ``unique``
    is followed by the episode id, which breaks ties."""

    label: str
    key: str
    unique: bool = False


SORTS: dict[str, Sort] = {
    "stored": Sort("order stored", "e.rowid", unique=True),
    "finished": Sort("finished at", "coalesce(e.finished_at, '-infinity'::TIMESTAMP)"),
    "started": Sort("started at", "coalesce(e.started_at, '-infinity'::TIMESTAMP)"),
    "env": Sort("environment", "e.env_id"),
    "domain": Sort("domain", "coalesce(e.domain, '')"),
    "feedback": Sort("feedback channel", "e.feedback"),
    "status": Sort("status", "e.status"),
    "seed": Sort("task seed", "e.seed"),
    "sample": Sort("sample", "e.sample"),
    "turns": Sort("turns", "e.turns"),
    "reward": Sort("reward", "coalesce(e.reward, '-infinity'::DOUBLE)"),
    "tokens": Sort("tokens", "(e.prompt_tokens + e.completion_tokens + e.judge_tokens)"),
    "latency": Sort("latency", "coalesce(e.latency_s, '-infinity'::DOUBLE)"),
}
"""Sort parameter -> column (a whitelist: ``sort`` must be one of these names)."""

EQUALS: dict[str, str] = {
    "env": "e.env_id", "domain": "e.domain", "feedback": "e.feedback", "status": "e.status", "task": "e.task_id",
}
"""Filter parameter -> the column it must equal."""

PASSED: dict[str, str] = {"first": "e.passed_first", "last": "e.passed_last"}
"""Filter parameter -> truth at the first or last answer; values yes, no, unknown (NULL)."""
PASSED_VALUES = {"yes": "= true", "no": "= false", "unknown": "IS NULL"}

OPS: dict[str, tuple[str, str]] = {
    "ge": ("≥", "s.value >= $sig_value"), "gt": (">", "s.value > $sig_value"),
    "le": ("≤", "s.value <= $sig_value"), "lt": ("<", "s.value < $sig_value"),
    "eq": ("=", "s.value = $sig_value"), "ne": ("≠", "s.value <> $sig_value"),
    "passed": ("passed", "s.passed"), "failed": ("failed", "NOT s.passed"),
}
"""Signal comparison parameter -> (label, predicate over ``signals s``); the first six take ``value``."""

PAGE_SIZES = (20, 50, 100, 200)
MAX_TEXT = 300


@dataclass(frozen=True)
class EpisodeQuery:
    """One request for a run's episodes: equality filters, truth at the first/last answer, a
    signal's value (``signal`` ``op`` ``value``, at any turn of the episode), the sort, and the page
    (after / before an episode id, or the last page)."""

    run_id: str
    equals: dict[str, str] = field(default_factory=dict)
    passed: dict[str, str] = field(default_factory=dict)
    signal: str | None = None
    op: str | None = None
    value: float | None = None
    sort: str = "stored"
    desc: bool = True
    size: int = 50
    after: str | None = None
    before: str | None = None
    last: bool = False

    def filter_params(self) -> dict[str, str]:
        """The URL parameters of the filters and sort (no page): links keep them."""
        out: dict[str, str] = {**self.equals, **self.passed}
        if self.signal:
            out |= {"signal": self.signal, "op": self.op or ""}
            if self.value is not None:
                out["value"] = repr(self.value) if not float(self.value).is_integer() else str(int(self.value))
        if self.sort != "stored" or not self.desc:
            out |= {"sort": self.sort, "dir": "desc" if self.desc else "asc"}
        if self.size != 50:
            out["size"] = str(self.size)
        return out

    @property
    def filtered(self) -> bool:
        """Whether any filter is set (beyond the run)."""
        return bool(self.equals or self.passed or self.signal)

    def where(self) -> tuple[str, dict[str, Any]]:
        """The SQL predicate over ``episodes e`` and its parameters."""
        preds = ["e.run_id = $run"]
        params: dict[str, Any] = {"run": self.run_id}
        for name, value in self.equals.items():
            preds.append(f"{EQUALS[name]} = $eq_{name}")
            params[f"eq_{name}"] = value
        for name, value in self.passed.items():
            preds.append(f"{PASSED[name]} {PASSED_VALUES[value]}")
        if self.signal:
            preds.append(f"e.episode_id IN (SELECT s.episode_id FROM signals s WHERE s.name = $sig AND {OPS[self.op or 'passed'][1]})")
            params["sig"] = self.signal
            if self.value is not None:
                params["sig_value"] = self.value
        return " AND ".join(preds), params

    def _page(self, key: str, id_: str, cursor_key: Any | None) -> tuple[str, str, dict[str, Any], bool]:
        """(the cursor's condition, ORDER BY, their parameters, backwards) over the sort ``key``
        and the episode id ``id_``."""
        unique = SORTS[self.sort].unique
        backwards = self.before is not None or self.last
        ascending = (not self.desc) != backwards
        cursor = self.after or self.before
        cmp, order = (">", "ASC") if ascending else ("<", "DESC")
        cond, params = "true", {}
        if cursor is not None:
            cond = f"{key} {cmp} $ck" if unique else f"({key} {cmp} $ck OR ({key} = $ck AND {id_} {cmp} $cid))"
            params = {"ck": cursor_key} if unique else {"ck": cursor_key, "cid": cursor}
        return cond, f"{key} {order}" + ("" if unique else f", {id_} {order}"), params, backwards

    def page_sql(self, columns: str, cursor_key: Any | None) -> tuple[str, dict[str, Any], bool]:
        """SQL for this page (one row more than ``size``, to know whether more follow), its
        parameters, and whether it reads backwards (the rows then come in reverse order).
        ``cursor_key`` is the sort key of the ``after`` / ``before`` episode."""
        where, params = self.where()
        cond, order, cparams, backwards = self._page(SORTS[self.sort].key, "e.episode_id", cursor_key)
        sql = f"SELECT {columns} FROM episodes e WHERE {where} AND {cond} ORDER BY {order} LIMIT {self.size + 1}"
        return sql, params | cparams, backwards

    def page_ids_sql(self, cursor_key: Any | None) -> tuple[str, dict[str, Any], bool]:
        """Like :meth:`page_sql`, for a filter that joins (a signal's value): the matching
        episodes are found once, and one row gives their count and this page's episode ids in order."""
        where, params = self.where()
        cond, order, cparams, backwards = self._page("_k", "_id", cursor_key)
        sql = f"""WITH _f AS MATERIALIZED (SELECT {SORTS[self.sort].key} AS _k, e.episode_id AS _id FROM episodes e WHERE {where})
                  SELECT (SELECT count(*) FROM _f) AS matching,
                         (SELECT list(_id ORDER BY {order}) FROM (SELECT _k, _id FROM _f WHERE {cond} ORDER BY {order}
                                                                   LIMIT {self.size + 1})) AS ids"""
        return sql, params | cparams, backwards


def parse_episode_query(run_id: str, query: Mapping[str, str]) -> EpisodeQuery:
    """The :class:`EpisodeQuery` of a run's page from its URL parameters (unknown ones are
    ignored; empty ones mean "no filter"); :class:`BadRequest` for a value that cannot be used."""
    q = {k: v for k, v in query.items() if v != ""}
    for k, v in q.items():
        if len(v) > MAX_TEXT:
            raise BadRequest(f"{k}: at most {MAX_TEXT} characters")
    equals = {k: q[k] for k in EQUALS if k in q}
    passed = {}
    for k in PASSED:
        if k in q:
            if q[k] not in PASSED_VALUES:
                raise BadRequest(f"{k}: one of {', '.join(PASSED_VALUES)}, not {q[k]!r}")
            passed[k] = q[k]
    signal, op, value = q.get("signal"), q.get("op"), None
    if signal:
        op = op or "passed"
        if op not in OPS:
            raise BadRequest(f"op: one of {', '.join(OPS)}, not {op!r}")
        if op not in ("passed", "failed"):
            if "value" not in q:
                raise BadRequest(f"value: a number to compare signal {signal!r} with (op {op})")
            value = _number("value", q["value"])
    elif op and op not in OPS:
        raise BadRequest(f"op: one of {', '.join(OPS)}, not {op!r}")
    sort = q.get("sort", "stored")
    if sort not in SORTS:
        raise BadRequest(f"sort: one of {', '.join(SORTS)}, not {sort!r}")
    direction = q.get("dir", "desc")
    if direction not in ("asc", "desc"):
        raise BadRequest(f"dir: asc or desc, not {direction!r}")
    size = q.get("size", "50")
    if size not in {str(s) for s in PAGE_SIZES}:
        raise BadRequest(f"size: one of {', '.join(map(str, PAGE_SIZES))}, not {size!r}")
    after, before, page = q.get("after"), q.get("before"), q.get("page")
    if after and before:
        raise BadRequest("after and before: one or the other")
    if page not in (None, "last"):
        raise BadRequest(f"page: only 'last', not {page!r}")
    return EpisodeQuery(run_id=run_id, equals=equals, passed=passed, signal=signal, op=op if signal else None,
                        value=value, sort=sort, desc=direction == "desc", size=int(size), after=after,
                        before=before, last=page == "last" and not (after or before))


def _number(name: str, text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise BadRequest(f"{name}: a number, not {text!r}") from None
    if not math.isfinite(v):
        raise BadRequest(f"{name}: a finite number, not {text!r}")
    return v
