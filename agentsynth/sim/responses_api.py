"""The Responses API's text and function-call subset (``POST /v1/responses``): a body converted to
the same :class:`~agentsynth.sim.requests.ChatRequest` the chat endpoint builds, and the model's
:class:`~agentsynth.sim.replies.Reply` sent back as a ``response`` object or its streaming events.

Request: ``model``, ``input`` (a string, or a list of items: messages with roles ``user``,
``assistant``, ``system``, ``developer`` and content as a string or ``input_text`` /
``output_text`` parts; ``function_call`` and ``function_call_output`` items; ``reasoning`` items
are skipped), ``instructions`` (a system message first), ``tools`` (flat function tools),
``tool_choice``, ``temperature``, ``top_p``, ``max_output_tokens``, ``seed``, ``stream``. Server-side
state (``previous_response_id``, ``conversation``, ``item_reference`` items, stored ``prompt``)
and non-function tools are refused with a 400; other fields are accepted and ignored.

Reply: ``output`` holds a ``message`` item with one ``output_text`` part, or ``function_call``
items (preceded by a message if the model also wrote text); ``output_text`` joins the text;
``usage`` counts ``input_tokens``, ``output_tokens``, ``total_tokens``; ``status`` is
``completed``, or ``incomplete`` (``incomplete_details.reason = "max_output_tokens"``) when the
reply was cut. A stream sends ``response.created``, ``response.in_progress``, per item
``response.output_item.added``, for text ``response.content_part.added``,
``response.output_text.delta`` …, ``response.output_text.done``, ``response.content_part.done``,
for a call ``response.function_call_arguments.delta`` …, ``response.function_call_arguments.done``,
then ``response.output_item.done``, and last ``response.completed`` (or ``response.incomplete``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from .errors import empty_array, invalid_type, missing, unsupported
from .replies import Reply, pieces, sse
from .requests import (ChatRequest, Message, boolean, function_def, integer, number, objects, required_string, text_of,
                       tool_choice_none)

__all__ = ["MALFORMED_RESPONSE", "MALFORMED_RESPONSE_STREAM", "response_events", "response_object", "responses_request"]

MALFORMED_RESPONSE = b'{"object": "response", "output": ['
"""The body of a malformed-reply fault on the Responses endpoint (truncated JSON)."""
MALFORMED_RESPONSE_STREAM = b'event: response.created\ndata: {"type": "response.created", "response": {\n\n'
"""The same fault on a streamed request: one truncated event, then the stream ends."""

_ROLES = ("user", "assistant", "system", "developer")
_STATEFUL = {"previous_response_id": "it keeps no responses; send the whole conversation as 'input'",
             "conversation": "it keeps no conversations; send the whole conversation as 'input'",
             "prompt": "it keeps no stored prompts"}


def responses_request(body: dict[str, Any]) -> tuple[ChatRequest, dict[str, Any]]:
    """Validate a Responses body (already checked for ``model``): the chat request to run and the
    request fields the response object repeats."""
    for name, why in _STATEFUL.items():
        if body.get(name) is not None:
            raise unsupported(name, why)
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise invalid_type("instructions", "a string", instructions)
    messages: list[Message] = [{"role": "system", "content": instructions}] if instructions else []
    raw = body.get("input")
    if raw is None:
        raise missing("input")
    if isinstance(raw, str):
        messages.append({"role": "user", "content": raw})
    elif isinstance(raw, list):
        if not raw:
            raise empty_array("input")
        for i, item in enumerate(raw):
            _item(item, f"input[{i}]", messages)
    else:
        raise invalid_type("input", "one of a string or array of input items", raw)
    tools = _tools(body.get("tools"))
    tool_choice = body.get("tool_choice")
    offered = None if tool_choice_none(tool_choice) or not tools else [
        {"type": "function", "function": {k: v for k, v in t.items() if k != "type" and v is not None}} for t in tools]
    temperature, top_p = number(body, "temperature", 0.0, 2.0), number(body, "top_p", 0.0, 1.0)
    max_output_tokens = integer(body, "max_output_tokens", 16)
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise invalid_type("metadata", "an object", metadata)
    parallel = body.get("parallel_tool_calls")
    req = ChatRequest(messages=messages, temperature=1.0 if temperature is None else temperature,
                      seed=integer(body, "seed", -2**63, 2**63 - 1), max_tokens=max_output_tokens, tools=offered,
                      stream=boolean(body, "stream"))
    echo = {"instructions": instructions, "max_output_tokens": max_output_tokens, "tools": tools,
            "tool_choice": tool_choice if tool_choice is not None else "auto", "temperature": req.temperature,
            "top_p": 1.0 if top_p is None else top_p, "parallel_tool_calls": True if parallel is None else boolean(body, "parallel_tool_calls"),
            "metadata": metadata or {}}
    return req, echo


def _item(item: Any, p: str, out: list[Message]) -> None:
    """Append input item ``item`` (at ``p``) to ``out`` as chat messages; consecutive function calls
    join the assistant message before them, as one turn's tool calls."""
    if not isinstance(item, dict):
        raise invalid_type(p, "an object", item)
    kind = item.get("type", "message" if "role" in item else None)
    if kind is None:
        raise missing(f"{p}.type")
    if kind == "message":
        role = required_string(item, "role", f"{p}.role", _ROLES)
        if item.get("content") is None:
            raise missing(f"{p}.content")
        kinds = ("output_text", "input_text", "refusal") if role == "assistant" else ("input_text",)
        out.append({"role": "system" if role == "developer" else role,
                    "content": text_of(item["content"], f"{p}.content", kinds)})
    elif kind == "function_call":
        fields = [_string(item, key, p) for key in ("call_id", "name", "arguments")]
        call = {"id": fields[0], "type": "function", "function": {"name": fields[1], "arguments": fields[2]}}
        if out and out[-1]["role"] == "assistant":
            out[-1].setdefault("tool_calls", []).append(call)
        else:
            out.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif kind == "function_call_output":
        call_id = _string(item, "call_id", p)
        output = item.get("output")
        if output is None:
            raise missing(f"{p}.output")
        out.append({"role": "tool", "tool_call_id": call_id, "content": text_of(output, f"{p}.output", ("input_text",))})
    elif kind == "item_reference":
        raise unsupported(f"{p}.type", "it keeps no items; send them in full")
    elif kind != "reasoning":  # a reasoning item replayed by the client: nothing the model reads
        raise unsupported(f"{p}.type", f"{kind!r} items are not served (message, function_call, function_call_output)")


