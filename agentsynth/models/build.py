"""One way to build a chat model from a model name: an in-process scheme (``sim``, ``student:PATH``:
:mod:`.schemes`) when the name is one and no base URL is given, else an OpenAI-compatible endpoint
(:class:`~agentsynth.models.openai_compat.OpenAIModel` with the one retry policy,
:class:`~agentsynth.models.retry.RetryPolicy`). The runner builds its policy and judge models here
(from a run spec's fields), and ``agentsynth probe`` its judge model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from ..credentials import BaseUrl
from . import schemes
from .base import ChatModel


def chat_model(model: str, *, base_url: BaseUrl = None, api_key_env: str | None = None,
               options: Mapping[str, Any] | None = None, judge: bool = False, timeout_s: float = 60.0,
               concurrency: int = 16, max_retries: int = 6, transport: Literal["auto", "aiohttp", "httpx"] = "auto",
               unreachable_s: float = 30.0) -> ChatModel:
    """The model named ``model``: in-process (``options`` is its ``[sim]`` / ``[judge.sim]`` table,
    by ``judge``) or at ``base_url`` — one URL or a list of endpoints serving it (the key read from
    the variable named ``api_key_env``; the
    remaining arguments are the endpoint client's, defaults as a run spec's). Raises
    :class:`~agentsynth.models.schemes.SchemeError` for an in-process model it cannot build,
    :class:`~agentsynth.models.base.ModelError` for an endpoint without its key."""
    if schemes.in_process(model, base_url):
        request = schemes.SchemeRequest(schemes.split(model)[1], options=dict(options or {}),
                                        section="[judge.sim]" if judge else "[sim]", judge=judge)
        return schemes.build(model, request)
    from .openai_compat import OpenAIModel, api_key_from_env
    from .retry import RetryPolicy

    return OpenAIModel(model, base_url=base_url, api_key=api_key_from_env(api_key_env, base_url), timeout_s=timeout_s,
                       concurrency=concurrency, policy=RetryPolicy(max_retries=max_retries), transport=transport,
                       unreachable_s=unreachable_s)
