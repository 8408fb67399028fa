"""Several endpoints serving one model: where each call goes, and each endpoint's state (:class:`EndpointPool`).

A run spec's ``base_url`` may be a list — one vLLM server per GPU, say. The pool holds, for each
endpoint, its own adaptive in-flight limit (:class:`~agentsynth.models.limiter.AdaptiveLimiter`),
its own circuit breaker (:class:`~agentsynth.models.breaker.CircuitBreaker`) and its counters, and
one cap on the calls in flight over all of them (the spec's ``concurrency``). Every HTTP attempt —
so a retry too, which may land elsewhere — takes a :class:`Slot` on the least-loaded usable endpoint:

- *usable*: its breaker is closed (not probing a silent endpoint, not given up) and it has fewer
  calls in flight than its limit;
- *least-loaded*: the fewest calls in flight relative to its limit, ties taken in turn. Calls
  spread in proportion to the endpoints' limits: evenly while none throttles, fewer to one whose
  limit was cut for answering 429s;
- a retry avoids the endpoint whose attempt just failed, when another is usable.

Each endpoint's limit starts at (and grows back to) the whole ``concurrency``, so the others take
a dead endpoint's share at once. When no endpoint is usable, calls wait in order; once every
breaker has given up, they raise one :class:`~agentsynth.models.base.EndpointDown` naming every
endpoint. An endpoint given up stays out for the rest of the run (a re-run tries it again). Once
any endpoint has answered, every breaker of the pool watches its endpoint
(:meth:`~agentsynth.models.breaker.CircuitBreaker.arm`): one silent from the start is then a server
that died or never came up, taken out of rotation, not a wrong URL to fail each call on.

The pool knows nothing of HTTP. It is told each attempt's outcome in plain values
(:meth:`EndpointPool.finish`: answered or not, an overload signal or not, the error as it may be
printed) and probes an endpoint through the callable it was given (``probe(index)``), so the same
interface can be served by one pool shared by several clients — e.g. a Ray scale-out holding one
pool per model for all its workers, so that limits and breakers hold per endpoint across them.

With one endpoint the pool is the one limiter and one breaker an endpoint client always had.
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from .base import CAUSES, ClientStats, EndpointDown, EndpointStats
from .breaker import CLOSED, DOWN, OPEN, CircuitBreaker
from .limiter import AdaptiveLimiter

__all__ = ["Endpoint", "EndpointPool", "Slot"]


class Endpoint:
    """One endpoint of a pool: ``index`` (its place in the URL list), ``url`` (without
    credentials), its :class:`AdaptiveLimiter` and :class:`CircuitBreaker`, HTTP attempts sent to
    it (``calls``) and its failed attempts retried, by cause (``retries``)."""

    __slots__ = ("breaker", "calls", "index", "limiter", "retries", "url")

    def __init__(self, index: int, url: str, limiter: AdaptiveLimiter, breaker: CircuitBreaker):
        self.index = index
        self.url = url
        self.limiter = limiter
        self.breaker = breaker
        self.calls = 0
        self.retries: dict[str, int] = dict.fromkeys(CAUSES, 0)

    def stats(self) -> EndpointStats:
        """Its counters, limit and breaker now."""
        lim, b = self.limiter, self.breaker
        return EndpointStats(self.url, self.calls, dict(self.retries), lim.limit, lim.lowest, lim.in_flight, b.state, b.trips)


class Slot:
    """One attempt's place on an endpoint, from :meth:`EndpointPool.acquire` until
    :meth:`EndpointPool.finish` (or :meth:`EndpointPool.release`): the ``endpoint`` and its
    limiter's ``generation`` when the attempt entered (answers from before a limit change do not
    count toward the next one)."""

    __slots__ = ("endpoint", "generation", "held")

    def __init__(self, endpoint: Endpoint, generation: int):
        self.endpoint = endpoint
        self.generation = generation
        self.held = True


class EndpointPool:
    """The endpoints serving one model (see the module docstring).

    ``urls``: each endpoint's URL as it may be printed (without credentials); ``probe(index)``:
    does endpoint ``index`` answer at all (its breaker's probe); ``concurrency``: calls in flight
    at most over all endpoints, and each endpoint's maximum limit; ``unreachable_s`` and
    ``breaker``: each breaker's parameters.

    The interface a client uses, per attempt: ``slot = await pool.acquire(avoid)``, then
    :meth:`finish` with the outcome (or :meth:`release` without one, e.g. when cancelled);
    :meth:`retried` to count a retry against the endpoint that failed; :meth:`verdict` when a call
    ran out of retries on unreachable failures. A runner uses :attr:`state` and
    :meth:`wait_usable` (as it would one breaker's) and :meth:`stats`.
    """

    def __init__(self, urls: Sequence[str], probe: Callable[[int], Awaitable[bool]], *, concurrency: int,
                 unreachable_s: float = 30.0, **breaker: Any):
        if not urls:
            raise ValueError("an endpoint pool needs at least one URL")
        self.concurrency = concurrency
        self.unreachable_s = unreachable_s
        self.endpoints: tuple[Endpoint, ...] = tuple(
            Endpoint(i, url, AdaptiveLimiter(concurrency),
                     CircuitBreaker(url, functools.partial(probe, i), unreachable_s=unreachable_s,
                                    on_change=self._state_changed, **breaker))
            for i, url in enumerate(urls))
        self.in_flight = 0
        self._lowest = concurrency
        self._armed = False
        self._turn = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._changed = asyncio.Event()

    # ---- state ------------------------------------------------------------------------------

    @property
    def urls(self) -> list[str]:
        """The endpoints' URLs, in order."""
        return [ep.url for ep in self.endpoints]

    @property
    def state(self) -> str:
        """``closed`` while any endpoint is usable, ``down`` once every breaker gave up, else
        ``open`` (every endpoint silent or given up, some being probed)."""
        if len(self.endpoints) == 1:
            return self.endpoints[0].breaker.state
        states = [ep.breaker.state for ep in self.endpoints]
        if CLOSED in states:
            return CLOSED
        return DOWN if all(s == DOWN for s in states) else OPEN

    @property
    def limit(self) -> int:
        """Calls in flight allowed now: the endpoints' limits summed, capped at ``concurrency``."""
        return min(self.concurrency, sum(ep.limiter.limit for ep in self.endpoints))

    @property
    def lowest(self) -> int:
        """The lowest :attr:`limit` so far."""
        return self.endpoints[0].limiter.lowest if len(self.endpoints) == 1 else self._lowest

    def down_error(self) -> EndpointDown:
        """The error once every endpoint is down: one endpoint's own, or one line naming them all
        (without credentials) with each distinct last error."""
        errors = [ep.breaker.error for ep in self.endpoints]
        if len(errors) == 1 and errors[0] is not None:
            return errors[0]
        causes = list(dict.fromkeys(ep.breaker.last_error for ep in self.endpoints if ep.breaker.last_error))
        names = ", ".join(self.urls)
        return EndpointDown(f"all {len(errors)} endpoints ({names}) unreachable for {self.unreachable_s:g}s "
                            f"({'; '.join(causes)})", endpoint=names)

    # ---- a call's slot ----------------------------------------------------------------------

    def _pick(self, avoid: Endpoint | None) -> Endpoint | None:
        if self.in_flight >= self.concurrency:
            return None
        eps = self.endpoints
        n = len(eps)
        if n == 1:
            ep = eps[0]
            return ep if ep.breaker.state == CLOSED and ep.limiter.has_room else None
        best: Endpoint | None = None
        spare: Endpoint | None = None
        best_load = 2.0
        start = self._turn
        self._turn = (start + 1) % n
        for k in range(n):
            ep = eps[(start + k) % n]
            lim = ep.limiter
            if ep.breaker.state != CLOSED or not lim.has_room:
                continue
            if ep is avoid:
                spare = ep
                continue
            load = lim.in_flight / lim.limit
            if load < best_load:
                best, best_load = ep, load
        return best or spare

    async def acquire(self, avoid: Endpoint | None = None) -> Slot:
        """A slot on the least-loaded usable endpoint (not ``avoid`` when another is usable),
        waiting in order while none has room; :class:`EndpointDown` once every endpoint is down."""
        ep = None if self._waiters else self._pick(avoid)
        queued = False
        while ep is None:
            if self.state == DOWN:
                raise self.down_error()
            fut = asyncio.get_running_loop().create_future()
            if queued:
                self._waiters.appendleft(fut)  # woken but beaten to the room: keep its turn
            else:
                self._waiters.append(fut)
            queued = True
            try:
                await fut
            except BaseException:
                if fut in self._waiters:
                    self._waiters.remove(fut)
                self._wake()
                raise
            ep = self._pick(avoid)
        lim = ep.limiter
        lim.enter()
        self.in_flight += 1
        ep.calls += 1
        return Slot(ep, lim.generation)

    def finish(self, slot: Slot, *, answered: bool, overload: bool = False, detail: str | None = None) -> None:
        """The attempt is over: ``answered`` (any HTTP status) or not (a connection error or a
        timeout: ``detail`` is the error as it may be printed, redacted); ``overload``: a throttle
        or a timeout (:func:`~agentsynth.models.retry.is_overload`). Feeds the endpoint's breaker
        and limiter, then frees the slot."""
        ep = slot.endpoint
        if answered:
            ep.breaker.alive()
            if not self._armed:
                self._armed = True
                for other in self.endpoints:
                    other.breaker.arm()
        else:
            ep.breaker.unreachable(None, detail or "no answer")
        if answered or overload:
            lim = ep.limiter
            generation = lim.generation
            lim.record(overload, slot.generation)
            if lim.generation != generation:
                self._lowest = min(self._lowest, self.limit)
        self.release(slot)

    def release(self, slot: Slot) -> None:
        """Free the slot without an outcome (the attempt was cancelled); idempotent."""
        if not slot.held:
            return
        slot.held = False
        slot.endpoint.limiter.leave()
        self.in_flight -= 1
        self._wake()

    def retried(self, endpoint: Endpoint, cause: str) -> None:
        """A failed attempt on ``endpoint`` is retried (``cause``: one of the retry causes)."""
        endpoint.retries[cause] = endpoint.retries.get(cause, 0) + 1

    async def verdict(self, endpoint: Endpoint) -> None:
        """A call spent its retries on unreachable failures, the last on ``endpoint``: trip its
        breaker and return once any endpoint is usable (the call failed alone); raise
        :class:`EndpointDown` if every endpoint stays down."""
        endpoint.breaker.trip_if_suspect()
        await self.wait_usable()

    async def wait_usable(self) -> None:
        """Return when some endpoint may be called; :class:`EndpointDown` once every one is down."""
        while True:
            state = self.state
            if state == CLOSED:
                return
            if state == DOWN:
                raise self.down_error()
            await self._changed.wait()

    def _state_changed(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        self._wake()

    def _wake(self) -> None:
        waiters = self._waiters
        if not waiters:
            return
        if self.state == DOWN:
            free = len(waiters)  # they raise EndpointDown
        else:
            free = min(self.concurrency - self.in_flight,
                       sum(max(0, ep.limiter.limit - ep.limiter.in_flight) for ep in self.endpoints
                           if ep.breaker.state == CLOSED))
        while free > 0 and waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                free -= 1

    # ---- reporting --------------------------------------------------------------------------

    def retry_counts(self) -> dict[str, int]:
        """Retries by cause, over all endpoints."""
        out = dict.fromkeys(CAUSES, 0)
        for ep in self.endpoints:
            for k, v in ep.retries.items():
                out[k] = out.get(k, 0) + v
        return out

    def stats(self) -> ClientStats:
        """The totals (limit, lowest, calls in flight, retries by cause, :attr:`state`) and each
        endpoint's :class:`EndpointStats`."""
        return ClientStats(self.limit, self.concurrency, self.lowest, self.in_flight, self.retry_counts(), self.state,
                           [ep.stats() for ep in self.endpoints])

    async def aclose(self) -> None:
        """Stop every probe."""
        for ep in self.endpoints:
            await ep.breaker.aclose()
