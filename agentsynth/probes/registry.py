"""What a probe strategy is, what it sees, and where strategies are registered.

A :class:`Strategy` builds one reply (or a few) for a task: a ``hack`` reply is wrong by
construction and must be rejected (a grader that accepts it is *hackable*); a ``brittle`` reply is
an equivalent form of a correct reply and must be accepted (a grader that rejects it is
*brittle*). It returns None (or an empty list) when it does not apply to the task: the probe then
skips it for that task, and ``n`` counts only built replies.

Built-in strategies live in :mod:`agentsynth.probes.hacks` and :mod:`agentsynth.probes.transforms`.
Register more with :func:`register_strategy`, or from a package through the ``agentsynth.probes``
entry-point group (an entry point loads a :class:`Strategy` or a list of them), as arms are
registered (:mod:`agentsynth.loop.arms`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from importlib.metadata import entry_points
from typing import Literal

from ..env import ProbeReplies, TextEnv
from ..tasks import Task

Kind = Literal["hack", "brittle"]
KINDS: tuple[str, ...] = ("hack", "brittle")
GROUP = "agentsynth.probes"


@dataclass
class ProbeCase:
    """What a strategy sees for one task: the environment (its ``task`` is this task), the task,
    its reference reply (:meth:`TextEnv.reference_reply`), the reference answer as text, what the
    environment says about the task (:class:`ProbeReplies`), the other tasks drawn with it and
    where it comes from."""

    env: TextEnv
    task: Task
    reference: str
    replies: ProbeReplies
    others: Sequence[Task] = ()
    where: str = ""
    """Which task this is (environment, seed, difficulty), for error messages."""

    @property
    def answer(self) -> str:
        """The reference answer as a model would write it (without a final newline)."""
        return self.task.answer.strip("\n")

    @property
    def single_line(self) -> bool:
        """Whether the reference answer fits on one line."""
        return "\n" not in self.answer

    def reply_for(self, answer: str) -> str:
        """``answer`` written as the reference reply is (the environment's reply form with another
        answer in it: ``Answer: x = <answer>``, a fenced block, ...)."""
        return self.env.reference_reply(dataclasses.replace(self.task, answer=answer))

    def wrong(self, i: int = 0) -> str | None:
        """The ``i``-th wrong answer the environment gives (wrapping around), or None without any."""
        w = self.replies.wrong
        return w[i % len(w)] if w else None

    @cached_property
    def wrong_answers(self) -> list[str]:
        """Wrong answers: the environment's, then (in a single-answer domain) other tasks'
        references whose :meth:`TextEnv.canonical` key differs from this task's."""
        out = list(self.replies.wrong)
        if self.replies.single_answer:
            mine = self.env.canonical(self.reference)
            out += [t.answer.strip("\n") for t in self.others
                    if t.answer != self.task.answer and self.env.canonical(self.reply_for(t.answer.strip("\n"))) != mine]
        return list(dict.fromkeys(out))


Build = Callable[[ProbeCase], "str | Sequence[str] | None"]


@dataclass(frozen=True)
class Strategy:
    """One probe strategy: its ``name``, ``kind`` (``hack``: must fail; ``brittle``: must pass), what
    it does, and ``build(case) -> reply | [replies] | None`` (None or [] when it does not apply)."""

    name: str
    kind: Kind
    description: str
    build: Build

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"strategy {self.name!r}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if not self.name or self.name.startswith("env:"):
            raise ValueError(f"strategy name {self.name!r}: give a name (names starting 'env:' are the environments' own)")

    def replies(self, case: ProbeCase) -> list[str]:
        """The replies this strategy builds for ``case`` (empty: it does not apply)."""
        out = self.build(case)
        if out is None:
            return []
        return [out] if isinstance(out, str) else [r for r in out if isinstance(r, str)]


STRATEGIES: dict[str, Strategy] = {}


def register_strategy(strategy: Strategy) -> Strategy:
    """Make ``strategy`` part of every probe (a later registration under its name replaces one)."""
    if not isinstance(strategy, Strategy):
        raise TypeError(f"register_strategy takes an agentsynth.probes.Strategy, not {type(strategy).__name__}")
    STRATEGIES[strategy.name] = strategy
    return strategy


def strategy(name: str, kind: Kind, description: str) -> Callable[[Build], Strategy]:
    """Decorator: register ``build`` as a strategy.

    >>> @strategy("shout", "hack", "the wrong answer in capitals")
    ... def shout(case):
    ...     w = case.wrong()
    ...     return None if w is None else case.reply_for(w.upper())
    """
    def wrap(build: Build) -> Strategy:
        return register_strategy(Strategy(name, kind, description, build))

    return wrap


def all_strategies() -> list[Strategy]:
    """Every strategy: the built-in ones, the registered ones and those of the ``agentsynth.probes``
    entry points (loaded here; one that does not load, or loads no Strategy, raises TypeError naming it)."""
    from . import hacks, transforms  # noqa: F401 - registers the built-in strategies

    for ep in entry_points(group=GROUP):
        try:
            loaded = ep.load()
        except Exception as exc:  # noqa: BLE001 - a package's code: one line naming its entry point
            raise TypeError(f"entry point {ep.name} = {ep.value!r} ({GROUP}) does not load: {type(exc).__name__}: "
                            f"{' '.join(str(exc).split())}") from None
        for s in loaded if isinstance(loaded, (list, tuple)) else [loaded]:
            if not isinstance(s, Strategy):
                raise TypeError(f"entry point {ep.name} = {ep.value!r} ({GROUP}) is not an agentsynth.probes.Strategy")
            STRATEGIES.setdefault(s.name, s)
    return list(STRATEGIES.values())
