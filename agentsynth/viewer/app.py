"""The viewer's aiohttp application: routes, the per-request store reads, error pages.

Every handler reads the store through :class:`~agentsynth.viewer.db.StoreDB` (a fresh read-only
connection per request, in a worker thread) and renders server-side HTML. Errors are one line on
a page: 400 for a parameter that cannot be used (named), 404 for an unknown run or episode, 503
when the store cannot be opened (e.g. a run holds it), 500 with the error's type only (its
details go to the server's stderr); never a traceback or a secret.
"""

from __future__ import annotations

import csv
import io
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from aiohttp import web

from ..credentials import redact
from ..store import StoreError
from . import queries as Q
from . import reports as R
from .db import Reader, StoreDB, time_limit
from .filters import BadRequest, parse_episode_query
from .html import Html
from .layout import STATIC, error_page, run_fields, static_file
from .pages import episode_page, run_page, runs_page
from .report_pages import (audit_page, audits_page, evaluations_page, export_page, exports_page, loops_page, signals_page,
                           sql_page)
from .security import Access, add_headers, middleware

SQL_ROWS = 1000
"""Rows of a typed query shown on the page (the CSV download has every row)."""
CSV_TIMEOUT_S = 300.0
CSV_CHUNK = 5000


@dataclass(frozen=True)
class ViewerConfig:
    """What to serve and who may ask: the store file and the access rules."""

    store: Path
    access: Access


DB = web.AppKey("db", StoreDB)
CONFIG = web.AppKey("config", ViewerConfig)


class NotFound(Exception):
    """No such run, episode, audit or export."""


def create_app(config: ViewerConfig) -> web.Application:
    """The viewer's application for ``config`` (serve it with ``aiohttp.web.run_app``)."""
    app = web.Application(middlewares=[_errors, middleware(config.access, _refuse)], client_max_size=64 * 1024)
    app[CONFIG] = config
    app[DB] = StoreDB(config.store)
    app.on_response_prepare.append(add_headers)
    app.on_response_prepare.append(_server_timing)
    app.on_cleanup.append(_close)
    r = app.router
    r.add_get("/", runs_view)
    r.add_get("/runs/{run_id}", run_view)
    r.add_get("/episodes/{episode_id}", episode_view)
    r.add_get("/signals", signals_view)
    r.add_get("/audits", audits_view)
    r.add_get("/audits/{audit_id}", audit_view)
    r.add_get("/exports", exports_view)
    r.add_get("/exports/{export_id}", export_view)
    r.add_get("/evaluations", evaluations_view)
    r.add_get("/loops", loops_view)
    r.add_get("/sql", sql_view)
    r.add_get("/sql.csv", sql_csv)
    r.add_get("/api/runs", api_runs)
    r.add_get("/api/runs/{run_id}", api_run)
    r.add_get("/static/{name}", static_view)
    r.add_get("/favicon.ico", _no_icon)
    return app


async def _no_icon(request: web.Request) -> web.Response:
    return web.Response(status=204)


async def _close(app: web.Application) -> None:
    app[DB].close()


def _store(request: web.Request) -> str:
    return str(request.app[CONFIG].store)


