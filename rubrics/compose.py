"""Composing graders: a weighted sum, and an all-of gate.

A composite's labels are derived from its parts unless given: closed if any part is closed (its
information is only as open as its most closed part), task-relevant if any part is, and the
finest (lowest) meta-level among the parts.
"""

from __future__ import annotations

from collections.abc import Sequence

from agentsynth.signals import GradeContext, Grader, Signal, SignalType, run_grader


def _labels(name: str, parts: Sequence[Grader], description: str, **override) -> SignalType:
    types = [g.signal_type for g in parts]
    return SignalType(
        name,
        override.get("source") or "rubric",
        override.get("openness") or ("closed" if any(t.openness == "closed" for t in types) else "open"),
        override["meta_level"] if override.get("meta_level") is not None else min(t.meta_level for t in types),
        override["task_relevant"] if override.get("task_relevant") is not None else any(t.task_relevant for t in types),
        description,
    )


class _Weighted(Grader):
    def __init__(self, parts: Sequence[tuple[Grader, float]], threshold: float, signal_type: SignalType):
        self.parts = list(parts)
        self.threshold = threshold
        self.signal_type = signal_type
        self.uses_model = any(getattr(g, "uses_model", False) for g, _ in parts)

    def grade(self, ctx: GradeContext) -> Signal:
        sigs = [(run_grader(g, ctx), w) for g, w in self.parts]
        total = sum(w for _, w in sigs)
        value = sum(s.value * w for s, w in sigs) / total
        fb = " ".join(s.feedback for s, _ in sigs if s.feedback and s.passed is not True)
        return Signal(self.name, value, value >= self.threshold, fb, {s.name: s.value for s, _ in sigs},
                      sum(s.tokens for s, _ in sigs))


class _AllOf(Grader):
    def __init__(self, parts: Sequence[Grader], signal_type: SignalType):
        self.parts = list(parts)
        self.signal_type = signal_type
        self.uses_model = any(getattr(g, "uses_model", False) for g in parts)

    def grade(self, ctx: GradeContext) -> Signal:
        sigs = [run_grader(g, ctx) for g in self.parts]
        ok = all(s.passed is True for s in sigs)
        fb = " ".join(s.feedback for s in sigs if s.feedback and s.passed is not True)
        return Signal(self.name, float(ok), ok, fb, {s.name: s.passed for s in sigs}, sum(s.tokens for s in sigs))


def weighted_sum(parts: Sequence[tuple[Grader, float]], *, name: str, threshold: float = 0.5, **labels) -> Grader:
    """Value = weighted mean of the parts' values; passed = value >= ``threshold``."""
    if not parts or sum(w for _, w in parts) <= 0 or any(w < 0 for _, w in parts):
        raise ValueError("weighted_sum needs parts with non-negative weights summing to > 0")
    desc = "weighted sum of " + ", ".join(f"{w:g}*{g.name}" for g, w in parts)
    return _Weighted(parts, threshold, _labels(name, [g for g, _ in parts], desc, **labels))


def all_of(parts: Sequence[Grader], *, name: str, **labels) -> Grader:
    """Passes only when every part passes (a gate, e.g. correct AND well-formatted)."""
    if not parts:
        raise ValueError("all_of needs at least one part")
    return _AllOf(parts, _labels(name, parts, "all of " + ", ".join(g.name for g in parts), **labels))
