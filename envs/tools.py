"""Tool use: price an order by looking up each item's unit price with a tool.

The prices are drawn per task and live only behind the ``price_lookup`` tool, so the answer cannot
be known without calling it (at difficulty 3 a discount code's percentage is behind
``discount_lookup`` too). ``calculator`` evaluates arithmetic. Tools are declared in the OpenAI
tools format; the agent's calls and the results (``tool`` messages) are stored in ``messages``.
Accepted: the total in cents as a number. Hint: too high / too low.
"""

from __future__ import annotations

import ast
import operator
from typing import Any

import numpy as np

from agentsynth import ProbeReplies, Task, TextEnv
from rubrics import answer_line, direction_hint, numeric_match, parse_number

from ._keys import answer_key, number_key
from ._probes import integer_replies

CATALOG = ("widget", "gadget", "sprocket", "gizmo", "flange", "bracket", "valve", "hinge", "spindle", "gasket")
PROMPT = ("A customer orders {items}.{discount} Look up each item's unit price in cents with the price_lookup "
          "tool and give the total cost of the order in cents{rounding}. End with a line 'Answer: <integer>'.")


def _tool(name: str, description: str, **props: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": {k: {"type": "string", "description": v} for k, v in props.items()},
        "required": list(props)}}}


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.FloorDiv: operator.floordiv}


def calculate(expression: str) -> float:
    """Evaluate + - * / // and parentheses over numbers (no names, no calls)."""
    def ev(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            return -ev(node.operand) if isinstance(node.op, ast.USub) else ev(node.operand)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return node.value
        raise ValueError("only numbers, + - * / // and parentheses are allowed")
    if len(expression) > 200:
        raise ValueError("expression too long")
    return ev(ast.parse(expression, mode="eval"))


class ToolLookupEnv(TextEnv):
    """Total an order from prices that only the tools know."""

    name = "tools"
    domain = "tools"
    sim_solver = "envs.tools_sim:tools"  # how the sim model reads these prompts
    tools = (
        _tool("price_lookup", "Unit price of an item, in cents.", item="the item's name"),
        _tool("discount_lookup", "The percentage a discount code takes off.", code="the discount code"),
        _tool("calculator", "Evaluate an arithmetic expression.", expression="e.g. 3 * 250 + 2 * 125"),
    )

    def generate(self, rng: np.random.Generator) -> Task:
        k = min(self.difficulty + 1, len(CATALOG))
        names = [CATALOG[i] for i in rng.choice(len(CATALOG), size=k, replace=False)]
        prices, qty = rng.integers(50, 5000, size=k).tolist(), rng.integers(1, 6, size=k).tolist()
        total = sum(p * q for p, q in zip(prices, qty))
        code, pct = "", 0
        if self.difficulty >= 3:
            code, pct = f"SAVE{int(rng.integers(100, 999))}", int(rng.choice([5, 10, 15, 20, 25]))
            total = total * (100 - pct) // 100
        items = ", ".join(f"{q} x {n}" for n, q in zip(names, qty))
        prompt = PROMPT.format(items=items, discount=f" They use discount code {code}." if code else "",
                               rounding=" after the discount, rounded down" if code else "")
        return self.make_task(prompt, total, prices=dict(zip(names, prices)), quantities=dict(zip(names, qty)),
                              code=code, discount_pct=pct)

    def call_tool(self, name: str, arguments: dict[str, Any]) -> str:
        meta = self.task.metadata  # type: ignore[union-attr]
        if name == "price_lookup":
            item = str(arguments.get("item", "")).strip().lower()
            if item not in meta["prices"]:
                raise KeyError(f"unknown item {item!r}")
            return str(meta["prices"][item])
        if name == "discount_lookup":
            code = str(arguments.get("code", "")).strip().upper()
            if not meta["code"] or code != meta["code"]:
                raise KeyError(f"unknown discount code {code!r}")
            return f"{meta['discount_pct']}%"
        if name == "calculator":
            return f"{calculate(str(arguments.get('expression', ''))):g}"
        raise KeyError(f"no tool named {name!r}")

    def verify(self, task: Task, answer: str) -> bool:
        return numeric_match(answer, float(task.answer))

    def hint(self, task: Task, answer: str) -> str | None:
        return direction_hint(answer, float(task.answer), "total")

    @answer_key
    def canonical(self, text: str) -> str | None:
        """The stated total as verify reads it (``Answer: 1200``, ``1,200.0 cents`` → ``1200``)."""
        return number_key(parse_number(text))

    def scores(self):
        return [answer_line(r"-?\d+")]

    def probe_replies(self, task: Task) -> ProbeReplies:
        """The total plus or minus one cent is wrong; 1,200.00 is the same answer."""
        return integer_replies(task.answer)
