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
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..store.clock import utcnow
from ..store.connection import StoreError, connect
from ..store.queries import turn_answers_sql
from ..store.transaction import transaction
from . import estimators as est

HEDGES = ("i think", "maybe", "perhaps", "probably", "possibly", "likely", "might", "not sure", "i believe", "i guess")
LENGTH_BUCKETS = (60, 200, 600)  # characters: < 60, < 200, < 600, longer
N_FEATURES = (len(LENGTH_BUCKETS) + 1) * 4  # length bucket x has an answer line x hedges

SIGNAL_METRICS = ("pass_rate", "accuracy", "precision", "recall", "kappa", "mi", "openness", "spurious",
                  "acceptance_entropy", "bits_per_episode", "bits_per_1k_tokens")
CHANNEL_METRICS = ("first_pass", "last_pass", "gain", "accuracy", "kappa", "mi", "openness", "spurious")
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
            "labels": self.labels, "channel_signal": self.channel_signal,
            "rows": [asdict(r) for r in self.rows],
        }


# ---- loading ---------------------------------------------------------------------------------

def _observations_sql() -> str:
    hedge = "|".join(HEDGES)
    b1, b2, b3 = LENGTH_BUCKETS
    return f"""
        WITH ep AS (
            SELECT episode_id, task_id, domain, feedback FROM episodes
            WHERE list_contains($runs, run_id) AND status = 'ok'
        ), sig AS (
            SELECT s.episode_id, s.turn, s.name, bool_or(s.passed) AS passed, bool_or(s.role = 'feedback') AS is_fb,
                   bool_or(s.role = 'truth') AS is_truth, max(s.tokens) AS tokens
            FROM signals s SEMI JOIN ep USING (episode_id) GROUP BY ALL
        ), truth AS (
            SELECT episode_id, turn, bool_or(passed) AS truth FROM sig WHERE is_truth GROUP BY ALL
        ), review AS (
            SELECT episode_id, turn, bool_or(passed) AS reviewed FROM sig
            WHERE name IN (SELECT name FROM signal_types WHERE source = 'self' AND name <> 'self_consistency')
            GROUP BY ALL
        ), ans AS ({turn_answers_sql("$runs")})
        SELECT sig.name, ep.task_id, ep.domain, ep.feedback, sig.is_fb, sig.passed, truth.truth,
               review.reviewed, ans.self_consistent, ans.answer,
               (CASE WHEN length(ans.content) < {b1} THEN 0 WHEN length(ans.content) < {b2} THEN 1
                     WHEN length(ans.content) < {b3} THEN 2 ELSE 3 END) * 4
               + 2 * regexp_matches(ans.content, '(?i)answer[ \\t]*[:=]')::INT
               + regexp_matches(lower(ans.content), '\\b({hedge})\\b')::INT AS features
        FROM sig JOIN ep USING (episode_id)
             LEFT JOIN truth USING (episode_id, turn)
             LEFT JOIN review USING (episode_id, turn)
             LEFT JOIN ans USING (episode_id, turn)
        WHERE sig.passed IS NOT NULL
    """


@dataclass
class _Data:
    tasks: list[str]
    domains: list[str]
    task_domain: np.ndarray  # domain index per task
    signals: list[str]
    obs: dict[str, np.ndarray]  # per observation: sig, task, chan, is_fb, s, t, m_review, m_sc, f, acc_key
    channels: list[str]
    eps: dict[str, np.ndarray]  # per episode: task, chan, first, last
    episodes_with: dict[str, int]  # signal -> episodes it graded
    tokens: dict[str, int]  # signal -> model tokens spent producing it
    labels: dict[str, dict[str, Any]]
    channel_signal: dict[str, str]


def _codes(col: Any) -> tuple[np.ndarray, list[str]]:
    """Encode an Arrow string column against its sorted distinct values (so codes, and with them
    the bootstrap's task order, do not depend on the order rows came back in): (int32 codes
    with -1 for null, values)."""
    import pyarrow.compute as pc

    values = sorted(v for v in pc.unique(col).to_pylist() if v is not None)
    return _index_in(col, values), values


def _index_in(col: Any, values: list[str]) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    idx = pc.index_in(col, value_set=pa.array(values, pa.string()))
    return pc.fill_null(idx, -1).to_numpy(zero_copy_only=False).astype(np.int32)


def _bool_codes(col: Any) -> np.ndarray:
    """Boolean Arrow column -> int8 codes (1 true, 0 false, -1 null)."""
    import pyarrow.compute as pc

    vals = pc.fill_null(pc.cast(col, "int8"), -1)
    return vals.to_numpy(zero_copy_only=False).astype(np.int8)


