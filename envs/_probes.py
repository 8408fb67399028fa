"""Shared helpers of the built-in environments' probe replies (:meth:`agentsynth.TextEnv.probe_replies`).
Not an environment: no entry point."""

from __future__ import annotations

from agentsynth import ProbeReplies


def integer_replies(answer: str) -> ProbeReplies:
    """An integer answer's probe replies: one more and one less are wrong; the value with decimals,
    with thousands separators and (when negative) with a Unicode minus are the same answer."""
    a = int(answer)
    same = [f"{a}.00"] + ([f"{a:,}"] if abs(a) >= 1000 else []) + ([f"\u2212{-a}"] if a < 0 else [])
    return ProbeReplies(wrong=(str(a + 1), str(a - 1)), equivalent=tuple(same), single_answer=True)
