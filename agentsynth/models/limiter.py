"""Adaptive concurrency: how many calls an endpoint client keeps in flight (:class:`AdaptiveLimiter`).

The limit moves window by window (AIMD, as TCP does once per round trip): a window is the
answers to the next ``max(limit, min_window)`` calls started since the limit last changed. When
more than ``threshold`` of a window's answers are overload signals (429, 503, 529, a timed-out
request: :func:`~agentsynth.models.retry.is_overload`), and so were the previous window's, the
limit halves; a window under the threshold grows it by one, up to the configured concurrency. Two
windows, not one: at 16 answers a window, an endpoint throttling a steady 35% of calls goes over
half in one window of 15 by chance, and each such cut took many windows to grow back.

Why a share and not every 429: each throttled call already waits what the server asked
(``Retry-After``) before it is sent again, which lowers the load by that share by itself. The
whole client backs off on top of that only when the endpoint refuses most of what it is sent.
Halving on every 429 (at most once a second), as before, collapsed the limit under an endpoint
that throttles a steady 30% of calls whatever the load (in flight fell from 64 to a median of 5).
A 5xx, a malformed reply or a connection error is not an overload signal (a connection error is
the breaker's evidence that the endpoint is down), and answers to calls sent before the limit last
changed do not count toward the next window (they reflect the old load).
"""

from __future__ import annotations

import asyncio
from collections import deque


class AdaptiveLimiter:
    """An async semaphore whose size adapts to the share of overload signals per window.

    Lock-free: asyncio code between awaits is atomic, so entering below the limit is a counter
    increment; only callers over the limit wait on a future. Use as ``async with limiter:`` and
    read :attr:`generation` on entry; report the call's answer with :meth:`record`.
    """

    def __init__(self, maximum: int, minimum: int = 1, *, threshold: float = 0.5, min_window: int = 16):
        self.maximum = maximum
        self.minimum = max(1, min(minimum, maximum))
        self.limit = maximum
        self.lowest = maximum
        self.in_flight = 0
        self.threshold = threshold
        self.min_window = min_window
        self.generation = 0
        self.cuts = 0
        self._answers = 0
        self._overloads = 0
        self._over = False  # the previous window was over the threshold
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def __aenter__(self) -> "AdaptiveLimiter":
        while self.in_flight >= self.limit or self._waiters:
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except BaseException:
                if fut in self._waiters:
                    self._waiters.remove(fut)
                self._wake()
                raise
            if self.in_flight < self.limit:
                break
        self.in_flight += 1
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.in_flight -= 1
        self._wake()

    @property
    def has_room(self) -> bool:
        """A call may enter now without waiting (below the limit, nobody waiting)."""
        return self.in_flight < self.limit and not self._waiters

    def enter(self) -> None:
        """Count a call in flight without waiting: for a caller that queues calls itself and checked
        :attr:`has_room` (:class:`~agentsynth.models.endpoints.EndpointPool`)."""
        self.in_flight += 1

    def leave(self) -> None:
        """A call counted by :meth:`enter` is over."""
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        free = self.limit - self.in_flight
        while free > 0 and self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                free -= 1

    def record(self, overload: bool, generation: int | None = None) -> None:
        """One answer: ``overload`` if it was a throttle or a timeout. ``generation``: the value
        of :attr:`generation` when the call entered; an answer from before the last change is
        ignored."""
        if generation is not None and generation != self.generation:
            return
        self._answers += 1
        self._overloads += overload
        if self._answers < max(self.limit, self.min_window):
            return
        over = self._overloads > self.threshold * self._answers
        self._answers = self._overloads = 0
        if over and not self._over:
            self._over = True  # one window over the threshold: cut if the next one is too
            return
        self._over = False
        if over:
            self.limit = max(self.minimum, self.limit // 2)
            self.lowest = min(self.lowest, self.limit)
            self.cuts += 1
        elif self.limit < self.maximum:
            self.limit += 1
            self._wake()
        else:
            return  # at the maximum: nothing changes, keep the generation
        self.generation += 1

    def throttled(self) -> None:
        """An overload signal (counted in the current window)."""
        self.record(True)

    def succeeded(self) -> None:
        """A normal answer (counted in the current window)."""
        self.record(False)
