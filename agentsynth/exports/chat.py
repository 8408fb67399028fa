"""Chat messages in the OpenAI / TRL form: a stored message row as a chat message, the
conversation of one accepted turn (``final`` or ``full`` trajectory), and the tool schemas an
environment declares.

Public (re-exported by ``agentsynth.exports``): :func:`chat_message`, :func:`sft_messages`.
Package-internal API: :class:`ToolSchemas`, :class:`ReferenceReplies`.
"""

from __future__ import annotations

import json
from typing import Any

from .selection import answer_index, prompt_end


def _tool_call(call: Any, index: int) -> dict[str, Any]:
    fn = call.get("function") if isinstance(call, dict) and isinstance(call.get("function"), dict) else {}
    args = fn.get("arguments", "{}")
    return {
        "id": str(call.get("id") or f"call_{index}") if isinstance(call, dict) else f"call_{index}",
        "type": "function",
        "function": {"name": str(fn.get("name") or ""), "arguments": args if isinstance(args, str) else json.dumps(args)},
    }


def chat_message(m: dict[str, Any]) -> dict[str, Any]:
    """A stored message row as an OpenAI chat message (roles system/user/assistant/tool)."""
    out: dict[str, Any] = {"role": m["role"], "content": m["content"] or ""}
    if m["role"] == "assistant" and m["tool_calls"] is not None:
        calls = json.loads(m["tool_calls"])
        out["tool_calls"] = [_tool_call(c, i) for i, c in enumerate(calls if isinstance(calls, list) else [calls])]
    if m["role"] == "tool":
        out["tool_call_id"] = m["tool_call_id"] or ""
    return out


def sft_messages(msgs: list[dict[str, Any]], turn: int, trajectory: str) -> list[dict[str, Any]]:
    """The conversation of one accepted turn. ``final``: prompt (system + first user message), the
    tool exchanges before the answer, the answer. ``full``: everything up to the answer."""
    end = answer_index(msgs, turn)
    if trajectory == "full":
        picked = msgs[: end + 1]
    else:
        start = prompt_end(msgs)
        tools = [m for m in msgs[start:end] if m["role"] == "tool" or (m["role"] == "assistant" and m["tool_calls"] is not None)]
        picked = [*msgs[:start], *tools, msgs[end]]
    return [chat_message(m) for m in picked]


class ToolSchemas:
    """The tool schemas of each (env_id, env_config), from the environment itself (cached)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str | None], list[dict[str, Any]] | None] = {}

    def __call__(self, env_id: str, env_config: str | None) -> list[dict[str, Any]] | None:
        key = (env_id, env_config)
        if key not in self._cache:
            self._cache[key] = self._load(env_id, env_config)
        return self._cache[key]

    @staticmethod
    def _load(env_id: str, env_config: str | None) -> list[dict[str, Any]] | None:
        from ..registry import resolve

        try:
            env = resolve(env_id).cls(**json.loads(env_config or "{}"))
        except Exception:  # noqa: BLE001 - an environment that cannot be built has no schemas to offer
            return None
        try:
            return json.loads(json.dumps(list(env.tools))) if env.tools else []
        finally:
            env.close()


class ReferenceReplies:
    """The environment's reference reply to a stored task (:meth:`~agentsynth.env.TextEnv.reference_reply`),
    for the ``reference`` trajectory; environments are built once per (env_id, env_config)."""

    def __init__(self) -> None:
        self._envs: dict[tuple[str, str | None], Any] = {}

    def __call__(self, env_id: str, env_config: str | None, task: Any) -> str:
        from ..registry import resolve

        key = (env_id, env_config)
        if key not in self._envs:
            self._envs[key] = resolve(env_id).cls(**json.loads(env_config or "{}"))
        return self._envs[key].reference_reply(task)

    def close(self) -> None:
        """Close the environments built."""
        for env in self._envs.values():
            env.close()
        self._envs.clear()
