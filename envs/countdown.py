"""Countdown: make a target number from given numbers with + - * and parentheses, each number at
most once. One of the many-answer domains: a target is reachable in many ways (other numbers,
other operations, other orders) and the reference is only one of them.

Difficulty 1: four distinct numbers from 2..12 and a target in 10..60 that two of them make; 2:
four from 2..12, a target in 20..100 that needs at least three of them; 3: five from 2..15, a
target in 50..200 that needs at least three. The generator keeps targets that at least two
different subsets of the numbers reach and that have at least 6 / 8 / 16 expressions;
``metadata["solutions"]`` counts every expression (as an ordered tree: ``3*8+7`` and ``7+8*3``
are two) and the reference is one drawn at random among those with the fewest numbers that read
naturally (every step positive, chains left to right).

Accepted: ANY expression over the given numbers (each at most as often as given; numbers may go
unused) with + - * (``×``, ``·``, ``\\times``, ``\\cdot``, ``x`` between operands; ``−``) and
parentheses (or brackets) whose value is the target, read from the final answer
(:func:`agentsynth.final_answer`: every form of the README's "Answer forms" table), optionally
with ``= <target>`` after it (or before it); in prose the last stretch of expression characters
holding an operator is read (``One way is 3 × 8 + 7 = 31``). Rejected: division, powers, unary minus, a number not given or
used too often, a wrong value, a wrong ``= N``. The hint says what is wrong (a number not given
or used too often, an operation not allowed, the value the expression has and how far it is from
the target); never an expression that works. ``format`` (a score) checks the
``Answer: <expression>`` line.
"""

from __future__ import annotations

import functools
import re
from collections import Counter, defaultdict
from typing import Union

import numpy as np

from agentsynth import ProbeReplies, Task, TextEnv, final_answer
from rubrics import answer_line

from ._keys import answer_key

Tree = Union[int, tuple[str, "Tree", "Tree"]]
LEVELS = {1: (4, 12, 10, 60, 6, 2), 2: (4, 12, 20, 100, 8, 3), 3: (5, 15, 50, 200, 16, 3)}
"""difficulty: (how many numbers, largest number, target range, fewest expressions, how many
numbers the shortest expression uses: exactly two at 1, at least three at 2 and 3)"""
_PREC = {"+": 1, "-": 1, "*": 2}
_TIMES = re.compile(r"\\times|\\cdot|[×·∙⋅✕]|(?<=[\d)\s])[xX](?=[\s\d(])")
_SPAN = re.compile(r"[\d(][\d\s+\-*/÷^()=]*")
_TOKEN = re.compile(r"\s*(?:(\d+)|([-+*/÷^()=]))")


def tables(nums: list[int]) -> list[dict[int, int]]:
    """For each subset of ``nums`` (a bitmask), every value its expressions (using each number of
    the subset exactly once) reach, with how many expressions (ordered trees) reach it."""
    out: list[dict[int, int]] = [{} for _ in range(1 << len(nums))]
    for mask in sorted(range(1, 1 << len(nums)), key=lambda m: bin(m).count("1")):
        if mask & (mask - 1) == 0:
            out[mask] = {nums[mask.bit_length() - 1]: 1}
            continue
        acc: dict[int, int] = defaultdict(int)
        sub = (mask - 1) & mask
        while sub > mask ^ sub:  # each split once: a + b, a * b count twice (either side first)
            right = out[mask ^ sub].items()
            for a, ca in out[sub].items():
                for b, cb in right:
                    c = ca * cb
                    acc[a + b] += 2 * c
                    acc[a * b] += 2 * c
                    acc[a - b] += c
                    acc[b - a] += c
            sub = (sub - 1) & mask
        out[mask] = dict(acc)
    return out


