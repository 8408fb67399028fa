"""``agentsynth view``: the store in a browser (runs, episodes, signals, audits, exports,
evaluations, loops, SQL), served by :mod:`agentsynth.viewer`. Registered on the main command
group in :mod:`agentsynth.cli`.

Exit 0 on Ctrl+C; 2 with one ``error:`` line for bad input (no store, not a store, a taken port,
a short token), before anything is served.
"""

from __future__ import annotations

import signal
from pathlib import Path

import click

from ..store import DEFAULT_STORE
from .common import bind_error, check_port, fail, interrupt


@click.command("view")
@click.option("--store", type=click.Path(dir_okay=False), default=str(DEFAULT_STORE), show_default=True)
@click.option("--port", default=8765, show_default=True, type=click.IntRange(1, 65535))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but a loopback address (127.0.0.1, localhost, ::1) requires a token.")
@click.option("--token", envvar="AGENTSYNTH_VIEW_TOKEN", metavar="TOKEN",
              help="Require this token on every request (or set AGENTSYNTH_VIEW_TOKEN, which other users cannot see "
                   "in the process list). Default: none on a loopback address, a generated one on any other.")
def view(store: str, port: int, host: str, token: str | None) -> None:
    """Look at the store in a browser: runs (live while they run), a run's episodes (filter,
    sort, page through millions), one episode's transcript with each turn's signals and their
    labels, signal agreement with truth, audits, exports with lineage, evaluations, loops, and a
    read-only SQL box with CSV download.

    \b
    Reads only: every request opens the store read-only and closes it again, so a run can write
    meanwhile. Prints the URL to open; Ctrl+C stops it.
    Example: agentsynth view --store runs/agentsynth.duckdb
    """
    from aiohttp import web

    from ..store import StoreError
    from ..viewer.app import ViewerConfig, create_app
    from ..viewer.db import StoreDB
    from ..viewer.security import Access, check_token, is_loopback, new_token

    path = Path(store)
    try:
        StoreDB(path, workers=1).check()
    except StoreError as exc:
        fail(str(exc))
    loopback = is_loopback(host)
    if token is not None:
        problem = check_token(token)
        if problem:
            fail(problem)
    elif not loopback:
        token = new_token()
    check_port(host, port)
    app = create_app(ViewerConfig(store=path, access=Access(token=token, loopback=loopback, port=port)))
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else (f"[{host}]" if ":" in host else host)
    link = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    click.echo(f"agentsynth view: {path} (read-only) at {link}")
    if not loopback:
        where = "every interface" if host in ("0.0.0.0", "::", "") else host
        click.echo(f"listening on {where}: every request needs the token (the link sets a cookie; "
                   "or send Authorization: Bearer TOKEN)")
    click.echo("Ctrl+C stops it.", err=True)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        web.run_app(app, host=host, port=port, print=None, access_log=None, handle_signals=True)
    except OSError as exc:  # lost a race for the port after the check, or another bind error
        fail(bind_error(host, port, exc))
    except KeyboardInterrupt:
        pass
