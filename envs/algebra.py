"""Algebra: solve a linear equation in x exactly; solutions are rationals.

Difficulty 1: ``ax + b = c``; 2: x on both sides ``ax + b = cx + d``; 3: parentheses or fractions
(``a(x + b) = cx + d``, ``x/a + b = cx + d``, ``x/a + b = x/c + d``). Accepted: any form of the
exact value (``3/2``, ``6/4``, ``1.5``, ``x = 1.50``, ``-\\frac{3}{2}``, ``x = 3/2 = 1.5``: every number
in the final answer must agree). A rounded decimal counts only when x has no terminating decimal
and is within 0.1% relative (``0.333`` for 1/3; ``0.33`` is not). The hint gives the two sides'
values at the agent's x (omitted if either equals the solution) and whether x is too large or
too small; ``format`` (a score) checks the ``Answer: x = <value>`` line.
"""

from __future__ import annotations

import re
from fractions import Fraction

import numpy as np

from agentsynth import ProbeReplies, Task, TextEnv, final_answer
from rubrics import answer_line

from ._keys import answer_key

PROMPT = (
    "Solve for x: {eq}\nGive the exact value of x as an integer, a fraction p/q or a decimal; a rounded "
    "decimal counts only if x has no terminating decimal and it is within 0.1% of x. "
    "End with a line 'Answer: x = <value>'."
)
_NUM = r"(?:\d{1,60}\.?\d{0,60}|\.\d{1,60})(?:[eE][-+]?\d{1,3})?"
_TOKEN = re.compile(rf"([-+]?)\s*({_NUM})(?:\s*/\s*([-+]?)\s*({_NUM}))?")
_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")


def _term(coef: int, const: int = 0, var: str = "x") -> str:
    """``coef*var + const`` as text: ``3x - 5``, ``-x``, ``7``."""
    lead = "" if coef == 0 else var if coef == 1 else f"-{var}" if coef == -1 else f"{coef}{var}"
    if not lead:
        return str(const)
    return lead if const == 0 else f"{lead} {'+' if const > 0 else '-'} {abs(const)}"


def _values(text: str) -> list[tuple[Fraction, bool]] | None:
    """Every number in the final answer as (value, is_decimal); None when there is none or one is bad."""
    part = final_answer(text)[:300].replace("−", "-").replace("–", "-")
    part = _FRAC.sub(r"(\1)/(\2)", part)
    part = re.sub(r"\([^()]*=[^()]*\)", " ", part)  # a check like (2*4 + 1 = 9)
    part = re.sub(r"\(\s*([-+]?\s*[\d.]+)\s*\)", r"\1", part)
    out = []
    for sign, num, dsign, den in _TOKEN.findall(part):
        try:
            value = Fraction(num) / (Fraction(den) if den else 1)
        except (ValueError, ZeroDivisionError):
            return None
        out.append((-value if (sign == "-") != (dsign == "-") else value, not den and bool(re.search(r"[.eE]", num))))
    return out or None


def _simplest(lo: Fraction, hi: Fraction) -> Fraction:
    """The fraction with the smallest denominator in [lo, hi] (0 < lo <= hi; continued fractions)."""
    terms: list[int] = []
    while True:
        f = lo.numerator // lo.denominator
        if f == lo or f + 1 <= hi:
            terms.append(f if f == lo else f + 1)
            break
        terms.append(f)
        lo, hi = 1 / (hi - f), 1 / (lo - f)
    out = Fraction(terms.pop())
    while terms:
        out = terms.pop() + 1 / out
    return out


def _split(den: int) -> tuple[int, int]:
    """(``den`` without its factors 2 and 5, the larger of their exponents: a decimal's places)."""
    places = []
    for p in (2, 5):
        places.append(0)
        while den % p == 0:
            den, places[-1] = den // p, places[-1] + 1
    return den, max(places)


def _key_value(value: Fraction, decimal: bool) -> Fraction:
    """A stated value as a key: exact, except that a decimal with three or more places is read as
    the rounding of the simplest fraction within half a unit in its last place and the 0.1%
    ``verify`` allows, when that fraction has no terminating decimal (``0.3333``, ``0.333333`` and
    ``1/3`` agree; ``0.33`` and ``1.54`` are read exactly)."""
    rest, places = _split(value.denominator)
    if not decimal or value == 0 or rest != 1 or not 3 <= places <= 60:
        return value
    v, half = abs(value), Fraction(1, 2 * 10**places)
    best = _simplest(max(v - half, v * 1000 / 1001), min(v + half, v * 1000 / 999))
    if _split(best.denominator)[0] == 1:  # terminating: only the exact value is that number
        return value
    return best if value > 0 else -best