def expressions(nums: list[int], table: list[dict[int, int]], mask: int, target: int, limit: int) -> list[Tree]:
    """Up to ``limit`` expressions over exactly the numbers in ``mask`` whose value is ``target``."""
    if mask & (mask - 1) == 0:
        return [nums[mask.bit_length() - 1]] if target in table[mask] else []
    out: list[Tree] = []
    sub = (mask - 1) & mask
    while sub and len(out) < limit:
        right = table[mask ^ sub]
        for a in table[sub]:
            for op, b in (("+", target - a), ("-", a - target), ("*", target // a if a and target % a == 0 else None)):
                if b is None or b not in right or (op == "*" and a * b != target):
                    continue
                for left in expressions(nums, table, sub, a, limit - len(out)):
                    for r in expressions(nums, table, mask ^ sub, b, limit - len(out)):
                        out.append((op, left, r))
                        if len(out) >= limit:
                            return out
        sub = (sub - 1) & mask
    return out


def show(t: Tree) -> str:
    """The expression with the fewest parentheses that keep its tree (``3*8+7``, ``3-(8-7)``)."""
    if isinstance(t, int):
        return str(t)
    op, a, b = t
    la, lb = (show(x) for x in (a, b))
    if not isinstance(a, int) and _PREC[a[0]] < _PREC[op]:
        la = f"({la})"
    if not isinstance(b, int) and _PREC[b[0]] <= _PREC[op]:
        lb = f"({lb})"
    return f"{la}{op}{lb}"


def value(t: Tree) -> int:
    if isinstance(t, int):
        return t
    op, a, b = t
    x, y = value(a), value(b)
    return x + y if op == "+" else x - y if op == "-" else x * y


def leaves(t: Tree) -> list[int]:
    return [t] if isinstance(t, int) else leaves(t[1]) + leaves(t[2])


def _tidy(t: Tree) -> bool:
    """Whether an expression reads naturally (for the reference): every step's value is positive
    and chains of one precedence run left to right (``3+8-7``, not ``3+(8-7)``)."""
    if isinstance(t, int):
        return True
    op, a, b = t
    same = not isinstance(b, int) and _PREC[b[0]] == _PREC[op]
    return value(t) > 0 and not same and _tidy(a) and _tidy(b)


class _Parser:
    """+ - * over non-negative integers with parentheses; raises ValueError saying what is wrong."""

    def __init__(self, tokens: list[str]):
        self.toks, self.i = tokens, 0

    def take(self) -> str | None:
        self.i += 1
        return self.toks[self.i - 1] if self.i <= len(self.toks) else None

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def expr(self) -> Tree:
        t = self.term()
        while self.peek() in ("+", "-"):
            t = (self.take(), t, self.term())  # type: ignore[assignment]
        return t

    def term(self) -> Tree:
        t = self.factor()
        while self.peek() == "*":
            self.take()
            t = ("*", t, self.factor())
        return t

    def factor(self) -> Tree:
        tok = self.take()
        if tok is not None and tok.isdigit():
            if self.peek() == "(":
                raise ValueError("write every multiplication with an operator: 3 * (8 + 7), not 3(8 + 7)")
            return int(tok)
        if tok == "(":
            inner = self.expr()
            if self.take() != ")":
                raise ValueError("the parentheses do not match")
            return inner
        if tok == "-":
            raise ValueError("no negative numbers or unary minus: every number is used as given")
        raise ValueError("the expression is not well formed")


def parse(text: str) -> tuple[Tree, int | None]:
    """(the expression, the number written after or before ``=``, if any) of ``text``."""
    tokens, pos = [], 0
    for m in _TOKEN.finditer(text):
        if m.start() != pos:
            break
        tokens.append(m.group(1) or m.group(2))
        pos = m.end()
    if text[pos:].strip() or not tokens or len(tokens) > 99:
        raise ValueError("the expression is not well formed")
    if any(t in ("/", "÷", "^") for t in tokens):
        raise ValueError("only +, - and * are allowed (no division, no powers)")
    sides = [list(g) for g in _split(tokens)]
    claim = None
    if len(sides) == 2:
        bare = [len(s) == 1 and s[0].isdigit() for s in sides]
        if bare == [False, True] or bare == [True, True]:
            sides, claim = [sides[0]], int(sides[1][0])
        elif bare == [True, False]:
            sides, claim = [sides[1]], int(sides[0][0])
    if len(sides) != 1 or not sides[0]:
        raise ValueError("give one expression, with at most '= <target>' after it")
    p = _Parser(sides[0])
    tree = p.expr()
    if p.peek() is not None:
        raise ValueError("the parentheses do not match" if ")" in sides[0][p.i:] else "the expression is not well formed")
    return tree, claim


def _split(tokens: list[str]) -> list[list[str]]:
    out: list[list[str]] = [[]]
    for t in tokens:
        if t == "=":
            out.append([])
        else:
            out[-1].append(t)
    return out


def read(reply: object) -> tuple[Tree | None, int | None, str]:
    """(expression, claimed value, what is wrong if no expression) of a reply."""
    if not isinstance(reply, str):
        return None, None, "no expression found"
    text = _TIMES.sub("*", final_answer(reply).replace("\\left", "").replace("\\right", ""))
    text = text.translate(str.maketrans({"\u2212": "-", "\u2013": "-", "\u2014": "-", "[": "(", "]": ")"}))[:2000]
    spans = [s.strip() for s in _SPAN.findall(text)]
    if not re.fullmatch(r"[\d\s+\-*/÷^()=]+", text.strip() or "x"):
        spans = [s for s in spans if re.search(r"[-+*/÷^]", s)]
        text = spans[-1] if spans else ""
    if not text.strip():
        return None, None, "no expression found: end with a line 'Answer: <expression>'"
    try:
        tree, claim = parse(text)
    except (ValueError, RecursionError) as exc:
        return None, None, str(exc) if isinstance(exc, ValueError) else "the expression is not well formed"
    return tree, claim, ""


def problems(numbers: list[int], target: int, tree: Tree, claim: int | None) -> list[str]:
    """What is wrong with an expression for this task (empty: it is correct)."""
    out = []
    have, used = Counter(numbers), Counter(leaves(tree))
    for n, k in sorted(used.items()):
        if n not in have:
            out.append(f"{n} is not one of the numbers")
        elif k > have[n]:
            out.append(f"{n} is used {k} times but given only once")
    v = value(tree)
    if v != target:
        out.append(f"your expression equals {v}, not {target} ({abs(v - target)} too {'high' if v > target else 'low'})")
    elif claim is not None and claim != target:
        out.append(f"the value after '=' ({claim}) is not {target}")
    return out


@functools.lru_cache(maxsize=4096)
def draw(level: int, key: int) -> tuple[tuple[int, ...], int, str, int, int]:
    """A task of difficulty ``level`` drawn with seed ``key``: (numbers, target, reference, how many
    expressions make the target, how many subsets of the numbers do). Cached: every sample of a
    task draws it again."""
    rng = np.random.default_rng(key)
    k, top, lo, hi, fewest, needs = LEVELS[level]
    while True:
        nums = sorted(int(x) for x in rng.choice(np.arange(2, top + 1), size=k, replace=False))
        table = tables(nums)
        ways: dict[int, int] = defaultdict(int)
        subsets: dict[int, int] = defaultdict(int)
        short: list[set[int]] = [set(), set(), set()]  # made with 1, 2 numbers
        for mask in range(1, 1 << k):
            for v, c in table[mask].items():
                ways[v] += c
                subsets[v] += 1
            if bin(mask).count("1") <= 2:
                short[bin(mask).count("1")].update(table[mask])
        fits = short[2] - short[1] if needs == 2 else set(ways) - short[1] - short[2]
        good = sorted(v for v in fits if lo <= v <= hi and subsets[v] >= 2 and ways[v] >= fewest)
        if good:
            break
    target = good[int(rng.integers(len(good)))]
    size = min(bin(mask).count("1") for mask in range(1, 1 << k) if target in table[mask])
    found = [t for mask in range(1, 1 << k) if target in table[mask] and bin(mask).count("1") == size
             for t in expressions(nums, table, mask, target, 30)]
    tidy = [t for t in found if _tidy(t)] or found
    return tuple(nums), target, show(tidy[int(rng.integers(len(tidy)))]), ways[target], subsets[target]


class CountdownEnv(TextEnv):
    """Make a target number from given numbers with + - * (each number at most once)."""

    name = "countdown"
    domain = "countdown"
    sim_solver = "envs.countdown_sim:countdown"  # how the sim model reads these prompts

    def generate(self, rng: np.random.Generator) -> Task:
        nums, target, ref, ways, subsets = draw(min(max(self.difficulty, 1), 3), int(rng.integers(2**63)))
        prompt = (f"Make {target} from {', '.join(map(str, nums))} using + - * and each number at most once. "
                  "End with 'Answer: <expression>'.")
        return self.make_task(prompt, ref, numbers=list(nums), target=target, solutions=ways, subsets=subsets)

    def verify(self, task: Task, answer: str) -> bool:
        tree, claim, _ = read(answer)
        return tree is not None and not problems(task.metadata["numbers"], task.metadata["target"], tree, claim)

    def hint(self, task: Task, answer: str) -> str | None:
        tree, claim, why = read(answer)
        if tree is None:
            return why + "."
        bad = problems(task.metadata["numbers"], task.metadata["target"], tree, claim)
        return "; ".join(bad) + "." if bad else None

    @answer_key
    def canonical(self, text: str) -> str | None:
        """The expression as verify reads it, with the fewest parentheses and no spaces
        (``(3 × 8) + 7 = 31`` → ``3*8+7``); a false ``= N`` after it is kept (``3*8+7=30``)."""
        tree, claim, _ = read(text)
        if tree is None:
            return None
        return show(tree) + (f"={claim}" if claim is not None and claim != value(tree) else "")

    def scores(self):
        return [answer_line(r"[\d\s+\-*()]*\d[\d\s+\-*()]*(?:=\s*\d+)?")]

    def probe_replies(self, task: Task) -> ProbeReplies:
        """The expression plus or minus one misses the target, so it is wrong; the expression with
        its value after it, in parentheses or with × for * is the same answer."""
        e, target = task.answer, task.metadata["target"]
        return ProbeReplies(wrong=(f"{e}+1", f"{e}-1"),
                            equivalent=(f"{e} = {target}", f"({e})", e.replace("*", " × "), f"{target} = {e}"))
