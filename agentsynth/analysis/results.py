"""What an audit measured, and storing it: :class:`AuditRow` (one figure), :class:`AuditResult`
(all of an audit's figures with their labels), and writing them to the store's ``audits`` /
``audit_results`` tables.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .._version import __version__
from ..store.clock import utcnow
from ..store.transaction import transaction


@dataclass(frozen=True)
class AuditRow:
    """One figure: ``scope`` 'signal' or 'channel', the signal or channel ``name``, ``domain``
    (None: all domains pooled), the ``metric`` and its :class:`~agentsynth.analysis.intervals.Estimate`
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
    """What :func:`~agentsynth.analysis.audit.audit` measured: its rows, the labels of each signal, and where it was saved."""

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



_RESULT_COLUMNS = {"audit_id": "VARCHAR", "scope": "VARCHAR", "name": "VARCHAR", "domain": "VARCHAR",
                   "metric": "VARCHAR", "estimate": "DOUBLE", "ci_low": "DOUBLE", "ci_high": "DOUBLE",
                   "n": "BIGINT", "n_tasks": "BIGINT", "note": "VARCHAR"}


def _save(con: Any, r: AuditResult, seed: int) -> None:
    """Write ``r`` (audited with ``seed``) to ``audits`` and its rows to ``audit_results``, in one transaction."""
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
