"""The student's chat template: chat messages (system / user / assistant / tool) as one sequence.

One message is ``<|role|>`` + its text + ``<|end|>``; a prompt ends with ``<|assistant|>``, and the
reply the student writes ends with ``<|end|>``::

    <|system|>Be brief.<|end|><|user|>Compute the value of: 2 + 3 ...<|end|><|assistant|>Answer: 5<|end|>

Role markers and ``<|end|>`` are special tokens (one id each), so a message's text never merges
with them. An assistant message's tool calls follow its text as one JSON line
(``{"tool_calls": [{"name": ..., "arguments": ...}]}``); the student itself answers in text only.

This module is the one place that knows the layout; it works on *segments* (special token or
text), which :class:`~agentsynth.student.tokenizer.StudentTokenizer` turns into ids, and
:func:`render_text` shows as a string. Importable without torch.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

PAD = "<|pad|>"
END = "<|end|>"
ROLES = ("system", "user", "assistant", "tool")
ROLE_TOKENS = {role: f"<|{role}|>" for role in ROLES}
SPECIAL_TOKENS: tuple[str, ...] = (PAD, END, *ROLE_TOKENS.values())
"""Special tokens, in id order: ``<|pad|>`` is id 0, ``<|end|>`` id 1, then the roles."""

Segment = tuple[bool, str]
"""(is_special, text): a special token, or text to tokenize."""


def message_text(message: Mapping[str, Any]) -> str:
    """A message's text as the student sees it: its content, then its tool calls (if any) as one
    JSON line."""
    content = message.get("content")
    text = content if isinstance(content, str) else ("" if content is None else json.dumps(content, ensure_ascii=False))
    calls = message.get("tool_calls")
    if calls:
        slim = []
        for call in calls if isinstance(calls, list) else [calls]:
            fn = call.get("function", {}) if isinstance(call, Mapping) else {}
            fn = fn if isinstance(fn, Mapping) else {}
            slim.append({"name": fn.get("name", ""), "arguments": fn.get("arguments", "")})
        text = (text + "\n" if text else "") + json.dumps({"tool_calls": slim}, ensure_ascii=False)
    return text


def _role(message: Mapping[str, Any]) -> str:
    role = message.get("role")
    if role not in ROLE_TOKENS:
        raise ValueError(f"message role {role!r} is not one of {', '.join(ROLES)}")
    return str(role)


def prompt_segments(messages: Sequence[Mapping[str, Any]]) -> Iterator[Segment]:
    """The segments of a prompt: every message, then the assistant marker the reply follows."""
    for m in messages:
        yield True, ROLE_TOKENS[_role(m)]
        yield False, message_text(m)
        yield True, END
    yield True, ROLE_TOKENS["assistant"]


def reply_segments(reply: str) -> Iterator[Segment]:
    """The segments of a reply the student is trained to write: its text, then ``<|end|>``."""
    yield False, reply
    yield True, END


def render_text(messages: Sequence[Mapping[str, Any]], reply: str | None = None) -> str:
    """The prompt (and ``reply``, when given) as the text the student reads, special tokens
    spelled out; ``decode(encode)`` of the same segments gives exactly this string."""
    segs = list(prompt_segments(messages))
    if reply is not None:
        segs += list(reply_segments(reply))
    return "".join(text for _, text in segs)
