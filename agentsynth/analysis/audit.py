"""The information audit: what each signal and each feedback channel tells about truth.

For the chosen runs, every graded turn is an observation of a signal S (binarized by ``passed``),
the run's truth T at that turn, the model's own assessment M and the answer's surface features F
(DESIGN.md, "Measuring information"). Per signal, per feedback channel and per domain the audit
estimates agreement with truth, I(S;T), openness I(S;T|M), the spurious component I(S;F|T), the
acceptance-class entropy, efficiency and (per channel) the feedback gain, each with a bootstrap
interval that resamples tasks (:mod:`agentsynth.analysis.resampling`,
:mod:`agentsynth.analysis.intervals`), and writes the figures to the store's ``audits`` /
``audit_results`` tables.

M is the model's own assessment of the answer: self-consistency (the answer's key agrees with a
plurality key of the run's first-turn answers to the task) where the task has two or more
samples, otherwise its self-review where one was recorded at that turn. (DESIGN.md puts the
self-review first; a single review is itself a noisy closed signal, while the plurality of the
model's samples estimates its belief without that noise, so it comes first here.) A self-review
is always compared with self-consistency, never with itself.

This module is the entry point, :func:`audit`: it picks the runs, loads their observations
(:mod:`agentsynth.analysis.observations`), computes the figures
(:mod:`agentsynth.analysis.figures`) and stores them (:mod:`agentsynth.analysis.results`);
:func:`stored_audit` reads a stored audit back.
"""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..store.connection import StoreError, connect
from ..store.probes import describe_flags, latest_flags
from .figures import compute
from .observations import _load, channel_signals  # package-internal
from .results import AuditResult, AuditRow, _save  # package-internal


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
    con = connect(store, read_only=not save, create=False)
    try:
        names, ids = resolve_runs(con, runs)
        with ThreadPoolExecutor(max_workers=1) as pool:  # a second core: the weights, then the channels
            data = _load(con, ids, pool, bootstrap, seed)
            if not data.n_tasks:
                raise StoreError(f"run(s) {', '.join(names)} have no finished episodes to audit")
            rows = compute(data, pool, confidence=confidence, min_tasks=min_tasks, min_n=min_n)
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


def stored_audit(con: Any, audit_id: str) -> AuditResult | None:
    """The audit ``audit_id`` as stored in ``audits`` / ``audit_results`` (None if there is none),
    with its signals' labels, its channels' signals and the probe flags as they are now."""
    head = con.execute("SELECT run_ids::VARCHAR, run_names::VARCHAR, bootstrap, confidence, min_tasks FROM audits "
                       "WHERE audit_id = ?", [audit_id]).fetchone()
    if head is None:
        return None
    run_ids, names = json.loads(head[0]), json.loads(head[1])
    rows = [AuditRow(*r) for r in con.execute(
        "SELECT scope, name, domain, metric, estimate, ci_low, ci_high, n, n_tasks, coalesce(note, '') FROM audit_results "
        "WHERE audit_id = ? ORDER BY scope, name, domain NULLS FIRST, metric", [audit_id]).fetchall()]
    signals = sorted({r.name for r in rows if r.scope == "signal"})
    labels = {name: {"source": src, "openness": op, "meta_level": ml, "task_relevant": tr}
              for name, src, op, ml, tr in con.execute(
                  "SELECT name, source, openness, meta_level, task_relevant FROM signal_types WHERE list_contains(?, name)",
                  [signals]).fetchall()}
    return AuditResult(
        audit_id=audit_id, runs=names, run_ids=run_ids, bootstrap=head[2], confidence=head[3], min_tasks=head[4],
        rows=rows, labels={s: labels.get(s, {}) for s in signals}, channel_signal=channel_signals(con, run_ids),
        domains=sorted({r.domain for r in rows if r.domain is not None}), saved=True,
        probe_flags=_probe_flags(con, run_ids),
    )


def _probe_flags(con: Any, run_ids: list[str]) -> dict[str, str]:
    """Signal name -> the latest probe flags of that grader in each environment of the runs."""
    envs = [r[0] for r in con.execute("SELECT DISTINCT env_id FROM episodes WHERE list_contains(?, run_id) ORDER BY 1",
                                      [run_ids]).fetchall()]
    out: dict[str, list[str]] = {}
    for (env, grader), flags in sorted(latest_flags(con, envs).items()):
        out.setdefault(grader, []).append(f"{env}: {describe_flags(flags)}")
    return {g: "; ".join(parts) for g, parts in out.items()}
