"""The pages about signals and what was made from runs: signals and their agreement with truth,
audits (tables from :mod:`agentsynth.analysis.report`, interval plots), exports with their
lineage, evaluations with the generalization view, loops, and the SQL box."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..analysis import report
from ..analysis.results import AuditResult
from .html import Html, el, fmt, join, json_block, rate, table, url
from .layout import ci_text, facts, labels, page, pager
from .queries import MAX_QUERY, QueryResult
from .reports import LIST_CAP
from .svg import Point, interval_plot


def signals_page(types: Sequence[Mapping[str, Any]], agreement: Sequence[Mapping[str, Any]],
                 runs: Sequence[Mapping[str, Any]], run_id: str | None, *, store: str) -> Html:
    """Signal types with their labels, and per signal and role its agreement with truth."""
    choose = el("form", el("label", "scope ", el("select", el("option", "the whole store", value=""), *(
        el("option", r["name"], value=r["run_id"], selected=r["run_id"] == run_id) for r in runs), name="run")),
                " ", el("button", "show", type="submit"), method="get", action="/signals", class_="inline")
    kinds = table(["signal", "labels", "description", "latest probe (agentsynth probe)"],
                  [[el("b", t["name"]), labels(t), t["description"] or "", t["probe"] or "-"] for t in types],
                  empty="no signal types stored", class_="data types")
    rows, points = [], []
    for a in agreement:
        truth = a["role"] == "truth"
        rows.append([el("b", a["name"]), a["role"], f"{int(a['rows']):,}", rate(a["pass_rate"]),
                     "(the truth itself)" if truth else ci_text(a["agreement"], a["ci"]),
                     "" if truth else f"{int(a['compared'] or 0):,}"])
        if not truth:
            ci = a["ci"]
            points.append(Point(f"{a['name']} ({a['role']})", a["agreement"], ci[0] if ci else None, ci[1] if ci else None))
    agree = table(["signal", "role", "rows", "pass rate", "agreement with truth P(S=T) [95% Wilson]", "turns compared"],
                  rows, empty="no signals stored", class_="data agreement")
    plot = interval_plot(points, title="agreement with truth, P(S = T)", domain=(0.0, 1.0), axis="P(S = T)") if points else ""
    scope = next((r["name"] for r in runs if r["run_id"] == run_id), None)
    body = [el("h1", "Signals"), choose, el("h2", "Signal types"), kinds,
            el("h2", "Agreement with truth" + (f" in run {scope}" if scope else " (all runs)")),
            el("p", "Per grader and role, over the turns where both the signal and the truth have a verdict. "
                    "The audit measures more (information, openness, spurious component): see ",
               el("a", "audits", href="/audits"), ".", class_="note"), agree, plot]
    return page("Signals", body, active="signals", store=store)


def audits_page(audits: Sequence[Mapping[str, Any]], *, store: str) -> Html:
    """The stored audits."""
    rows = [[el("a", a["audit_id"], href=url("/audits", parts=[a["audit_id"]])), fmt(a["created_at"]),
             ", ".join(json.loads(a["run_names"])), "yes" if a["by_domain"] else "no", a["bootstrap"],
             f"{a['confidence']:.0%}", a["figures"]] for a in audits]
    body = [el("h1", "Audits"),
            table(["audit", "created", "runs", "by domain", "bootstrap", "intervals", "figures"], rows,
                  empty="no audits stored: `agentsynth audit` measures the signals of a run and stores its figures")]
    return page("Audits", body, active="audits", store=store)


PLOTS = (("signal", "accuracy", "agreement with truth (accuracy)", None),
         ("signal", "kappa", "Cohen's kappa", 0.0),
         ("signal", "mi", "I(S;T), bits", 0.0),
         ("signal", "openness", "openness I(S;T|M), bits", 0.0),
         ("signal", "spurious", "spurious component I(S;F|T), bits", 0.0),
         ("channel", "gain", "feedback gain (last − first turn pass rate)", 0.0))


def audit_page(res: AuditResult, *, store: str) -> Html:
    """One stored audit: its figures as the audit's own tables and as interval plots."""
    head = facts([("runs", join([el("a", n, href=url("/runs", parts=[i])) for n, i in zip(res.runs, res.run_ids)], ", ")),
                  ("bootstrap", f"{res.bootstrap} task-level resamples, {res.confidence:.0%} intervals"),
                  ("min tasks", res.min_tasks), ("domains", ", ".join(res.domains) or "-")])
    plots = []
    for scope, metric, title, ref in PLOTS:
        names = sorted({r.name for r in res.rows if r.scope == scope and r.metric == metric})
        pts = []
        for n in names:
            r = res.get(scope, n, metric)
            if r is not None:
                pts.append(Point(n, r.estimate, r.ci_low, r.ci_high, r.note))
        if pts:
            plots.append(interval_plot(pts, title=title, reference=ref))
    tables = []
    for domain in [None, *res.domains]:
        where = "all domains" if domain is None else f"domain {domain}"
        for title, (cols, rows) in ((f"Signals: agreement with truth, {where}", report.signal_table(res, domain, report.AGREEMENT_COLUMNS)),
                                    (f"Signals: information in bits, {where}",
                                     report.signal_table(res, domain, report.INFORMATION_COLUMNS, probe=False)),
                                    (f"Feedback channels, {where}", report.channel_table(res, domain))):
            tables.append(el("details", el("summary", title), table(cols, rows), open=domain is None))
    body = [el("p", el("a", "Audits", href="/audits"), " › ", res.audit_id, class_="crumbs"),
            el("h1", "Audit ", el("small", res.audit_id)), head,
            el("p", "M = the model's own assessment (self-consistency, else its self-review); F = surface features "
                    "(length, answer line, hedging). Each figure: estimate [interval].", class_="note"),
            el("div", *plots, class_="plots"), *tables]
    return page(f"audit {res.audit_id}", body, active="audits", store=store)