def _load(con: Any, run_ids: list[str]) -> _Data:
    params = {"runs": run_ids}
    epi = con.sql(
        "SELECT task_id, domain, feedback, passed_first, passed_last FROM episodes "
        "WHERE list_contains($runs, run_id) AND status = 'ok'", params=params,
    ).to_arrow_table()
    obs = con.sql(_observations_sql(), params=params).to_arrow_table()
    task_codes, tasks = _codes(epi.column("task_id"))
    dom_codes, domains = _codes(epi.column("domain"))
    chan_codes, channels = _codes(epi.column("feedback"))
    task_domain = np.zeros(len(tasks), np.int32)
    task_domain[task_codes] = dom_codes

    import pyarrow.compute as pc

    sig_codes, signals = _codes(obs.column("name"))
    o_task = _index_in(obs.column("task_id"), tasks)
    answer_codes, _ = _codes(obs.column("answer"))
    o = {
        "sig": sig_codes, "task": o_task, "chan": _index_in(obs.column("feedback"), channels),
        "is_fb": _bool_codes(obs.column("is_fb")), "s": _bool_codes(obs.column("passed")),
        "t": _bool_codes(obs.column("truth")), "m_review": _bool_codes(obs.column("reviewed")),
        "m_sc": _bool_codes(obs.column("self_consistent")),
        "f": pc.fill_null(obs.column("features"), -1).to_numpy(zero_copy_only=False).astype(np.int8),
        "answer": answer_codes,
    }
    eps = {"task": task_codes, "chan": chan_codes, "first": _bool_codes(epi.column("passed_first")),
           "last": _bool_codes(epi.column("passed_last"))}
    per_signal = con.execute(
        """SELECT s.name, count(DISTINCT s.episode_id), sum(s.tokens) FROM (
               SELECT episode_id, turn, name, max(tokens) AS tokens FROM signals
               WHERE episode_id IN (SELECT episode_id FROM episodes WHERE list_contains($runs, run_id) AND status = 'ok')
               GROUP BY ALL) s GROUP BY 1""", params,
    ).fetchall()
    labels = {
        name: {"source": src, "openness": op, "meta_level": ml, "task_relevant": tr}
        for name, src, op, ml, tr in con.execute(
            "SELECT name, source, openness, meta_level, task_relevant FROM signal_types"
        ).fetchall()
    }
    channel_signal = dict(con.execute(
        """SELECT e.feedback, any_value(s.name) FROM signals s JOIN episodes e USING (episode_id)
           WHERE list_contains($runs, e.run_id) AND s.role = 'feedback' GROUP BY 1""", params,
    ).fetchall())
    return _Data(
        tasks=tasks, domains=domains, task_domain=task_domain, signals=signals, obs=o, channels=channels, eps=eps,
        episodes_with={n: int(e) for n, e, _ in per_signal}, tokens={n: int(t or 0) for n, _, t in per_signal},
        labels=labels, channel_signal=channel_signal,
    )


# ---- computing -----------------------------------------------------------------------------

def _st(joint: np.ndarray) -> np.ndarray:
    """(…, s, f, t) -> (…, s, t)."""
    return joint.sum(axis=-2)


def _agreement_stat(key: str):
    return lambda j: est.agreement(_st(j))[key]


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


