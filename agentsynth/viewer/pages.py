"""The pages of runs and their data: the runs, one run's episodes (filters, sort, pages) and one
episode (its transcript with each turn's signals beside it). Renderers take rows the queries
returned and give :class:`~agentsynth.viewer.html.Html`; every stored value goes through ``esc``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .filters import OPS, PAGE_SIZES, SORTS, EpisodeQuery
from .html import Html, el, fmt, join, json_block, table, url
from .layout import facts, field, labels, page, pager, progress, run_fields, status_badge, verdict
from .queries import EpisodePage


def runs_page(runs: Sequence[Mapping[str, Any]], *, store: str) -> Html:
    """Every run: status, progress, counts, pass rates, tokens, kind, sessions; live ones update."""
    head = ["run", "kind", "status", "progress", "ok", "failed", "pass first", "pass last", "tokens", "sessions",
            "model", "created", "finished"]
    rows = []
    for r in runs:
        f = run_fields(r)
        rows.append(Html(el("tr", *(el("td", c) for c in [
            el("a", r["name"], href=url("/runs", parts=[r["run_id"]])), r["kind"], status_badge(r["status"]), progress(r),
            field("ok", f["ok"]), field("failed", f["failed"]), field("pass_first", f["pass_first"]),
            field("pass_last", f["pass_last"]), field("tokens", f["tokens"]), r["sessions"], r["model"],
            fmt(r["created_at"]), field("finished_at", f["finished_at"])]), data_run=r["run_id"])))
    body: list[object] = [el("h1", "Runs")]
    if rows:
        body.append(el("table", el("thead", el("tr", *(el("th", h) for h in head))), el("tbody", *rows), class_="data runs"))
    else:
        body.append(el("p", "No runs yet: `agentsynth run SPEC` writes one.", class_="empty"))
    live = any(r["status"] == "running" for r in runs)
    return page("Runs", body, active="runs", store=store, data_poll="/api/runs" if live else None)


def run_page(run: Mapping[str, Any], q: EpisodeQuery, result: EpisodePage, choices: Mapping[str, list[tuple[Any, int]]],
             audits: Sequence[Mapping[str, Any]], spec: str | None, *, store: str) -> Html:
    """One run: its figures (live while it runs), the filter form, the matching count and a page of episodes."""
    f = run_fields(run)
    params = q.filter_params()
    summary = facts([
        ("status", status_badge(run["status"])), ("kind", run["kind"]), ("model", run["model"]),
        ("endpoint", run["base_url"] or "in process"), ("progress", progress(run)),
        ("ok / failed", join([field("ok", f["ok"]), " / ", field("failed", f["failed"])])),
        ("pass rate, first answer", field("pass_first", f["pass_first"])),
        ("pass rate, last answer", field("pass_last", f["pass_last"])),
        ("tokens", join([field("tokens", f["tokens"]), f" ({int(run['prompt_tokens']):,} prompt, "
                         f"{int(run['completion_tokens']):,} completion, {int(run['judge_tokens']):,} grading)"])),
        ("sessions", run["sessions"]), ("created", fmt(run["created_at"])), ("finished", field("finished_at", f["finished_at"])),
        ("agentsynth", run["agentsynth_version"]),
    ], class_="facts wide")
    more = [el("a", "signals of this run", href=url("/signals", {"run": run["run_id"]}))]
    more += [el("a", f"audit {a['audit_id']}", href=url("/audits", parts=[a["audit_id"]])) for a in audits[:5]]
    spec_box = el("details", el("summary", "spec"), json_block(spec)) if spec else ""
    count = el("p", field("matching", f"{result.matching:,}"), " episode(s) match" if q.filtered else " episode(s)",
               " (", field("episodes", f["episodes"]), " stored, ", field("planned", f["planned"]), " planned) ",
               el("a", "", href=url("/runs", params, parts=[run["run_id"]]), class_="new-episodes", hidden=True,
                  data_new=True), class_="count")
    body = [el("p", el("a", "Runs", href="/"), " › ", run["name"], class_="crumbs"),
            el("h1", run["name"], " ", el("small", run["run_id"])), summary, el("p", *_spaced(more), class_="links"),
            spec_box, filter_form(run["run_id"], q, choices), count, episodes_table(result.rows),
            pager(url("/runs", parts=[run["run_id"]]), params, has_prev=result.has_prev, has_next=result.has_next,
                  first_id=result.rows[0]["episode_id"] if result.rows else None,
                  last_id=result.rows[-1]["episode_id"] if result.rows else None)]
    poll = url("/api/runs", params, parts=[run["run_id"]])
    return page(run["name"], body, active="runs", store=store, data_poll=poll, data_live="1" if run["status"] == "running" else None,
                data_matching=str(result.matching))


def _spaced(items: Sequence[Html]) -> list[Html]:
    out: list[Html] = []
    for i, item in enumerate(items):
        out += [Html(" · ")] * (i > 0) + [item]
    return out


def filter_form(run_id: str, q: EpisodeQuery, choices: Mapping[str, list[tuple[Any, int]]]) -> Html:
    """The GET form of a run's filters and sort (its values are the current query's)."""
    def select(name: str, label: str, options: Sequence[tuple[str, str]], current: str | None) -> Html:
        opts = [el("option", text, value=value, selected=value == (current or "")) for value, text in options]
        return el("label", label, " ", el("select", *opts, name=name))

    def counted(name: str) -> list[tuple[str, str]]:
        return [("", "any")] + [(str(v), f"{v} ({n:,})") for v, n in choices.get(name, [])]

    yes_no = [("", "any"), ("yes", "passed"), ("no", "failed"), ("unknown", "unknown")]
    fields = [
        select("env", "environment", counted("env"), q.equals.get("env")),
        select("domain", "domain", counted("domain"), q.equals.get("domain")),
        select("feedback", "feedback", counted("feedback"), q.equals.get("feedback")),
        select("status", "status", counted("status"), q.equals.get("status")),
        select("first", "first answer", yes_no, q.passed.get("first")),
        select("last", "last answer", yes_no, q.passed.get("last")),
    ]
    signal = el("fieldset", el("legend", "a signal, at any turn"),
                select("signal", "signal", [("", "any")] + [(str(v), str(v)) for v, _ in choices.get("signal", [])], q.signal),
                select("op", "", [(k, v[0]) for k, v in OPS.items()], q.op or "ge"),
                el("label", "value ", el("input", type="number", step="any", name="value",
                                         value="" if q.value is None else f"{q.value:g}")))
    order = el("fieldset", el("legend", "order"),
               select("sort", "sort by", [(k, s.label) for k, s in SORTS.items()], q.sort),
               select("dir", "", [("desc", "descending"), ("asc", "ascending")], "desc" if q.desc else "asc"),
               select("size", "per page", [(str(n), str(n)) for n in PAGE_SIZES], str(q.size)))
    if "task" in q.equals:
        fields.append(el("input", type="hidden", name="task", value=q.equals["task"]))
        fields.append(el("span", f"task {q.equals['task']}", class_="chip"))
    return el("form", el("fieldset", el("legend", "filter"), *fields), signal, order,
              el("p", el("button", "apply", type="submit"), " ",
                 el("a", "clear", href=url("/runs", parts=[run_id]))),
              method="get", action=url("/runs", parts=[run_id]), class_="filters")


def episodes_table(rows: Sequence[Mapping[str, Any]]) -> Html:
    """A page of episodes, each linking to its transcript."""
    head = ["episode", "environment", "domain", "feedback", "seed", "sample", "status", "turns", "first", "last",
            "reward", "tokens", "latency s", "finished"]
    body = [[el("a", r["episode_id"], href=url("/episodes", parts=[r["episode_id"]])), r["env_id"], r["domain"] or "-",
             r["feedback"], r["seed"], r["sample"], status_badge(r["status"]), r["turns"], verdict(r["passed_first"]),
             verdict(r["passed_last"]), fmt(r["reward"]), fmt(r["tokens"]), fmt(r["latency_s"]), fmt(r["finished_at"])]
            for r in rows]
    return table(head, body, class_="data episodes", empty="no episode matches")


def episode_page(ep: Mapping[str, Any], messages: Sequence[Mapping[str, Any]], signals: Sequence[Mapping[str, Any]],
                 *, store: str) -> Html:
    """One episode: its facts, the task behind a toggle, and the transcript turn by turn with
    that turn's signals as badges beside it."""
    run_link = el("a", ep["run_name"], href=url("/runs", parts=[ep["run_id"]]))
    tokens = f"{ep['prompt_tokens']:,} prompt, {ep['completion_tokens']:,} completion, {ep['judge_tokens']:,} grading"
    summary = facts([
        ("run", run_link), ("environment", ep["env_id"]), ("domain", ep["domain"] or "-"), ("feedback", ep["feedback"]),
        ("task seed / sample", f"{ep['seed']} / {ep['sample']}"), ("status", status_badge(ep["status"])),
        ("turns", ep["turns"]), ("first answer", verdict(ep["passed_first"])), ("last answer", verdict(ep["passed_last"])),
        ("reward", fmt(ep["reward"])), ("terminated / truncated", f"{fmt(ep['terminated'])} / {fmt(ep['truncated'])}"),
        ("tokens", tokens), ("attempts / tries", f"{ep['attempts']} / {ep['tries']}"), ("latency", f"{fmt(ep['latency_s'])} s"),
        ("started", fmt(ep["started_at"])), ("finished", fmt(ep["finished_at"])),
    ], class_="facts wide")
    error = el("p", "error: ", ep["error"], class_="error") if ep["error"] else ""
    task = el("details", el("summary", "task: reference answer and metadata"), facts([
        ("task id", ep["task_id"] or "-"), ("reference answer", el("pre", ep["task_answer"], class_="answer")),
        ("metadata", json_block(ep["task_metadata"]) if ep["task_metadata"] else "-"),
    ]), class_="task")
    others = el("a", "other samples of this task", href=url("/runs", {"task": ep["task_id"]}, parts=[ep["run_id"]])) \
        if ep["task_id"] else ""
    body = [el("p", el("a", "Runs", href="/"), " › ", run_link, " › ", ep["episode_id"], class_="crumbs"),
            el("h1", "Episode ", el("small", ep["episode_id"])), summary, error, el("p", others), task,
            el("h2", "Transcript"), transcript(messages, signals)]
    return page(f"episode {ep['episode_id']}", body, active="runs", store=store)


