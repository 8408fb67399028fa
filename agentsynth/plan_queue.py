"""The episodes a run's workers take: the plan (streamed), then the episodes to run again.

An episode whose model call ran out of retries on a transient failure goes back at the end
(:meth:`PlanQueue.again`), with its costs so far carried over, so a flaky endpoint gets the time
the rest of the plan takes before it is asked again. A worker that finds the queue empty while
other episodes are still running waits for them, since they may come back.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator

from .spec import PlannedEpisode

Carry = dict[str, int]
"""An episode's costs from earlier tries (tokens, attempts, tries), carried into its next row."""


class PlanQueue:
    """Planned episodes, then reruns; ``take`` / ``finish`` around each episode."""

    def __init__(self, planned: Iterator[PlannedEpisode], failed: dict[str, Carry]):
        self._planned: Iterator[PlannedEpisode] | None = planned
        self._failed = failed  # episodes stored as failed by an earlier session: their carry
        self._again: deque[tuple[PlannedEpisode, Carry]] = deque()
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
            if self._planned is not None:
                p = next(self._planned, None)
                if p is not None:
                    self.active += 1
                    return p, self._failed.get(p.episode_id), False
                self._planned = None
            if self._again:
                p, carry = self._again.popleft()
                self.active += 1
                return p, carry, True
            if self.active == 0:
                return None
            await self._wait()
        return None

    def finish(self) -> None:
        """An episode taken is over (stored, queued again, or abandoned)."""
        self.active -= 1
        self._wake()

    def again(self, p: PlannedEpisode, carry: Carry) -> None:
        """Run ``p`` again after the rest of the plan."""
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
