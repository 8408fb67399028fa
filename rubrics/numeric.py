"""Numeric answers: parse a number out of a reply and compare within a tolerance."""

from __future__ import annotations

import math
import re
from fractions import Fraction

from agentsynth.env import final_answer
from agentsynth.signals import GradeContext, Grader, Signal, SignalType

_NUMBER = re.compile(r"[-+−]?\s*\d[\d,_]*(?:\.\d+)?(?:\s*/\s*\d+)?(?:[eE][-+]?\d+)?")


def parse_number(text: str) -> float | None:
    """The number an answer states: the last number in its ``Answer:`` line (else in its last
    line). Accepts ``-3``, ``1,024``, ``2.50``, ``1/2``, ``1e3``; returns None when there is none."""
    part = final_answer(text)
    found = _NUMBER.findall(part)
    if not found:
        return None
    raw = found[-1].replace("−", "-").replace(",", "").replace("_", "").replace(" ", "")
    try:
        value = float(Fraction(raw)) if "/" in raw else float(raw)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def numeric_match(answer: str, expected: float, *, rel_tol: float = 1e-9, abs_tol: float = 1e-9) -> bool:
    """Does the number stated in ``answer`` equal ``expected`` within tolerance?"""
    got = parse_number(answer)
    return got is not None and math.isclose(got, expected, rel_tol=rel_tol, abs_tol=abs_tol)


def direction_hint(answer: str, expected: float, what: str = "answer") -> str:
    """Step-level feedback on a numeric answer: whether it is too high or too low, never the value."""
    got = parse_number(answer)
    if got is None:
        return "no number found in your final answer."
    return f"your {what} is too high." if got > expected else f"your {what} is too low."


def numeric_tolerance(rel_tol: float = 1e-6, abs_tol: float = 1e-9, name: str = "numeric") -> Grader:
    """Outcome-level grader: the stated number equals ``float(task.answer)`` within tolerance."""
    st = SignalType(name, "verifier", "open", 2, True, f"number within rel {rel_tol:g} / abs {abs_tol:g} of the answer")

    class _Numeric(Grader):
        signal_type = st

        def grade(self, ctx: GradeContext) -> Signal:
            try:
                expected = float(ctx.task.answer)
            except ValueError:
                return Signal(self.name, 0.0, None, "", {"error": "reference answer is not a number"})
            ok = numeric_match(ctx.answer, expected, rel_tol=rel_tol, abs_tol=abs_tol)
            return Signal(self.name, float(ok), ok, "Correct." if ok else "Incorrect.")

    return _Numeric()
