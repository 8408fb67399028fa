"""The one retry policy, and adaptive concurrency.

Retried (transient): HTTP 408, 409, 429, 5xx, connection errors, timeouts. Not retried: 400, 401,
403, 404, 422 and replies that do not parse. Waits honour ``Retry-After`` / ``retry-after-ms``
(capped), else exponential backoff with full jitter, capped. On 429 the
:class:`AdaptiveLimiter` halves the number of calls in flight and adds one back per window of
successful calls (AIMD), so a rate-limited endpoint is not hammered.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import openai
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

TRANSIENT_STATUS = frozenset({408, 409, 429}) | frozenset(range(500, 600))


def is_transient(exc: BaseException) -> bool:
    """Is this failure worth retrying?"""
    if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError, asyncio.TimeoutError)):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in TRANSIENT_STATUS
    return False


def retry_after(exc: BaseException | None) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms`` or ``retry-after``), if any."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if not ra:
        return None
    try:
        return max(0.0, float(ra))
    except ValueError:
        when = email.utils.parsedate_to_datetime(ra) if ra else None
        return max(0.0, when.timestamp() - time.time()) if when else None


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff parameters: ``base`` × 2^attempt with full jitter, capped at ``cap``; a server's
    Retry-After is honoured up to ``max_retry_after`` seconds."""

    max_retries: int = 6
    base: float = 0.25
    cap: float = 8.0
    max_retry_after: float = 60.0

    def delay(self, exc: BaseException | None, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failed attempt that raised ``exc``."""
        asked = retry_after(exc)
        if asked is not None:
            return min(asked, self.max_retry_after) + random.uniform(0, self.base)
        return random.uniform(0, min(self.cap, self.base * 2 ** (failures - 1)))

    def wait(self, state: RetryCallState) -> float:
        """Tenacity wait function."""
        return self.delay(state.outcome.exception() if state.outcome else None, state.attempt_number)

    def retrying(self, on_retry: Callable[[RetryCallState], None] | None = None, *, failed: int = 0) -> AsyncRetrying:
        """A tenacity ``AsyncRetrying`` for a call that already failed ``failed`` times.

        Callers make the first attempt themselves and enter this loop only after a transient
        failure: building a tenacity loop costs ~25 µs of CPU, which adds up at 1,000 calls/s.
        """
        return AsyncRetrying(
            retry=retry_if_exception(is_transient),
            wait=lambda st: self.delay(st.outcome.exception() if st.outcome else None, st.attempt_number + failed),
            stop=stop_after_attempt(max(1, self.max_retries + 1 - failed)),
            reraise=True,
            before_sleep=on_retry,
        )


class AdaptiveLimiter:
    """An async semaphore whose size adapts: halve on throttling, +1 per ``limit`` successes.

    Lock-free: asyncio code between awaits is atomic, so entering below the limit is a counter
    increment; only callers over the limit wait on a future.
    """

    def __init__(self, maximum: int, minimum: int = 1, cooldown_s: float = 1.0):
        self.maximum = maximum
        self.minimum = max(1, min(minimum, maximum))
        self.limit = maximum
        self.in_flight = 0
        self.cooldown_s = cooldown_s
        self.throttles = 0
        self._successes = 0
        self._last_cut = 0.0
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

    def _wake(self) -> None:
        free = self.limit - self.in_flight
        while free > 0 and self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                free -= 1

    def throttled(self) -> None:
        """A 429: cut the limit in half (at most once per cooldown)."""
        self.throttles += 1
        now = time.monotonic()
        if now - self._last_cut >= self.cooldown_s:
            self._last_cut = now
            self.limit = max(self.minimum, self.limit // 2)
            self._successes = 0

    def succeeded(self) -> None:
        """A call succeeded: grow back additively."""
        if self.limit >= self.maximum:
            return
        self._successes += 1
        if self._successes >= self.limit:
            self._successes = 0
            self.limit += 1
            self._wake()
