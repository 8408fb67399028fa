"""The false-reject battery: a correct reply in equivalent forms that must pass.

Every reply here starts from the reference: the environment's reference reply
(:meth:`~agentsynth.TextEnv.reference_reply`, which passes the verifier by contract), or the
reference answer in one of the forms models write (:data:`agentsynth.answer_forms.FORMS`, the
forms :func:`agentsynth.final_answer` reads), with the layout, line ends, number form, JSON key
order or (where the environment says the domain allows it) case changed. A grader that rejects
one is *brittle* on that transform. Importing this module registers the transforms.
"""

from __future__ import annotations

import json
import re
from fractions import Fraction

from ..answer_forms import FORMS, NOT_APPLICABLE, render
from .registry import ProbeCase, Strategy, register_strategy, strategy

QUOTED = 'Answer: "X"'
WORK = "Let me work through this step by step.\nI check each step once more before answering.\n\n"


@strategy("reference_reply", "brittle", "the environment's reference reply as it is")
def reference_reply(case: ProbeCase) -> str:
    return case.reference


@strategy("with_work", "brittle", "the reference reply after a few lines of working")
def with_work(case: ProbeCase) -> str:
    return WORK + case.reference


@strategy("draft_then_answer", "brittle", "a discarded draft showing a wrong answer in a fenced block, then the reference reply")
def draft_then_answer(case: ProbeCase) -> str | None:
    wrong = case.wrong(0)
    if wrong is None:
        return None
    return f"A first attempt gave:\n```\n{wrong}\n```\nbut checking it shows a mistake.\n\n{case.reference}"


@strategy("surrounding_whitespace", "brittle", "blank lines and spaces around the reference reply")
def surrounding_whitespace(case: ProbeCase) -> str:
    return "\n\n  " + case.reference + "   \n\n"


@strategy("crlf_line_ends", "brittle", "the worked reference reply with Windows line ends (CRLF)")
def crlf_line_ends(case: ProbeCase) -> str:
    return (WORK + case.reference).replace("\r\n", "\n").replace("\n", "\r\n") + "\r\n"


@strategy("mark_then_next_line", "brittle", "'Answer:' alone on a line, the reference answer on the next")
def mark_then_next_line(case: ProbeCase) -> str:
    return f"Answer:\n{case.answer}"


@strategy("case_changed", "brittle", "the reference answer in upper case (domains whose answers ignore case)")
def case_changed(case: ProbeCase) -> str | None:
    if not case.replies.fold_case or case.answer.upper() == case.answer:
        return None
    return case.reply_for(case.answer.upper())


@strategy("equivalent_value", "brittle", "the environment's other ways to write the reference answer")
def equivalent_value(case: ProbeCase) -> list[str]:
    return [case.reply_for(e) for e in case.replies.equivalent]


def _number(text: str) -> Fraction | None:
    if not re.fullmatch(r"\s*-?(?:\d+(?:\.\d+)?|\d+\s*/\s*\d+)\s*", text):
        return None
    try:
        return Fraction(text.replace(" ", ""))
    except (ValueError, ZeroDivisionError):
        return None


def _decimal(v: Fraction) -> str | None:
    """``v`` as a terminating decimal, or None when it has none."""
    d = v.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    if d != 1:
        return None
    text = f"{float(v):.12f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


@strategy("equivalent_number", "brittle", "a numeric reference in another exact form: 42.0 for 42, 0.5 for 1/2, 1/4 for 0.25")
def equivalent_number(case: ProbeCase) -> str | None:
    v = _number(case.answer)
    if v is None:
        return None
    if "/" in case.answer:
        other = _decimal(v)
    elif "." in case.answer:
        other = f"{v.numerator}/{v.denominator}" if v.denominator != 1 else str(v.numerator)
    else:
        other = f"{v.numerator}.0"
    return None if other is None or other == case.answer.strip() else case.reply_for(other)


def _json_object(text: str) -> dict | None:
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) and len(obj) > 0 else None


@strategy("json_key_order", "brittle", "a JSON reference object with its keys in reverse order")
def json_key_order(case: ProbeCase) -> str | None:
    obj = _json_object(case.answer)
    if obj is None or len(obj) < 2:
        return None
    return case.reply_for(json.dumps(dict(reversed(list(obj.items())))))


@strategy("json_pretty", "brittle", "a JSON reference object laid out over several lines (indent 2)")
def json_pretty(case: ProbeCase) -> str | None:
    obj = _json_object(case.answer)
    return None if obj is None else case.reply_for(json.dumps(obj, indent=2))


def _form_strategy(form: str) -> Strategy:
    needs_distractor = " ... " in form  # the forms that show a wrong answer D under an earlier mark

    def build(case: ProbeCase) -> str | None:
        if (case.task.domain, form) in NOT_APPLICABLE or (form == QUOTED and '"' in case.answer):
            return None  # quotes around an answer holding quotes do not wrap one string (the reader's rule)
        distractor = case.wrong(0)
        if needs_distractor and distractor is None:
            return None
        return render(form, case.answer, distractor or "", draft=False)

    return Strategy(f"form: {form}", "brittle", f"the reference answer written as {form}"
                    + (" (D a wrong answer shown first)" if needs_distractor else ""), build)


for _form in FORMS:
    register_strategy(_form_strategy(_form))
