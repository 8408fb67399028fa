"""The frame every page shares (head, navigation, the static files), error pages, and the small
pieces several pages use: facts lists, status badges, pagers, run progress fields."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from typing import Any

from .html import Html, el, esc, fmt, join, rate, url

NAV = (("runs", "/", "Runs"), ("signals", "/signals", "Signals"), ("audits", "/audits", "Audits"),
       ("exports", "/exports", "Exports"), ("evaluations", "/evaluations", "Evaluations"), ("loops", "/loops", "Loops"),
       ("sql", "/sql", "SQL"))
STATIC = {"viewer.js": "text/javascript", "viewer.css": "text/css"}


@cache
def static_file(name: str) -> tuple[bytes, str, str]:
    """A file shipped in ``agentsynth/viewer/static`` (package data): its bytes, content type and
    a short hash of its content (for cache-busting URLs)."""
    data = resources.files("agentsynth.viewer").joinpath("static", name).read_bytes()
    return data, STATIC[name], hashlib.sha256(data).hexdigest()[:12]


def static_url(name: str) -> str:
    """The URL of a static file, naming its content hash (so a new version is fetched anew)."""
    return url(f"/static/{name}", {"v": static_file(name)[2]})


def page(title: str, body: Iterable[object], *, active: str = "", store: str = "", **main_attrs: object) -> Html:
    """A whole HTML document: the navigation (``active`` highlighted), ``body`` in ``<main>``."""
    nav = [el("a", label, href=href, class_="active" if key == active else None) for key, href, label in NAV]
    head = el("head", Html('<meta charset="utf-8">'),
              el("meta", name="viewport", content="width=device-width, initial-scale=1"),
              el("title", f"{title} · agentsynth view"),
              el("link", rel="stylesheet", href=static_url("viewer.css")),
              el("script", src=static_url("viewer.js"), defer=True))
    header = el("header", el("a", "agentsynth view", href="/", class_="brand"), el("nav", *nav),
                el("span", f"store: {store}", class_="store") if store else "")
    return Html("<!doctype html>\n" + el("html", head, el("body", header, el("main", *body, **main_attrs)), lang="en"))


def error_page(status: int, message: str, *, store: str = "") -> Html:
    """The page of a refused or failed request: the status and one line saying why."""
    titles = {400: "Bad request", 401: "Token required", 403: "Wrong token", 404: "Not found",
              503: "Store unavailable", 500: "Error"}
    title = titles.get(status, "Error")
    return page(f"{status} {title}", [el("h1", f"{status} {title}"), el("p", message, class_="error")], store=store)


def facts(items: Iterable[tuple[str, object]], *, class_: str = "facts", **attrs: object) -> Html:
    """A definition list of (label, value) pairs; values escaped (or :class:`Html` as built)."""
    return el("dl", *(join([el("dt", k), el("dd", v)]) for k, v in items), class_=class_, **attrs)


def status_badge(status: str | None) -> Html:
    """A run's or an episode's status as a coloured label."""
    return el("span", status or "-", class_=f"status status-{status or 'none'}", data_field="status")


def verdict(passed: bool | None) -> Html:
    """A truth verdict (passed, failed or unknown) as a short mark."""
    if passed is None:
        return el("span", "–", class_="verdict unknown", title="unknown")
    return el("span", "✓" if passed else "✗", class_="verdict " + ("pass" if passed else "fail"),
              title="passed" if passed else "failed")


def run_fields(run: Mapping[str, Any]) -> dict[str, str]:
    """A run's live figures, formatted: the text of its ``data-field`` elements (pages and the JSON API)."""
    done = int(run["ok"]) + int(run["failed"])
    tokens = int(run["prompt_tokens"]) + int(run["completion_tokens"]) + int(run["judge_tokens"])
    return {
        "status": run["status"], "ok": f"{int(run['ok']):,}", "failed": f"{int(run['failed']):,}",
        "done": f"{done:,}", "planned": f"{int(run['planned']):,}", "episodes": f"{int(run['episodes']):,}",
        "pass_first": rate(run["pass_first"]), "pass_last": rate(run["pass_last"]), "tokens": f"{tokens:,}",
        "progress": f"{done:,} / {int(run['planned']):,}",
        "finished_at": fmt(run["finished_at"]) if run["finished_at"] else "-",
        "done_n": str(min(done, max(int(run["planned"]), 1))), "planned_n": str(max(int(run["planned"]), 1)),
    }


def field(name: str, value: object) -> Html:
    """A value that live updates replace (``data-field``)."""
    return el("span", value, data_field=name)


def progress(run: Mapping[str, Any]) -> Html:
    """A run's progress bar and count (done / planned)."""
    f = run_fields(run)
    return join([el("progress", value=f["done_n"], max=f["planned_n"], data_progress=True), " ", field("progress", f["progress"])])


def pager(base: str, params: Mapping[str, str], *, has_prev: bool, has_next: bool, first_id: str | None,
          last_id: str | None, last: bool = True) -> Html:
    """First · Prev · Next · Last links of a keyset-paged list (``after``/``before`` an id)."""
    def link(label: str, ok: bool, extra: Mapping[str, str], rel: str) -> Html:
        if not ok:
            return el("span", label, class_="disabled")
        return el("a", label, href=url(base, {**params, **extra}), rel=rel, data_page=rel)

    links = [link("« first", has_prev, {}, "first"),
             link("‹ previous", has_prev and first_id is not None, {"before": first_id or ""}, "prev"),
             link("next ›", has_next and last_id is not None, {"after": last_id or ""}, "next")]
    if last:
        links.append(link("last »", has_next, {"page": "last"}, "last"))
    return el("nav", *links, class_="pager")


def labels(row: Mapping[str, Any]) -> Html:
    """A grader's declared labels (source, openness, meta-level, task-relevant) as small chips."""
    if row.get("source") is None:
        return el("span", "labels unknown", class_="chip")
    meta = {0: "0 token", 1: "1 step", 2: "2 outcome", 3: "3 criterion"}.get(row["meta_level"], str(row["meta_level"]))
    return join([el("span", f"source: {row['source']}", class_="chip", data_label="source"),
                 el("span", row["openness"], class_=f"chip {row['openness']}", data_label="openness"),
                 el("span", f"meta-level {meta}", class_="chip", data_label="meta_level"),
                 el("span", "task-relevant" if row["task_relevant"] else "not task-relevant",
                    class_="chip" + ("" if row["task_relevant"] else " surface"), data_label="task_relevant")], " ")


def ci_text(estimate: float | None, ci: tuple[float, float] | None) -> str:
    """``0.853 [0.852, 0.853]``, or ``-``."""
    if estimate is None:
        return "-"
    return f"{estimate:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


__all__ = ["ci_text", "error_page", "esc", "facts", "field", "labels", "page", "pager", "progress", "run_fields",
           "static_file", "static_url", "status_badge", "verdict"]