class _Auditor:
    """Computes every figure for one loaded dataset with one set of bootstrap weights."""

    def __init__(self, data: _Data, *, bootstrap: int, confidence: float, seed: int, min_tasks: int, min_n: int):
        self.d = data
        self.conf = confidence
        self.min_tasks = min_tasks
        self.min_n = min_n
        n_tasks = len(data.tasks)
        self.W = est.bootstrap_weights(n_tasks, bootstrap, np.random.default_rng(seed)) if n_tasks else np.zeros((bootstrap, 0), np.float32)
        self.rows: list[AuditRow] = []
        self.dom_tasks = [np.flatnonzero(data.task_domain == i) for i in range(len(data.domains))]

    # one table, many statistics, pooled and per domain, plus the across-domain spread
    def figures(self, scope: str, name: str, table: np.ndarray, stats: dict[str, Any], spread: tuple[str, ...],
                scale: dict[str, tuple[float, str]] | None = None, min_n: int | None = None) -> None:
        per_domain: dict[str, list[tuple[est.Estimate, np.ndarray | None]]] = {m: [] for m in spread if m in stats}
        for di, dom in [(None, None), *enumerate(self.d.domains)]:
            idx = None if di is None else self.dom_tasks[di]
            tab = table if idx is None else table[idx]
            W = self.W if idx is None else self.W[:, idx]
            if idx is not None and tab.reshape(len(idx), -1).sum() == 0:
                continue
            results = est.bootstrap_many(stats, tab, W, self.conf, min_clusters=self.min_tasks,
                                         min_n=self.min_n if min_n is None else min_n)
            for metric, (e, resamples) in results.items():
                self._add(scope, name, dom, metric, e)
                if metric in per_domain and di is not None:
                    per_domain[metric].append((e, resamples))
                if scale and metric in scale and di is None:
                    factor, derived = scale[metric]
                    self._scaled(scope, name, derived, e, factor)
        for metric, items in per_domain.items():
            for key, e in est.spread_of(items, self.conf, total_domains=len(items)).items():
                self._add(scope, name, None, f"{metric}_{key}", e)

    def _scaled(self, scope: str, name: str, metric: str, e: est.Estimate, factor: float | None) -> None:
        if factor is None:
            self._add(scope, name, None, metric, est.Estimate(None, None, None, e.n, e.n_clusters,
                                                              "free: producing the signal cost no model tokens"))
            return
        f = (lambda v: None if v is None else v * factor)
        self._add(scope, name, None, metric, est.Estimate(f(e.estimate), f(e.ci_low), f(e.ci_high), e.n, e.n_clusters, e.note))

    def _add(self, scope: str, name: str, domain: str | None, metric: str, e: est.Estimate) -> None:
        self.rows.append(AuditRow(scope, name, domain, metric, e.estimate, e.ci_low, e.ci_high, e.n, e.n_clusters, e.note))

    def _tables(self, mask: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        o = self.d.obs
        n = len(self.d.tasks)
        keep = mask & (o["t"] >= 0) & (o["f"] >= 0)
        sft = est.cluster_table(o["task"][keep], (o["s"][keep], o["f"][keep], o["t"][keep]), (2, N_FEATURES, 2), n)
        keep_m = mask & (o["t"] >= 0) & (m >= 0)
        stm = est.cluster_table(o["task"][keep_m], (o["s"][keep_m], o["t"][keep_m], m[keep_m]), (2, 2, 2), n)
        return sft, stm

    def signal(self, si: int, name: str) -> None:
        o = self.d.obs
        mask = o["sig"] == si
        is_review = self.d.labels.get(name, {}).get("source") == "self" and name != "self_consistency"
        m = o["m_sc"] if is_review else np.where(o["m_sc"] >= 0, o["m_sc"], o["m_review"])
        sft, stm = self._tables(mask, m)
        self.figures("signal", name, sft, {
            "pass_rate": _agreement_stat("pass_rate"), "accuracy": _agreement_stat("accuracy"),
            "precision": _agreement_stat("precision"), "recall": _agreement_stat("recall"),
            "kappa": _agreement_stat("kappa"), "mi": _mi, "spurious": _spurious,
        }, SPREAD_METRICS["signal"])
        graded = int(mask.sum())
        episodes = self.d.episodes_with.get(name, 0)
        tokens = self.d.tokens.get(name, 0)
        self.figures("signal", name, stm, {"openness": _openness}, SPREAD_METRICS["signal"], scale={
            "openness": (graded / episodes if episodes else 0.0, "bits_per_episode"),
        })
        openness = next(r for r in reversed(self.rows) if r.metric == "openness" and r.domain is None and r.name == name)
        e = est.Estimate(openness.estimate, openness.ci_low, openness.ci_high, openness.n, openness.n_tasks, openness.note)
        self._scaled("signal", name, "bits_per_1k_tokens", e, graded / (tokens / 1000) if tokens else None)
        self._acceptance(mask, name)

    def _acceptance(self, mask: np.ndarray, name: str) -> None:
        """Mean (over tasks with >= 2 accepted answers) entropy of the accepted answers' keys."""
        o = self.d.obs
        acc = mask & (o["s"] == 1) & (o["answer"] >= 0)
        task, key = o["task"][acc], o["answer"][acc]
        if len(task) == 0:
            self._add("signal", name, None, "acceptance_entropy", est.Estimate(None, None, None, 0, 0, "no accepted answers"))
            return
        pairs, counts = np.unique(np.stack([task.astype(np.int64), key.astype(np.int64)]), axis=1, return_counts=True)
        ptask = pairs[0]
        n_task = np.bincount(ptask, weights=counts, minlength=len(self.d.tasks))
        k_task = np.bincount(ptask, minlength=len(self.d.tasks))
        with np.errstate(divide="ignore", invalid="ignore"):
            p = counts / n_task[ptask]
            h = np.bincount(ptask, weights=-p * np.log2(p), minlength=len(self.d.tasks))
            h = h + (k_task - 1) / (2 * n_task * np.log(2))  # Miller-Madow
        ok = n_task >= 2
        table = np.zeros((len(self.d.tasks), 2))
        table[ok, 0] = h[ok]
        table[ok, 1] = 1.0
        start = len(self.rows)
        self.figures("signal", name, table, {"acceptance_entropy": _mean_of_tasks}, (), min_n=0)
        for i in range(start, len(self.rows)):  # n = accepted answers, n_tasks = tasks with two or more
            r = self.rows[i]
            in_dom = ok if r.domain is None else ok & (self.d.task_domain == self.d.domains.index(r.domain))
            self.rows[i] = replace(r, n=int(n_task[in_dom].sum()), n_tasks=int(in_dom.sum()))

    def channel(self, ci: int, name: str) -> None:
        ep = self.d.eps
        mask = (ep["chan"] == ci) & (ep["first"] >= 0) & (ep["last"] >= 0)
        fl = est.cluster_table(ep["task"][mask], (ep["first"][mask], ep["last"][mask]), (2, 2), len(self.d.tasks))
        self.figures("channel", name, fl, {"first_pass": _pass_first, "last_pass": _pass_last, "gain": _gain},
                     SPREAD_METRICS["channel"][:1])
        sig = self.d.channel_signal.get(name)
        if sig is None or sig not in self.d.signals:
            return
        o = self.d.obs
        mask = (o["sig"] == self.d.signals.index(sig)) & (o["chan"] == ci) & (o["is_fb"] == 1)
        is_review = self.d.labels.get(sig, {}).get("source") == "self" and sig != "self_consistency"
        m = o["m_sc"] if is_review else np.where(o["m_sc"] >= 0, o["m_sc"], o["m_review"])
        sft, stm = self._tables(mask, m)
        self.figures("channel", name, sft, {
            "accuracy": _agreement_stat("accuracy"), "kappa": _agreement_stat("kappa"), "mi": _mi, "spurious": _spurious,
        }, ())
        self.figures("channel", name, stm, {"openness": _openness}, SPREAD_METRICS["channel"][1:])


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
    if not Path(store).exists():
        raise StoreError(f"no store at {store} (run `agentsynth run` first, or pass --store PATH)")
    con = connect(store, read_only=not save)
    try:
        names, ids = resolve_runs(con, runs)
        data = _load(con, ids)
        if not data.tasks:
            raise StoreError(f"run(s) {', '.join(names)} have no finished episodes to audit")
        a = _Auditor(data, bootstrap=bootstrap, confidence=confidence, seed=seed, min_tasks=min_tasks, min_n=min_n)
        for si, name in enumerate(data.signals):
            a.signal(si, name)
        for ci, name in enumerate(data.channels):
            a.channel(ci, name)
        result = AuditResult(
            audit_id="a-" + uuid.uuid4().hex[:12], runs=names, run_ids=ids, bootstrap=bootstrap,
            confidence=confidence, min_tasks=min_tasks, rows=a.rows,
            labels={s: data.labels.get(s, {}) for s in data.signals}, channel_signal=data.channel_signal,
            domains=data.domains,
        )
        if save:
            _save(con, result, seed)
            result.saved = True
        return result
    finally:
        con.close()


def _save(con: Any, r: AuditResult, seed: int) -> None:
    rows = [(r.audit_id, x.scope, x.name, x.domain, x.metric, _f(x.estimate), _f(x.ci_low), _f(x.ci_high),
             x.n, x.n_tasks, x.note or None) for x in r.rows]
    import pyarrow as pa

    cols = ["audit_id", "scope", "name", "domain", "metric", "estimate", "ci_low", "ci_high", "n", "n_tasks", "note"]
    table = pa.table({c: [row[i] for row in rows] for i, c in enumerate(cols)})
    with transaction(con):
        con.execute(
            "INSERT INTO audits VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [r.audit_id, utcnow(), json.dumps(r.run_ids), json.dumps(r.runs), True, r.bootstrap, r.confidence, seed,
             r.min_tasks, __version__],
        )
        con.register("_audit_rows", table)
        try:
            con.execute("INSERT INTO audit_results BY NAME SELECT * FROM _audit_rows")
        finally:
            con.unregister("_audit_rows")


def _f(v: float | None) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)
