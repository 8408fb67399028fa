"""Pairs: two positive integers with a given sum and a bound on their difference. One of the
many-answer domains: a task has many correct answers and the reference is only one of them.

Difficulty 1: ``a + b = S`` and ``a - b > D`` (or ``< D``), S in 10..40; 2: also a property of a
or b (even, odd, a multiple of 3), S in 12..50; 3: also a bound on ``a * b``, S in 16..60. The
generator keeps tasks with at least four solutions where every condition rules some pair out;
the reference is one solution drawn at random (``metadata["solutions"]`` counts them all).

Accepted: ANY pair of positive integers meeting every condition, read from the final answer
(:func:`agentsynth.final_answer`, every form of the README's "Answer forms" table) either labelled
(``a=15, b=5``, ``b = 5 and a = 15``, ``a: 15; b: 5``, ``a is 15``) or, without labels, as exactly
two numbers in the order a, b (``15, 5``, ``(15, 5)``, ``15 and 5``); ``15.0`` is 15. Rejected: a
label given two values, a non-integer, zero or a negative, a third unlabelled number. The hint
names the first condition the pair breaks with the pair's own value there (``a - b is 4, but it
must be greater than 6``) and how many others fail; never a pair that works. ``format`` (a
score) checks the ``Answer: a=<a>, b=<b>`` line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from fractions import Fraction

import numpy as np

from agentsynth import ProbeReplies, Task, TextEnv, final_answer
from rubrics import answer_line

from ._keys import answer_key

PROPS: dict[str, Callable[[int], bool]] = {
    "even": lambda v: v % 2 == 0, "odd": lambda v: v % 2 == 1, "a multiple of 3": lambda v: v % 3 == 0,
}
_NUM = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?!\w|\.\d)")
_LABEL = re.compile(r"(?<![A-Za-z+\-*/])(?<![+\-*/] )([abAB])\s*(?:=|:|\bis\b)\s*(-?\d+(?:\.\d+)?)(?!\w|\.\d)")
Condition = list  # ["sum", S] | ["diff", rel, D] | ["prop", who, prop] | ["prod", rel, P]


def _cmp(rel: str, x: int, y: int) -> bool:
    return x > y if rel == ">" else x < y


def holds(c: Condition, a: int, b: int) -> bool:
    """Whether the pair (a, b) meets condition ``c``."""
    if c[0] == "sum":
        return a + b == c[1]
    if c[0] == "diff":
        return _cmp(c[1], a - b, c[2])
    if c[0] == "prop":
        return PROPS[c[2]](a if c[1] == "a" else b)
    return _cmp(c[1], a * b, c[2])


def failures(conds: list[Condition], a: int, b: int) -> list[str]:
    """What the pair (a, b) gets wrong, one sentence per broken condition (empty: it is correct)."""
    out = []
    bigger = {">": "greater", "<": "less"}
    for c in conds:
        if holds(c, a, b):
            continue
        if c[0] == "sum":
            out.append(f"a + b is {a + b}, but it must be {c[1]}")
        elif c[0] == "diff":
            out.append(f"a - b is {a - b}, but it must be {bigger[c[1]]} than {c[2]}")
        elif c[0] == "prop":
            out.append(f"{c[1]} is {a if c[1] == 'a' else b}, which is not {c[2]}")
        else:
            out.append(f"a * b is {a * b}, but it must be {bigger[c[1]]} than {c[2]}")
    return out


def describe(c: Condition) -> str:
    return {"sum": lambda: f"a + b = {c[1]}", "diff": lambda: f"a - b {c[1]} {c[2]}",
            "prop": lambda: f"{c[1]} is {c[2]}", "prod": lambda: f"a * b {c[1]} {c[2]}"}[c[0]]()


def solutions(conds: list[Condition]) -> list[tuple[int, int]]:
    """Every correct pair (a + b = S fixes a once b is chosen)."""
    s = conds[0][1]
    return [(s - b, b) for b in range(1, s) if all(holds(c, s - b, b) for c in conds)]


def read(reply: object) -> tuple[Fraction, Fraction] | None:
    """The pair (a, b) a reply states (see the module docstring), or None."""
    if not isinstance(reply, str):
        return None
    text = final_answer(reply).replace("\u2212", "-")
    if len(text) > 2000:
        return None
    labels: dict[str, set[Fraction]] = {"a": set(), "b": set()}
    for name, num in _LABEL.findall(text):
        labels[name.lower()].add(Fraction(num))
    if labels["a"] or labels["b"]:
        if len(labels["a"]) != 1 or len(labels["b"]) != 1:
            return None
        return next(iter(labels["a"])), next(iter(labels["b"]))
    nums = _NUM.findall(text)
    return (Fraction(nums[0]), Fraction(nums[1])) if len(nums) == 2 else None


def _show(v: Fraction) -> str:
    return str(v.numerator) if v.denominator == 1 else str(float(v))


class PairsEnv(TextEnv):
    """Give two positive integers with a given sum, a bound on their difference and more."""

    name = "pairs"
    domain = "pairs"
    sim_solver = "envs.pairs_sim:pairs"  # how the sim model reads these prompts

    def generate(self, rng: np.random.Generator) -> Task:
        d = min(max(self.difficulty, 1), 3)
        lo, hi = {1: (10, 40), 2: (12, 50), 3: (16, 60)}[d]
        while True:
            s = int(rng.integers(lo, hi + 1))
            rel = ">" if rng.random() < 0.6 else "<"
            conds: list[Condition] = [["sum", s], ["diff", rel, int(rng.integers(0 if rel == ">" else 1, s - 3))]]
            if d >= 2:
                conds.append(["prop", "ab"[int(rng.integers(2))], list(PROPS)[int(rng.integers(len(PROPS)))]])
            if d >= 3:
                products = sorted({a * b for a, b in solutions(conds)})
                if len(products) < 4:
                    continue
                prel = ">" if rng.random() < 0.5 else "<"
                conds.append(["prod", prel, products[int(rng.integers(1, len(products) - 1))]])
            sols = solutions(conds)
            if len(sols) >= 4 and all(len(solutions(conds[:i] + conds[i + 1:])) > len(sols) for i in range(1, len(conds))):
                break
        a, b = sols[int(rng.integers(len(sols)))]
        parts = [describe(c) for c in conds]
        text = ", ".join(parts[:-1]) + " and " + parts[-1]
        prompt = f"Give positive integers a and b with {text}. End with 'Answer: a=<a>, b=<b>'."
        return self.make_task(prompt, f"a={a}, b={b}", conditions=conds, solutions=len(sols))

    def verify(self, task: Task, answer: str) -> bool:
        pair = read(answer)
        if pair is None or any(v.denominator != 1 or v <= 0 for v in pair):
            return False
        return not failures(task.metadata["conditions"], int(pair[0]), int(pair[1]))

    def hint(self, task: Task, answer: str) -> str | None:
        pair = read(answer)
        if pair is None:
            return "no pair found: end with a line 'Answer: a=<a>, b=<b>' (one value for each)."
        if any(v.denominator != 1 or v <= 0 for v in pair):
            return "a and b must both be positive whole numbers."
        bad = failures(task.metadata["conditions"], int(pair[0]), int(pair[1]))
        if not bad:
            return None
        more = f" ({len(bad) - 1} other condition{'s' * (len(bad) > 2)} also fail{'s' * (len(bad) == 2)})" if len(bad) > 1 else ""
        return f"{bad[0]}{more}."

    @answer_key
    def canonical(self, text: str) -> str | None:
        """The pair as verify reads it (:func:`read`): ``a=15,b=5``."""
        pair = read(text)
        return pair and f"a={_show(pair[0])},b={_show(pair[1])}"

    def scores(self):
        return [answer_line(r"a\s*=\s*\d+\s*,\s*b\s*=\s*\d+")]

    def probe_replies(self, task: Task) -> ProbeReplies:
        """The pair with a or b one higher breaks the sum, so it is wrong; the pair with labels in
        the other order, without labels, or in words is the same answer."""
        a, b = (int(x.split("=")[1]) for x in task.answer.split(", "))
        return ProbeReplies(wrong=(f"a={a + 1}, b={b}", f"a={a}, b={b + 1}"),
                            equivalent=(f"b={b}, a={a}", f"{a}, {b}", f"({a}, {b})", f"a = {a} and b = {b}", f"a: {a}; b: {b}"))
