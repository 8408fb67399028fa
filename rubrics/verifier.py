"""Outcome-level graders from a verifier function: every correct answer is equally good."""

from __future__ import annotations

from collections.abc import Callable

from agentsynth.signals import GradeContext, Grader, Signal, SignalType
from agentsynth.tasks import Task


class _Verifier(Grader):
    def __init__(self, fn: Callable[[Task, str], bool], signal_type: SignalType):
        self.fn = fn
        self.signal_type = signal_type

    def grade(self, ctx: GradeContext) -> Signal:
        ok = bool(self.fn(ctx.task, ctx.answer))
        return Signal(self.name, float(ok), ok, "Correct." if ok else "Incorrect.")


def verifier(fn: Callable[[Task, str], bool], name: str = "verified", description: str = "") -> Grader:
    """A grader from ``fn(task, answer) -> bool`` (source verifier, open, outcome level)."""
    st = SignalType(name, "verifier", "open", 2, True, description or f"verifier {getattr(fn, '__name__', name)}")
    return _Verifier(fn, st)
