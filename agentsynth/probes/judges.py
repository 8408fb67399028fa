"""The model a probe asks when it probes a judge or self-review grader.

:class:`ModelJudge` is the blocking callable graders receive as ``GradeContext.judge`` /
``GradeContext.policy`` (:data:`agentsynth.signals.JudgeFn`), for any model a run can use: an
in-process one (``sim`` by default, or any registered scheme: :mod:`agentsynth.models.schemes`) or
one at an OpenAI-compatible endpoint (``--judge-model M --base-url URL [--api-key-env VAR]``),
built as the runner builds its models (:func:`agentsynth.models.build.chat_model`: the same client,
retry policy and circuit breaker). Asked greedily (temperature 0, seed 0), so a probe of a
deterministic judge is repeatable.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..models.base import ModelError
from ..models.build import chat_model
from ..models.schemes import SchemeError
from ..signals import JudgeError, JudgeReply

MAX_TOKENS = 512
"""A judge's reply: a one-line critique and a verdict line (an endpoint may otherwise run long)."""


class ModelJudge:
    """A blocking judge callable for model ``model`` (at ``base_url`` when given; the key from the
    variable named ``api_key_env``). Construction raises ``ValueError`` (one line) for a model it
    cannot build; a call raises :class:`~agentsynth.signals.JudgeError` when the model fails after
    the retry policy's retries. :meth:`close` releases the client."""

    def __init__(self, model: str = "sim", base_url: str | None = None, api_key_env: str | None = None) -> None:
        try:
            self.model = chat_model(model, base_url=base_url, api_key_env=api_key_env, judge=True, concurrency=1)
        except (SchemeError, ModelError) as exc:
            raise ValueError(f"judge model {model!r}: {exc}") from None
        self._loop = asyncio.new_event_loop()  # one loop for every call: an endpoint client is bound to it

    def __call__(self, messages: list[dict[str, Any]]) -> JudgeReply:
        try:
            comp = self._loop.run_until_complete(
                self.model.complete(messages, temperature=0.0, seed=0, max_tokens=MAX_TOKENS))
        except ModelError as exc:
            raise JudgeError(str(exc), transient=exc.transient) from None
        return JudgeReply(comp.message.get("content") or "", comp.prompt_tokens + comp.completion_tokens)

    def close(self) -> None:
        """Close the model's client and the event loop (idempotent)."""
        if not self._loop.is_closed():
            self._loop.run_until_complete(self.model.aclose())
            self._loop.close()