def _html(body: Html, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


def _refuse(request: web.Request, status: int, message: str) -> web.Response:
    if request.path.startswith("/api/"):
        return web.json_response({"error": message}, status=status)
    return _html(error_page(status, message, store=_store(request)), status)


@web.middleware
async def _errors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Known failures as one-line pages; anything else as a 500 naming its type (details on stderr)."""
    token = request.app[CONFIG].access.token
    try:
        return await handler(request)
    except BadRequest as exc:
        return _refuse(request, 400, redact(str(exc), [token] if token else []))
    except NotFound as exc:
        return _refuse(request, 404, str(exc))
    except StoreError as exc:
        return _refuse(request, 503, redact(str(exc), [token] if token else []))
    except web.HTTPException as exc:
        if exc.status >= 400:
            return _refuse(request, exc.status, exc.reason)
        raise
    except Exception as exc:  # noqa: BLE001 - a page, not a traceback, for the browser
        print(f"agentsynth view: {request.method} {request.path}: " + redact(
            "".join(traceback.format_exception(exc)), [token] if token else []), file=sys.stderr)
        return _refuse(request, 500, f"internal error ({type(exc).__name__}); the server's output has the details")


DB_SECONDS = web.RequestKey("db_seconds", float)


async def _read(request: web.Request, fn: Callable[[Reader], Any]) -> Any:
    """``fn`` on this request's read-only connection; its time (open, queries, close) is added to
    the response's ``Server-Timing`` header (``db;dur=MS``)."""
    t0 = time.perf_counter()
    try:
        return await request.app[DB].read(fn)
    finally:
        request[DB_SECONDS] = request.get(DB_SECONDS, 0.0) + time.perf_counter() - t0


async def _server_timing(request: web.Request, response: web.StreamResponse) -> None:
    if DB_SECONDS in request:
        response.headers["Server-Timing"] = f"db;dur={request[DB_SECONDS] * 1000:.1f}"


# ---- runs, episodes ---------------------------------------------------------------------------

async def runs_view(request: web.Request) -> web.Response:
    """All runs."""
    return _html(runs_page(await _read(request, Q.runs), store=_store(request)))


async def run_view(request: web.Request) -> web.Response:
    """One run's figures and a page of its episodes (filtered, sorted)."""
    run_id = request.match_info["run_id"]
    q = parse_episode_query(run_id, request.query)

    def read(r: Reader) -> tuple[Any, ...]:
        runs = Q.runs(r, run_id)
        if not runs:
            raise NotFound(f"no run {run_id!r} in this store")
        return (runs[0], Q.episode_page(r, q), Q.choices(r, run_id), R.audits_of_run(r, run_id), Q.run_spec(r, run_id))

    run, result, choices, audits, spec = await _read(request, read)
    return _html(run_page(run, q, result, choices, audits, spec, store=_store(request)))


async def episode_view(request: web.Request) -> web.Response:
    """One episode: its transcript and each turn's signals."""
    episode_id = request.match_info["episode_id"]

    def read(r: Reader) -> tuple[Any, ...]:
        ep = Q.episode(r, episode_id)
        if ep is None:
            raise NotFound(f"no episode {episode_id!r} in this store")
        seq = ep.get("episode_seq")
        return ep, Q.messages(r, episode_id, seq), Q.signals(r, episode_id, seq)

    ep, messages, signals = await _read(request, read)
    return _html(episode_page(ep, messages, signals, store=_store(request)))


async def api_runs(request: web.Request) -> web.Response:
    """Every run's live figures (JSON, for the runs page's polling)."""
    runs = await _read(request, Q.runs)
    return web.json_response({"live": any(r["status"] == "running" for r in runs),
                              "runs": [{"run_id": r["run_id"], "fields": run_fields(r)} for r in runs]})


async def api_run(request: web.Request) -> web.Response:
    """One run's live figures and how many of its episodes match the page's filters (JSON)."""
    run_id = request.match_info["run_id"]
    q = parse_episode_query(run_id, request.query)

    def read(r: Reader) -> tuple[Any, int]:
        runs = Q.runs(r, run_id)
        if not runs:
            raise NotFound(f"no run {run_id!r} in this store")
        return runs[0], Q.matching(r, q)

    run, matching = await _read(request, read)
    fields = run_fields(run) | {"matching": f"{matching:,}"}
    return web.json_response({"live": run["status"] == "running", "fields": fields, "matching": matching})


# ---- signals, audits, exports, evaluations, loops -----------------------------------------------

async def signals_view(request: web.Request) -> web.Response:
    """Signal types and their agreement with truth (in one run with ``?run=``)."""
    run_id = request.query.get("run") or None

    def read(r: Reader) -> tuple[Any, ...]:
        runs = Q.runs(r)
        if run_id and not any(x["run_id"] == run_id for x in runs):
            raise NotFound(f"no run {run_id!r} in this store")
        return Q.signal_types(r), Q.signal_agreement(r, run_id), runs

    types, agreement, runs = await _read(request, read)
    return _html(signals_page(types, agreement, runs, run_id, store=_store(request)))


async def audits_view(request: web.Request) -> web.Response:
    """The stored audits."""
    return _html(audits_page(await _read(request, R.audits), store=_store(request)))


async def audit_view(request: web.Request) -> web.Response:
    """One stored audit's figures."""
    audit_id = request.match_info["audit_id"]
    res = await _read(request, lambda r: R.audit(r, audit_id))
    if res is None:
        raise NotFound(f"no audit {audit_id!r} in this store")
    return _html(audit_page(res, store=_store(request)))


async def exports_view(request: web.Request) -> web.Response:
    """The exports."""
    return _html(exports_page(await _read(request, R.exports), store=_store(request)))


async def export_view(request: web.Request) -> web.Response:
    """One export's lineage, its items paged (``?after=ITEM``)."""
    export_id = request.match_info["export_id"]
    after = _int(request.query.get("after"), "after")
    size = _int(request.query.get("size"), "size") or 50
    if not 1 <= size <= 500:
        raise BadRequest("size: from 1 to 500")

    def read(r: Reader) -> tuple[Any, ...]:
        x = R.export(r, export_id)
        if x is None:
            raise NotFound(f"no export {export_id!r} in this store")
        return (x, *R.export_items(r, export_id, after, size))

    x, items, more = await _read(request, read)
    return _html(export_page(x, items, after, more, size, store=_store(request)))


def _int(text: str | None, name: str) -> int | None:
    if text in (None, ""):
        return None
    try:
        return int(text)
    except ValueError:
        raise BadRequest(f"{name}: a whole number, not {text!r}") from None


async def evaluations_view(request: web.Request) -> web.Response:
    """Evaluations and the generalization view."""
    evals, general = await _read(request, lambda r: (R.evaluations(r), R.generalization(r)))
    return _html(evaluations_page(evals, general, store=_store(request)))


async def loops_view(request: web.Request) -> web.Response:
    """The loops' steps and accuracy."""
    steps, accuracy = await _read(request, lambda r: (R.loop_steps(r), R.loop_accuracy(r)))
    return _html(loops_page(steps, accuracy, store=_store(request)))


# ---- SQL --------------------------------------------------------------------------------------

async def sql_view(request: web.Request) -> web.Response:
    """The query box; with ``?q=`` the query's first rows (or why it was refused: a 400 page)."""
    sql = request.query.get("q", "")
    if not sql.strip():
        return _html(sql_page("", None, None, limit=SQL_ROWS, store=_store(request)))
    try:
        result = await _read(request, lambda r: Q.run_query(r, sql, SQL_ROWS))
    except Q.QueryRefused as exc:
        return _html(sql_page(sql, None, str(exc), limit=SQL_ROWS, store=_store(request)), 400)
    return _html(sql_page(sql, result, None, limit=SQL_ROWS, store=_store(request)))


async def sql_csv(request: web.Request) -> web.StreamResponse:
    """Every row of a read-only query as CSV, streamed in chunks (never the whole result in memory)."""
    sql = Q.check_query(request.query.get("q", ""))
    async with request.app[DB].session() as s:
        with time_limit(s.con, CSV_TIMEOUT_S):
            with Q.query_errors():
                cur = await s.call(s.con.execute, sql)
                if cur.description is None:
                    raise Q.QueryRefused("the query returned no result set")
                rows = await s.call(cur.fetchmany, CSV_CHUNK)
            resp = web.StreamResponse(headers={"Content-Type": "text/csv; charset=utf-8",
                                               "Content-Disposition": 'attachment; filename="query.csv"'})
            await resp.prepare(request)
            await resp.write(_csv([[d[0] for d in cur.description]]))
            try:
                while rows:
                    await resp.write(_csv(rows))
                    rows = await s.call(cur.fetchmany, CSV_CHUNK)
            except duckdb.Error as exc:  # the status line is sent: say so in the file itself
                await resp.write(_csv([[f"# error: the query stopped: {' '.join(str(exc).split())}"]]))
            await resp.write_eof()
    return resp


def _csv(rows: list[Any]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue().encode()


async def static_view(request: web.Request) -> web.Response:
    """The viewer's JavaScript and CSS (package data)."""
    name = request.match_info["name"]
    if name not in STATIC:
        raise NotFound(f"no static file {name!r}")
    data, kind, _ = static_file(name)
    return web.Response(body=data, content_type=kind, charset="utf-8", headers={"Cache-Control": "public, max-age=3600"})
