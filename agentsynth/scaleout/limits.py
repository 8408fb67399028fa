"""One in-flight limit per endpoint across all Ray workers, and one adaptive back-off.

Locally a run's endpoint client holds an :class:`~agentsynth.models.limiter.AdaptiveLimiter`: at
most ``concurrency`` calls in flight, halved when most answers of two windows in a row are
overload signals (429, 503, a timeout), grown by one per calm window. On Ray each worker has its
own client, and W independent limiters would each see 1/W of the answers — small windows, noisy
decisions — and a 429 storm would be answered W times over, or not at all by the workers that
happened to be lucky. So the decision is the driver's, made once for the endpoint:

- each worker's client gets a :class:`SharedLimiter`: an ordinary semaphore whose size the driver
  sets (its share of the endpoint's limit) and which, instead of adapting, counts the answers and
  overload signals to calls started under the current limit (its *tally*);
- the driver polls the workers' tallies (every ``status_every_s``, with the progress figures) and
  feeds them to one :class:`GlobalLimit` per endpoint — the same AIMD state machine as the local
  limiter, windows counted over all workers' answers — and when the limit moves, pushes each
  worker its share (:func:`shares`) with the new generation; answers to calls started before
  the change are not counted (the tally carries the generation it was counted under).

The limit across workers is then exactly the sum of the shares: at most ``concurrency`` calls in
flight for the endpoint however many workers, each worker's share at least 1. Episodes at work
follow the same split (a worker runs at most its share of ``concurrency`` at once). Reacting takes
one poll longer than in one process (a quarter of a second by default), which is small beside the
window the limiter waits for anyway. An actor per endpoint that every call would ask for a permit
was the alternative: exact, but one more round trip per model call (~0.3 ms of Ray overhead at
800 calls/s) on the path the benchmark is about.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..models.limiter import AdaptiveLimiter


def shares(total: int, n: int) -> list[int]:
    """``total`` split over ``n`` workers as evenly as integers allow, each at least 1."""
    base, extra = divmod(max(total, n), n)
    return [base + (i < extra) for i in range(n)]


@dataclass(frozen=True, slots=True)
class Tally:
    """Answers (and overload signals among them) a worker counted under limit ``generation``."""

    generation: int
    answers: int
    overloads: int


class SharedLimiter(AdaptiveLimiter):
    """A worker's limiter: its size set by the driver (:meth:`set_limit`), its answers counted
    for the driver (:meth:`take_tally`) instead of adapting on its own."""

    def __init__(self, maximum: int, limit: int | None = None, generation: int = 0):
        super().__init__(maximum)
        self._tally_answers = 0
        self._tally_overloads = 0
        self.set_limit(maximum if limit is None else limit, generation)

    def record(self, overload: bool, generation: int | None = None) -> None:
        """Count one answer (calls started under an older limit are not counted)."""
        if generation is not None and generation != self.generation:
            return
        self._tally_answers += 1
        self._tally_overloads += overload

    def take_tally(self) -> Tally:
        """The answers counted since the last tally (and forget them)."""
        t = Tally(self.generation, self._tally_answers, self._tally_overloads)
        self._tally_answers = self._tally_overloads = 0
        return t

    def set_limit(self, limit: int, generation: int) -> None:
        """The driver's decision: this worker's share of the endpoint's limit."""
        if generation != self.generation:
            self._tally_answers = self._tally_overloads = 0
        self.limit = max(1, limit)
        self.lowest = min(self.lowest, self.limit)
        self.generation = generation
        self._wake()


class GlobalLimit:
    """The driver's view of one endpoint: the AIMD state of an
    :class:`~agentsynth.models.limiter.AdaptiveLimiter` fed with every worker's tally."""

    def __init__(self, maximum: int):
        self.aimd = AdaptiveLimiter(maximum)

    @property
    def limit(self) -> int:
        return self.aimd.limit

    @property
    def generation(self) -> int:
        return self.aimd.generation

    def add(self, tally: Tally) -> bool:
        """Count a worker's tally; True when the limit changed (push the new shares)."""
        before = self.aimd.generation
        if tally.generation != before:
            return False  # counted under an older limit
        a, o = tally.answers, tally.overloads
        for i in range(a):  # the overload signals spread evenly among the answers
            self.aimd.record((i + 1) * o // a > i * o // a, before)
            if self.aimd.generation != before:
                return True  # the rest of the tally reflects the old limit
        return False