def _string(item: dict[str, Any], key: str, p: str) -> str:
    v = item.get(key)
    if v is None:
        raise missing(f"{p}.{key}")
    if not isinstance(v, str):
        raise invalid_type(f"{p}.{key}", "a string", v)
    return v


def _tools(tools: Any) -> list[dict[str, Any]]:
    """The flat function tools (``{"type": "function", "name", "parameters", …}``), checked."""
    if tools is None:
        return []
    out = []
    for p, t in objects(tools, "tools"):
        kind = t.get("type")
        if kind is None:
            raise missing(f"{p}.type")
        if kind != "function":
            raise unsupported(f"{p}.type", f"only function tools are served, not {kind!r}")
        fn = function_def(t, p)
        out.append({"type": "function", "name": fn["name"], "description": fn.get("description"),
                    "parameters": fn.get("parameters"), "strict": fn.get("strict")})
    return out


# ---- the reply -------------------------------------------------------------------------------

def _output(reply: Reply) -> list[dict[str, Any]]:
    choice = reply.choices[0]
    content, calls = choice.message.get("content"), choice.message.get("tool_calls") or []
    suffix = reply.id.removeprefix("resp_")
    items: list[dict[str, Any]] = []
    if content or not calls:
        items.append({"type": "message", "id": f"msg_{suffix}", "status": _status(reply), "role": "assistant",
                      "content": [{"type": "output_text", "text": content or "", "annotations": [], "logprobs": []}]})
    for k, call in enumerate(calls):
        items.append({"type": "function_call", "id": f"fc_{suffix}_{k}", "call_id": call["id"],
                      "name": call["function"]["name"], "arguments": call["function"]["arguments"], "status": "completed"})
    return items


def _status(reply: Reply) -> str:
    return "incomplete" if reply.choices[0].finish_reason == "length" else "completed"


def response_object(reply: Reply, echo: dict[str, Any], *, done: bool = True) -> dict[str, Any]:
    """The ``response`` object for ``reply``; ``done=False``: as announced at the start of a
    stream (``in_progress``, no output, no usage)."""
    output = _output(reply) if done else []
    status = _status(reply) if done else "in_progress"
    return {
        "id": reply.id, "object": "response", "created_at": reply.created, "status": status,
        "completed_at": reply.created if done else None, "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "model": reply.model, "output": output,
        "output_text": "".join(part["text"] for item in output if item["type"] == "message" for part in item["content"]),
        "usage": {"input_tokens": reply.prompt_tokens, "input_tokens_details": {"cached_tokens": 0},
                  "output_tokens": reply.completion_tokens, "output_tokens_details": {"reasoning_tokens": 0},
                  "total_tokens": reply.prompt_tokens + reply.completion_tokens} if done else None,
        "previous_response_id": None, "reasoning": {"effort": None, "summary": None}, "store": False,
        "text": {"format": {"type": "text"}}, "truncation": "disabled", "background": False, "user": None,
        **echo,
    }


def response_events(reply: Reply, echo: dict[str, Any]) -> Iterator[bytes]:
    """The Responses streaming events for ``reply``, numbered by ``sequence_number``."""
    seq = itertools.count()

    def event(type_: str, **fields: Any) -> bytes:
        return sse({"type": type_, "sequence_number": next(seq), **fields}, event=type_)

    start = response_object(reply, echo, done=False)
    yield event("response.created", response=start)
    yield event("response.in_progress", response=start)
    for index, item in enumerate(_output(reply)):
        where = {"item_id": item["id"], "output_index": index}
        if item["type"] == "message":
            part = item["content"][0]
            yield event("response.output_item.added", output_index=index, item={**item, "status": "in_progress", "content": []})
            yield event("response.content_part.added", **where, content_index=0, part={**part, "text": ""})
            for piece in pieces(part["text"]):
                yield event("response.output_text.delta", **where, content_index=0, delta=piece, logprobs=[])
            yield event("response.output_text.done", **where, content_index=0, text=part["text"], logprobs=[])
            yield event("response.content_part.done", **where, content_index=0, part=part)
        else:
            yield event("response.output_item.added", output_index=index, item={**item, "arguments": "", "status": "in_progress"})
            for piece in pieces(item["arguments"]):
                yield event("response.function_call_arguments.delta", **where, delta=piece)
            yield event("response.function_call_arguments.done", **where, name=item["name"], arguments=item["arguments"])
        yield event("response.output_item.done", output_index=index, item=item)
    final = response_object(reply, echo)
    yield event(f"response.{final['status']}", response=final)
