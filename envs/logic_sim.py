"""The sim's knights-and-knaves competence: read the people and their statements from the prompt
and brute-force an assignment under which every statement is true iff its speaker is a knight.
Its favourite slip: one person's kind flipped; also everyone flipped, and everyone a knight (taking
every statement at face value)."""

from __future__ import annotations

import itertools
import re

from agentsynth.answers import answer_block
from agentsynth.sim import Problem

_MEET = re.compile(r"either a knight, who always tells the truth, or a knave, who always lies\. You meet ([A-Z](?:, [A-Z])*) and ([A-Z]) \(")
_SAYS = re.compile(r'^([A-Z]) says: "(.+)"\s*$', re.M)
_N = r"([A-Z]|I|me)"
_FORMS = [  # (pattern, kind); "us" forms take everyone
    (rf"{_N} is a (knight|knave)\.", None), (rf"{_N} and {_N} are the same kind\.", "same"),
    (rf"{_N} and {_N} are different kinds\.", "diff"), (rf"Exactly one of {_N} and {_N} is a knight\.", "diff"),
    (r"At least one of us is a knave\.", "any_knave"), (r"All of us are knights\.", "all_knights"),
    (r"At least one of us is a knight\.", "any_knight"), (r"All of us are knaves\.", "all_knaves"),
    (rf"At least one of {_N} and {_N} is a knave\.", "any_knave"), (rf"{_N} and {_N} are both knights\.", "all_knights"),
    (rf"At least one of {_N} and {_N} is a knight\.", "any_knight"), (rf"{_N} and {_N} are both knaves\.", "all_knaves"),
]
_FORMS_RX = [(re.compile(p), k) for p, k in _FORMS]
_PAIR = re.compile(r"\b([A-Za-z])\s*(?:=|:|\bis\b)\s*(?:an?\s+)?(knight|knave)", re.I)


def _holds(kind: str, v: list[bool]) -> bool:
    return {"knight": v[0], "knave": not v[0], "same": v[0] == v[-1], "diff": v[0] != v[-1],
            "any_knave": not all(v), "all_knights": all(v), "any_knight": any(v), "all_knaves": not any(v)}[kind]


def _statement(speaker: str, text: str, people: list[str]) -> tuple[str, str, list[str]] | None:
    for rx, kind in _FORMS_RX:
        m = rx.fullmatch(text)
        if m:
            names = [speaker if g in ("I", "me") else g for g in m.groups() if g not in ("knight", "knave")]
            if kind is None:
                kind = m.group(2)
            return speaker, kind, names or list(people)
    return None


def _canon(people: list[str], values) -> str:
    return ", ".join(f"{p}={'knight' if v else 'knave'}" for p, v in zip(people, values))


def _extract(reply: str) -> str | None:
    """The assignment a reply states, in canonical form (simple 'X=kind' / 'X is a kind' pairs)."""
    if not isinstance(reply, str):
        return None
    part = answer_block(reply)
    found = {p.upper(): k.lower() == "knight" for p, k in _PAIR.findall(part)}
    return _canon(sorted(found), [found[p] for p in sorted(found)]) if found else None


def _render(answer: str, tidy: bool) -> str:
    if tidy:
        return f"Checking every statement against each assignment.\nAnswer: {answer}"
    pairs = [f"{p} is a {k}" for p, k in _PAIR.findall(answer)]
    return "So " + (", ".join(pairs[:-1]) + " and " + pairs[-1] if len(pairs) > 1 else "".join(pairs)) + "."


def logic(prompt: str) -> Problem | None:
    """Knights-and-knaves prompts: 'You meet A, B and C' + 'X says: "..."' lines."""
    m = _MEET.search(prompt)
    if not m:
        return None
    people = m.group(1).split(", ") + [m.group(2)]
    stmts = [_statement(s, t, people) for s, t in _SAYS.findall(prompt)]
    if not stmts or None in stmts or any(x not in people for st in stmts for x in [st[0], *st[2]]):
        return None

    def fits(vals) -> bool:
        a = dict(zip(people, vals))
        return all(_holds(k, [a[x] for x in who]) == a[s] for s, k, who in stmts)

    everyone = list(itertools.product((True, False), repeat=len(people)))
    good = [v for v in everyone if fits(v)]
    if not good:
        return None
    sol = good[0]
    flips = [tuple(not x if j == i else x for j, x in enumerate(sol)) for i in range(len(sol) - 1, -1, -1)]
    tries = flips[:1] + [tuple(not x for x in sol), (True,) * len(sol)] + flips[1:]
    wrong = [v for v in dict.fromkeys(tries) if not fits(v)]
    wrong += [v for v in everyone if not fits(v) and v not in wrong][: max(0, 3 - len(wrong))]
    mistakes = [_canon(people, v) for v in wrong]
    return Problem("logic", _canon(people, sol), float(len(people) - 1), mistakes, render=_render, extract=_extract)
