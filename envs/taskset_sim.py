"""The sim's reading of the example task set's word problems (examples/word_problems): it finds
the numbers a question states and the operation its wording asks for. Any other task set's
questions it does not recognise (None), so on a user's own questions the sim is the weak guesser
of README "The sim model" unless their environment carries a solver of its own."""

from __future__ import annotations

import re

from agentsynth.sim import Problem

DOMAIN = "word_problems"
_N = r"(\d+)"
_FORMS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(rf"A box holds {_N} pencils\. How many pencils are in {_N} boxes\?"), "a*b"),
    (re.compile(rf"has {_N} apples and buys {_N} more\."), "a+b"),
    (re.compile(rf"had {_N} stickers and gave away {_N}\."), "a-b"),
    (re.compile(rf"{_N} cookies are shared equally among {_N} children\."), "a/b"),
    (re.compile(rf"travels at {_N} km per hour for {_N} hours\."), "a*b"),
    (re.compile(rf"Tickets cost {_N} dollars each\. How much do {_N} tickets and a {_N}-dollar snack"), "a*b+c"),
]
_SLIPS = {"a*b": ["a+b"], "a+b": ["a-b"], "a-b": ["a+b"], "a/b": ["a-b"], "a*b+c": ["a*b", "(a+c)*b"]}


def word_problem(prompt: str) -> Problem | None:
    """A word problem of the example set: its answer, and the slip of the wrong operation."""
    for pattern, op in _FORMS:
        m = pattern.search(prompt)
        if m:
            names = dict(zip("abc", map(int, m.groups())))
            value = int(eval(op.replace("/", "//"), {}, names))  # noqa: S307 - our own fixed expressions
            mistakes = [str(int(eval(s, {}, names))) for s in _SLIPS[op]]  # noqa: S307
            mistakes += [str(value + 1), str(value - 1), str(value + 10)]
            return Problem(DOMAIN, str(value), 1.0 + 0.5 * op.count("+") + 0.5 * ("c" in op), mistakes)
    return None