def exports_page(exports: Sequence[Mapping[str, Any]], *, store: str) -> Html:
    """The exports with their run and the signal that selected them."""
    rows = [[el("a", x["export_id"], href=url("/exports", parts=[x["export_id"]])), fmt(x["created_at"]),
             el("a", x["run_name"] or x["run_id"], href=url("/runs", parts=[x["run_id"]])), el("b", x["signal"]),
             labels(x), "passed" if x["min_value"] is None else f"value ≥ {x['min_value']:g}", x["format"], f"{x['rows']:,}",
             ", ".join(json.loads(x["domains"] or "[]")), x["path"]] for x in exports]
    body = [el("h1", "Exports"),
            table(["export", "created", "run", "selected by", "its labels", "accepts", "format", "rows", "domains", "file"],
                  rows, empty="no exports stored: `agentsynth export --run NAME --select SIGNAL` writes one")]
    return page("Exports", body, active="exports", store=store)


def export_page(x: Mapping[str, Any], items: Sequence[Mapping[str, Any]], after: int | None, more: bool, size: int,
                *, store: str) -> Html:
    """One export's lineage: the run, the selecting signal and rule, and its items page by page
    (each item names the episode and turn it came from)."""
    head = facts([
        ("run", el("a", x["run_name"] or x["run_id"], href=url("/runs", parts=[x["run_id"]]))),
        ("selected by", join([el("b", x["signal"]), " ", labels(x)])),
        ("accepts", "turns the signal passed" if x["min_value"] is None else f"turns with value ≥ {x['min_value']:g}"),
        ("domain filter", x["domain_filter"] or "-"), ("domains", x["domains"]), ("format", x["format"]),
        ("rows", f"{x['rows']:,}"), ("items", f"{x['items']:,}"), ("file", x["path"]), ("sha256", x["sha256"]),
        ("options", json_block(x["options"]) if x["options"] else "-"), ("created", fmt(x["created_at"])),
    ])
    summary = table(["part", "domain", "items", "episodes", "tasks"],
                    [[s["part"], s["domain"], f"{s['items']:,}", f"{s['episodes']:,}", f"{s['tasks']:,}"] for s in x["summary"]])
    rows = [[i["item"], i["part"], el("a", i["episode_id"], href=url("/episodes", parts=[i["episode_id"]])), i["turn"],
             i["task_id"] or "-", i["domain"] or "-", i["content_hash"]] for i in items]
    base = url("/exports", parts=[x["export_id"]])
    nav = pager(base, {"size": str(size)} if size != 50 else {}, has_prev=after is not None, has_next=more, first_id=None,
                last_id=str(items[-1]["item"]) if items else None, last=False)
    body = [el("p", el("a", "Exports", href="/exports"), " › ", x["export_id"], class_="crumbs"),
            el("h1", "Export ", el("small", x["export_id"])), head, el("h2", "What went in"), summary,
            el("h2", "Items (lineage)"), table(["item", "part", "episode", "turn", "task", "domain", "content hash"], rows,
                                               empty="no items"), nav]
    return page(f"export {x['export_id']}", body, active="exports", store=store)


