"""The information audit: what each signal and each feedback channel tells about truth.

For the chosen runs, every graded turn is an observation of a signal S (binarized by ``passed``),
the run's truth T at that turn, the model's own assessment M and the answer's surface features F
(DESIGN.md, "Measuring information"). Per signal, per feedback channel and per domain the audit
estimates agreement with truth, I(S;T), openness I(S;T|M), the spurious component I(S;F|T), the
acceptance-class entropy, efficiency and (per channel) the feedback gain, each with a bootstrap
interval that resamples tasks (:mod:`agentsynth.analysis.estimators`), and writes the figures to
the store's ``audits`` / ``audit_results`` tables.

M is the model's own assessment of the answer: self-consistency (the answer's key agrees with a
plurality key of the run's first-turn answers to the task) where the task has two or more
samples, otherwise its self-review where one was recorded at that turn. (DESIGN.md puts the
self-review first; a single review is itself a noisy closed signal, while the plurality of the
model's samples estimates its belief without that noise, so it comes first here.) A self-review
is always compared with self-consistency, never with itself.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..store.clock import utcnow
from ..store.connection import StoreError, connect
from ..store.probes import describe_flags, latest_flags
from ..store.transaction import transaction
from . import estimators as est
from .observations import _FEEDBACK, _GRADED, _PASSED, N_FEATURES, _Data, _load  # package-internal

SPREAD_METRICS = {"signal": ("mi", "openness"), "channel": ("gain", "openness")}


@dataclass(frozen=True)
class AuditRow:
    """One figure: ``scope`` 'signal' or 'channel', the signal or channel ``name``, ``domain``
    (None: all domains pooled), the ``metric`` and its :class:`~agentsynth.analysis.estimators.Estimate`
    fields; across-domain summaries are metrics named ``<metric>_min`` / ``_max`` / ``_spread``."""

    scope: str
    name: str
    domain: str | None
    metric: str
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    n_tasks: int
    note: str = ""


@dataclass
class AuditResult:
    """What :func:`audit` measured: its rows, the labels of each signal, and where it was saved."""

    audit_id: str
    runs: list[str]
    run_ids: list[str]
    bootstrap: int
    confidence: float
    min_tasks: int
    rows: list[AuditRow]
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)
    channel_signal: dict[str, str] = field(default_factory=dict)
    domains: list[str] = field(default_factory=list)
    saved: bool = False
    probe_flags: dict[str, str] = field(default_factory=dict)
    """Per signal, the flags of the latest ``agentsynth probe`` of that grader in the runs'
    environments (``"pairs: hackable; arithmetic: ok"``); empty when the store holds none."""

    def get(self, scope: str, name: str, metric: str, domain: str | None = None) -> AuditRow | None:
        """The row for (scope, name, metric, domain), or None."""
        for r in self.rows:
            if (r.scope, r.name, r.metric, r.domain) == (scope, name, metric, domain):
                return r
        return None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``--format json``)."""
        return {
            "audit_id": self.audit_id, "runs": self.runs, "run_ids": self.run_ids, "bootstrap": self.bootstrap,
            "confidence": self.confidence, "min_tasks": self.min_tasks, "domains": self.domains,
            "labels": self.labels, "channel_signal": self.channel_signal, "probe_flags": self.probe_flags,
            "rows": [asdict(r) for r in self.rows],
        }


# ---- computing -----------------------------------------------------------------------------

def _st(joint: np.ndarray) -> np.ndarray:
    """(…, s, f, t) -> (…, s, t)."""
    return joint.sum(axis=-2)


def _agreement_stats(*keys: str) -> dict[str, Any]:
    """Statistics ``keys`` of :func:`~agentsynth.analysis.estimators.agreement` of a (…, s, f, t)
    table. Asked of one table in turn, they share one ``agreement`` of it."""
    memo: dict[int, tuple[np.ndarray, dict[str, np.ndarray]]] = {}

    def of(j: np.ndarray) -> dict[str, np.ndarray]:
        hit = memo.get(id(j))
        if hit is None or hit[0] is not j:
            if len(memo) > 1:
                memo.clear()
            hit = memo[id(j)] = (j, est.agreement(_st(j)))
        return hit[1]

    return {key: (lambda j, key=key: of(j)[key]) for key in keys}


