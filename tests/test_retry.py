"""The retry policy and adaptive concurrency, on real openai exception objects."""

from __future__ import annotations

import asyncio

import httpx2
import openai
import pytest

from agentsynth.models.limiter import AdaptiveLimiter
from agentsynth.models.retry import MalformedReply, RetryPolicy, cause, is_overload, is_transient, retry_after


def status_error(code: int, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    req = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")
    resp = httpx2.Response(code, headers=headers or {}, request=req)
    cls = {429: openai.RateLimitError, 500: openai.InternalServerError, 400: openai.BadRequestError,
           401: openai.AuthenticationError}.get(code, openai.APIStatusError)
    return cls("x", response=resp, body=None)


@pytest.mark.parametrize("code, transient", [(429, True), (500, True), (503, True), (408, True), (400, False), (401, False), (404, False), (422, False)])
def test_transient_classification(code: int, transient: bool) -> None:
    assert is_transient(status_error(code)) is transient


def test_connection_errors_and_timeouts_are_transient() -> None:
    req = httpx2.Request("POST", "http://127.0.0.1/")
    assert is_transient(openai.APITimeoutError(request=req))
    assert is_transient(openai.APIConnectionError(request=req))
    assert not is_transient(ValueError("malformed"))


def test_retry_after_forms() -> None:
    assert retry_after(status_error(429, {"retry-after": "2"})) == 2.0
    assert retry_after(status_error(429, {"retry-after-ms": "1500"})) == 1.5
    assert retry_after(status_error(429, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0  # in the past
    assert retry_after(status_error(429)) is None


class _State:
    def __init__(self, exc: BaseException, attempt: int):
        self.attempt_number = attempt
        self.outcome = type("O", (), {"exception": lambda self_: exc})()


def test_wait_honours_retry_after_with_a_cap_and_backs_off_exponentially() -> None:
    p = RetryPolicy(base=0.25, cap=8.0, max_retry_after=30.0)
    assert 3.0 <= p.wait(_State(status_error(429, {"retry-after": "3"}), 1)) <= 3.25
    assert 30.0 <= p.wait(_State(status_error(429, {"retry-after": "999"}), 1)) <= 30.25
    waits = [p.wait(_State(status_error(500), n)) for n in range(1, 12) for _ in range(50)]
    assert max(waits) <= 8.0 and min(waits) >= 0.0
    assert max(p.wait(_State(status_error(500), 1)) for _ in range(100)) <= 0.25


def test_malformed_replies_are_transient_and_every_failure_has_a_cause() -> None:
    req = httpx2.Request("POST", "http://127.0.0.1/")
    assert is_transient(MalformedReply("no choices"))
    assert cause(MalformedReply("x")) == "malformed"
    assert cause(status_error(429)) == "429"
    assert cause(status_error(500)) == cause(status_error(503)) == "5xx"
    assert cause(status_error(408)) == "timeout"
    assert cause(openai.APITimeoutError(request=req)) == "timeout"
    assert cause(openai.APIConnectionError(request=req)) == "connection"
    assert cause(status_error(409)) == "other"


def test_quota_exhausted_is_not_retried() -> None:
    req = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")
    body = {"message": "You exceeded your current quota", "type": "insufficient_quota", "code": "insufficient_quota"}
    quota = openai.RateLimitError("You exceeded your current quota", response=httpx2.Response(429, request=req), body=body)
    assert not is_transient(quota)
    assert is_transient(status_error(429))


def test_overload_signals_are_throttles_and_timeouts_only() -> None:
    req = httpx2.Request("POST", "http://127.0.0.1/")
    for exc in (status_error(429), status_error(503), openai.APITimeoutError(request=req)):
        assert is_overload(exc), exc
    for exc in (status_error(500), MalformedReply("x"), openai.APIConnectionError(request=req), status_error(400)):
        assert not is_overload(exc), exc


def test_a_429_does_not_lengthen_the_backoff_of_other_failures() -> None:
    p = RetryPolicy(base=0.25, cap=8.0)
    b = p.backoff()
    for _ in range(5):
        assert 1.0 <= b.next(status_error(429, {"retry-after": "1"})) <= 1.25
    assert max(b.next(status_error(500)) for _ in range(1)) <= 0.25  # the first non-throttle failure
    assert b.throttles == 5 and b.failures == 1


def _fill(lim: AdaptiveLimiter, n: int, overload_every: int) -> None:
    for i in range(n):
        lim.record(overload_every > 0 and i % overload_every == 0, lim.generation)


def test_adaptive_limiter_keeps_its_limit_when_a_minority_of_answers_are_throttled() -> None:
    lim = AdaptiveLimiter(64)
    _fill(lim, 64 * 20, overload_every=3)  # a third throttled, whatever the load
    assert lim.limit == 64 and lim.cuts == 0


def test_adaptive_limiter_halves_after_two_windows_of_mostly_throttles_and_grows_back() -> None:
    lim = AdaptiveLimiter(64)
    _fill(lim, 64, overload_every=1)  # one window over half: not yet
    _fill(lim, 64, overload_every=0)
    assert lim.limit == 64 and lim.cuts == 0
    _fill(lim, 128, overload_every=1)  # two in a row: halve
    assert lim.limit == 32 and lim.cuts == 1
    stale = lim.generation - 1
    for _ in range(200):
        lim.record(True, stale)  # answers to calls sent before the cut say nothing about the new limit
    assert lim.limit == 32
    _fill(lim, 64, overload_every=1)
    assert lim.limit == 16 and lim.lowest == 16
    _fill(lim, 20_000, overload_every=0)
    assert lim.limit == 64 and lim.lowest == 16


def test_adaptive_limiter_bounds_calls_in_flight() -> None:
    async def scenario() -> tuple[int, int]:
        lim = AdaptiveLimiter(8)
        _fill(lim, 32, overload_every=1)
        peak = 0

        async def call() -> None:
            nonlocal peak
            async with lim:
                peak = max(peak, lim.in_flight)
                await asyncio.sleep(0.001)

        await asyncio.gather(*(call() for _ in range(100)))
        return lim.limit, peak

    limit, peak = asyncio.run(scenario())
    assert limit == 4 and peak == 4
