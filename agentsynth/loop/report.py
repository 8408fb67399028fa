"""What a loop learned: held-out accuracy per arm × generation × split, with 95% intervals across
seeds and tasks, and the diversity of what each generation's student produced.

Accuracy: a split (``loop``: the loop domains, ``held-out``: the held-out ones) pools its domains'
scored tasks (as ``agentsynth eval`` scores them: once per task, never a task a synthesis run of
the store holds). The estimate is the mean over seeds × tasks; its interval is a two-way
percentile bootstrap that resamples seeds and tasks independently (tasks are shared by every seed
and generation, so both are sources of variation); with one seed it resamples tasks only. The
gain over generation 0 is the mean of the per-(seed, task) differences, with the same bootstrap
over those differences: paired, so much narrower than the two accuracies' intervals suggest.

Diversity (from generation g's synthesis run, i.e. the samples of generation g-1's student):
distinct answer keys per task, pass@1 (the share of first answers the truth accepts), pass@K (the
share of tasks with at least one accepted answer among the K samples), and majority-right (the
share of tasks whose plurality answer the truth accepts: the regime in which majority-vote
self-training can work).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..evaluation import SCORED_EPISODES
from ..store.connection import StoreError, connect
from ..store.queries import turn_answers_sql

CONFIDENCE = 0.95
BOOTSTRAP = 2000


@dataclass(frozen=True)
class AccuracyCell:
    """Accuracy of one arm at one generation on one split."""

    arm: str
    generation: int
    split: str
    accuracy: float | None
    ci_low: float | None
    ci_high: float | None
    seeds: int
    tasks: int
    gain: float | None = None
    gain_low: float | None = None
    gain_high: float | None = None
    """Accuracy minus generation 0's on the same seeds and tasks, with a paired two-way bootstrap
    interval (None at generation 0)."""


@dataclass(frozen=True)
class DiversityCell:
    """What one arm's student sampled in one generation's synthesis (pooled over seeds)."""

    arm: str
    generation: int
    distinct_answers: float
    pass_at_1: float
    pass_at_k: float
    majority_right: float
    selected: float
    samples: int


@dataclass
class LoopReport:
    """A loop's report (see the module docstring)."""

    loop: str
    arms: list[str]
    generations: list[int]
    splits: list[str]
    accuracy: list[AccuracyCell] = field(default_factory=list)
    diversity: list[DiversityCell] = field(default_factory=list)
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)
    domains: dict[str, list[str]] = field(default_factory=dict)

    def cell(self, arm: str, generation: int, split: str) -> AccuracyCell | None:
        """The accuracy cell, or None."""
        return next((c for c in self.accuracy if (c.arm, c.generation, c.split) == (arm, generation, split)), None)

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain data (``--format json``)."""
        from dataclasses import asdict

        return {"loop": self.loop, "arms": self.arms, "generations": self.generations, "splits": self.splits,
                "domains": self.domains, "labels": self.labels,
                "accuracy": [asdict(c) for c in self.accuracy], "diversity": [asdict(c) for c in self.diversity]}


def two_way_bootstrap(outcomes: np.ndarray, *, reps: int = BOOTSTRAP, seed: int = 0,
                      confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile interval of the mean of ``outcomes`` (seeds × tasks, 0/1) resampling seeds and
    tasks independently."""
    rng = np.random.default_rng(seed)
    n_s, n_t = outcomes.shape
    si = rng.integers(n_s, size=(reps, n_s))
    ti = rng.integers(n_t, size=(reps, n_t))
    # mean over resampled rows and columns: weights of rows (count of each seed) times column sums
    w_s = np.stack([np.bincount(r, minlength=n_s) for r in si])  # reps × seeds
    w_t = np.stack([np.bincount(r, minlength=n_t) for r in ti])  # reps × tasks
    means = np.einsum("rs,st,rt->r", w_s, outcomes, w_t) / (n_s * n_t)
    a = (1 - confidence) / 2
    return float(np.quantile(means, a)), float(np.quantile(means, 1 - a))


