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

    def wait(self, state: RetryCallState) -> float:
        """Tenacity wait function."""
        exc = state.outcome.exception() if state.outcome else None
        asked = retry_after(exc)
        if asked is not None:
            return min(asked, self.max_retry_after) + random.uniform(0, self.base)
        return random.uniform(0, min(self.cap, self.base * 2 ** (state.attempt_number - 1)))

    def retrying(self, on_retry=None) -> AsyncRetrying:
        """A tenacity ``AsyncRetrying`` for one call."""
        return AsyncRetrying(
            retry=retry_if_exception(is_transient),
            wait=self.wait,
            stop=stop_after_attempt(self.max_retries + 1),
            reraise=True,
            before_sleep=on_retry,
        )


class AdaptiveLimiter:
    """An async semaphore whose size adapts: halve on throttling, +1 per ``limit`` successes."""

    def __init__(self, maximum: int, minimum: int = 1, cooldown_s: float = 1.0):
        self.maximum = maximum
        self.minimum = max(1, min(minimum, maximum))
        self.limit = maximum
        self.in_flight = 0
        self.cooldown_s = cooldown_s
        self.throttles = 0
        self._successes = 0
        self._last_cut = 0.0
        self._cond = asyncio.Condition()

    async def __aenter__(self) -> "AdaptiveLimiter":
        async with self._cond:
            while self.in_flight >= self.limit:
                await self._cond.wait()
            self.in_flight += 1
        return self

    async def __aexit__(self, *exc: object) -> None:
        async with self._cond:
            self.in_flight -= 1
            self._cond.notify()

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
            if self._cond._waiters:  # type: ignore[attr-defined]
                asyncio.get_running_loop().create_task(self._wake())

    async def _wake(self) -> None:
        async with self._cond:
            self._cond.notify()