def transcript(messages: Sequence[Mapping[str, Any]], signals: Sequence[Mapping[str, Any]]) -> Html:
    """The messages grouped by turn; each turn's signal outcomes beside its messages."""
    by_turn: dict[int, list[Mapping[str, Any]]] = {}
    for s in signals:
        by_turn.setdefault(s["turn"], []).append(s)
    turns: dict[int, list[Mapping[str, Any]]] = {}
    for m in messages:
        turns.setdefault(m["turn"], []).append(m)
    for t in by_turn:  # a signal of a turn without messages still shows
        turns.setdefault(t, [])
    sections = []
    for t in sorted(turns):
        badges = [badge(s) for s in by_turn.get(t, [])]
        sections.append(el("section", el("div", el("h3", "prompt" if t == 0 else f"turn {t}"), *(message(m) for m in turns[t]),
                                         class_="messages"),
                           el("aside", *badges, class_="badges") if badges else el("aside", class_="badges none"),
                           class_="turn", data_turn=t))
    return el("div", *sections, class_="transcript") if sections else el("p", "no messages stored", class_="empty")


ROLE_NAMES = {"system": "system", "user": "user", "assistant": "assistant", "tool": "tool result"}


def message(m: Mapping[str, Any]) -> Html:
    """One chat message: role, text, tool calls (name and arguments) or the call a tool result answers."""
    role = m["role"]
    label = ROLE_NAMES.get(role, role)
    if role == "user" and m["turn"] > 0:
        label = "feedback"
    head = [el("span", label, class_="role")]
    if m["tool_call_id"]:
        head.append(el("span", f"answers {m['tool_call_id']}", class_="call-id"))
    parts: list[object] = [el("div", *head, class_="msg-head")]
    if m["content"]:
        parts.append(el("pre", m["content"], class_="content"))
    if m["tool_calls"]:
        parts.append(tool_calls(m["tool_calls"]))
    if m["answer"] is not None:
        parts.append(el("div", "answer key: ", el("code", m["answer"]), class_="answer-key"))
    kind = "feedback" if label == "feedback" else role
    return el("div", *parts, class_=f"msg msg-{kind if kind in ('system', 'user', 'assistant', 'tool', 'feedback') else 'other'}",
              data_role=role, data_position=m["position"])


