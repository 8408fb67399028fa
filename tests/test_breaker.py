"""The circuit breaker's rules, on real openai exception objects (the probe is a plain function
here; tests/test_faults.py drives it end to end against a server killed mid-run)."""

from __future__ import annotations

import asyncio

import httpx2
import openai
import pytest

from agentsynth.models.base import EndpointDown
from agentsynth.models.breaker import CLOSED, DOWN, OPEN, CircuitBreaker

REQ = httpx2.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
REFUSED = openai.APIConnectionError(request=REQ)
TIMEOUT = openai.APITimeoutError(request=REQ)


def breaker(probe_results: list[bool], **kw: float) -> tuple[CircuitBreaker, list[bool]]:
    probes: list[bool] = []

    async def probe() -> bool:
        up = probe_results[min(len(probes), len(probe_results) - 1)]
        probes.append(up)
        return up

    return CircuitBreaker("http://127.0.0.1:9/v1", probe, **kw), probes


def test_an_endpoint_that_never_answered_is_not_watched() -> None:
    async def scenario() -> None:
        b, probes = breaker([False], unreachable_s=0.2, trip_s=0.0)
        for _ in range(10):
            b.unreachable(REFUSED)
        assert b.state == CLOSED and not b.suspect
        await b.verdict()  # returns at once: the call fails on its own, as before
        assert probes == []

    asyncio.run(scenario())


def test_timeouts_among_answers_never_trip_it() -> None:
    async def scenario() -> None:
        b, probes = breaker([True], unreachable_s=0.2, trip_s=0.0)
        for _ in range(20):
            b.alive()
            b.unreachable(TIMEOUT)
            b.unreachable(TIMEOUT)  # two in a row, then an answer: below the three it takes
        assert b.state == CLOSED and b.trips == 0 and probes == []

    asyncio.run(scenario())


def test_a_sustained_streak_trips_it_and_an_answer_to_the_probe_closes_it() -> None:
    async def scenario() -> None:
        b, probes = breaker([False, False, True], unreachable_s=5.0, trip_s=0.0, probe_every_s=0.01)
        b.alive()
        for _ in range(3):
            b.unreachable(REFUSED)
        assert b.state == OPEN and b.suspect
        await asyncio.wait_for(b.wait_usable(), 5)  # calls wait for the probe, then go on
        assert b.state == CLOSED and probes == [False, False, True] and not b.suspect
        await b.aclose()

    asyncio.run(scenario())


def test_an_endpoint_that_stays_silent_is_given_up_with_one_line() -> None:
    async def scenario() -> None:
        b, probes = breaker([False], unreachable_s=0.3, trip_s=0.0, probe_every_s=0.01)
        b.alive()
        b.unreachable(REFUSED, "APIConnectionError: Connection error.")
        waiters = [asyncio.ensure_future(b.verdict()) for _ in range(3)]  # calls out of retries trip it at once
        results = await asyncio.gather(*waiters, return_exceptions=True)
        assert b.state == DOWN and len(probes) >= 2 and not any(probes)
        assert all(isinstance(r, EndpointDown) for r in results)
        msg = str(results[0])
        assert msg == "endpoint http://127.0.0.1:9/v1 unreachable for 0.3s (APIConnectionError: Connection error.)"
        with pytest.raises(EndpointDown):
            await b.wait_usable()  # and so does everything after

    asyncio.run(scenario())
