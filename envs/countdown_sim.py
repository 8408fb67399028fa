"""The sim's countdown competence: search the expressions over the prompt's numbers for ones that
make the target (a task with many correct answers: its favourite uses the fewest numbers; up to 40
others are ``alternatives``, every different way first, then reorderings of them). Its favourite slip is
dropping parentheses, ``3+4*7`` for ``(3+4)*7`` (the precedence slip); else an expression that
misses the target by one or two (an arithmetic slip)."""

from __future__ import annotations

import ast
import functools
import re

from agentsynth.answers import final_answer
from agentsynth.sim import Problem

_ASK = re.compile(r"^Make (\d+) from (\d+(?:, \d+)*) using \+ - \* and each number at most once\.")
_PREC = {"+": 1, "-": 1, "*": 2}
_EXPR = re.compile(r"[\d(][\d\s+\-*×()]*[\d)]")
Tree = int | tuple


def _tables(nums: tuple[int, ...]) -> list[set[int]]:
    """Per subset (bitmask): every value its expressions reach."""
    out: list[set[int]] = [set() for _ in range(1 << len(nums))]
    for mask in sorted(range(1, 1 << len(nums)), key=lambda m: bin(m).count("1")):
        if mask & (mask - 1) == 0:
            out[mask] = {nums[mask.bit_length() - 1]}
            continue
        sub = (mask - 1) & mask
        while sub > mask ^ sub:  # each split once
            for a in out[sub]:
                for b in out[mask ^ sub]:
                    out[mask].update((a + b, a * b, a - b, b - a))
            sub = (sub - 1) & mask
    return out


def _find(nums: tuple[int, ...], table: list[set[int]], mask: int, target: int, limit: int) -> list[Tree]:
    if mask & (mask - 1) == 0:
        return [nums[mask.bit_length() - 1]] if target in table[mask] else []
    out: list[Tree] = []
    sub = (mask - 1) & mask
    while sub and len(out) < limit:
        for a in table[sub]:
            for op, b in (("+", target - a), ("-", a - target), ("*", target // a if a and target % a == 0 else None)):
                if b is None or b not in table[mask ^ sub]:
                    continue
                for left in _find(nums, table, sub, a, limit):
                    for right in _find(nums, table, mask ^ sub, b, limit):
                        out.append((op, left, right))
                        if len(out) >= limit:
                            return out
        sub = (sub - 1) & mask
    return out


def _show(t: Tree, flat: bool = False) -> str:
    """Fewest parentheses that keep the tree; ``flat``: none at all (the precedence slip)."""
    if isinstance(t, int):
        return str(t)
    op, a, b = t
    la, lb = _show(a, flat), _show(b, flat)
    if not flat and not isinstance(a, int) and _PREC[a[0]] < _PREC[op]:
        la = f"({la})"
    if not flat and not isinstance(b, int) and _PREC[b[0]] <= _PREC[op]:
        lb = f"({lb})"
    return f"{la}{op}{lb}"


def _value(t: Tree) -> int:
    if isinstance(t, int):
        return t
    x, y = _value(t[1]), _value(t[2])
    return x + y if t[0] == "+" else x - y if t[0] == "-" else x * y


def _parse(text: str) -> Tree:
    """The tree of an expression over + - * (Python's precedence, which is the usual one)."""
    return _tree(ast.parse(text.strip(), mode="eval").body)


def _size(t: Tree) -> int:
    return 1 if isinstance(t, int) else _size(t[1]) + _size(t[2])


def _norm(t: Tree) -> str:
    """The expression up to the order of terms and factors (``3*8+7`` and ``7+8*3`` agree)."""
    def flat(u: Tree, op: str, sign: str) -> list[str]:
        if not isinstance(u, int) and _PREC[u[0]] == _PREC[op]:
            back = "-" if sign == "+" else "+"
            return flat(u[1], op, sign) + flat(u[2], op, back if u[0] == "-" else sign)
        return [sign + _norm(u)]

    if isinstance(t, int):
        return str(t)
    return ("S(" if t[0] in "+-" else "P(") + ",".join(sorted(flat(t, t[0], "+"))) + ")"


@functools.lru_cache(maxsize=512)
def _search(nums: tuple[int, ...], target: int) -> tuple[list[str], list[str]]:
    """(right expressions: one per way of making the target first, then reorderings, the
    favourite first; wrong ones, the favourite slip first)."""
    table = _tables(nums)
    full = (1 << len(nums)) - 1
    right = [t for mask in range(1, full + 1) if target in table[mask] for t in _find(nums, table, mask, target, 30)]
    right.sort(key=lambda t: (_size(t), "(" in _show(t)))
    firsts = list({_norm(t): t for t in reversed(right)}.values())[::-1]  # the first tree of each way
    shown = list(dict.fromkeys(_show(t) for t in firsts + right))
    slips = [_show(t, flat=True) for t in right if "(" in _show(t)]
    for miss in (1, -1, 2, -2, 3, -3):
        for mask in range(full, 0, -1):
            if mask & (mask - 1) and target + miss in table[mask]:
                slips += [_show(t) for t in _find(nums, table, mask, target + miss, 1)]
                break
    slips += ["+".join(map(str, nums)), "*".join(map(str, nums))]  # grasping: all of them added, multiplied
    wrong = [s for s in dict.fromkeys(slips) if _value(_parse(s)) != target]
    return shown[:41], wrong


def _extract(reply: str) -> str | None:
    """The expression a reply states, with the fewest parentheses (``(3 × 8) + 7 = 31`` → ``3*8+7``)."""
    if not isinstance(reply, str):
        return None
    found = _EXPR.findall(final_answer(reply).replace("\u00d7", "*"))
    found = [f for f in found if re.search(r"[-+*]", f)]
    if not found or len(found[-1]) > 200 or not re.fullmatch(r"[\d\s+\-*()]+", found[-1]):
        return None
    try:
        return _show(_parse(found[-1]))
    except (SyntaxError, ValueError, RecursionError):
        return None


def _tree(node: ast.AST) -> Tree:
    ops = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*"}
    if isinstance(node, ast.BinOp) and type(node.op) in ops:
        return (ops[type(node.op)], _tree(node.left), _tree(node.right))
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    raise ValueError("not an expression over + - *")


def _render_for(target: int):
    def render(answer: str, tidy: bool) -> str:
        if tidy:
            return f"Trying combinations of the numbers.\nAnswer: {answer}"
        pretty = re.sub(r"\s*([-+])\s*", r" \1 ", answer).replace("*", " × ")
        return f"One way is {pretty} = {target}"

    return render


def countdown(prompt: str) -> Problem | None:
    """Countdown prompts: 'Make <target> from <numbers> using + - * and each number at most once.'"""
    m = _ASK.match(prompt.strip())
    if not m:
        return None
    target, nums = int(m.group(1)), tuple(int(x) for x in m.group(2).split(", "))
    if len(nums) > 6:
        return None
    right, wrong = _search(nums, target)
    if not right:
        return None
    needs = min(len(re.findall(r"\d+", r)) for r in right)  # how many numbers the shortest way takes
    return Problem("countdown", right[0], float(needs - 1 + max(0, len(nums) - 4)), list(wrong), render=_render_for(target),
                   extract=_extract, alternatives=right[1:])
