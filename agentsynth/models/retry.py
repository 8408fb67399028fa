"""The one retry policy: what is retried, what each retry is counted as, and how long to wait.

Retried (transient): HTTP 408, 409, 429 (except ``insufficient_quota``: a billing state, not a
moment), 5xx, connection errors, timeouts, and a 200 whose body is not a chat completion
(:class:`MalformedReply`: truncated JSON, an HTML page from a proxy, a body without ``choices``).
Not retried: 400, 401, 403, 404, 422. Every retry counts against ``max_retries``.

Each failure has a cause (:func:`cause`: ``429``, ``5xx``, ``timeout``, ``malformed``,
``connection``), which is what a run reports its retries by. Waits: a throttle (429, 503, 529)
waits what the server asked (``Retry-After`` / ``retry-after-ms``, capped) or else backs off
exponentially; any other failure backs off exponentially with full jitter (``base`` × 2^n,
capped), where n counts that call's non-throttle failures only — a 429 is answered by its own
wait and does not lengthen the next 5xx's. Whether the whole client should slow down is not
decided here but by :class:`~agentsynth.models.limiter.AdaptiveLimiter` (from
:func:`is_overload` signals), and whether the endpoint is down by
:class:`~agentsynth.models.breaker.CircuitBreaker`.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import openai
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from .base import CAUSES as CAUSES, backoff_sleep

TRANSIENT_STATUS = frozenset({408, 409, 429}) | frozenset(range(500, 600))
THROTTLE_STATUS = frozenset({429, 503, 529})


class MalformedReply(Exception):
    """HTTP 200 whose body is not a chat completion: not JSON (truncated, an HTML page), or JSON
    without ``choices[0].message``. Proxies and overloaded servers send these transiently."""


def _quota_exhausted(exc: BaseException) -> bool:
    return isinstance(exc, openai.RateLimitError) and "insufficient_quota" in (str(getattr(exc, "code", "")), str(exc))


def is_transient(exc: BaseException) -> bool:
    """Is this failure worth retrying?"""
    if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError, asyncio.TimeoutError, MalformedReply)):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in TRANSIENT_STATUS and not _quota_exhausted(exc)
    return False


def cause(exc: BaseException) -> str:
    """What a failed attempt is counted as: one of :data:`CAUSES`, or ``other``."""
    if isinstance(exc, (openai.APITimeoutError, asyncio.TimeoutError)):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connection"
    if isinstance(exc, MalformedReply):
        return "malformed"
    if isinstance(exc, openai.APIStatusError):
        code = exc.status_code
        return "429" if code == 429 else "timeout" if code == 408 else "5xx" if code >= 500 else "other"
    return "other"


def is_throttle(exc: BaseException | None) -> bool:
    """The server asked us to slow down: HTTP 429, 503 (unavailable) or 529 (overloaded)."""
    return isinstance(exc, openai.APIStatusError) and exc.status_code in THROTTLE_STATUS


def is_overload(exc: BaseException | None) -> bool:
    """A sign that the endpoint has more than it can take: a throttle, or a timed-out request.
    Not: other 5xx, malformed replies, 4xx, connection errors (those are the breaker's)."""
    return is_throttle(exc) or (exc is not None and cause(exc) == "timeout")


def is_unreachable(exc: BaseException | None) -> bool:
    """The endpoint did not answer at all: a connection error or a timeout (the breaker's evidence)."""
    return isinstance(exc, (openai.APIConnectionError, asyncio.TimeoutError))


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


async def sleep(seconds: float) -> None:
    """Wait out a backoff (through :data:`~agentsynth.models.base.backoff_sleep`)."""
    await backoff_sleep.get()(seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff parameters: ``base`` × 2^(n-1) with full jitter, capped at ``cap``; a server's
    Retry-After is honoured up to ``max_retry_after`` seconds."""

    max_retries: int = 6
    base: float = 0.25
    cap: float = 8.0
    max_retry_after: float = 60.0

    def delay(self, exc: BaseException | None, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failure of ``exc``'s kind (throttle or not)."""
        asked = retry_after(exc)
        if asked is not None:
            return min(asked, self.max_retry_after) + random.uniform(0, self.base)
        return random.uniform(0, min(self.cap, self.base * 2 ** (max(1, failures) - 1)))

    def wait(self, state: RetryCallState) -> float:
        """Tenacity wait function (every earlier attempt counted as a failure of this kind)."""
        return self.delay(state.outcome.exception() if state.outcome else None, state.attempt_number)

    def backoff(self) -> "Backoff":
        """A fresh per-call backoff (counts that call's throttles and other failures apart)."""
        return Backoff(self)

    def retrying(self, backoff: "Backoff", on_retry: Callable[[RetryCallState], None] | None = None, *,
                 failed: int = 0) -> AsyncRetrying:
        """A tenacity ``AsyncRetrying`` for a call that already failed ``failed`` times, waiting
        ``backoff``'s delays.

        Callers make the first attempt themselves and enter this loop only after a transient
        failure: building a tenacity loop costs ~25 µs of CPU, which adds up at 1,000 calls/s.
        """
        return AsyncRetrying(
            retry=retry_if_exception(is_transient),
            wait=lambda st: backoff.next(st.outcome.exception() if st.outcome else None),
            stop=stop_after_attempt(max(1, self.max_retries + 1 - failed)),
            reraise=True,
            before_sleep=on_retry,
            sleep=sleep,
        )


class Backoff:
    """One call's waits: throttles and other failures each back off on their own count."""

    __slots__ = ("policy", "throttles", "failures")

    def __init__(self, policy: RetryPolicy):
        self.policy = policy
        self.throttles = 0
        self.failures = 0

    def next(self, exc: BaseException | None) -> float:
        """Seconds to wait after ``exc``."""
        if is_throttle(exc):
            self.throttles += 1
            return self.policy.delay(exc, self.throttles)
        self.failures += 1
        return self.policy.delay(exc, self.failures)
