"""The sim on a prompt no solver recognises: a weak guesser that still uses feedback.

It cannot know the answer, so it guesses among *candidates* taken from the prompt, in the form the
prompt asks for, and narrows them down with what the feedback says:

- The form: the first ``Answer: ...<placeholder>...`` in the prompt (``'Answer: <word>'``,
  ``Answer: x = <value>``); a form with one ``<placeholder>`` is filled with the guess, otherwise
  the reply ends ``Answer: <guess>``.
- The candidates, in the order they appear: when the placeholder names a number (``<integer>``,
  ``<number>``, ``<n>``, ...), every integer of a range the prompt states ("between 1 and 20",
  "from 1 to 20") and then every number in the prompt; otherwise every quoted text (``'...'``,
  ``"..."``, `````...`````, the form itself left out), else every number. With none, a digit 0-9.
- Feedback that says an answer is wrong (any text starting ``Incorrect`` — the binary, hint and
  reference channels —, a review or judge ending ``VERDICT: incorrect``, a rubric with the
  correctness criterion not met) rules that answer out; a hint saying it is "too high"/"too large"
  ("too low"/"too small") also rules out every number at or above (below) it.
- After a reference, it copies the shown answer with probability ``use_reference``; after feedback
  that says it is right, it repeats its answer; otherwise (including after ``none``, which says
  nothing) it guesses again among the candidates not ruled out (all of them again once every one
  has been): at random, or the first at temperature 0.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from random import Random

from ..answers import final_answer, normalize
from ..channels import CORRECT_MESSAGE, JUDGE_PREFIX, REFERENCE_PREFIX, SAME_JUDGE_PREFIX, SELF_PREFIX, parse_verdict
from ..criteria import RUBRIC_PREFIX, WRONG_ANSWER

GUESS_PREFIX = "I am not sure how to solve this, so I am guessing."

_FORM = re.compile(r"Answer:[^\n'\"`]*?<[^<>\n]+>(?:[^\n'\"`<]*<[^<>\n]+>)*")
_SLOT = re.compile(r"<[^<>\n]+>")
_NUMERIC_SLOT = re.compile(r"<[^<>]*\b(?:int|integer|number|num|n|k|digit|count|value|amount|total|year|age)s?\b[^<>]*>", re.I)
_QUOTED = re.compile(r"'([^'\n]{1,80})'|\"([^\"\n]{1,80})\"|`([^`\n]{1,80})`")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?!\d)")
_RANGE = re.compile(r"\b(?:between|from)\s+(-?\d+)\s+(?:and|to)\s+(-?\d+)\b", re.I)
_TOO_HIGH = re.compile(r"\btoo (?:high|large|big)\b", re.I)
_TOO_LOW = re.compile(r"\btoo (?:low|small)\b", re.I)


def requested_form(prompt: str) -> str:
    """The answer form the prompt asks for (``Answer: <word>``), or ``Answer: <answer>``."""
    m = _FORM.search(prompt)
    return m.group(0).rstrip(" .") if m else "Answer: <answer>"


def fill(form: str, answer: str) -> str:
    """``form`` with its one placeholder replaced by ``answer``; ``Answer: answer`` otherwise."""
    return _SLOT.sub(lambda _: answer, form) if len(_SLOT.findall(form)) == 1 else f"Answer: {answer}"


def candidates(prompt: str, form: str) -> list[str]:
    """The guesses the prompt offers (see the module docstring), in order, without repeats."""
    numbers = [m.group(0) for m in _NUMBER.finditer(prompt.replace(form, " "))]
    if _NUMERIC_SLOT.search(form):
        spans = [range(int(a), int(b) + 1) for a, b in _RANGE.findall(prompt) if 0 < int(b) - int(a) <= 1000]
        found = [str(v) for r in spans for v in r] + numbers
    else:
        quoted = [next(g for g in m.groups() if g is not None) for m in _QUOTED.finditer(prompt)]
        found = [q.strip() for q in quoted if "Answer:" not in q and q.strip()] or numbers
    return list(dict.fromkeys(found)) or [str(d) for d in range(10)]


_WRONG = "Incorrect"
"""How the verifier's channels (binary, hint, reference) start on a wrong answer (:mod:`agentsynth.channels`)."""


def _said(reply: str) -> str:
    return normalize(final_answer(reply))


def _verdict(feedback: str) -> bool | None:
    """What feedback says of the answer before it: True right, False wrong, None nothing."""
    if feedback.startswith(CORRECT_MESSAGE):
        return True
    if feedback.startswith(_WRONG):
        return False
    if feedback.startswith((SELF_PREFIX, JUDGE_PREFIX, SAME_JUDGE_PREFIX)):
        return parse_verdict(feedback)
    if feedback.startswith(RUBRIC_PREFIX):
        return WRONG_ANSWER not in feedback
    return None


def _number(text: str) -> float | None:
    found = _NUMBER.findall(text)
    return float(found[-1]) if found else None


def _beyond(feedback: str, value: float) -> Callable[[float], bool] | None:
    """Which numbers a too-high / too-low hint on ``value`` rules out (None: it says neither)."""
    if not feedback.startswith(_WRONG):
        return None
    if _TOO_HIGH.search(feedback):
        return lambda v: v >= value
    if _TOO_LOW.search(feedback):
        return lambda v: v <= value
    return None


def guess(users: Sequence[str], replies: Sequence[str], rng: Random, *, greedy: bool, use_reference: float) -> str:
    """The reply to a conversation of ``users`` messages (the prompt, then the feedback on each of
    ``replies``, its earlier answers) on a prompt no solver recognises."""
    form = requested_form(users[0])
    pool = candidates(users[0], form)
    keys = {c: _said(fill(form, c)) for c in pool}
    ruled_out: set[str] = set()
    for reply, feedback in zip(replies, users[1:]):
        said = _said(reply)
        if _verdict(feedback) is False:
            ruled_out.add(said)
        value = _number(said)
        beyond = _beyond(feedback, value) if value is not None else None
        if beyond is not None:
            ruled_out |= {k for k in keys.values() if (n := _number(k)) is not None and beyond(n)}
    if replies and len(users) > len(replies):
        feedback = users[-1]
        if _verdict(feedback) is True:
            return replies[-1]
        if feedback.startswith(REFERENCE_PREFIX) and rng.random() < use_reference:
            return fill(form, feedback[len(REFERENCE_PREFIX):].strip())
    left = [c for c in pool if keys[c] not in ruled_out] or pool
    choice = left[0] if greedy else rng.choice(left)
    return f"{GUESS_PREFIX}\n{fill(form, choice)}"
