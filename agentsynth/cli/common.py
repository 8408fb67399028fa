"""What every command shares: exit codes, the one-line error, SIGTERM handling, the progress of
a run or an evaluation, and tables of rows."""

from __future__ import annotations

import errno
import signal
import socket
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .progress import Bar

if TYPE_CHECKING:
    from ..models.base import EndpointStats
    from ..run_report import RunStatus

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    """Print ``error: MESSAGE`` (credentials redacted) on stderr and exit with ``code``."""
    from ..credentials import redact

    click.echo(f"error: {redact(message)}", err=True)
    sys.exit(code)


def base_url_option(urls: tuple[str, ...]) -> str | list[str] | None:
    """A repeatable ``--base-url``: None when not given, one URL as a string, several as a list
    (checked with the spec, :func:`~agentsynth.credentials.check_base_urls`)."""
    if not urls:
        return None
    return urls[0] if len(urls) == 1 else list(urls)


def check_out(out: str, option: str = "--out") -> None:
    """Fail with one line unless the folder of the file ``out`` exists (checked before any work)."""
    folder = Path(out).parent
    if not folder.is_dir():
        fail(f"{option} {out}: no such directory {folder}/ (create it first)")


def one_line_warnings() -> None:
    """Show agentsynth's :class:`~agentsynth.spec.SpecWarning` as one ``warning: ...`` line on stderr
    (other warnings keep Python's format)."""
    from ..spec import SpecWarning

    shown = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(category, SpecWarning):
            click.echo(f"warning: {message}", err=True)
        else:
            shown(message, category, *args, **kwargs)

    warnings.showwarning = show


def interrupt(signum: int, frame: Any) -> None:
    """SIGTERM stops a command exactly as Ctrl-C does.

    Inside ``asyncio.run`` the SIGINT handler is asyncio's, which cancels the main task at its next
    ``await`` (so finished episodes are flushed and the run is marked interrupted); raising from the
    handler instead could land inside a lock or a DuckDB query and leave the process stuck.
    """
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler) and handler is not interrupt:
        handler(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt


class RunProgress:
    """The progress of a run or an evaluation: episodes done, ok and failed, and — against an
    endpoint — calls in flight against the adaptive limit, retries by cause, episodes queued to
    run again and the endpoint's breaker (``endpoint silent, probing``); with several endpoints,
    how many answer (``endpoints up 1 of 2 (1 down)``)."""

    def __init__(self, name: str, enabled: bool):
        self.name = name
        self.bar = Bar(name, enabled, ["{task.fields[status]}", "{task.fields[client]}"], every=0.1)
        self._done = 0

    def start(self, total: int, todo: int) -> None:
        """The plan is known: ``todo`` of ``total`` episodes to run."""
        if not self.bar.enabled:
            return
        if todo < total:
            click.echo(f"resuming {self.name}: {total - todo} of {total} episodes already stored", err=True)
        self.bar.update(0, todo, status="", client="")

    def update(self, done: int, total: int, ok: int, errors: int) -> None:
        """An episode finished."""
        self._done = done
        self.bar.update(done, status=f"ok {ok}" + (f" failed {errors}" if errors else ""))

    def status(self, s: "RunStatus") -> None:
        """Show what the endpoint client is doing (calls in flight, limit, retries, breaker)."""
        parts = []
        if s.client is not None:
            c = s.client
            retried = sum(c.retries.values())
            parts.append(f"in flight {c.in_flight}/{c.limit}" + (f" (of {c.maximum})" if c.limit < c.maximum else ""))
            if retried:
                parts.append(f"retried {retried:,} (" + ", ".join(f"{k} {v:,}" for k, v in c.retries.items() if v) + ")")
            if len(c.endpoints) > 1:
                parts.append(endpoints_text(c.endpoints))
            if c.breaker == "open":
                parts.append("endpoint silent: probing" if len(c.endpoints) <= 1 else "all silent: probing")
            elif c.breaker == "down":
                parts.append("endpoint down" if len(c.endpoints) <= 1 else "all down")
        if s.rerunning:
            parts.append(f"{s.rerunning} to run again")
        self.bar.update(self._done, client=" · ".join(parts))

    def stop(self) -> None:
        """Leave the bar as last drawn."""
        self.bar.stop()


def endpoints_text(endpoints: list[EndpointStats]) -> str:
    """Several endpoints in a progress bar: ``2 endpoints`` while all answer, else
    ``endpoints up 1 of 2 (1 probing)`` / ``(1 down)``."""
    n = len(endpoints)
    up = sum(e.breaker == "closed" for e in endpoints)
    if up == n:
        return f"{n} endpoints"
    probing, down = sum(e.breaker == "open" for e in endpoints), sum(e.breaker == "down" for e in endpoints)
    detail = ", ".join(x for x in (f"{probing} probing" if probing else "", f"{down} down" if down else "") if x)
    return f"endpoints up {up} of {n} ({detail})"


def print_table(cols: list[str], rows: list[tuple[Any, ...]], max_rows: int, stream: Any) -> None:
    """``rows`` under ``cols`` as a plain-text table (at most ``max_rows``) and a row count."""
    from ..console import data_console, data_table

    console = data_console(stream)
    console.print(data_table(cols, rows[:max_rows]))
    more = f" (showing {max_rows}; use --max-rows or --format csv)" if len(rows) > max_rows else ""
    console.print(f"{len(rows)} row{'s' if len(rows) != 1 else ''}{more}", style="dim")


def spec_envs(spec_path: str, only: list[str]) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """The environment ids of a run spec (those in ``only``, if any; comma-separated items split) and
    their kwargs: ``--spec`` of eval, probe and envs. One ``error:`` line for a bad spec or id."""
    from ..spec import SpecError, load_spec

    try:
        spec = load_spec(spec_path)
    except SpecError as exc:
        fail(str(exc))
    wanted = [part.strip() for item in only for part in item.split(",") if part.strip()]
    ids = [e.id for e in spec.envs if not wanted or e.id in wanted]
    missing = [w for w in wanted if w not in ids]
    if missing:
        fail(f"{missing[0]}: not an environment of {spec_path} (it has {', '.join(e.id for e in spec.envs)})")
    return list(dict.fromkeys(ids)), {e.id: dict(e.kwargs) for e in spec.envs if e.id in ids and e.kwargs}


def check_port(host: str, port: int) -> None:
    """Fail with one line, before anything is printed, when ``host:port`` cannot be listened on
    (``serve`` and ``view``)."""
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        fail(bind_error(host, port, exc))


def bind_error(host: str, port: int, exc: OSError) -> str:
    """The one line for an ``OSError`` from listening on ``host:port``."""
    if exc.errno == errno.EADDRINUSE:
        return (f"cannot listen on {host}:{port}: the port is in use (another `agentsynth serve`, `agentsynth view` or server?); "
                "stop it or choose another --port")
    if exc.errno == errno.EACCES:
        return f"cannot listen on {host}:{port}: permission denied (ports below 1024 need privileges); choose another --port"
    reason = exc.strerror or str(exc)
    return f"cannot listen on {host}:{port}: {reason}"