def _mi(j: np.ndarray) -> np.ndarray:
    return est.mutual_information(_st(j))


def _spurious(j: np.ndarray) -> np.ndarray:
    return est.conditional_mutual_information(j)  # X = S, Y = F, Z = T


def _openness(j: np.ndarray) -> np.ndarray:
    return est.conditional_mutual_information(j)  # X = S, Y = T, Z = M


def _pass_first(j: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return j[..., 1, :].sum(-1) / j.sum((-1, -2))


def _pass_last(j: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return j[..., :, 1].sum(-1) / j.sum((-1, -2))


def _gain(j: np.ndarray) -> np.ndarray:
    return _pass_last(j) - _pass_first(j)


@dataclass
class _Stack:
    """Per-task tables (counts, or values to sum) side by side in float32, to be resampled in one
    product with the weights per domain. Table ``i`` holds the cells ``cells[i]`` (flat indices)
    of a table of ``shapes[i]`` (the others are 0) in columns ``bounds[i]:bounds[i + 1]``; ``sums``
    has, per table and per domain index with data (None: the tasks without a domain), its summed
    row, observations and tasks with data; ``pooled`` the observations and tasks over all tasks."""

    cells: list[np.ndarray]
    shapes: list[tuple[int, ...]]
    flat: np.ndarray
    bounds: np.ndarray
    sums: list[dict[int | None, tuple[np.ndarray, int, int]]]
    pooled: list[tuple[int, int]]


@dataclass
class _Table:
    """A per-task table ready for :meth:`_Auditor.figures`: per domain index (None: the tasks
    without a domain) with data, and pooled: the summed table (``shape``), its resamples
    ``(B, *shape)``, the observations and the tasks with data."""

    shape: tuple[int, ...]
    parts: dict[int | None, tuple[np.ndarray, np.ndarray, int, int]]
    pooled: tuple[np.ndarray, np.ndarray, int, int]


_Counts = tuple[np.ndarray, np.ndarray, tuple[int, ...]]  # per-task table, the cells it holds, their table's shape
Step = Callable[[], list[AuditRow]]  # computes figures: the rows


class _Auditor:
    """Computes every figure for one loaded dataset with one set of bootstrap weights.

    :meth:`signal` and :meth:`channel` build their per-task tables at once (while the weights
    may still be being drawn) and return the step that computes the figures, which needs
    :attr:`W`."""

    def __init__(self, data: _Data, *, confidence: float, min_tasks: int, min_n: int):
        self.d = data
        self.conf = confidence
        self.min_tasks = min_tasks
        self.min_n = min_n
        self.W = np.zeros((0, data.n_tasks), np.float32)  # the bootstrap weights (B, n_tasks): set before any step
        # tasks are ordered by domain, so each domain is a slice (tasks without a domain come first)
        starts = np.searchsorted(data.task_domain, np.arange(len(data.domains) + 1))
        self.segments: list[tuple[int | None, slice]] = [(None, slice(0, int(starts[0])))]
        self.segments += [(d, slice(int(starts[d]), int(starts[d + 1]))) for d in range(len(data.domains))]
        self.dom_tasks = [idx for _, idx in self.segments[1:]]
        # per turn, the codes every signal's tables share: task, t, (f, t), and where they are known
        o = data.turns
        self.task = o["task"].astype(np.int64)
        self.t_known = o["t"] >= 0
        self.t2 = o["t"].astype(np.int64) * 2
        self.ft_known = self.t_known & (o["f"] >= 0)
        self.ft = o["f"].astype(np.int64) * 2 + o["t"]
        # the answered turns in (task, answer key) order, for the acceptance entropy
        answered = np.flatnonzero(o["answer"] >= 0)
        self.n_keys = int(o["answer"].max(initial=-1)) + 1
        pair = self.task[answered] * self.n_keys + o["answer"][answered]
        by_pair = np.argsort(pair, kind="stable")
        self.answered, self.pair = answered[by_pair], pair[by_pair]

    def _counts(self, task: np.ndarray, cell: np.ndarray, shape: tuple[int, ...]) -> _Counts:
        """Per-task counts of observations in the flat cells ``cell`` of a table of ``shape``:
        ``(n_tasks, len(cells))`` int64 counts of only the cells that occur, those cells, ``shape``."""
        size = math.prod(shape)
        cells = np.flatnonzero(np.bincount(cell, minlength=size))
        if len(cells) < size:  # number the cells that occur
            column = np.zeros(size, np.int64)
            column[cells] = np.arange(len(cells))
            cell = column[cell]
        n = self.d.n_tasks
        table = np.bincount(task * len(cells) + cell, minlength=n * len(cells))
        return table.reshape(n, len(cells)), cells, shape

    def _stack(self, *tables: _Counts) -> _Stack:
        """``(table, cells, shape)`` per-task tables (see :meth:`_counts`) -> :class:`_Stack`."""
        flats = [t.reshape(t.shape[0], -1) for t, _, _ in tables]
        sums: list[dict[int | None, tuple[np.ndarray, int, int]]] = []
        pooled = []
        for flat in flats:
            per_task = flat.sum(axis=1)
            sums.append({di: (flat[idx].sum(axis=0), int(round(float(per_task[idx].sum()))),
                              int(np.count_nonzero(per_task[idx] > 0)))
                         for di, idx in self.segments if per_task[idx].any()})
            pooled.append((int(round(float(per_task.sum()))), int(np.count_nonzero(per_task > 0))))
        return _Stack([c for _, c, _ in tables], [s for _, _, s in tables],
                      np.concatenate(flats, axis=1, dtype=np.float32), np.cumsum([0, *(f.shape[1] for f in flats)]),
                      sums, pooled)

    def _prepare(self, stack: _Stack) -> list[_Table]:
        """The tables of ``stack`` with their resamples: per domain, its tasks' weights @ its rows
        (for all the tables at once: one pass over the weights); pooled, the sums over the domains
        (and the tasks without a domain)."""
        B = self.W.shape[0]

        def full(x: np.ndarray, i: int) -> np.ndarray:
            out = np.zeros((*x.shape[:-1], math.prod(stack.shapes[i])))
            out[..., stack.cells[i]] = x
            return out

        tables = [_Table(shape, {}, (full(np.zeros(len(stack.cells[i])), i), np.zeros((B, math.prod(shape))),
                                     *stack.pooled[i]))
                  for i, shape in enumerate(stack.shapes)]
        for di, idx in self.segments:
            with_data = [i for i, sums in enumerate(stack.sums) if di in sums]
            if not with_data:
                continue
            resampled = est.resample(stack.flat[idx], self.W[:, idx])
            for i in with_data:
                total, n, k = stack.sums[i][di]
                part = (full(total, i), full(resampled[:, stack.bounds[i]:stack.bounds[i + 1]], i), n, k)
                tables[i].parts[di] = part
                pooled_total, pooled_resampled, n_all, k_all = tables[i].pooled
                tables[i].pooled = (pooled_total + part[0], pooled_resampled + part[1], n_all, k_all)
        return tables

    # one table, many statistics, pooled and per domain, plus the across-domain spread
    def figures(self, rows: list[AuditRow], scope: str, name: str, table: _Table, stats: dict[str, Any],
                spread: tuple[str, ...], scale: dict[str, tuple[float, str]] | None = None,
                min_n: int | None = None) -> None:
        per_domain: dict[str, list[tuple[est.Estimate, np.ndarray | None]]] = {m: [] for m in spread if m in stats}
        for di, dom in [(None, None), *enumerate(self.d.domains)]:
            if di is not None and di not in table.parts:
                continue
            total, resampled, n, k = table.pooled if di is None else table.parts[di]
            results = est.bootstrap_from(stats, total.reshape(table.shape), resampled, n=n, n_clusters=k,
                                         B=self.W.shape[0], confidence=self.conf, min_clusters=self.min_tasks,
                                         min_n=self.min_n if min_n is None else min_n)
            for metric, (e, resamples) in results.items():
                rows.append(_row(scope, name, dom, metric, e))
                if metric in per_domain and di is not None:
                    per_domain[metric].append((e, resamples))
                if scale and metric in scale and di is None:
                    factor, derived = scale[metric]
                    rows.append(_scaled(scope, name, derived, e, factor))
        for metric, items in per_domain.items():
            for key, e in est.spread_of(items, self.conf, total_domains=len(items)).items():
                rows.append(_row(scope, name, None, f"{metric}_{key}", e))

    def _observations(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The turns ``name`` graded (mask), what it said there (int64 s: 1 passed) and M for it."""
        o, b = self.d.turns, self.d.flags[name]
        mask = (b & _GRADED) != 0
        s = ((b & _PASSED) != 0).astype(np.int64)
        is_review = self.d.labels.get(name, {}).get("source") == "self" and name != "self_consistency"
        m = o["m_sc"] if is_review else np.where(o["m_sc"] >= 0, o["m_sc"], o["m_review"])
        return mask, s, m

    def _tables(self, mask: np.ndarray, s: np.ndarray, m: np.ndarray) -> list[_Counts]:
        """The per-task (s, f, t) and (s, t, m) tables of the observations in ``mask``."""
        keep = mask & self.ft_known
        sft = self._counts(self.task[keep], s[keep] * (2 * N_FEATURES) + self.ft[keep], (2, N_FEATURES, 2))
        keep = mask & self.t_known & (m >= 0)
        stm = self._counts(self.task[keep], s[keep] * 4 + self.t2[keep] + m[keep], (2, 2, 2))
        return [sft, stm]

    def signal(self, name: str) -> Step:
        mask, s, m = self._observations(name)
        accepted, n_task, ok = self._accepted(mask & (s == 1))
        stack = self._stack(*self._tables(mask, s, m), *accepted)
        graded = int(mask.sum())

        def step() -> list[AuditRow]:
            rows: list[AuditRow] = []
            sft, stm, *acceptance = self._prepare(stack)
            self.figures(rows, "signal", name, sft, {
                **_agreement_stats("pass_rate", "accuracy", "precision", "recall", "kappa"),
                "mi": _mi, "spurious": _spurious,
            }, SPREAD_METRICS["signal"])
            episodes = self.d.episodes_with.get(name, 0)
            tokens = self.d.tokens.get(name, 0)
            self.figures(rows, "signal", name, stm, {"openness": _openness}, SPREAD_METRICS["signal"], scale={
                "openness": (graded / episodes if episodes else 0.0, "bits_per_episode"),
            })
            openness = next(r for r in rows if r.metric == "openness" and r.domain is None)
            e = est.Estimate(openness.estimate, openness.ci_low, openness.ci_high, openness.n, openness.n_tasks,
                             openness.note)
            rows.append(_scaled("signal", name, "bits_per_1k_tokens", e, graded / (tokens / 1000) if tokens else None))
            if not acceptance:
                rows.append(_row("signal", name, None, "acceptance_entropy",
                                 est.Estimate(None, None, None, 0, 0, "no accepted answers")))
                return rows
            start = len(rows)
            self.figures(rows, "signal", name, acceptance[0], {"acceptance_entropy": _mean_of_tasks}, (), min_n=0)
            for i in range(start, len(rows)):  # n = accepted answers, n_tasks = tasks with two or more
                r = rows[i]
                idx = slice(None) if r.domain is None else self.dom_tasks[self.d.domains.index(r.domain)]
                rows[i] = replace(r, n=int(n_task[idx][ok[idx]].sum()), n_tasks=int(ok[idx].sum()))
            return rows

        return step

    def _accepted(self, accepted: np.ndarray) -> tuple[list[_Counts], np.ndarray, np.ndarray]:
        """The per-task table of the acceptance entropy (none without accepted answers): per task
        with >= 2 accepted answers the entropy of their keys, and 1; with the accepted answers
        per task and the tasks with >= 2 of them."""
        pair = self.pair[accepted[self.answered]]  # accepted (task, key) pairs, sorted
        if not len(pair):
            return [], np.zeros(0), np.zeros(0, bool)
        first = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]])
        counts = np.diff(np.r_[first, len(pair)])
        ptask = pair[first] // self.n_keys
        n_tasks = self.d.n_tasks
        n_task = np.bincount(ptask, weights=counts, minlength=n_tasks)
        k_task = np.bincount(ptask, minlength=n_tasks)
        with np.errstate(divide="ignore", invalid="ignore"):
            p = counts / n_task[ptask]
            h = np.bincount(ptask, weights=-p * np.log2(p), minlength=n_tasks)
            h = h + (k_task - 1) / (2 * n_task * np.log(2))  # Miller-Madow
        ok = n_task >= 2
        table = np.zeros((n_tasks, 2))
        table[ok, 0] = h[ok]
        table[ok, 1] = 1.0
        return [(table, np.arange(2), (2,))], n_task, ok

    def channel(self, ci: int, name: str) -> Step:
        ep = self.d.eps
        at = np.flatnonzero((ep["chan"] == ci) & (ep["first"] >= 0) & (ep["last"] >= 0))
        cell = ep["first"][at].astype(np.int64) * 2 + ep["last"][at]
        tables = [self._counts(ep["task"][at].astype(np.int64), cell, (2, 2))]
        sig = self.d.channel_signal.get(name)
        if sig is not None and sig in self.d.signals:
            mask, s, m = self._observations(sig)
            mask &= (self.d.turns["chan"] == ci) & ((self.d.flags[sig] & _FEEDBACK) != 0)
            tables += self._tables(mask, s, m)
        stack = self._stack(*tables)

        def step() -> list[AuditRow]:
            rows: list[AuditRow] = []
            first_last, *feedback = self._prepare(stack)
            self.figures(rows, "channel", name, first_last,
                         {"first_pass": _pass_first, "last_pass": _pass_last, "gain": _gain},
                         SPREAD_METRICS["channel"][:1])
            if feedback:
                sft, stm = feedback
                self.figures(rows, "channel", name, sft, {
                    **_agreement_stats("accuracy", "kappa"), "mi": _mi, "spurious": _spurious,
                }, ())
                self.figures(rows, "channel", name, stm, {"openness": _openness}, SPREAD_METRICS["channel"][1:])
            return rows

        return step


def _row(scope: str, name: str, domain: str | None, metric: str, e: est.Estimate) -> AuditRow:
    return AuditRow(scope, name, domain, metric, e.estimate, e.ci_low, e.ci_high, e.n, e.n_clusters, e.note)


def _scaled(scope: str, name: str, metric: str, e: est.Estimate, factor: float | None) -> AuditRow:
    """``e`` times ``factor`` as ``metric`` (pooled); None: no number, the signal cost no tokens."""
    if factor is None:
        free = "free: producing the signal cost no model tokens"
        return _row(scope, name, None, metric, est.Estimate(None, None, None, e.n, e.n_clusters, free))
    f = (lambda v: None if v is None else v * factor)
    return _row(scope, name, None, metric,
                est.Estimate(f(e.estimate), f(e.ci_low), f(e.ci_high), e.n, e.n_clusters, e.note))


def _mean_of_tasks(t: np.ndarray) -> np.ndarray:
    """Weighted mean of per-task values: t[..., 0] sums values, t[..., 1] counts tasks."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return t[..., 0] / t[..., 1]


# ---- the entry point -----------------------------------------------------------------------

def resolve_runs(con: Any, runs: list[str] | None) -> tuple[list[str], list[str]]:
    """Run names -> (names, ids); default: the latest synthesis run. Unknown names raise."""
    known = con.execute("SELECT name, run_id, kind FROM runs ORDER BY created_at").fetchall()
    if not known:
        raise StoreError("the store has no runs yet (run `agentsynth run SPEC` first)")
    if not runs:
        synth = [r for r in known if r[2] == "synthesis"]
        if not synth:
            raise StoreError("the store has no synthesis runs (only evaluations)")
        return [synth[-1][0]], [synth[-1][1]]
    by_name = {n: i for n, i, _ in known}
    missing = [r for r in runs if r not in by_name]
    if missing:
        raise StoreError(f"no run named {', '.join(map(repr, missing))}; runs: {', '.join(by_name)}")
    return list(runs), [by_name[r] for r in runs]


def _compute(data: _Data, pool: ThreadPoolExecutor, *, confidence: float, min_tasks: int, min_n: int) -> list[AuditRow]:
    """Every figure of ``data``: the signals' here, the channels' in ``pool`` (which is drawing
    the bootstrap weights first); the rows in a fixed order, the signals' then the channels'."""
    a = _Auditor(data, confidence=confidence, min_tasks=min_tasks, min_n=min_n)
    channels = [pool.submit(a.channel, ci, name) for ci, name in enumerate(data.channels)]
    signals = [a.signal(name) for name in data.signals]  # their tables, while the weights are drawn
    a.W = data.weights.result()
    channel_rows = [pool.submit(lambda c=c: c.result()()) for c in channels]
    rows = [row for step in signals for row in step()]
    return rows + [row for c in channel_rows for row in c.result()]


def audit(store: str | Path, runs: list[str] | None = None, *, bootstrap: int = 500, confidence: float = 0.95,
          seed: int = 0, min_tasks: int = 10, min_n: int = 30, save: bool = True) -> AuditResult:
    """Audit the signals and feedback channels of ``runs`` (default: the latest synthesis run)
    in ``store``; with ``save`` write the figures to ``audits`` / ``audit_results``.

    ``bootstrap`` resamples of tasks give intervals at ``confidence``; a figure over fewer than
    ``min_tasks`` tasks or ``min_n`` observations has no number, only a note saying so.
    """
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1")
    if bootstrap < 50:
        raise ValueError("bootstrap must be at least 50 resamples")
    con = connect(store, read_only=not save, create=False)
    try:
        names, ids = resolve_runs(con, runs)
        with ThreadPoolExecutor(max_workers=1) as pool:  # a second core: the weights, then the channels
            data = _load(con, ids, pool, bootstrap, seed)
            if not data.n_tasks:
                raise StoreError(f"run(s) {', '.join(names)} have no finished episodes to audit")
            rows = _compute(data, pool, confidence=confidence, min_tasks=min_tasks, min_n=min_n)
        result = AuditResult(
            audit_id="a-" + uuid.uuid4().hex[:12], runs=names, run_ids=ids, bootstrap=bootstrap,
            confidence=confidence, min_tasks=min_tasks, rows=rows,
            labels={s: data.labels.get(s, {}) for s in data.signals}, channel_signal=data.channel_signal,
            domains=data.domains, probe_flags=_probe_flags(con, ids),
        )
        if save:
            _save(con, result, seed)
            result.saved = True
        return result
    finally:
        con.close()


def _probe_flags(con: Any, run_ids: list[str]) -> dict[str, str]:
    """Signal name -> the latest probe flags of that grader in each environment of the runs."""
    envs = [r[0] for r in con.execute("SELECT DISTINCT env_id FROM episodes WHERE list_contains(?, run_id) ORDER BY 1",
                                      [run_ids]).fetchall()]
    out: dict[str, list[str]] = {}
    for (env, grader), flags in sorted(latest_flags(con, envs).items()):
        out.setdefault(grader, []).append(f"{env}: {describe_flags(flags)}")
    return {g: "; ".join(parts) for g, parts in out.items()}


_RESULT_COLUMNS = {"audit_id": "VARCHAR", "scope": "VARCHAR", "name": "VARCHAR", "domain": "VARCHAR",
                   "metric": "VARCHAR", "estimate": "DOUBLE", "ci_low": "DOUBLE", "ci_high": "DOUBLE",
                   "n": "BIGINT", "n_tasks": "BIGINT", "note": "VARCHAR"}


def _save(con: Any, r: AuditResult, seed: int) -> None:
    rows = [(r.audit_id, x.scope, x.name, x.domain, x.metric, _f(x.estimate), _f(x.ci_low), _f(x.ci_high),
             x.n, x.n_tasks, x.note or None) for x in r.rows]
    columns = {c: [row[i] for row in rows] for i, c in enumerate(_RESULT_COLUMNS)}
    # one list parameter per column, unnested side by side into rows
    select = ", ".join(f"unnest(${c}::{t}[]) AS {c}" for c, t in _RESULT_COLUMNS.items())
    with transaction(con):
        con.execute(
            "INSERT INTO audits VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [r.audit_id, utcnow(), json.dumps(r.run_ids), json.dumps(r.runs), True, r.bootstrap, r.confidence, seed,
             r.min_tasks, __version__],
        )
        con.execute(f"INSERT INTO audit_results BY NAME SELECT {select}", columns)


def _f(v: float | None) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)