def tool_calls(raw: str) -> Html:
    """An assistant's tool calls as ``name(arguments)`` lines (or the JSON as stored, if it is not a list of calls)."""
    try:
        calls = json.loads(raw)
        items = [el("li", el("code", f"{c['function']['name']}({c['function'].get('arguments', '')})"), " ",
                    el("span", c.get("id", ""), class_="call-id")) for c in calls]
    except (ValueError, TypeError, KeyError):
        return json_block(raw)
    return el("ul", *items, class_="tool-calls")


def badge(s: Mapping[str, Any]) -> Html:
    """A signal outcome: grader, role, value, verdict and the grader's labels."""
    passed = s["passed"]
    state = "unknown" if passed is None else ("pass" if passed else "fail")
    extra = []
    if s["feedback"]:
        extra.append(el("div", "feedback: ", el("q", s["feedback"]), class_="signal-feedback"))
    if s["details"] and s["details"] != "null":
        extra.append(el("details", el("summary", "details"), json_block(s["details"])))
    if s["tokens"]:
        extra.append(el("div", f"{s['tokens']:,} tokens", class_="signal-tokens"))
    value = "NULL" if s["value"] is None else f"{s['value']:g}"
    return el("div",
              el("div", el("b", s["name"], class_="signal-name"), " ", el("span", s["role"], class_="signal-role"), " ",
                 el("span", value, class_="signal-value"), " ",
                 el("span", {"pass": "passed", "fail": "failed", "unknown": "no verdict"}[state], class_="signal-passed")),
              el("div", labels(s), class_="signal-labels"), *extra,
              class_=f"badge {state}", title=s.get("description") or None, data_signal=s["name"], data_role=s["role"],
              data_turn=s["turn"], data_value=value, data_passed=state)


__all__ = ["episode_page", "filter_form", "run_page", "runs_page"]