def _accepts(x: Fraction, value: Fraction, decimal: bool) -> bool:
    if value == x:
        return True
    den = x.denominator
    for p in (2, 5):
        while den % p == 0:
            den //= p
    return decimal and den != 1 and abs(value - x) <= abs(x) / 1000


class AlgebraEnv(TextEnv):
    """Solve a linear equation for x (exact rational answer)."""

    name = "algebra"
    domain = "algebra"
    sim_solver = "envs.algebra_sim:algebra"  # how the sim model reads these prompts

    def generate(self, rng: np.random.Generator) -> Task:
        d = min(self.difficulty, 3)
        kind = d if d < 3 else 3 + int(rng.integers(0, 3))
        while True:
            a, c = (int(v) * int(s) for v, s in zip(rng.integers(1, 10, size=2), rng.choice([-1, 1], size=2)))
            b, n = (int(v) for v in rng.integers(-20, 21, size=2))
            if kind == 1 and abs(a) > 1 and b and n:  # ax + b = c
                eq, p, q, r, s = f"{_term(a, b)} = {b + n}", a, b, 0, b + n
            elif kind == 2 and abs(a - c) >= 2 and b and n:  # ax + b = cx + d
                eq, p, q, r, s = f"{_term(a, b)} = {_term(c, b + n)}", a, b, c, b + n
            elif kind == 3 and abs(a) > 1 and a != c and b and n and abs(b) < 10:  # a(x + b) = cx + d
                eq, p, q, r, s = f"{a}({_term(1, b)}) = {_term(c, a * b + n)}", a, a * b, c, a * b + n
            elif kind == 4 and a > 1 and b and n:  # x/a + b = cx + d
                eq, p, q, r, s = f"{_term(1, b, f'x/{a}')} = {_term(c, b + n)}", Fraction(1, a), b, c, b + n
            elif kind == 5 and a > 1 and c > 1 and a != c and b and n and abs(n) <= 6:  # x/a + b = x/c + d
                eq = f"{_term(1, b, f'x/{a}')} = {_term(1, b + n, f'x/{c}')}"
                p, q, r, s = Fraction(1, a), b, Fraction(1, c), b + n
            else:
                continue
            break
        x = Fraction(s - q) / (p - r)
        sides = [str(Fraction(v)) for v in (p, q, r, s)]
        return self.make_task(PROMPT.format(eq=eq), x, equation=eq, lhs=sides[:2], rhs=sides[2:])

    def verify(self, task: Task, answer: str) -> bool:
        try:
            found, x = _values(answer), Fraction(task.answer)
            return bool(found) and all(_accepts(x, v, dec) for v, dec in found)
        except Exception:  # noqa: BLE001 - the verifier never raises on garbage
            return False

    def hint(self, task: Task, answer: str) -> str | None:
        found = _values(answer)
        if not found:
            return "no value of x found in your final line; end with 'Answer: x = <value>'."
        x, v = Fraction(task.answer), found[-1][0]
        p, q = (Fraction(t) for t in task.metadata["lhs"])
        r, s = (Fraction(t) for t in task.metadata["rhs"])
        left, right = p * v + q, r * v + s
        size = "too large" if v > x else "too small"
        if left == right or x in (left, right):
            return f"your value of x is {size}."
        return f"that value does not satisfy the equation: the left side gives {left}, the right side gives {right}; x is {size}."

    @answer_key
    def canonical(self, text: str) -> str | None:
        """``x=<value>`` as verify reads the final answer, each value a reduced fraction (a rounded
        decimal as the fraction it rounds, see :func:`_key_value`); several values comma-separated."""
        found = _values(text)
        return found and "x=" + ",".join(dict.fromkeys(str(_key_value(v, dec)) for v, dec in found))

    def scores(self):
        return [answer_line(r"(?:x\s*=\s*)?-?(?:\d+(?:\.\d+)?|\.\d+)(?:\s*/\s*\d+)?")]

    def reference_reply(self, task: Task) -> str:
        return f"Answer: x = {task.answer}"

    def probe_replies(self, task: Task) -> ProbeReplies:
        """x + 1 and -x (or 1 for x = 0) are wrong; the value as an unreduced fraction, a terminating
        decimal and a LaTeX fraction are the same answer."""
        x = Fraction(task.answer)
        same = []
        if x.denominator != 1:
            p, q = x.numerator, x.denominator
            same += [f"{2 * p}/{2 * q}", ("-" if p < 0 else "") + f"\\frac{{{abs(p)}}}{{{q}}}"]
        d = x.denominator
        while d % 2 == 0:
            d //= 2
        while d % 5 == 0:
            d //= 5
        if d == 1:
            same.append(f"{float(x):.10f}".rstrip("0").rstrip(".") + ("" if x.denominator != 1 else ".0"))
        return ProbeReplies(wrong=(str(x + 1), str(-x) if x else "1"), equivalent=tuple(same), single_answer=True)
