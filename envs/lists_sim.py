"""The sim's lists competence: read the count, range, property and sum from the prompt and search
for increasing lists that fit (a task with many correct answers: its favourite starts with the
smallest numbers; up to 40 others, spread over all the solutions, are ``alternatives``). Its
favourite slip is the sum off by one; also the property overlooked, a number outside the range,
a repeated number, the list in decreasing order."""

from __future__ import annotations

import functools
import re

from agentsynth.answers import final_answer
from agentsynth.sim import Problem

_ASK = re.compile(r"^Give (\d+) distinct (integers|even integers|odd integers|multiples of 3) from (\d+) to (\d+) "
                  r"in increasing order with sum (\d+)\.")
_NUM = re.compile(r"(?<![\w.])-?\d+(?!\w|\.\d)")


def _fits(kind: str, v: int) -> bool:
    return {"integers": True, "even integers": v % 2 == 0, "odd integers": v % 2 == 1, "multiples of 3": v % 3 == 0}[kind]


class _Lists:
    """The increasing k-lists from ``pool`` (sorted) summing to ``total``, counted by dynamic
    programming and picked by rank in lexicographic order (rank 0: the smallest numbers first)."""

    def __init__(self, pool: tuple[int, ...], k: int, total: int):
        self.pool, self.k, self.total = pool, k, total
        n = len(pool)
        # ways[i][j][s]: how many j-subsets of pool[i:] sum to s
        self.ways = [[[0] * (total + 1) for _ in range(k + 1)] for _ in range(n + 1)]
        self.ways[n][0][0] = 1
        for i in range(n - 1, -1, -1):
            v, here, after = pool[i], self.ways[i], self.ways[i + 1]
            here[0][0] = 1
            for j in range(1, k + 1):
                row, prev = here[j], after[j - 1]
                for t in range(total + 1):
                    row[t] = after[j][t] + (prev[t - v] if t >= v else 0)
        self.count = self.ways[0][k][total]

    def pick(self, rank: int) -> tuple[int, ...]:
        out, j, t = [], self.k, self.total
        for i, v in enumerate(self.pool):
            if j == 0:
                break
            with_v = self.ways[i + 1][j - 1][t - v] if t >= v else 0
            if rank < with_v:
                out.append(v)
                j, t = j - 1, t - v
            else:
                rank -= with_v
        return tuple(out)


def _show(nums) -> str:
    return ", ".join(map(str, nums))


@functools.lru_cache(maxsize=512)
def _search(k: int, kind: str, low: int, high: int, total: int) -> tuple[list[str], list[str]]:
    """(right lists, the favourite first; wrong ones, the favourite slip first)."""
    pool = tuple(v for v in range(low, high + 1) if _fits(kind, v))
    every = _Lists(pool, k, total)
    if not every.count:
        return [], []
    step = max(1, every.count // 41)
    right = [every.pick(r) for r in range(0, min(every.count, 41 * step), step)]
    fav = list(right[0])
    slips = [fav[:-1] + [fav[-1] + 1], fav[:-1] + [fav[-1] - 1]]  # the sum off by one
    plain = _Lists(tuple(range(low, high + 1)), k, total)  # the property overlooked
    slips += [list(plain.pick(r)) for r in (0, plain.count - 1) if plain.count]
    wide = _Lists(tuple(range(max(1, low - 3), high + 4)), k, total)  # out of range
    slips += [list(wide.pick(r)) for r in (0, wide.count - 1) if wide.count]
    mid = total // k
    slips += [[mid] * (k - 1) + [total - mid * (k - 1)], fav[::-1]]  # a repeat; decreasing

    def ok(x: list[int]) -> bool:
        return (len(set(x)) == k and x == sorted(x) and sum(x) == total and all(low <= v <= high and _fits(kind, v) for v in x))

    wrong = [s for s in dict.fromkeys(_show(x) for x in slips if not ok(x))]
    return [_show(x) for x in right], wrong


def _extract(reply: str) -> str | None:
    """The numbers a reply lists, as ``2, 8, 20`` (a total after '=' left out)."""
    if not isinstance(reply, str):
        return None
    nums = _NUM.findall(re.sub(r"=\s*-?\d+\s*$", "", final_answer(reply)))
    return _show(int(x) for x in nums) if nums else None


def _render(answer: str, tidy: bool) -> str:
    if tidy:
        return f"Picking numbers that fit every condition.\nAnswer: {answer}"
    nums = answer.split(", ")
    return f"Checking the sum: {' + '.join(nums)} = {sum(int(x) for x in nums)}"


def lists(prompt: str) -> Problem | None:
    """Lists prompts: 'Give <k> distinct <kind> from <low> to <high> in increasing order with sum <s>.'"""
    m = _ASK.match(prompt.strip())
    if not m:
        return None
    k, kind, low, high, total = int(m[1]), m[2], int(m[3]), int(m[4]), int(m[5])
    if not 1 <= k <= 8 or high - low > 200:
        return None
    right, wrong = _search(k, kind, low, high, total)
    if not right:
        return None
    return Problem("lists", right[0], float(k - 2), wrong, render=_render, extract=_extract, alternatives=right[1:])
