"""Environment calls stay off the event loop unless they prove cheaper than a thread hop."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from agentsynth.episode import EnvCaller


def run(caller: EnvCaller, fn, n: int) -> list[int]:
    """Call ``fn`` n times through ``caller``; return the thread id each call ran on."""
    async def main() -> list[int]:
        return [await caller(fn) for _ in range(n)]

    return asyncio.run(main())


def test_cheap_calls_go_inline_after_the_probe() -> None:
    with ThreadPoolExecutor(2) as ex:
        caller = EnvCaller(ex, inline_ok=True, probe=8)
        threads = run(caller, threading.get_ident, 20)
    main = threading.get_ident()
    assert all(t != main for t in threads[:8]) and all(t == main for t in threads[8:])
    assert caller.inline


def test_slow_calls_stay_in_the_executor() -> None:
    with ThreadPoolExecutor(2) as ex:
        caller = EnvCaller(ex, inline_ok=True, probe=4)
        threads = run(caller, lambda: (time.sleep(0.002), threading.get_ident())[1], 10)
    assert threading.get_ident() not in threads and not caller.inline


def test_an_inline_call_that_blocks_sends_the_config_back_for_good() -> None:
    calls = {"n": 0}

    def sometimes_slow() -> int:
        calls["n"] += 1
        if calls["n"] == 12:
            time.sleep(0.06)  # over blocking_s
        return threading.get_ident()

    with ThreadPoolExecutor(2) as ex:
        caller = EnvCaller(ex, inline_ok=True, probe=8, blocking_s=0.05)
        threads = run(caller, sometimes_slow, 20)
    main = threading.get_ident()
    assert threads[11] == main and all(t != main for t in threads[12:]) and not caller.inline


def test_environments_whose_graders_call_a_model_never_go_inline() -> None:
    with ThreadPoolExecutor(2) as ex:
        caller = EnvCaller(ex, inline_ok=False, probe=2)
        threads = run(caller, threading.get_ident, 10)
    assert threading.get_ident() not in threads