def _latest_loop(con: Any) -> str | None:
    row = con.execute("SELECT loop FROM loops GROUP BY loop ORDER BY max(updated_at) DESC LIMIT 1").fetchone()
    return row[0] if row else None


def loop_names(store: str | Path) -> list[str]:
    """The loops stored in ``store``, most recent first."""
    con = connect(Path(store), read_only=True)
    try:
        return [r[0] for r in con.execute("SELECT loop FROM loops GROUP BY loop ORDER BY max(updated_at) DESC").fetchall()]
    finally:
        con.close()


def loop_report(store: str | Path, loop: str | None = None, *, reps: int = BOOTSTRAP) -> LoopReport:
    """The report of ``loop`` (default: the most recently updated loop) in ``store``;
    :class:`StoreError` when there is no such loop."""
    store = Path(store)
    if not store.exists():
        raise StoreError(f"no store at {store}")
    con = connect(store, read_only=True)
    try:
        name = loop or _latest_loop(con)
        if name is None:
            raise StoreError(f"no loops in {store} (run agentsynth loop SPEC first)")
        steps = con.execute("SELECT arm, seed, generation, signal, run_id, evaluation_ids, figures FROM loops "
                            "WHERE loop = ? AND phase = 'evaluated' ORDER BY generation, arm, seed", [name]).fetchall()
        if not steps:
            known = [r[0] for r in con.execute("SELECT DISTINCT loop FROM loops ORDER BY 1").fetchall()]
            raise StoreError(f"no finished steps of loop {name!r} in {store}; loops: {', '.join(known) or '(none)'}")
        spec = next((json.loads(f).get("spec") for *_, f in steps if f and json.loads(f).get("spec")), None) or {}
        loop_domains = {d["id"] for d in spec.get("loop_envs", [])}
        stored = list(dict.fromkeys(r[0] for r in steps))
        arms = [a for a in spec.get("arms", []) if a in stored] + [a for a in stored if a not in spec.get("arms", [])]
        report = LoopReport(name, arms, sorted({r[2] for r in steps}), [])
        report.labels = _labels(con, {r[3] for r in steps if r[3]}, steps)
        _accuracy(con, report, steps, loop_domains, reps)
        _diversity(con, report, steps)
    finally:
        con.close()
    return report


def _labels(con: Any, signals: set[str], steps: list[tuple[Any, ...]]) -> dict[str, dict[str, Any]]:
    by_signal = {r[0]: dict(zip(("source", "openness", "meta_level", "task_relevant"), r[1:])) for r in con.execute(
        "SELECT name, source, openness, meta_level, task_relevant FROM signal_types WHERE list_contains(?, name)",
        [sorted(signals)]).fetchall()}
    return {arm: {"signal": sig, **by_signal.get(sig, {})} for arm, _s, _g, sig, *_ in steps if sig}


