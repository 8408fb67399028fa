"""Signals, their meta-level labels, and the graders that produce them.

A *grader* looks at one turn of an episode and returns a :class:`Signal`. Every grader declares
its labels once, as a :class:`SignalType`: where the signal comes from, whether it is open or
closed, how coarse it is (its meta-level) and whether it can be satisfied without solving the
task. The labels are claims; the audit measures them.
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .tasks import Task

Source = Literal["environment", "verifier", "reference", "rubric", "judge", "self"]
Openness = Literal["open", "closed"]
Role = Literal["feedback", "reward", "truth", "score"]

SOURCES: tuple[str, ...] = ("environment", "verifier", "reference", "rubric", "judge", "self")
OPENNESS: tuple[str, ...] = ("open", "closed")
ROLES: tuple[str, ...] = ("feedback", "reward", "truth", "score")
META_LEVELS: dict[int, str] = {0: "token", 1: "step", 2: "outcome", 3: "criterion"}


@dataclass(frozen=True, slots=True)
class SignalType:
    """The labels a grader declares once (DESIGN.md, "Signal labels").

    ``meta_level``: 0 token (reproduce a reference surface form), 1 step (process, partial
    credit), 2 outcome (binary correctness), 3 criterion (abstract criteria across domains).
    """

    name: str
    source: Source
    openness: Openness
    meta_level: int
    task_relevant: bool
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"signal name {self.name!r}: use letters, digits, '_' or '-'")
        if self.source not in SOURCES:
            raise ValueError(f"signal {self.name}: source {self.source!r} not in {SOURCES}")
        if self.openness not in OPENNESS:
            raise ValueError(f"signal {self.name}: openness {self.openness!r} not in {OPENNESS}")
        if self.meta_level not in META_LEVELS:
            raise ValueError(f"signal {self.name}: meta_level {self.meta_level!r} not in 0..3")
        if self.source == "self" and self.openness != "closed":
            raise ValueError(f"signal {self.name}: a self signal is closed by definition")


@dataclass(slots=True)
class Signal:
    """The outcome of one grader on one turn.

    ``value`` is the grade as a float, ``passed`` the binarized verdict (None when the grader
    cannot say), ``feedback`` the text an agent would be shown if this signal is the run's
    feedback channel, ``details`` anything else worth keeping (JSON-serialisable), ``tokens`` the
    model tokens spent producing the signal (judge calls).
    """

    name: str
    value: float
    passed: bool | None
    feedback: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    tokens: int = 0

    def as_dict(self) -> dict[str, Any]:
        """A fresh plain-dict copy (for ``info`` dicts and the store)."""
        return {
            "name": self.name,
            "value": self.value,
            "passed": self.passed,
            "feedback": self.feedback,
            "details": dict(self.details),
            "tokens": self.tokens,
        }


JudgeFn = Callable[[list[dict[str, Any]]], "JudgeReply"]


@dataclass(frozen=True, slots=True)
class JudgeReply:
    """A model's reply to a grading request: its text and the tokens it cost."""

    text: str
    tokens: int = 0


@dataclass(frozen=True, slots=True)
class GradeContext:
    """What a grader sees: the task (with its hidden answer), the agent's answer on this turn,
    the conversation so far (the answer is its last message), the turn number (1-based), and two
    callables that send messages to a model and return a :class:`JudgeReply`: ``policy`` (the
    run's policy model: for self-review) and ``judge`` (the run's judge model: the policy itself
    unless the run names another). Both are None when the environment runs without a model
    (e.g. under ``check_env``). A grader that calls either must set ``uses_model = True``."""

    task: Task
    answer: str
    messages: Sequence[Mapping[str, Any]]
    turn: int
    policy: JudgeFn | None = None
    judge: JudgeFn | None = None


class Grader:
    """Base class for graders: set ``signal_type`` and implement :meth:`grade`.

    Graders must not raise on garbage answers: return a failing :class:`Signal` instead. If one
    does raise, the episode ends with the error recorded (see :func:`run_grader`).
    """

    signal_type: SignalType
    uses_model: bool = False  # True if grade() calls ctx.policy or ctx.judge (its environment then runs off the event loop)

    @property
    def name(self) -> str:
        """The signal name, from the declared type."""
        return self.signal_type.name

    def grade(self, ctx: GradeContext) -> Signal:  # pragma: no cover - abstract
        """Grade one turn."""
        raise NotImplementedError


class FunctionGrader(Grader):
    """A grader made from a plain function ``fn(ctx) -> Signal | float | bool``."""

    def __init__(self, fn: Callable[[GradeContext], Any], signal_type: SignalType):
        self.fn = fn
        self.signal_type = signal_type

    def grade(self, ctx: GradeContext) -> Signal:
        out = self.fn(ctx)
        if isinstance(out, Signal):
            return out
        if isinstance(out, bool):
            return Signal(self.name, float(out), out)
        if isinstance(out, (int, float)):
            v = float(out)
            return Signal(self.name, v, None if math.isnan(v) else v >= 0.5)
        raise TypeError(f"grader {self.name} returned {type(out).__name__}, expected Signal, float or bool")

    def __repr__(self) -> str:
        return f"FunctionGrader({self.name!r})"


def grader(
    name: str,
    *,
    source: Source,
    openness: Openness = "open",
    meta_level: int,
    task_relevant: bool = True,
    description: str = "",
) -> Callable[[Callable[[GradeContext], Any]], FunctionGrader]:
    """Decorator: turn ``fn(ctx) -> Signal | float | bool`` into a labelled grader.

    >>> @grader("has_answer_line", source="rubric", meta_level=0, task_relevant=False)
    ... def has_answer_line(ctx):
    ...     return "Answer:" in ctx.answer
    """
    st = SignalType(name, source, openness, meta_level, task_relevant, description or (name))

    def wrap(fn: Callable[[GradeContext], Any]) -> FunctionGrader:
        g = FunctionGrader(fn, st)
        g.__doc__ = fn.__doc__
        return g

    return wrap


class JudgeError(RuntimeError):
    """A grading call to a model failed (raised by the runner's judge callable, not a grader bug);
    ``transient``: it ran out of retries on failures a later try may get past."""

    def __init__(self, message: str, *, transient: bool = False):
        super().__init__(message)
        self.transient = transient


class GraderError(RuntimeError):
    """A grader raised: a bug in the grader, recorded as the episode's error."""


def run_grader(g: Grader, ctx: GradeContext) -> Signal:
    """Run one grader; wrap whatever it raises in :class:`GraderError` naming the grader."""
    try:
        sig = g.grade(ctx)
    except JudgeError:
        raise
    except Exception as exc:  # noqa: BLE001 - user code: report, never hide
        tb = traceback.extract_tb(exc.__traceback__)[-1:]
        where = f" at {tb[0].filename}:{tb[0].lineno}" if tb else ""
        raise GraderError(f"grader {g.name!r} raised {type(exc).__name__}: {exc}{where}") from exc
    if not isinstance(sig, Signal):
        raise GraderError(f"grader {g.name!r} returned {type(sig).__name__}, expected Signal")
    return sig
