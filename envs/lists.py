"""Lists: give k distinct integers in increasing order, from a range, with a given sum (and a
property). One of the many-answer domains: a sum has many decompositions and the reference is
only one of them.

Difficulty 1: three integers from 1 to N (N in 12..30); 2: four even / odd / multiples of 3 from 1
to N (N in 20..50); 3: five such numbers from L to H (L in 5..15, H 30..50 above L). The generator draws the
reference, sets the sum to its total and keeps tasks with at least 5 / 10 / 20 solutions
(``metadata["solutions"]`` counts them).

Accepted: ANY list meeting every condition, read from the final answer
(:func:`agentsynth.final_answer`, every form of the README's "Answer forms" table) as its numbers
in order, with any separators (``2, 8, 20``, ``[2, 8, 20]``, ``2 8 20``, ``2, 8 and 20``), and
``2 + 8 + 20 = 30`` when the total after ``=`` is the list's sum. Rejected: the wrong count, a
non-integer, a number outside the range or without the property, a repeat, the wrong order, the
wrong sum, a false total. The hint names the first condition the list breaks (with the list's own
sum, or the number at fault) and how many others fail; never a list that works. ``format`` (a
score) checks the ``Answer: <n1>, <n2>, ...`` line.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from fractions import Fraction

import numpy as np

from agentsynth import ProbeReplies, Task, TextEnv, final_answer
from rubrics import answer_line

from ._keys import answer_key

KINDS: dict[str, Callable[[int], bool]] = {
    "": lambda v: True, "even": lambda v: v % 2 == 0, "odd": lambda v: v % 2 == 1,
    "multiples of 3": lambda v: v % 3 == 0,
}
ONE = {"even": "even", "odd": "odd", "multiples of 3": "a multiple of 3"}
_NUM = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?!\w|\.\d)")
_TOTAL = re.compile(r"^(.*\d.*\+.*\d.*?)\s*=\s*(-?\d+(?:\.\d+)?)\s*$", re.S)


def allowed(m: dict) -> list[int]:
    """The numbers a list may use: the range, with the property."""
    return [v for v in range(m["low"], m["high"] + 1) if KINDS[m["kind"]](v)]


@functools.lru_cache(maxsize=4096)
def count(pool: tuple[int, ...], k: int, total: int) -> int:
    """How many k-subsets of ``pool`` sum to ``total`` (each is one increasing list)."""
    ways = [[0] * (total + 1) for _ in range(k + 1)]
    ways[0][0] = 1
    for v in pool:
        for j in range(k, 0, -1):
            row, prev = ways[j], ways[j - 1]
            for s in range(total, v - 1, -1):
                row[s] += prev[s - v]
    return ways[k][total]


def read(reply: object) -> tuple[list[Fraction], Fraction | None] | None:
    """(the numbers a reply lists, in order; the total it states after ``=``, if any), or None."""
    if not isinstance(reply, str):
        return None
    text = final_answer(reply).replace("\u2212", "-")[:2000]
    claim = None
    m = _TOTAL.match(text)
    if m:
        text, claim = m.group(1), Fraction(m.group(2))
    nums = [Fraction(x) for x in _NUM.findall(text)]
    return (nums, claim) if nums else None


def _show(v: Fraction) -> str:
    return str(v.numerator) if v.denominator == 1 else str(float(v))


def problems(m: dict, nums: list[Fraction], claim: Fraction | None) -> list[str]:
    """What is wrong with the list (empty: it is correct), the most basic first."""
    k, out = m["count"], []
    if len(nums) != k:
        return [f"expected {k} numbers, got {len(nums)}"]
    if any(v.denominator != 1 for v in nums):
        return ["give whole numbers only"]
    ints = [int(v) for v in nums]
    for v in ints:
        if not m["low"] <= v <= m["high"]:
            out.append(f"{v} is not between {m['low']} and {m['high']}")
        elif not KINDS[m["kind"]](v):
            out.append(f"{v} is not {ONE[m['kind']]}")
    repeats = sorted({v for v in ints if ints.count(v) > 1})
    out += [f"{v} appears more than once" for v in repeats]
    if not repeats and ints != sorted(ints):
        out.append("the numbers are not in increasing order")
    if sum(ints) != m["sum"]:
        diff = sum(ints) - m["sum"]
        out.append(f"the numbers add up to {sum(ints)}, but the sum must be {m['sum']} ({abs(diff)} too {'much' if diff > 0 else 'little'})")
    elif claim is not None and claim != m["sum"]:
        out.append(f"the total after '=' ({_show(claim)}) is not the sum of the numbers")
    return out


class ListsEnv(TextEnv):
    """List k distinct increasing integers from a range, with a given sum and property."""

    name = "lists"
    domain = "lists"
    sim_solver = "envs.lists_sim:lists"  # how the sim model reads these prompts

    def generate(self, rng: np.random.Generator) -> Task:
        d = min(max(self.difficulty, 1), 3)
        k, fewest = {1: (3, 5), 2: (4, 10), 3: (5, 20)}[d]
        while True:
            kind = "" if d == 1 else list(KINDS)[int(rng.integers(1, len(KINDS)))]
            low = 1 if d < 3 else int(rng.integers(5, 16))
            high = int(rng.integers(*{1: (12, 31), 2: (20, 51), 3: (low + 30, low + 51)}[d]))
            m = {"count": k, "kind": kind, "low": low, "high": high}
            pool = tuple(allowed(m))
            ref = sorted(int(x) for x in rng.choice(pool, size=k, replace=False))
            m["sum"] = sum(ref)
            n = count(pool, k, m["sum"])
            if n >= fewest:
                break
        what = f"{k} distinct {kind}" if kind.startswith("multiples") else f"{k} distinct {kind + ' ' if kind else ''}integers"
        prompt = (f"Give {what} from {low} to {high} in increasing order with sum {m['sum']}. "
                  f"End with 'Answer: {', '.join(f'n{i + 1}' for i in range(k))}'.")
        return self.make_task(prompt, ", ".join(map(str, ref)), **m, solutions=n)

    def verify(self, task: Task, answer: str) -> bool:
        got = read(answer)
        return got is not None and not problems(task.metadata, *got)

    def hint(self, task: Task, answer: str) -> str | None:
        got = read(answer)
        if got is None:
            k = task.metadata["count"]
            return f"no numbers found: end with a line 'Answer: {', '.join(f'n{i + 1}' for i in range(k))}'."
        bad = problems(task.metadata, *got)
        if not bad:
            return None
        more = f" ({len(bad) - 1} other problem{'s' * (len(bad) > 2)} too)" if len(bad) > 1 else ""
        return f"{bad[0]}{more}."

    @answer_key
    def canonical(self, text: str) -> str | None:
        """The numbers as verify reads them, in order: ``2,8,20``; a total after ``=`` that is not
        their sum is kept (``2,8,20=31``)."""
        got = read(text)
        if got is None:
            return None
        nums, claim = got
        key = ",".join(_show(v) for v in nums)
        return key + (f"={_show(claim)}" if claim is not None and claim != sum(nums) else "")

    def scores(self):
        return [answer_line(r"\d+(?:\s*,\s*\d+)+")]

    def probe_replies(self, task: Task) -> ProbeReplies:
        """The list with its last or first number one higher misses the sum, so it is wrong; the list
        in brackets, with spaces only, with 'and', or as a sum with its total is the same answer."""
        nums = task.answer.split(", ")
        last = ", ".join(nums[:-1] + [str(int(nums[-1]) + 1)])
        first = ", ".join([str(int(nums[0]) + 1)] + nums[1:])
        total = sum(int(n) for n in nums)
        return ProbeReplies(wrong=(last, first), equivalent=(f"[{task.answer}]", " ".join(nums),
                                                             ", ".join(nums[:-1]) + f" and {nums[-1]}",
                                                             " + ".join(nums) + f" = {total}"))
