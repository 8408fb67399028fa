"""Numeric answers: parse a number out of a reply and compare within a tolerance."""

from __future__ import annotations

import math
import re
from fractions import Fraction

from agentsynth.env import final_answer

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
