"""The sim's pairs competence: read the conditions on a and b from the prompt and list every pair
that meets them (a task with many correct answers: its favourite is the middle one, the others are
``alternatives``). Its favourite slip is the pair just past the boundary (a bound taken as ``>=``,
a property overlooked); also a and b swapped, the sum off by one, and b = 0."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from agentsynth.answers import final_answer
from agentsynth.sim import Problem

_ASK = re.compile(r"^Give positive integers a and b with (.+)\. End with 'Answer: a=<a>, b=<b>'\.$")
_PROPS: dict[str, Callable[[int], bool]] = {
    "even": lambda v: v % 2 == 0, "odd": lambda v: v % 2 == 1, "a multiple of 3": lambda v: v % 3 == 0,
}
_PARTS = [
    (re.compile(r"a \+ b = (\d+)"), lambda m: lambda a, b: a + b == int(m[1])),
    (re.compile(r"a - b ([<>]) (-?\d+)"), lambda m: lambda a, b: (a - b > int(m[2])) if m[1] == ">" else (a - b < int(m[2]))),
    (re.compile(r"([ab]) is (even|odd|a multiple of 3)"), lambda m: lambda a, b: _PROPS[m[2]](a if m[1] == "a" else b)),
    (re.compile(r"a \* b ([<>]) (\d+)"), lambda m: lambda a, b: (a * b > int(m[2])) if m[1] == ">" else (a * b < int(m[2]))),
]
_LABEL = re.compile(r"(?<![A-Za-z+\-*/])(?<![+\-*/] )([abAB])\s*(?:=|:|\bis\b)\s*(-?\d+)(?!\w|\.\d)")
_NUM = re.compile(r"(?<![\w.])-?\d+(?!\w|\.\d)")


def _pair(a: int, b: int) -> str:
    return f"a={a}, b={b}"


def _extract(reply: str) -> str | None:
    """The pair a reply states, as ``a=15, b=5`` (labelled, or exactly two numbers)."""
    if not isinstance(reply, str):
        return None
    text = final_answer(reply)
    found = {k.lower(): int(v) for k, v in _LABEL.findall(text)}
    if found:
        return _pair(found["a"], found["b"]) if len(found) == 2 else None
    nums = _NUM.findall(text)
    return _pair(int(nums[0]), int(nums[1])) if len(nums) == 2 else None


def _render(answer: str, tidy: bool) -> str:
    if tidy:
        return f"Checking each condition in turn.\nAnswer: {answer}"
    a, b = (x.split("=")[1] for x in answer.split(", "))
    return f"I would take a = {a} and b = {b}."


@functools.lru_cache(maxsize=512)
def _search(conditions: str) -> tuple[str, list[str], list[str], float] | None:
    """(favourite pair, other right pairs, wrong pairs with the favourite slip first, difficulty)."""
    parts = re.split(r", | and ", conditions)
    checks = []
    for part in parts:
        found = next(((rx.fullmatch(part), make) for rx, make in _PARTS if rx.fullmatch(part)), None)
        if found is None:
            return None
        checks.append(found[1](found[0]))
    first = re.fullmatch(r"a \+ b = (\d+)", parts[0])
    if first is None:
        return None
    total = int(first[1])

    def ok(a: int, b: int) -> bool:
        return a > 0 and b > 0 and all(c(a, b) for c in checks)

    good = [b for b in range(1, total) if ok(total - b, b)]
    if not good:
        return None
    fav = good[len(good) // 2]
    near = sorted((b for b in range(1, total) if b not in good), key=lambda b: (min(abs(b - g) for g in good), b))
    tries = [(total - b, b) for b in near[:1]] + [(fav, total - fav), (total - fav + 1, fav), (total, 0)]
    tries += [(total - b, b) for b in near[1:3]]
    wrong = [_pair(a, b) for a, b in dict.fromkeys(tries) if not ok(a, b)]
    return _pair(total - fav, fav), [_pair(total - b, b) for b in good if b != fav], wrong, float(len(parts) - 1)


def pairs(prompt: str) -> Problem | None:
    """Pairs prompts: 'Give positive integers a and b with a + b = S, a - b > D ...'."""
    m = _ASK.match(prompt.strip())
    found = _search(m.group(1)) if m else None
    if found is None:
        return None
    answer, others, wrong, difficulty = found
    return Problem("pairs", answer, difficulty, list(wrong), render=_render, extract=_extract, alternatives=list(others))
