"""What the server asks its model: :class:`ChatRequest`, the one internal request both endpoints
convert to, and the validation of a ``POST /v1/chat/completions`` body into it.

Validation follows the OpenAI API: the same required fields, types and ranges, and errors worded
and coded as it words and codes them (:mod:`agentsynth.sim.errors`), with ``param`` naming the
field. Fields the server does not use (``top_p``, ``stop``, ``user``, ``response_format`` …) are
accepted and ignored, so clients that send them work unchanged.

Messages are normalized for the model: ``developer`` becomes ``system``, the legacy ``function``
role a ``tool`` message, and content given as text parts one string. The model only reads text:
image, audio and file parts are refused with a 400.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import APIError, above_max, below_min, empty_array, invalid_type, invalid_value, missing, unsupported

__all__ = ["ChatRequest", "boolean", "chat_request", "function_def", "integer", "model_field", "number", "parse_json", "text_of",
           "tool_choice_none"]

Message = dict[str, Any]

MAX_N = 128
"""The largest ``n`` the server answers (OpenAI's own limit)."""

_CHAT_ROLES = ("system", "assistant", "user", "function", "tool", "developer")
_NON_TEXT_PARTS = ("image_url", "input_audio", "file", "input_image", "input_file")
_FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@dataclass(slots=True)
class ChatRequest:
    """A validated, normalized chat request: what the served model is called with.

    messages: chat messages with roles ``system``, ``user``, ``assistant`` or ``tool`` and text
        (or, for an assistant's tool calls, ``None``) content.
    tools: function tools in the chat shape (``{"type": "function", "function": {...}}``), or
        None (none offered, or ``tool_choice`` is ``"none"``).
    stream: answer as server-sent events; include_usage: end a chat stream with a usage chunk.
    """

    messages: list[Message]
    n: int = 1
    temperature: float = 1.0
    seed: int | None = None
    max_tokens: int | None = None
    tools: list[dict[str, Any]] | None = None
    stream: bool = False
    include_usage: bool = False


# ---- fields ------------------------------------------------------------------------------------

def parse_json(raw: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or a 400."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise APIError(400, "We could not parse the JSON body of your request. The server expects a JSON payload, "
                            "but what was sent was not valid JSON.") from None
    if not isinstance(body, dict):
        raise APIError(400, f"The request body must be a JSON object, got {type(body).__name__}.")
    return body


def required_string(obj: dict[str, Any], key: str, param: str, allowed: Sequence[str] | None = None) -> str:
    """``obj[key]``: present, a string and, with ``allowed``, one of them (``param`` names it in errors)."""
    value = obj.get(key)
    if value is None:
        raise missing(param)
    if not isinstance(value, str):
        raise invalid_type(param, "a string", value)
    if allowed is not None and value not in allowed:
        raise invalid_value(param, value, allowed)
    return value


def model_field(body: dict[str, Any]) -> str:
    """The requested model name (required, a string)."""
    return required_string(body, "model", "model")


def number(body: dict[str, Any], name: str, lo: float, hi: float) -> float | None:
    """An optional number in [lo, hi] (null counts as absent)."""
    v = body.get(name)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise invalid_type(name, "a number", v)
    if v < lo:
        raise below_min(name, v, lo)
    if v > hi:
        raise above_max(name, v, hi)
    return float(v)


def integer(body: dict[str, Any], name: str, lo: int, hi: int | None = None) -> int | None:
    """An optional integer in [lo, hi] (null counts as absent)."""
    v = body.get(name)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise invalid_type(name, "an integer", v)
    if v < lo:
        raise below_min(name, v, lo)
    if hi is not None and v > hi:
        raise above_max(name, v, hi)
    return v


def boolean(body: dict[str, Any], name: str) -> bool:
    """An optional boolean (absent or null: False)."""
    v = body.get(name)
    if v is None:
        return False
    if not isinstance(v, bool):
        raise invalid_type(name, "a boolean", v)
    return v


def objects(value: Any, param: str, expected: str = "an array") -> Iterator[tuple[str, dict[str, Any]]]:
    """Each element of the array ``value`` (at ``param``) with its own path, each checked to be an
    object as it is reached; ``value`` itself is checked at once (``expected`` names the type)."""
    if not isinstance(value, list):
        raise invalid_type(param, expected, value)
    return _each_object(value, param)


def _each_object(value: list[Any], param: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for i, item in enumerate(value):
        p = f"{param}[{i}]"
        if not isinstance(item, dict):
            raise invalid_type(p, "an object", item)
        yield p, item


def text_of(content: Any, param: str, text_types: tuple[str, ...]) -> str:
    """Content given as a string or an array of text parts (of the ``text_types``), as one string."""
    if isinstance(content, str):
        return content
    texts = []
    for p, part in objects(content, param, "one of a string or array of objects"):
        kind = part.get("type")
        if kind is None:
            raise missing(f"{p}.type")
        if kind in _NON_TEXT_PARTS:
            raise unsupported(f"{p}.type", f"the model reads text only, not {kind!r} parts")
        if kind not in text_types:
            raise invalid_value(f"{p}.type", kind, text_types)
        key = "refusal" if kind == "refusal" else "text"
        text = part.get(key)
        if not isinstance(text, str):
            raise missing(f"{p}.{key}") if text is None else invalid_type(f"{p}.{key}", "a string", text)
        texts.append(text)
    return "".join(texts)


def function_def(fn: Any, param: str) -> dict[str, Any]:
    """A function definition (``name``, optional ``description``, ``parameters``, ``strict``),
    checked; ``param`` is where it sits (e.g. ``tools[0].function``; ``tools[0]`` for the
    Responses API's flat tools)."""
    if not isinstance(fn, dict):
        raise invalid_type(param, "an object", fn)
    name = fn.get("name")
    if name is None:
        raise missing(f"{param}.name")
    if not isinstance(name, str):
        raise invalid_type(f"{param}.name", "a string", name)
    if not _FUNCTION_NAME.match(name):
        raise APIError(400, f"Invalid '{param}.name': string does not match pattern. Expected a string that matches "
                            "the pattern '^[a-zA-Z0-9_-]{1,64}$'.", param=f"{param}.name", code="invalid_value")
    out: dict[str, Any] = {"name": name}
    for key, expected, ok in (("description", "a string", str), ("parameters", "an object", dict),
                              ("strict", "a boolean", bool)):
        v = fn.get(key)
        if v is not None:
            if not isinstance(v, ok):
                raise invalid_type(f"{param}.{key}", expected, v)
            out[key] = v
    return out


def tool_choice_none(value: Any, param: str = "tool_choice") -> bool:
    """Check ``tool_choice`` (a mode string or an object naming a tool); True when it is
    ``"none"`` (no tools are offered to the model then)."""
    if value is None or isinstance(value, dict):
        return False
    if not isinstance(value, str):
        raise invalid_type(param, "one of a string or object", value)
    if value not in ("none", "auto", "required"):
        raise invalid_value(param, value, ("none", "auto", "required"))
    return value == "none"


# ---- the chat body -----------------------------------------------------------------------------

def chat_request(body: dict[str, Any]) -> ChatRequest:
    """Validate a chat completions body (already checked for ``model``) into a :class:`ChatRequest`."""
    raw = body.get("messages")
    if raw is None:
        raise missing("messages")
    if not isinstance(raw, list):
        raise invalid_type("messages", "an array", raw)
    if not raw:
        raise empty_array("messages")
    messages = [_message(m, f"messages[{i}]") for i, m in enumerate(raw)]
    stream = boolean(body, "stream")
    options = body.get("stream_options")
    include_usage = False
    if options is not None:
        if not stream:
            raise APIError(400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                           param="stream_options", code="invalid_value")
        if not isinstance(options, dict):
            raise invalid_type("stream_options", "an object", options)
        include_usage = boolean(options, "include_usage")
    tools = _chat_tools(body.get("tools"))
    if tool_choice_none(body.get("tool_choice")):
        tools = None
    temperature = number(body, "temperature", 0.0, 2.0)
    number(body, "top_p", 0.0, 1.0)
    max_tokens = integer(body, "max_completion_tokens", 1)
    if max_tokens is None:
        max_tokens = integer(body, "max_tokens", 1)
    return ChatRequest(messages=messages, n=integer(body, "n", 1, MAX_N) or 1,
                       temperature=1.0 if temperature is None else temperature, seed=integer(body, "seed", -2**63, 2**63 - 1),
                       max_tokens=max_tokens, tools=tools, stream=stream, include_usage=include_usage)


def _message(m: Any, p: str) -> Message:
    if not isinstance(m, dict):
        raise invalid_type(p, "an object", m)
    role = required_string(m, "role", f"{p}.role", _CHAT_ROLES)
    content = m.get("content")
    calls = _tool_calls(m.get("tool_calls"), f"{p}.tool_calls") if role == "assistant" else None
    if content is None and role != "assistant":
        raise missing(f"{p}.content")
    text = None if content is None else text_of(content, f"{p}.content", ("text", "refusal") if role == "assistant" else ("text",))
    out: Message = {"role": {"developer": "system", "function": "tool"}.get(role, role), "content": text}
    if calls:
        out["tool_calls"] = calls
    for key in ("name", "tool_call_id"):
        v = m.get(key)
        if v is not None and not isinstance(v, str):
            raise invalid_type(f"{p}.{key}", "a string", v)
    if role == "tool":
        if m.get("tool_call_id") is None:
            raise missing(f"{p}.tool_call_id")
        out["tool_call_id"] = m["tool_call_id"]
    elif role == "function":
        if m.get("name") is None:
            raise missing(f"{p}.name")
        out["tool_call_id"] = out["name"] = m["name"]
    elif m.get("name") is not None:
        out["name"] = m["name"]
    return out


def _tool_calls(calls: Any, p: str) -> list[dict[str, Any]] | None:
    if calls is None:
        return None
    out = []
    for q, c in objects(calls, p):
        for key in ("id", "function"):
            if c.get(key) is None:
                raise missing(f"{q}.{key}")
        if not isinstance(c["id"], str):
            raise invalid_type(f"{q}.id", "a string", c["id"])
        if c.get("type", "function") != "function":
            raise invalid_value(f"{q}.type", c.get("type"), ("function",))
        fn = c["function"]
        if not isinstance(fn, dict):
            raise invalid_type(f"{q}.function", "an object", fn)
        for key in ("name", "arguments"):
            if not isinstance(fn.get(key), str):
                raise missing(f"{q}.function.{key}") if fn.get(key) is None else invalid_type(
                    f"{q}.function.{key}", "a string", fn.get(key))
        out.append({"id": c["id"], "type": "function", "function": {"name": fn["name"], "arguments": fn["arguments"]}})
    return out


def _chat_tools(tools: Any) -> list[dict[str, Any]] | None:
    if tools is None:
        return None
    items = objects(tools, "tools")
    if not tools:
        raise empty_array("tools")
    out = []
    for p, t in items:
        kind = t.get("type")
        if kind is None:
            raise missing(f"{p}.type")
        if kind == "custom":
            raise unsupported(f"{p}.type", "only function tools are served")
        if kind != "function":
            raise invalid_value(f"{p}.type", kind, ("function", "custom"))
        if t.get("function") is None:
            raise missing(f"{p}.function")
        out.append({"type": "function", "function": function_def(t["function"], f"{p}.function")})
    return out
