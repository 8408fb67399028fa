"""Which episode runs when: :class:`PlanQueue` (what to run) and :class:`Places` (how many at once).

The queue is the plan (streamed) and the episodes to run again: an episode whose model call ran
out of retries on a transient failure goes back into the queue (:meth:`PlanQueue.again`), with its
costs so far carried over, ahead of the episodes not yet started — so its next try overlaps with
the rest of the plan instead of adding a tail of tries one after another at the end. A worker that
finds the queue empty while other episodes are still running waits for them, since they may come
back.

``concurrency`` episodes work at once (:class:`Places`). An episode waiting out a retry's backoff
does not use the endpoint, so it lends its place meanwhile (:meth:`Place.lend`, the retry policy's
:data:`~agentsynth.models.retry.backoff_sleep`) and another episode starts or resumes; coming
back, it waits for a place before its next attempt, ahead of episodes not yet started. At most
``max_alive`` episodes are alive, counting those waiting. Without this, under an endpoint that
fails 3 attempts in 4, episodes spent most of their time asleep holding a place while the
endpoint had fewer calls in flight than ``concurrency`` allows.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Iterator

from .spec import PlannedEpisode

Carry = dict[str, int]
"""An episode's costs from earlier tries (tokens, attempts, tries), carried into its next row."""


class PlanQueue:
    """Reruns first, then planned episodes; ``take`` / ``finish`` around each episode."""

    def __init__(self, planned: Iterator[PlannedEpisode], failed: dict[str, Carry]):
        self._planned: Iterator[PlannedEpisode] | None = planned
        self._failed = failed  # episodes stored as failed by an earlier session: their carry
        self._again: deque[tuple[PlannedEpisode, Carry]] = deque()
        self._back: deque[tuple[PlannedEpisode, Carry | None, bool]] = deque()
        self._changed = asyncio.Event()
        self.active = 0
        self.stopped = False

    @property
    def rerunning(self) -> int:
        """Episodes queued to run again."""
        return len(self._again)

    async def take(self) -> tuple[PlannedEpisode, Carry | None, bool] | None:
        """The next episode, its carry and whether it is a rerun; None when there is nothing left
        (or the run stopped)."""
        while not self.stopped:
            item = self.take_nowait()
            if item is not None:
                return item
            if self.active == 0:
                return None
            await self._wait()
        return None

    def take_nowait(self) -> tuple[PlannedEpisode, Carry | None, bool] | None:
        """The next episode if one is ready now (as :meth:`take`), else None without waiting."""
        if self.stopped:
            return None
        if self._back:
            self.active += 1
            return self._back.popleft()
        if self._again:
            p, carry = self._again.popleft()
            self.active += 1
            return p, carry, True
        if self._planned is not None:
            p = next(self._planned, None)
            if p is not None:
                self.active += 1
                return p, self._failed.get(p.episode_id), False
            self._planned = None
        return None

    def put_back(self, item: tuple[PlannedEpisode, Carry | None, bool]) -> None:
        """An episode taken but never run to the end (the Ray worker running it died): handed out
        again first, exactly as it was taken (its carry, whether it is a rerun)."""
        self._back.append(item)
        self.active -= 1
        self._wake()

    def finish(self) -> None:
        """An episode taken is over (stored, queued again, or abandoned)."""
        self.active -= 1
        self._wake()

    def again(self, p: PlannedEpisode, carry: Carry) -> None:
        """Run ``p`` again, before the episodes not yet started."""
        self._again.append((p, carry))
        self._wake()

    def stop(self) -> None:
        """Hand out nothing more; wake waiting workers so that they end."""
        self.stopped = True
        self._wake()

    async def _wait(self) -> None:
        await self._changed.wait()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


class Places:
    """``size`` places for episodes at work, lent during backoffs (see the module docstring).

    ``spawn()`` starts one more worker; it is called when a place is lent, no worker is waiting
    for one and fewer than ``max_alive`` workers are alive (:attr:`workers`, kept by the caller).
    """

    def __init__(self, size: int, max_alive: int, spawn: Callable[[], None]):
        self.size = size
        self.max_alive = max(size, max_alive)
        self.free = size
        self.lent = 0
        self.waiting = 0
        self.workers = 0
        self._spawn = spawn
        self._resume: deque[asyncio.Future[None]] = deque()
        self._start: deque[asyncio.Future[None]] = deque()

    async def acquire(self, resume: bool) -> None:
        """Wait for a place (``resume``: an episode back from a backoff, served first)."""
        if self.free > 0 and not self._resume and (resume or not self._start):
            self.free -= 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        (self._resume if resume else self._start).append(fut)
        self.waiting += not resume
        try:
            await fut  # the place was handed over by release(): ``free`` did not move
        except BaseException:
            if fut.done() and not fut.cancelled():
                self.release()  # handed over, but cancelled before it could be used
            else:
                with contextlib.suppress(ValueError):
                    (self._resume if resume else self._start).remove(fut)
            raise
        finally:
            self.waiting -= not resume

    def release(self) -> None:
        """Give a place back: to a returning episode first, then to one waiting to start."""
        for q in (self._resume, self._start):
            while q:
                fut = q.popleft()
                if not fut.done():
                    fut.set_result(None)
                    return
        self.free += 1


class Place:
    """One episode's hold on a place; :meth:`lend` is its backoff sleep."""

    __slots__ = ("places", "held")

    def __init__(self, places: Places):
        self.places = places
        self.held = False

    async def take(self) -> None:
        """Wait for a place to start the episode."""
        await self.places.acquire(resume=False)
        self.held = True

    async def lend(self, seconds: float) -> None:
        """Sleep ``seconds`` without holding the place; then wait to get one back."""
        places = self.places
        self.held = False
        places.release()
        if places.waiting == 0 and places.workers < places.max_alive:
            places._spawn()
        places.lent += 1
        try:
            await asyncio.sleep(seconds)
        finally:
            places.lent -= 1
        await places.acquire(resume=True)
        self.held = True

    def leave(self) -> None:
        """The episode is over: give the place back if held."""
        if self.held:
            self.held = False
            self.places.release()
