"""Surface checks: satisfiable without solving the task, so labelled ``task_relevant=False``."""

from __future__ import annotations

import re

from agentsynth.signals import GradeContext, Grader, Signal, SignalType


class _Check(Grader):
    def __init__(self, signal_type: SignalType, test, describe: str):
        self.signal_type = signal_type
        self._test = test
        self._describe = describe

    def grade(self, ctx: GradeContext) -> Signal:
        ok = bool(self._test(ctx.answer or ""))
        return Signal(self.name, float(ok), ok, "" if ok else self._describe)


def answer_line(pattern: str = r"-?\d+", name: str = "format") -> Grader:
    """Passes when the reply's last non-empty line is exactly ``Answer: <pattern>``."""
    rx = re.compile(rf"^Answer:\s*{pattern}\s*$")

    def test(text: str) -> bool:
        lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
        return bool(lines) and rx.match(lines[-1]) is not None

    st = SignalType(name, "rubric", "open", 0, False, f"last line is 'Answer: {pattern}'")
    return _Check(st, test, "The last line must be 'Answer: <answer>'.")


def max_length(chars: int, name: str = "length") -> Grader:
    """Passes when the reply has at most ``chars`` characters."""
    st = SignalType(name, "rubric", "open", 0, False, f"reply at most {chars} characters")
    return _Check(st, lambda text: len(text) <= chars, f"Keep the reply under {chars} characters.")
