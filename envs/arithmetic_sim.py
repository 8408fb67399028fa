"""The sim's arithmetic competence: evaluate the expression in the prompt; its favourite slip is
ignoring operator precedence."""

from __future__ import annotations

import ast
import operator
import re

from agentsynth.sim import Problem

_ARITH = re.compile(r"Compute the value of:\s*(.+?)\s*$", re.M)
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}


def _eval(node: ast.AST) -> int:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_eval(node.left), _eval(node.right))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_eval(node.operand)
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    raise ValueError("not an integer expression")


def _left_to_right(expr: str) -> int | None:
    """The classic slip: ignore precedence (parentheses still respected)."""
    tokens = re.findall(r"\d+|[-+*()]", expr)

    def parse(i: int) -> tuple[int, int]:
        acc, op = None, "+"
        while i < len(tokens):
            t = tokens[i]
            if t == ")":
                return acc or 0, i + 1
            if t in "+-*" and acc is not None:
                op, i = t, i + 1
                continue
            if t == "(":
                val, i = parse(i + 1)
            else:
                val, i = int(t), i + 1
            acc = val if acc is None else acc + val if op == "+" else acc - val if op == "-" else acc * val
        return acc or 0, i

    try:
        return parse(0)[0]
    except (ValueError, IndexError):
        return None


_WORDS = "zero one two three four five six seven eight nine ten eleven twelve".split()


def _words(n: str) -> str:
    v = int(n)
    if abs(v) >= len(_WORDS):
        return "the result of the steps above"
    return ("minus " if v < 0 else "") + _WORDS[abs(v)]


def arithmetic(prompt: str) -> Problem | None:
    """Arithmetic prompts: 'Compute the value of: <expr>'."""
    m = _ARITH.search(prompt)
    if not m:
        return None
    expr = m.group(1)
    try:
        value = _eval(ast.parse(expr, mode="eval"))
    except (SyntaxError, ValueError):
        return None
    ops = len(re.findall(r"[-+*]", expr))
    mistakes: list[str] = []
    slip = _left_to_right(expr)
    if slip is not None and slip != value:
        mistakes.append(str(slip))
    mistakes += [str(value + 1), str(value - 1), str(-value) if value else "1", str(value + 10)]
    return Problem("arithmetic", str(value), 0.5 + 0.5 * ops, mistakes, _words)
