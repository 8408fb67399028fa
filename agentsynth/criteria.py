"""Weighted criteria (criterion level, ``meta_level`` 3): abstract requirements that hold across
domains ("the final answer is correct", "the answer is stated in the requested form", "the work
is shown"), each with a weight. The critique names the criteria not met, never the answer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .signals import GradeContext, Grader, Signal, SignalType
from .tasks import Task

RUBRIC_PREFIX = "Rubric: "
CORRECT_CRITERION = "the final answer is correct"
"""The description of the default rubric's correctness criterion (:meth:`agentsynth.TextEnv.criteria`)."""
WRONG_ANSWER = "NOT met: " + CORRECT_CRITERION
"""How a rubric critique says the final answer is wrong (the sim model reads it)."""


@dataclass(frozen=True)
class Criterion:
    """One requirement: ``check(task, answer) -> bool``, its weight, and the text the agent sees."""

    name: str
    description: str
    check: Callable[[Task, str], bool]
    weight: float = 1.0


class _Criteria(Grader):
    def __init__(self, criteria: Sequence[Criterion], threshold: float, signal_type: SignalType):
        if not criteria or any(c.weight < 0 for c in criteria) or sum(c.weight for c in criteria) <= 0:
            raise ValueError("criteria_rubric needs criteria with non-negative weights summing to > 0")
        self.criteria = list(criteria)
        self.threshold = threshold
        self.signal_type = signal_type

    def grade(self, ctx: GradeContext) -> Signal:
        met = {c.name: _safe(c, ctx.task, ctx.answer) for c in self.criteria}
        total = sum(c.weight for c in self.criteria)
        value = sum(c.weight for c in self.criteria if met[c.name]) / total
        passed = value >= self.threshold
        lines = [("met: " if met[c.name] else "NOT met: ") + c.description for c in self.criteria]
        return Signal(self.name, value, passed, RUBRIC_PREFIX + "; ".join(lines) + ".", {"met": met})


def _safe(c: Criterion, task: Task, answer: str) -> bool:
    try:
        return bool(c.check(task, answer))
    except Exception:  # noqa: BLE001 - a criterion that cannot judge garbage is not met
        return False


def criteria_rubric(
    criteria: Sequence[Criterion], *, name: str = "rubric", threshold: float = 1.0, task_relevant: bool = True,
    description: str = "",
) -> Grader:
    """Value = weighted share of criteria met; passed = value >= ``threshold``; the feedback lists
    every criterion as met / NOT met."""
    st = SignalType(name, "rubric", "open", 3, task_relevant,
                    description or "weighted criteria: " + ", ".join(c.name for c in criteria))
    return _Criteria(criteria, threshold, st)
