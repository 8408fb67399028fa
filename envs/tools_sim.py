"""The sim's tool-use competence: read the order from the prompt, call price_lookup (and
discount_lookup) for what it does not know yet, then total it. Its usual slip: forgetting a
quantity (adding unit prices)."""

from __future__ import annotations

import json
import re
from typing import Any

from agentsynth.sim import Problem

_ORDER = re.compile(r"A customer orders (.+?)\.(?: They use discount code (\w+)\.)? Look up each item's unit price")
_ITEM = re.compile(r"(\d+) x ([a-z]+)")


def _results(messages: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """(tool name, argument) -> result text, from the assistant's calls and the tool replies."""
    calls, out = {}, {}
    for m in messages:
        for c in m.get("tool_calls") or []:
            try:
                args = json.loads(c["function"]["arguments"] or "{}")
            except (KeyError, TypeError, json.JSONDecodeError):
                continue
            calls[c.get("id")] = (c["function"].get("name"), str(next(iter(args.values()), "")))
        if m.get("role") == "tool" and m.get("tool_call_id") in calls:
            out[calls[m["tool_call_id"]]] = str(m.get("content") or "")
    return out


def tools(prompt: str) -> Problem | None:
    """Prompts of the tools domain."""
    m = _ORDER.search(prompt)
    if not m:
        return None
    items = [(name, int(q)) for q, name in _ITEM.findall(m.group(1))]
    code = m.group(2)

    def resolve(messages: list[dict[str, Any]]) -> Problem | list[tuple[str, dict[str, Any]]]:
        got = _results(messages)
        need = [("price_lookup", {"item": n}) for n, _ in items if ("price_lookup", n) not in got]
        if code and ("discount_lookup", code) not in got:
            need.append(("discount_lookup", {"code": code}))
        if need:
            return need
        try:
            prices = {n: int(got[("price_lookup", n)]) for n, _ in items}
            pct = int(got[("discount_lookup", code)].rstrip("%")) if code else 0
        except ValueError:
            return Problem("tools", "0", 2.0, ["1"])
        disc = lambda x: x * (100 - pct) // 100  # noqa: E731
        total = disc(sum(prices[n] * q for n, q in items))
        mistakes = [str(disc(sum(prices.values()))), str(disc(sum(prices[n] * (q + 1) for n, q in items)))]
        if code:
            mistakes.insert(1, str(sum(prices[n] * q for n, q in items)))
        mistakes = [x for x in mistakes if x != str(total)] or [str(total + 1)]
        return Problem("tools", str(total), 0.5 + 0.5 * len(items), mistakes)

    return Problem("tools", "", 1.0, [], resolve=resolve)
