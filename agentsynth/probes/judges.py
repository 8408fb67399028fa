"""The model a probe asks when it probes a judge or self-review grader.

:func:`model_judge` turns a model name into the blocking callable graders receive as
``GradeContext.judge`` / ``GradeContext.policy`` (:data:`agentsynth.signals.JudgeFn`). Today it
builds in-process models (``sim`` by default, or any registered scheme: see
:mod:`agentsynth.models.schemes`) and asks them greedily; an endpoint judge (``--judge-model``
with ``--base-url``) plugs in here.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..models import schemes
from ..models.base import ModelError
from ..signals import JudgeError, JudgeFn, JudgeReply


def model_judge(model: str = "sim", base_url: str | None = None) -> JudgeFn:
    """A blocking judge callable for the in-process model ``model`` (temperature 0, fixed seed, so
    a probe is deterministic). Raises ``ValueError`` (one line) for a model it cannot build."""
    if not schemes.in_process(model, base_url):
        raise ValueError(f"judge model {model!r}{' at ' + base_url if base_url else ''}: a probe can ask only an "
                         "in-process model (e.g. 'sim') so far")
    try:
        m = schemes.build(model, schemes.SchemeRequest(schemes.split(model)[1], section="[judge.sim]", judge=True))
    except schemes.SchemeError as exc:
        raise ValueError(str(exc)) from None

    def ask(messages: list[dict[str, Any]]) -> JudgeReply:
        try:
            comp = asyncio.run(m.complete(messages, temperature=0.0, seed=0, max_tokens=None))
        except ModelError as exc:
            raise JudgeError(str(exc), transient=exc.transient) from None
        return JudgeReply(comp.message.get("content") or "", comp.prompt_tokens + comp.completion_tokens)

    return ask
