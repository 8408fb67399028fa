"""The model's answer (:class:`Reply`) and how the chat endpoint sends it: a ``chat.completion``
object, or server-sent ``chat.completion.chunk`` events.

A stream is cut from the finished reply (the model answers whole): per choice, a role delta, the
content in word-sized deltas (or, for tool calls, each call's index, id and name, then its
arguments in pieces), a last chunk with ``finish_reason``; with ``stream_options.include_usage``,
a final chunk with ``usage`` and no choices; then ``data: [DONE]``. Joining the deltas gives
exactly the non-streamed message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..models.base import Choice

__all__ = ["MALFORMED_CHAT", "MALFORMED_CHAT_STREAM", "Reply", "chat_chunks", "chat_completion", "pieces", "sse"]

MALFORMED_CHAT = b'{"choices": ['
"""The body of a malformed-reply fault on the chat endpoint (truncated JSON)."""
MALFORMED_CHAT_STREAM = b'data: {"object": "chat.completion.chunk", "choices": [\n\n'
"""The same fault on a streamed chat request: one truncated event, then the stream ends."""

_PIECE = re.compile(r"\s*\S+|\s+$")


@dataclass(slots=True)
class Reply:
    """The served model's answer to one request: its id (``chatcmpl-…`` or ``resp_…``), creation
    time, the model name, the choices and the prompt's token count."""

    id: str
    created: int
    model: str
    choices: list[Choice]
    prompt_tokens: int

    @property
    def completion_tokens(self) -> int:
        """Tokens written, over all choices."""
        return sum(c.completion_tokens for c in self.choices)


def pieces(text: str) -> list[str]:
    """``text`` cut into stream deltas, one word (with the whitespace before it) each; they join
    back to ``text``."""
    return _PIECE.findall(text)


def sse(data: dict[str, Any] | str, event: str | None = None) -> bytes:
    """One server-sent event: an optional ``event:`` line, then ``data:`` with ``data`` as JSON
    (a string is sent as is)."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return (f"event: {event}\n" if event else "").encode() + f"data: {payload}\n\n".encode()


def _usage(reply: Reply) -> dict[str, int]:
    return {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens}


def chat_completion(reply: Reply) -> dict[str, Any]:
    """The ``chat.completion`` object for ``reply``."""
    return {
        "id": reply.id,
        "object": "chat.completion",
        "created": reply.created,
        "model": reply.model,
        "system_fingerprint": None,
        "choices": [{"index": i, "message": c.message, "logprobs": None, "finish_reason": c.finish_reason}
                    for i, c in enumerate(reply.choices)],
        "usage": _usage(reply),
    }


def chat_chunks(reply: Reply, include_usage: bool) -> Iterator[bytes]:
    """The ``chat.completion.chunk`` events for ``reply``, every choice with its index, ending
    with ``data: [DONE]``."""
    head = {"id": reply.id, "object": "chat.completion.chunk", "created": reply.created, "model": reply.model,
            "system_fingerprint": None}

    def chunk(index: int, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        data = {**head, "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}
        if include_usage:
            data["usage"] = None
        return sse(data)

    for i, c in enumerate(reply.choices):
        calls = c.message.get("tool_calls") or []
        content = c.message.get("content")
        yield chunk(i, {"role": "assistant", "content": None if calls and not content else ""})
        for piece in pieces(content or ""):
            yield chunk(i, {"content": piece})
        for k, call in enumerate(calls):
            fn = call["function"]
            yield chunk(i, {"tool_calls": [{"index": k, "id": call["id"], "type": "function",
                                            "function": {"name": fn["name"], "arguments": ""}}]})
            for piece in pieces(fn["arguments"]):
                yield chunk(i, {"tool_calls": [{"index": k, "function": {"arguments": piece}}]})
        yield chunk(i, {}, c.finish_reason)
    if include_usage:
        yield sse({**head, "choices": [], "usage": _usage(reply)})
    yield sse("[DONE]")