def evaluations_page(evals: Sequence[Mapping[str, Any]], general: Sequence[Mapping[str, Any]] | None, *, store: str) -> Html:
    """Held-out evaluations (accuracy with its Wilson interval) and the generalization view."""
    rows = [[e["evaluation_id"], e["model"], e["trained_on"] or "(base)", e["env_id"], e["domain"],
             f"{e['seed_start']}–{e['seed_end']}", f"{e['correct']:,} / {e['n']:,}",
             ci_text(e["accuracy"], (e["ci_low"], e["ci_high"]) if e["ci_low"] is not None else None), fmt(e["created_at"])]
            for e in evals]
    pts = [Point(f"{e['model']} · {e['domain']}", e["accuracy"], e["ci_low"], e["ci_high"]) for e in evals[:40]]
    body: list[object] = [el("h1", "Evaluations"),
                          table(["evaluation", "model", "trained on", "environment", "domain", "seeds", "correct / n",
                                 "accuracy [95%]", "created"], rows,
                                empty="no evaluations stored: `agentsynth eval` scores a model on held-out tasks"),
                          _capped(len(evals))]
    if pts:
        body.append(interval_plot(pts, title="held-out accuracy (newest 40)", domain=(0.0, 1.0)))
    body.append(el("h2", "Generalization: what training on an export did"))
    if general:
        grows = [[el("b", g["signal"]), f"{g['source']}/{g['openness']}/{g['meta_level']}" if g["source"] else "?",
                  el("a", g["export_id"], href=url("/exports", parts=[g["export_id"]])), g["split"], g["eval_domain"],
                  g["model"], fmt(g["trained_accuracy"]), fmt(g["base_accuracy"]),
                  ci_text(g["delta"], (g["delta_low"], g["delta_high"]) if g["delta_low"] is not None else None)]
                 for g in general]
        body.append(table(["signal", "labels", "export", "split", "domain", "model", "trained", "base", "delta [95%]"], grows))
        gpts = [Point(f"{g['signal']} · {g['split']} · {g['eval_domain']}", g["delta"], g["delta_low"], g["delta_high"])
                for g in general[:40]]
        body.append(interval_plot(gpts, title="accuracy delta, trained − base", reference=0.0))
    else:
        body.append(el("p", "Nothing yet: evaluate a model trained on an export (`agentsynth eval --trained-on EXPORT "
                            "--base-model B`) and its base on the same tasks.", class_="empty"))
    return page("Evaluations", body, active="evaluations", store=store)


def loops_page(steps: Sequence[Mapping[str, Any]], accuracy: Sequence[Mapping[str, Any]], *, store: str) -> Html:
    """The loops' steps and their held-out accuracy per arm and generation."""
    if not steps:
        return page("Loops", [el("h1", "Loops"), el("p", "No loops stored: `agentsynth loop SPEC` runs one.", class_="empty")],
                    active="loops", store=store)
    rows = [[s["loop"], s["arm"], s["signal"] or "-", s["seed"], s["generation"], s["phase"],
             el("a", s["run_name"], href=url("/runs", parts=[s["run_id"]])) if s["run_id"] else "-",
             el("a", s["export_id"], href=url("/exports", parts=[s["export_id"]])) if s["export_id"] else "-",
             s["model"] or "-", fmt(s["updated_at"])] for s in steps]
    body: list[object] = [el("h1", "Loops"),
                          el("p", "Accuracy pooled over seeds with a Wilson interval; `agentsynth loop report` gives the "
                                  "two-way bootstrap over seeds and tasks and the diversity figures.", class_="note")]
    for (loop, domain) in dict.fromkeys((a["loop"], a["domain"]) for a in accuracy):
        pts = [Point(f"{a['arm']} · gen {a['generation']}", a["accuracy"], *(a["ci"] or (None, None)))
               for a in accuracy if a["loop"] == loop and a["domain"] == domain]
        body.append(interval_plot(pts, title=f"{loop}: held-out accuracy in {domain}", domain=(0.0, 1.0)))
    body += [el("h2", "Steps"), table(["loop", "arm", "signal", "seed", "generation", "phase", "run", "export", "model",
                                       "updated"], rows), _capped(len(steps))]
    return page("Loops", body, active="loops", store=store)


def _capped(n: int) -> Html | str:
    return el("p", f"showing the newest {LIST_CAP:,}; query the table in SQL for the rest", class_="note") if n >= LIST_CAP else ""


def sql_page(sql: str, result: QueryResult | None, error: str | None, *, limit: int, store: str) -> Html:
    """The read-only query box, and the first rows of the query's result or why it was refused."""
    form = el("form", el("textarea", sql, name="q", rows=8, spellcheck="false", maxlength=MAX_QUERY,
                         placeholder="SELECT feedback, avg(passed_last::INT) FROM episodes GROUP BY 1", autofocus=True),
              el("p", el("button", "run", type="submit"), " ",
                 el("span", "read-only: SELECT, WITH, EXPLAIN, DESCRIBE, SHOW, SUMMARIZE; the store's tables only "
                            "(Ctrl+Enter runs)", class_="note")),
              method="get", action="/sql", class_="sql", id="sql-form")
    body: list[object] = [el("h1", "SQL"), form]
    if error:
        body.append(el("p", error, class_="error", id="sql-error"))
    if result is not None:
        shown = f"{len(result.rows):,} row(s)" + (f" (the first {limit:,}; the CSV has them all)" if result.more else "")
        body.append(el("p", shown, " · ", el("a", "download CSV", href=url("/sql.csv", {"q": sql}), download="query.csv"),
                       class_="count"))
        body.append(table(result.columns, [[_cell(v) for v in r] for r in result.rows], class_="data sql-result",
                          empty="no rows"))
    return page("SQL", body, active="sql", store=store)


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return fmt(v)
