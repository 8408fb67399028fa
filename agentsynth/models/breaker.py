"""A circuit breaker per endpoint: stop sending when it is down, probe it, give up in bounded time.

Evidence is connection errors and timeouts (:func:`~agentsynth.models.retry.is_unreachable`); any
HTTP answer — even a 500, a 429 or a malformed body — proves the endpoint is there. The breaker:

- **trips** (``open``) when at least ``trip_failures`` unreachable outcomes in a row, with no
  answer between them, span at least ``trip_s`` seconds — or when one call has spent all its
  retries on them. One timed-out request among answered ones never trips it.
- while open, calls wait instead of spending attempts, the runner starts no episode, and a
  probe (``GET /models`` by the client: any HTTP status counts as up) runs every ``probe_every_s``
  seconds; the first answer closes the breaker and everything resumes.
- **gives up** (``down``) when the endpoint has not answered for ``unreachable_s`` seconds since
  the first failure of the streak: every waiting call raises :class:`EndpointDown` (``endpoint
  URL unreachable for N s (the last error)``), which ends a run ``failed``.

It watches an endpoint that has answered at least once: one that never did is a wrong URL or a
server not started, and its calls fail as before (after their retries, with the error stored).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from .base import EndpointDown

CLOSED, OPEN, DOWN = "closed", "open", "down"


class CircuitBreaker:
    """The health of one endpoint (``endpoint`` is its URL without credentials, for messages).

    ``probe()`` returns True when the endpoint answered (with any status); it should time out on
    its own after a few seconds (it is cut off at the deadline anyway); ``on_change()`` is called
    whenever the state changes (an endpoint pool wakes the calls it queued). ``unreachable_s``: how long
    the endpoint may stay silent, from the first failure of a streak, before the breaker gives up;
    ``trip_failures`` and ``trip_s`` (default min(2 s, ``unreachable_s`` / 4)): the streak that
    trips it; ``probe_every_s``: the pause between probes.
    """

    def __init__(self, endpoint: str, probe: Callable[[], Awaitable[bool]], *, unreachable_s: float = 30.0,
                 trip_failures: int = 3, trip_s: float | None = None, probe_every_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic, on_change: Callable[[], None] | None = None):
        self.endpoint = endpoint
        self.unreachable_s = unreachable_s
        self.trip_failures = trip_failures
        self.trip_s = min(2.0, unreachable_s / 4) if trip_s is None else trip_s
        self.probe_every_s = min(probe_every_s, max(0.05, unreachable_s / 10))
        self.state = CLOSED
        self.trips = 0
        self.error: EndpointDown | None = None
        self._probe = probe
        self._clock = clock
        self._answered = False
        self._streak = 0
        self._since = 0.0
        self._last_error = ""
        self._changed = asyncio.Event()
        self._on_change = on_change
        self._task: asyncio.Task[None] | None = None

    # ---- evidence ---------------------------------------------------------------------------

    def alive(self) -> None:
        """The endpoint answered (any HTTP status)."""
        self._answered = True
        self._streak = 0
        if self.state == OPEN:
            self._set(CLOSED)

    def arm(self) -> None:
        """Watch the endpoint as if it had answered: another endpoint serving the same model did
        (:class:`~agentsynth.models.endpoints.EndpointPool`), so this one being silent is evidence
        that it is down, not of a wrong URL."""
        self._answered = True

    def unreachable(self, exc: BaseException | None = None, detail: str | None = None) -> None:
        """A call failed without an answer (connection error or timeout); ``detail``: the error as
        it may be printed (redacted by the caller), else the exception's type and text."""
        if not self._answered:
            return
        now = self._clock()
        if self._streak == 0:
            self._since = now
        self._streak += 1
        self._last_error = detail if detail is not None else f"{type(exc).__name__}: {' '.join(str(exc).split())[:120]}"
        if self.state == CLOSED and self._streak >= self.trip_failures and now - self._since >= self.trip_s:
            self._trip()

    @property
    def last_error(self) -> str:
        """The last unreachable failure, as it may be printed ("" before any)."""
        return self._last_error

    @property
    def suspect(self) -> bool:
        """Failures without an answer since: the endpoint may be down."""
        return self._streak > 0 or self.state != CLOSED

    # ---- waiting ----------------------------------------------------------------------------

    async def wait_usable(self) -> None:
        """Return when the endpoint may be called; :class:`EndpointDown` once given up."""
        while self.state != CLOSED:
            if self.state == DOWN:
                assert self.error is not None
                raise self.error
            await self._changed.wait()

    def trip_if_suspect(self) -> None:
        """A call spent its retries on unreachable failures: that is sustained evidence, so trip
        now if failures without an answer are running."""
        if self.state == CLOSED and self._streak > 0:
            self._trip()

    async def verdict(self) -> None:
        """A call spent its retries on unreachable failures: trip now (:meth:`trip_if_suspect`)
        and wait for the verdict: return if the endpoint answers again, :class:`EndpointDown` if
        it stays down."""
        self.trip_if_suspect()
        await self.wait_usable()

    # ---- the state machine ------------------------------------------------------------------

    def _set(self, state: str) -> None:
        self.state = state
        self._changed.set()
        self._changed = asyncio.Event()
        if self._on_change is not None:
            self._on_change()

    def _trip(self) -> None:
        self.trips += 1
        self._set(OPEN)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._probing())

    async def _probing(self) -> None:
        deadline = self._since + self.unreachable_s
        while self.state == OPEN:
            left = deadline - self._clock()
            if left <= 0:
                break
            try:
                up = await asyncio.wait_for(self._probe(), timeout=left)
            except Exception:  # noqa: BLE001 - a probe that fails in any way did not reach the endpoint
                up = False
            if up:
                self.alive()
                return
            await asyncio.sleep(min(self.probe_every_s, max(0.0, deadline - self._clock())))
        if self.state == OPEN:
            self.error = EndpointDown(f"endpoint {self.endpoint} unreachable for {self.unreachable_s:g}s ({self._last_error})",
                                      endpoint=self.endpoint)
            self._set(DOWN)

    async def aclose(self) -> None:
        """Stop probing."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
