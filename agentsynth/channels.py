"""The standard feedback channels every text environment offers.

A channel is a grader whose feedback text is shown to the agent. Built from an environment's
hidden verifier (``binary``, ``reference``), its optional step-level hint (``hint``), or the
policy model's review of its own answer (``self``). ``none`` shows a neutral message that carries
no information. The sim model recognises these texts; keep them stable.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .signals import GradeContext, Grader, JudgeReply, Signal, SignalType
from .tasks import Task

Verifier = Callable[[Task, str], bool]
Hinter = Callable[[Task, str], "str | None"]

NONE_MESSAGE = "Please review your answer and try again."
CORRECT_MESSAGE = "Correct."
INCORRECT_MESSAGE = "Incorrect. Try again."
REFERENCE_PREFIX = "Incorrect. The expected answer is: "
HINT_PREFIX = "Incorrect. Hint: "
SELF_PREFIX = "Self-review: "
SELF_REQUEST = (
    "Review your last answer to the task above. Is it correct? Give one short reason, then end "
    "with a final line 'VERDICT: correct' or 'VERDICT: incorrect'."
)
JUDGE_PREFIX = "Judge: "
SAME_JUDGE_PREFIX = "Judge (the same model as you): "
JUDGE_HEADER = "You are grading another model's answer to a task."
JUDGE_REQUEST = (
    JUDGE_HEADER + " Judge the answer; do not write your own solution.\n"
    "Task:\n{task}\nAnswer to grade:\n{answer}\n"
    "Criteria: the final answer is correct; it is given in the form the task asks for.\n"
    "Give a one-line critique, then end with a final line 'VERDICT: correct' or 'VERDICT: incorrect'."
)
CHANNELS: tuple[str, ...] = ("none", "binary", "reference", "hint", "rubric", "judge", "self")

_RUN = re.compile(r"<{3,}|>{3,}")


def quoted(text: str) -> str:
    """``text`` between ``<<<`` and ``>>>`` lines, both longer than any run of ``<`` or ``>`` in it (as a
    Markdown fence outgrows the backticks inside), so a reply holding ``>>>`` cannot close its quote
    in a judge request and write on as the request (the probe's ``quote_escape`` did)."""
    n = max([3, *(len(m) + 1 for m in _RUN.findall(text))])
    return f"{'<' * n}\n{text}\n{'>' * n}"


def judge_request(task: str, answer: str) -> str:
    """The judge's request for ``answer`` to ``task`` (:data:`JUDGE_REQUEST`, each quoted by :func:`quoted`)."""
    return JUDGE_REQUEST.format(task=quoted(task), answer=quoted(answer))


_VERDICT = re.compile(r"verdict\s*[:=]\s*\**\s*(correct|incorrect|right|wrong|yes|no)\b", re.I)


class VerifierGrader(Grader):
    """The environment's hidden verifier as an outcome-level signal (all correct forms equal)."""

    def __init__(self, verify: Verifier, name: str = "correct", shown: bool = False):
        self.verify = verify
        self.signal_type = SignalType(
            name,
            "verifier",
            "open",
            2,
            True,
            "binary correctness from the environment's verifier"
            + (" (shown as Correct/Incorrect)" if shown else ""),
        )

    def grade(self, ctx: GradeContext) -> Signal:
        ok = bool(self.verify(ctx.task, ctx.answer))
        return Signal(self.name, float(ok), ok, CORRECT_MESSAGE if ok else INCORRECT_MESSAGE)


class ReferenceGrader(Grader):
    """Token-level channel: on a wrong answer, shows the reference answer's exact text."""

    signal_type = SignalType(
        "reference", "reference", "open", 0, True, "the reference answer text, shown on a miss"
    )

    def __init__(self, verify: Verifier):
        self.verify = verify

    def grade(self, ctx: GradeContext) -> Signal:
        ok = bool(self.verify(ctx.task, ctx.answer))
        fb = CORRECT_MESSAGE if ok else REFERENCE_PREFIX + ctx.task.answer
        return Signal(self.name, float(ok), ok, fb)


class HintGrader(Grader):
    """Step-level channel: on a wrong answer, says what is wrong without giving the answer."""

    signal_type = SignalType(
        "hint", "verifier", "open", 1, True, "what is wrong (sign of the error, failing check)"
    )

    def __init__(self, verify: Verifier, hint: Hinter):
        self.verify = verify
        self.hint = hint

    def grade(self, ctx: GradeContext) -> Signal:
        ok = bool(self.verify(ctx.task, ctx.answer))
        if ok:
            return Signal(self.name, 1.0, True, CORRECT_MESSAGE)
        text = self.hint(ctx.task, ctx.answer) or "the answer is wrong."
        return Signal(self.name, 0.0, False, HINT_PREFIX + text, {"hint": text})


def parse_verdict(text: str) -> bool | None:
    """A judge's verdict: the last ``VERDICT: correct|incorrect`` line, else None."""
    found = _VERDICT.findall(text or "")
    if not found:
        return None
    return found[-1].lower() in ("correct", "right", "yes")


class SelfReviewGrader(Grader):
    """Closed channel: the policy model reviews its own answer (no outside information)."""

    signal_type = SignalType(
        "self", "self", "closed", 2, True, "the policy model's review of its own answer"
    )
    uses_model = True

    def grade(self, ctx: GradeContext) -> Signal:
        if ctx.policy is None:
            return Signal(self.name, 0.0, None, NONE_MESSAGE, {"error": "no model to ask"})
        request = [dict(m) for m in ctx.messages] + [{"role": "user", "content": SELF_REQUEST}]
        reply: JudgeReply = ctx.policy(request)
        verdict = parse_verdict(reply.text)
        value = float(bool(verdict))  # an unparseable review counts as 0, passed=None
        return Signal(
            self.name,
            value,
            verdict,
            SELF_PREFIX + reply.text.strip(),
            {"critique": reply.text, "parsed": verdict is not None},
            reply.tokens,
        )


class JudgeGrader(Grader):
    """An LLM judge (the run's judge model) grades the answer against written criteria, without
    the reference. Open when the judge is another model than the policy; closed when it is the
    policy itself (then it is named ``judge_same_model``)."""

    uses_model = True

    def __init__(self, *, same_model: bool):
        name = "judge_same_model" if same_model else "judge"
        self.signal_type = SignalType(
            name, "judge", "closed" if same_model else "open", 2, True,
            "an LLM judge's verdict against criteria" + (" (the policy model judging)" if same_model else ""),
        )

    def grade(self, ctx: GradeContext) -> Signal:
        if ctx.judge is None:
            return Signal(self.name, 0.0, None, NONE_MESSAGE, {"error": "no judge model"})
        request = [{"role": "user", "content": judge_request(ctx.task.prompt, ctx.answer)}]
        reply: JudgeReply = ctx.judge(request)
        verdict = parse_verdict(reply.text)
        prefix = SAME_JUDGE_PREFIX if self.signal_type.openness == "closed" else JUDGE_PREFIX
        return Signal(
            self.name, float(bool(verdict)), verdict, prefix + reply.text.strip(),
            {"critique": reply.text, "parsed": verdict is not None}, reply.tokens,
        )


def channel_graders(verify: Verifier, hint: Hinter | None, rubric: Grader, *, judge_is_policy: bool) -> dict[str, Grader | None]:
    """The feedback channels an environment with this verifier, optional hinter and criteria
    rubric offers."""
    out: dict[str, Grader | None] = {
        "none": None,
        "binary": VerifierGrader(verify, "correct", shown=True),
        "reference": ReferenceGrader(verify),
    }
    if hint is not None:
        out["hint"] = HintGrader(verify, hint)
    out["rubric"] = rubric
    out["judge"] = JudgeGrader(same_model=judge_is_policy)
    out["self"] = SelfReviewGrader()
    return out
