"""The shipped feedback sweep: every domain × none/binary/reference/hint/judge/self, offline."""

from __future__ import annotations

from pathlib import Path

import duckdb

import agentsynth
from agentsynth import registry
from agentsynth.spec import load_spec

from conftest import ROOT

LABELS = {
    "correct": ("verifier", "open", 2, True),
    "reference": ("reference", "open", 0, True),
    "hint": ("verifier", "open", 1, True),
    "self": ("self", "closed", 2, True),
    "judge_same_model": ("judge", "closed", 2, True),
}


def test_feedback_sweep_covers_every_domain_and_stores_labelled_signal_types(tmp_path: Path) -> None:
    spec = load_spec(ROOT / "runs" / "feedback-sweep.toml", store=str(tmp_path / "s.duckdb"))
    assert {e.id for e in spec.envs} == set(registry.available()) - {"tools"}
    small = spec.model_copy(update={"envs": [e.model_copy(update={"tasks": 3}) for e in spec.envs]})
    result = agentsynth.Runner(small).run()
    assert result.status == "completed" and result.ok == 3 * 2 * 6 * len(spec.envs)
    con = duckdb.connect(small.store, read_only=True)
    try:
        types = {n: (s, o, m, r) for n, s, o, m, r in con.execute(
            "SELECT name, source, openness, meta_level, task_relevant FROM signal_types").fetchall()}
        per_domain = con.execute("SELECT domain, count(DISTINCT feedback) FROM episodes GROUP BY 1").fetchall()
    finally:
        con.close()
    for name, labels in LABELS.items():
        assert types[name] == labels, name
    assert all(n == 6 for _, n in per_domain) and len(per_domain) == len(spec.envs)
    surface = [n for n, (_, _, _, relevant) in types.items() if not relevant]
    assert surface, "every domain has a format check labelled task_relevant = false"
