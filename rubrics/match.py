"""Matching the reference answer's surface form (token level: ``meta_level`` 0)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from agentsynth.env import final_answer
from agentsynth.signals import GradeContext, Grader, Signal, SignalType


def normalize(text: str) -> str:
    """Case-folded, accents and punctuation stripped, whitespace collapsed."""
    text = unicodedata.normalize("NFKD", text or "")
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = re.sub(r"[^\w\s.-]", " ", text.casefold())
    return " ".join(text.split()).strip(" .")


class _Match(Grader):
    def __init__(self, signal_type: SignalType, transform: Callable[[str], str]):
        self.signal_type = signal_type
        self._transform = transform

    def grade(self, ctx: GradeContext) -> Signal:
        ok = self._transform(final_answer(ctx.answer)) == self._transform(ctx.task.answer)
        return Signal(self.name, float(ok), ok, "" if ok else "The answer does not match the reference.")


def exact_match(name: str = "exact") -> Grader:
    """Passes when the final answer is the reference text exactly (after trimming whitespace)."""
    st = SignalType(name, "reference", "open", 0, True, "final answer equals the reference text exactly")
    return _Match(st, str.strip)


def normalized_match(name: str = "normalized", normalizer: Callable[[str], str] = normalize) -> Grader:
    """Passes when the final answer equals the reference after ``normalizer`` (default: case,
    accents, punctuation and spacing ignored)."""
    st = SignalType(name, "reference", "open", 0, True, "final answer equals the reference after normalization")
    return _Match(st, normalizer)
