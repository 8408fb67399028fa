"""The retry policy and adaptive concurrency, on real openai exception objects."""

from __future__ import annotations

import asyncio

import httpx2
import openai
import pytest

from agentsynth.models.retry import AdaptiveLimiter, RetryPolicy, is_transient, retry_after


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


def test_adaptive_limiter_halves_on_throttle_and_grows_back() -> None:
    async def scenario() -> tuple[int, int, int, int]:
        lim = AdaptiveLimiter(64, cooldown_s=0.0)
        lim.throttled()
        lim.throttled()
        after_cuts = lim.limit
        peak = 0

        async def call() -> None:
            nonlocal peak
            async with lim:
                peak = max(peak, lim.in_flight)
                await asyncio.sleep(0.001)
            lim.succeeded()

        await asyncio.gather(*(call() for _ in range(200)))
        grown = lim.limit
        for _ in range(5000):
            lim.succeeded()
        return after_cuts, peak, grown, lim.limit

    after_cuts, peak, grown, final = asyncio.run(scenario())
    assert after_cuts == 16
    assert peak <= grown and grown > 16
    assert final == 64
