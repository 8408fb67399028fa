"""The SQL of the pages about what was made from runs: audits, exports and their lineage,
evaluations, the generalization view and loops. Each function takes a request's
:class:`~agentsynth.viewer.db.Reader`; lists that can grow with the data are paged or capped.
"""

from __future__ import annotations

from typing import Any

from ..analysis.audit import stored_audit
from ..analysis.intervals import wilson
from ..analysis.results import AuditResult
from .db import Reader

LIST_CAP = 1000
"""At most this many rows of a list that is not paged (evaluations, loops' steps); the page says so."""


def audits(r: Reader) -> list[dict[str, Any]]:
    """The stored audits, newest first, with their figure counts."""
    return r.rows("""
        SELECT a.audit_id, a.created_at, a.run_names::VARCHAR AS run_names, a.run_ids::VARCHAR AS run_ids, a.by_domain,
               a.bootstrap, a.confidence, a.seed, a.min_tasks, a.agentsynth_version,
               (SELECT count(*) FROM audit_results x WHERE x.audit_id = a.audit_id) AS figures
        FROM audits a ORDER BY a.created_at DESC LIMIT $cap""", {"cap": LIST_CAP})


def audit(r: Reader, audit_id: str) -> AuditResult | None:
    """One stored audit (:func:`agentsynth.analysis.audit.stored_audit`)."""
    return stored_audit(r.con, audit_id)


def audits_of_run(r: Reader, run_id: str) -> list[dict[str, Any]]:
    """The audits that covered ``run_id``, newest first."""
    return r.rows("""SELECT audit_id, created_at, run_names::VARCHAR AS run_names FROM audits
                     WHERE list_contains(from_json(run_ids, '["VARCHAR"]'), $run) ORDER BY created_at DESC""",
                  {"run": run_id})


def exports(r: Reader) -> list[dict[str, Any]]:
    """The exports, newest first, with their run's name and the selecting signal's labels."""
    return r.rows("""
        SELECT x.export_id, x.run_id, r.name AS run_name, x.signal, x.min_value, x.domain_filter::VARCHAR AS domain_filter,
               x.domains::VARCHAR AS domains, x.format, x.path, x.rows, x.sha256, x.options::VARCHAR AS options,
               x.created_at, t.source, t.openness, t.meta_level, t.task_relevant
        FROM exports x LEFT JOIN runs r USING (run_id) LEFT JOIN signal_types t ON t.name = x.signal
        ORDER BY x.created_at DESC LIMIT $cap""", {"cap": LIST_CAP})


def export(r: Reader, export_id: str) -> dict[str, Any] | None:
    """One export with its run and signal labels, and its items per part and domain."""
    row = r.one("""
        SELECT x.*, x.domains::VARCHAR AS domains, x.domain_filter::VARCHAR AS domain_filter, x.options::VARCHAR AS options,
               r.name AS run_name, t.source, t.openness, t.meta_level, t.task_relevant, t.description
        FROM exports x LEFT JOIN runs r USING (run_id) LEFT JOIN signal_types t ON t.name = x.signal
        WHERE x.export_id = $x""", {"x": export_id})
    if row is not None:
        row["summary"] = r.rows("""SELECT part, coalesce(domain, '-') AS domain, count(*) AS items,
                                          count(DISTINCT episode_id) AS episodes, count(DISTINCT task_id) AS tasks
                                   FROM export_items WHERE export_id = $x GROUP BY ALL ORDER BY ALL""", {"x": export_id})
        row["items"] = r.value("SELECT count(*) FROM export_items WHERE export_id = $x", {"x": export_id})
    return row


def export_items(r: Reader, export_id: str, after: int | None, size: int) -> tuple[list[dict[str, Any]], bool]:
    """A page of the export's items (``size`` rows after item number ``after``) and whether more follow."""
    rows = r.rows("""SELECT item, part, episode_id, turn, task_id, domain, content_hash FROM export_items
                     WHERE export_id = $x AND item > $after ORDER BY item LIMIT $n""",
                  {"x": export_id, "after": -1 if after is None else after, "n": size + 1})
    return rows[:size], len(rows) > size


def evaluations(r: Reader) -> list[dict[str, Any]]:
    """The held-out evaluations (newest first, at most :data:`LIST_CAP`)."""
    return r.rows("""SELECT evaluation_id, run_id, model, base_model, trained_on, env_id, domain, seed_start, seed_end,
                            n, correct, accuracy, ci_low, ci_high, created_at
                     FROM evaluations ORDER BY created_at DESC, env_id LIMIT $cap""", {"cap": LIST_CAP})


def generalization(r: Reader) -> list[dict[str, Any]]:
    """The ``generalization`` view (at most :data:`LIST_CAP` rows), ordered by signal and split."""
    return r.rows("""SELECT signal, source, openness, meta_level, export_id, trained_domains::VARCHAR AS trained_domains,
                            eval_domain, env_id, split, model, base_model, trained_accuracy, base_accuracy, delta,
                            delta_low, delta_high, n_trained, n_base
                     FROM generalization ORDER BY signal, split, eval_domain, model LIMIT $cap""", {"cap": LIST_CAP})


def loop_steps(r: Reader) -> list[dict[str, Any]]:
    """Every step of every loop (at most :data:`LIST_CAP`)."""
    return r.rows("""SELECT l.loop, l.arm, l.seed, l.generation, l.signal, l.phase, l.run_id, r.name AS run_name,
                            l.export_id, l.checkpoint, l.model, l.evaluation_ids::VARCHAR AS evaluation_ids, l.updated_at
                     FROM loops l LEFT JOIN runs r USING (run_id)
                     ORDER BY l.loop, l.generation, l.arm, l.seed LIMIT $cap""", {"cap": LIST_CAP})


def loop_accuracy(r: Reader) -> list[dict[str, Any]]:
    """Per loop, arm, generation and evaluated domain: the evaluations of its steps pooled over
    seeds (correct / scored) with a 95% Wilson interval over the pooled tasks. (``agentsynth loop
    report`` gives the two-way bootstrap over seeds and tasks; this is the quick view.)"""
    rows = r.rows("""
        WITH ids AS (SELECT l.loop, l.arm, l.generation, l.seed, unnest(from_json(l.evaluation_ids, '["VARCHAR"]')) AS evaluation_id
                     FROM loops l WHERE l.evaluation_ids IS NOT NULL)
        SELECT ids.loop, ids.arm, ids.generation, ev.domain, count(DISTINCT ids.seed) AS seeds,
               sum(ev.n) AS n, sum(ev.correct) AS correct
        FROM ids JOIN evaluations ev USING (evaluation_id)
        GROUP BY ALL ORDER BY ids.loop, ev.domain, ids.arm, ids.generation LIMIT $cap""", {"cap": LIST_CAP})
    for row in rows:
        n, k = int(row["n"] or 0), int(row["correct"] or 0)
        row["accuracy"] = k / n if n else None
        row["ci"] = wilson(k, n) if n else None
    return rows
