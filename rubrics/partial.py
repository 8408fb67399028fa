"""Partial credit (step level, ``meta_level`` 1): the share of checks an answer passes."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from agentsynth.signals import GradeContext, Grader, Signal, SignalType
from agentsynth.tasks import Task

Check = Callable[[Task, str], bool]


class _Partial(Grader):
    def __init__(self, checks: Sequence[tuple[str, Check]], signal_type: SignalType):
        if not checks:
            raise ValueError("partial_credit needs at least one check")
        self.checks = list(checks)
        self.signal_type = signal_type

    def grade(self, ctx: GradeContext) -> Signal:
        failed = [name for name, check in self.checks if not _safe(check, ctx.task, ctx.answer)]
        value = 1 - len(failed) / len(self.checks)
        fb = "" if not failed else "Not yet satisfied: " + ", ".join(failed) + "."
        return Signal(self.name, value, not failed, fb, {"failed": failed})


def _safe(check: Check, task: Task, answer: str) -> bool:
    try:
        return bool(check(task, answer))
    except Exception:  # noqa: BLE001 - a check that cannot judge garbage counts as failed
        return False


def partial_credit(checks: Sequence[tuple[str, Check]], name: str = "partial", description: str = "") -> Grader:
    """Value = share of named ``checks`` passed; passed = all of them; feedback names the failed ones."""
    st = SignalType(name, "verifier", "open", 1, True, description or f"share of {len(checks)} checks passed")
    return _Partial(checks, st)
