"""What a run reports: :class:`RunStatus` while it goes (for progress bars), :class:`RunResult` at
the end (the summary the CLI prints). Both carry what the endpoint client did — its in-flight
limit and its retries by cause, and with several endpoints each one's calls, retries and breaker —
read from :class:`~agentsynth.models.base.ClientStats`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .models.base import CAUSES, ClientStats, EndpointStats


def client_stats(models: Iterable[Any]) -> ClientStats | None:
    """The stats of the endpoint clients among ``models`` (policy first, then a judge of its own):
    the policy's limit and breaker, retries summed by cause, and the endpoints of both (one entry
    per URL, counts summed). None when none is a client (the in-process sim or student)."""
    out: ClientStats | None = None
    for m in models:
        stats = getattr(m, "stats", None)
        if not callable(stats):
            continue
        s: ClientStats = stats()
        if out is None:
            out = ClientStats(s.limit, s.maximum, s.lowest, s.in_flight, dict(s.retries), s.breaker,
                              [_copy(e) for e in s.endpoints])
            continue
        for k, v in s.retries.items():
            out.retries[k] = out.retries.get(k, 0) + v
        if s.breaker != "closed" and out.breaker == "closed":
            out.breaker = s.breaker
        _merge(out.endpoints, s.endpoints)
    return out


_WORSE = {"closed": 0, "open": 1, "down": 2}


def _copy(e: EndpointStats) -> EndpointStats:
    return EndpointStats(e.url, e.calls, dict(e.retries), e.limit, e.lowest, e.in_flight, e.breaker, e.trips)


def _merge(into: list[EndpointStats], more: list[EndpointStats]) -> None:
    """Add ``more`` to ``into``: an endpoint already there (the judge at a policy URL) is summed."""
    by_url = {e.url: e for e in into}
    for e in more:
        have = by_url.get(e.url)
        if have is None:
            into.append(by_url.setdefault(e.url, _copy(e)))
            continue
        have.calls += e.calls
        have.in_flight += e.in_flight
        have.trips += e.trips
        for k, v in e.retries.items():
            have.retries[k] = have.retries.get(k, 0) + v
        if _WORSE.get(e.breaker, 0) > _WORSE.get(have.breaker, 0):
            have.breaker = e.breaker


def endpoint_text(e: EndpointStats) -> str:
    """``endpoint http://h:8001/v1: 1,234 calls, retried 5 (429: 5, ...), in-flight limit 16 (lowest 8), down``."""
    state = {"closed": "up", "open": "silent, probing", "down": "down"}.get(e.breaker, e.breaker)
    trips = f" (stopped answering {e.trips}x)" if e.trips else ""
    return (f"endpoint {e.url}: {e.calls:,} calls, retried {retries_text(e.retries)}, in-flight limit {e.limit} "
            f"(lowest {e.lowest}), {state}{trips}")


def retries_text(retries: dict[str, int]) -> str:
    """``1,234 (429: 400, 5xx: 500, timeout: 34, malformed: 300, connection: 0)``."""
    keys = list(CAUSES) + [k for k in retries if k not in CAUSES and retries[k]]
    return f"{sum(retries.values()):,} (" + ", ".join(f"{k}: {retries.get(k, 0):,}" for k in keys) + ")"


@dataclass
class RunStatus:
    """A run as it goes: episodes done (each counted once), ok and failed so far, episodes
    queued to run again, and the endpoint client's :class:`ClientStats` (None in process)."""

    done: int
    total: int
    ok: int
    errors: int
    rerunning: int
    client: ClientStats | None


