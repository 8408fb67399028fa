"""Arithmetic: evaluate a multi-step integer expression.

Difficulty d gives d + 1 operations over operands up to 10·d. Any reply whose final answer is the
right number passes (``42``, ``42.0``, ``Answer: 42``); the hint says whether the answer is too
high or too low; ``format`` (a score) checks the ``Answer: <integer>`` line.
"""

from __future__ import annotations

import numpy as np

from agentsynth import ProbeReplies, Task, TextEnv
from rubrics import answer_line, direction_hint, numeric_match, parse_number

from ._keys import answer_key, number_key
from ._probes import integer_replies

PROMPT = "Compute the value of: {expr}\nShow your work if you like, then end with a line 'Answer: <integer>'."


def _expression(rng: np.random.Generator, ops: int, top: int) -> tuple[str, int]:
    """A random expression with ``ops`` operations, as (text, value)."""
    if ops == 0:
        n = int(rng.integers(1, top + 1))
        return str(n), n
    left_ops = int(rng.integers(0, ops))
    (a, va), (b, vb) = _expression(rng, left_ops, top), _expression(rng, ops - 1 - left_ops, top)
    op = "+-*"[int(rng.integers(0, 3))]
    value = va + vb if op == "+" else va - vb if op == "-" else va * vb
    a = f"({a})" if left_ops and op == "*" else a
    b = f"({b})" if ops - 1 - left_ops and op in "-*" else b
    return f"{a} {op} {b}", value


class ArithmeticEnv(TextEnv):
    """Evaluate an integer expression with + - * and parentheses."""

    name = "arithmetic"
    domain = "arithmetic"
    sim_solver = "envs.arithmetic_sim:arithmetic"  # how the sim model reads these prompts

    def generate(self, rng: np.random.Generator) -> Task:
        expr, value = _expression(rng, self.difficulty + 1, 10 * self.difficulty)
        return self.make_task(PROMPT.format(expr=expr), value, expression=expr)

    def verify(self, task: Task, answer: str) -> bool:
        return numeric_match(answer, float(task.answer))

    def hint(self, task: Task, answer: str) -> str | None:
        return direction_hint(answer, float(task.answer))

    @answer_key
    def canonical(self, text: str) -> str | None:
        """The stated number as verify reads it (``Answer: -18``, ``-18.0``, ``the result is -18.`` → ``-18``)."""
        return number_key(parse_number(text))

    def scores(self):
        return [answer_line(r"-?\d+")]

    def probe_replies(self, task: Task) -> ProbeReplies:
        """The total plus or minus one is wrong; 42.00, 1,024 and a Unicode minus are the same answer."""
        return integer_replies(task.answer)