def _accuracy(con: Any, report: LoopReport, steps: list[tuple[Any, ...]], loop_domains: set[str], reps: int) -> None:
    eval_ids = sorted({e for r in steps for e in json.loads(r[5] or "[]")})
    runs = {r[0]: r[1] for r in con.execute(
        "SELECT evaluation_id, run_id FROM evaluations WHERE list_contains(?, evaluation_id)", [eval_ids]).fetchall()}
    rows = con.execute(SCORED_EPISODES + "SELECT run_id, env_id, coalesce(domain, env_id), task_id, passed_first "
                       "FROM ev WHERE k = 1 AND NOT leaked", {"runs": sorted(set(runs.values()))}).fetchall()
    by_run: dict[str, dict[tuple[str, str], dict[str, bool]]] = defaultdict(lambda: defaultdict(dict))
    for run_id, env_id, domain, task_id, passed in rows:
        split = "loop" if env_id in loop_domains or domain in loop_domains else "held-out"
        by_run[run_id][(split, domain)][task_id] = bool(passed)
    splits = [s for s in ("loop", "held-out") if any(s == k[0] for r in by_run.values() for k in r)]
    report.splits = splits
    for s in splits:
        report.domains[s] = sorted({k[1] for r in by_run.values() for k in r if k[0] == s})
    cells: dict[tuple[str, int], dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    for arm, seed, g, _sig, _run, ids, _f in steps:
        for e in json.loads(ids or "[]"):
            if e in runs:
                cells[(arm, g)][seed].add(runs[e])
    def outcomes(arm: str, g: int, split: str) -> dict[int, dict[tuple[str, str], bool]]:
        return {seed: {(d, t): p for rid in run_ids for (sp, d), tasks in by_run[rid].items() if sp == split
                       for t, p in tasks.items()} for seed, run_ids in cells[(arm, g)].items()}

    for (arm, g) in sorted(cells, key=lambda k: (k[1], report.arms.index(k[0]))):
        for split in splits:
            outcome = outcomes(arm, g, split)
            base = outcomes(arm, 0, split) if g > 0 and (arm, 0) in cells else {}
            common = sorted(set.intersection(*(set(o) for o in outcome.values()))) if outcome else []
            if not common:
                report.accuracy.append(AccuracyCell(arm, g, split, None, None, None, len(outcome), 0))
                continue
            seeds = sorted(outcome)
            m = np.array([[outcome[s][k] for k in common] for s in seeds], dtype=float)
            low, high = two_way_bootstrap(m, reps=reps)
            gain = gain_low = gain_high = None
            paired = [k for k in common if all(k in base.get(s, {}) for s in seeds)] if base else []
            if paired:
                d = np.array([[outcome[s][k] - base[s][k] for k in paired] for s in seeds], dtype=float)
                gain = float(d.mean())
                gain_low, gain_high = two_way_bootstrap(d, reps=reps)
            report.accuracy.append(AccuracyCell(arm, g, split, float(m.mean()), low, high, m.shape[0], m.shape[1],
                                                gain, gain_low, gain_high))


def _diversity(con: Any, report: LoopReport, steps: list[tuple[Any, ...]]) -> None:
    runs = {r[4]: (r[0], r[2], json.loads(r[6] or "{}")) for r in steps if r[4]}
    if not runs:
        return
    rows = con.execute(
        f"SELECT a.run_id, a.task_id, a.answer, s.passed FROM ({turn_answers_sql('$runs', columns={})}) a "  # noqa: S608
        "LEFT JOIN signals s ON s.episode_id = a.episode_id AND s.turn = a.turn AND s.role = 'truth' WHERE a.turn = 1",
        {"runs": sorted(runs)}).fetchall()
    per: dict[str, dict[str, list[tuple[str | None, bool]]]] = defaultdict(lambda: defaultdict(list))
    for run_id, task_id, answer, passed in rows:
        per[run_id][task_id].append((answer, bool(passed)))
    tasks: dict[tuple[str, int], list[tuple[int, float, bool, bool]]] = defaultdict(list)  # per task of the runs
    selected: dict[tuple[str, int], list[tuple[float, int]]] = defaultdict(list)  # (share selected, samples) per run
    for run_id, by_task in per.items():
        arm, g, figures = runs[run_id]
        n = sum(len(v) for v in by_task.values())
        for samples in by_task.values():
            keys = [a for a, _ in samples if a]
            right = {a for a, p in samples if a and p}
            top = Counter(keys).most_common(1)
            tasks[(arm, g)].append((len(set(keys)), float(np.mean([p for _, p in samples])), any(p for _, p in samples),
                                    bool(top) and top[0][0] in right))
        selected[(arm, g)].append((figures.get("selected", 0) / n if n else 0.0, n))
    for (arm, g), stats in sorted(tasks.items(), key=lambda kv: (kv[0][1], report.arms.index(kv[0][0]))):
        sel = selected[(arm, g)]
        distinct, pass1, passk, majority = (float(np.mean(col)) for col in zip(*stats))
        report.diversity.append(DiversityCell(
            arm, g, distinct, pass1, passk, majority,
            float(np.average([share for share, _ in sel], weights=[n for _, n in sel])), sum(n for _, n in sel)))