@dataclass
class RunResult:
    """What a run did, read back from the store at the end.

    ``retries_by_cause``: retried model calls by cause (``429``, ``5xx``, ``timeout``,
    ``malformed``, ``connection``); ``endpoints``: with several endpoints, each one's calls,
    retries by cause, limit and breaker (:class:`~agentsynth.models.base.EndpointStats`); ``reran``: episodes this session ran again after a transient
    failure (``episode_retries``); ``not_run``: planned episodes with no stored row (left for a
    re-run, e.g. after the endpoint went down); ``limit`` and ``limit_lowest``: the in-flight
    limit at the end and at its lowest; ``message``: why the run stopped early, in one line.
    """

    run_id: str
    name: str
    store: Path
    status: str
    planned: int
    skipped: int
    ran: int
    ok: int
    errors: int
    first_pass_rate: float | None
    last_pass_rate: float | None
    prompt_tokens: int
    completion_tokens: int
    judge_tokens: int
    retries: int
    elapsed_s: float
    error_examples: list[str] = field(default_factory=list)
    retries_by_cause: dict[str, int] = field(default_factory=dict)
    reran: int = 0
    not_run: int = 0
    limit: int | None = None
    limit_lowest: int | None = None
    limit_max: int | None = None
    message: str | None = None
    endpoints: list[EndpointStats] = field(default_factory=list)

    def lines(self) -> list[str]:
        """A human summary, one fact per line."""
        pct = lambda x: "n/a" if x is None else f"{100 * x:.1f}%"  # noqa: E731
        not_run = f", {self.not_run:,} not run" if self.not_run else ""
        out = [
            f"run {self.name} ({self.run_id}): {self.status}",
            f"episodes: {self.ok} ok, {self.errors} failed{not_run} of {self.planned} planned"
            f" ({self.ran} run now, {self.skipped} already stored) in {self.elapsed_s:.1f}s",
            f"pass rate (truth): first turn {pct(self.first_pass_rate)}, last turn {pct(self.last_pass_rate)}",
            f"tokens: {self.prompt_tokens:,} prompt + {self.completion_tokens:,} completion"
            + (f" + {self.judge_tokens:,} grading" if self.judge_tokens else ""),
        ]
        if self.limit is not None:
            out.append(f"retried calls: {retries_text(self.retries_by_cause)}; in-flight limit {self.limit} of "
                       f"{self.limit_max} (lowest {self.limit_lowest})"
                       + (f"; {self.reran} episode(s) run again after a transient failure" if self.reran else ""))
        if len(self.endpoints) > 1:
            out += [endpoint_text(e) for e in self.endpoints]
        out.append(f"store: {self.store}")
        if self.message:
            out.append(f"stopped: {self.message}")
        if self.error_examples:
            out.append("errors (see episodes.error): " + " | ".join(self.error_examples))
        return out


def read_result(con: Any, *, name: str, store: Path, run_id: str, planned: int, ran: int, status: str, elapsed: float,
                examples: list[str], reran: int, down: BaseException | None, models: list[Any]) -> RunResult:
    """The :class:`RunResult` of a session that ended with ``status``, its counts read from the
    store; ``down``: the endpoint that went down (the run is then ``failed``, with a one-line
    ``message`` saying how to resume)."""
    row = con.execute(
        """SELECT count(*) FILTER (status = 'ok'), count(*) FILTER (status <> 'ok'),
                  avg(passed_first::INT) FILTER (status = 'ok'), avg(passed_last::INT) FILTER (status = 'ok'),
                  coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0), coalesce(sum(judge_tokens), 0)
           FROM episodes WHERE run_id = ?""",
        [run_id],
    ).fetchone()
    ok, errors, first, last, pt, ct, jt = row
    if status == "completed" and ok < planned:
        status = "incomplete"
    not_run = planned - ok - errors
    message = None
    if down is not None:
        status = "failed"
        message = f"{down}; {not_run:,} of {planned:,} episodes not run: run the same command again to resume"
    stats = client_stats(models)
    by_cause = stats.retries if stats else {}
    return RunResult(
        run_id=run_id, name=name, store=store, status=status, planned=planned, skipped=planned - ran, ran=ran, ok=ok,
        errors=errors, first_pass_rate=first, last_pass_rate=last, prompt_tokens=pt, completion_tokens=ct,
        judge_tokens=jt, retries=sum(by_cause.values()) if stats else int(getattr(models[0], "retries", 0)),
        elapsed_s=elapsed, error_examples=examples, retries_by_cause=by_cause, reran=reran, not_run=not_run,
        limit=stats.limit if stats else None, limit_lowest=stats.lowest if stats else None,
        limit_max=stats.maximum if stats else None, message=message,
        endpoints=stats.endpoints if stats and len(stats.endpoints) > 1 else [],
    )
