"""Shared helpers of the built-in environments' answer keys (:meth:`agentsynth.TextEnv.canonical`).

Each environment reads the answer with its own verifier's parsing code; :func:`answer_key` wraps
that reading so the hook never raises and falls back to the generic key (the final answer,
normalized) when the reply cannot be parsed. Not an environment: no entry point.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

from agentsynth.answers import final_answer, normalize


def generic_key(text: object) -> str:
    """The generic comparison key: the final answer, case-folded, whitespace collapsed."""
    return normalize(final_answer(text if isinstance(text, str) else ""))


def answer_key(read: Callable[[Any, str], str | None]) -> Callable[[Any, object], str]:
    """Decorate a ``canonical`` method that returns the domain's key or None (unparseable): the
    result falls back to :func:`generic_key` on None, an empty key, a non-string reply or an error."""

    @functools.wraps(read)
    def canonical(self: Any, text: object) -> str:
        try:
            key = read(self, text) if isinstance(text, str) else None
        except Exception:  # noqa: BLE001 - a key must never cost the episode
            key = None
        return key if isinstance(key, str) and key else generic_key(text)

    return canonical


def number_key(value: float | None) -> str | None:
    """A number's key: an integral value without decimals (``-18.0`` → ``-18``), else 10
    significant digits (values equal within 1e-9 relative agree); None for None or non-finite."""
    if value is None or not math.isfinite(value):
        return None
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.10g}"
