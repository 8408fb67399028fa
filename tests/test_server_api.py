"""What clients send, against a real server on 127.0.0.1 driven by the official ``openai`` client:
chat completions streamed and not (content, tool calls, include_usage, n > 1) and the Responses API
streamed and not (text and function calls, the tools environment answering the calls). Errors:
tests/test_server_errors.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

import openai
import pytest

from agentsynth import registry
from agentsynth.sim import SimParams
from agentsynth.sim.process import running_server

pytestmark = pytest.mark.timeout(120)

PROMPT = "Compute the value of: 3 + 4 * 2\nShow your work if you like, then end with a line 'Answer: <integer>'."
ARITH = [{"role": "user", "content": PROMPT}]
SKILLED = SimParams.from_dict({"skill": {"tools": 1.0}})  # so a tool round trip ends in the right total


def _client(base_url: str, **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key="x", max_retries=0, **kw)


def _http(base_url: str, path: str, data: bytes | None = None, method: str | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(base_url.removesuffix("/v1") + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def _stats(base_url: str) -> dict[str, int]:
    return json.loads(_http(base_url, "/stats")[2])


@pytest.fixture(scope="module")
def server():
    with running_server(SKILLED) as url:
        yield url


@pytest.fixture()
def tools_task():
    """A task of the tools environment (prices only its tools know), its prompt and tools."""
    env = registry.make("tools", difficulty=1)
    prompt, info = env.reset(seed=3)
    return env, prompt, info["tools"]


# ---- chat completions, streamed ----------------------------------------------------------------

def test_chat_stream_is_the_completion_in_chunks(server):
    c = _client(server)
    whole = c.chat.completions.create(model="sim", messages=ARITH, seed=4)
    chunks = list(c.chat.completions.create(model="sim", messages=ARITH, seed=4, stream=True))
    assert {ch.object for ch in chunks} == {"chat.completion.chunk"} and len({ch.id for ch in chunks}) == 1
    assert all(ch.model == "sim" and ch.usage is None for ch in chunks)
    first, last = chunks[0].choices[0], chunks[-1].choices[0]
    assert first.delta.role == "assistant" and first.finish_reason is None
    assert last.finish_reason == whole.choices[0].finish_reason == "stop"
    assert [ch.choices[0].finish_reason for ch in chunks[:-1]] == [None] * (len(chunks) - 1)
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks)
    assert text == whole.choices[0].message.content and len(chunks) > 3  # in pieces, not one


def test_chat_stream_on_the_wire(server):
    body = json.dumps({"model": "sim", "messages": ARITH, "stream": True}).encode()
    status, headers, raw = _http(server, "/v1/chat/completions", body)
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    events = raw.decode().split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    assert all(e.startswith("data: {") for e in events[:-2])


def test_chat_stream_n2_with_usage(server):
    c = _client(server)
    whole = c.chat.completions.create(model="sim", messages=ARITH, n=2, seed=9, temperature=1.0)
    chunks = list(c.chat.completions.create(model="sim", messages=ARITH, n=2, seed=9, temperature=1.0, stream=True,
                                            stream_options={"include_usage": True}))
    *body, tail = chunks
    assert tail.choices == [] and tail.usage.model_dump() == whole.usage.model_dump() | {
        "completion_tokens_details": None, "prompt_tokens_details": None}
    assert all(ch.usage is None and len(ch.choices) == 1 for ch in body)
    texts, finish = defaultdict(str), {}
    for ch in body:
        choice = ch.choices[0]
        texts[choice.index] += choice.delta.content or ""
        if choice.finish_reason:
            finish[choice.index] = choice.finish_reason
    assert dict(texts) == {ch.index: ch.message.content for ch in whole.choices}
    assert finish == {0: "stop", 1: "stop"}


def test_chat_stream_tool_calls(server, tools_task):
    _, prompt, tools = tools_task
    c = _client(server)
    messages = [{"role": "user", "content": prompt}]
    whole = c.chat.completions.create(model="sim", messages=messages, tools=tools, seed=1)
    assert whole.choices[0].finish_reason == "tool_calls"
    expected = [(t.id, t.function.name, json.loads(t.function.arguments)) for t in whole.choices[0].message.tool_calls]
    assert {name for _, name, _ in expected} == {"price_lookup"} and len(expected) == 2

    chunks = list(c.chat.completions.create(model="sim", messages=messages, tools=tools, seed=1, stream=True))
    deltas = [d for ch in chunks for d in (ch.choices[0].delta.tool_calls or [])]
    calls: dict[int, dict[str, str]] = {}
    for d in deltas:
        if d.index not in calls:  # the first delta of a call carries its id and name, no arguments yet
            assert d.id and d.function.name and d.function.arguments == ""
            calls[d.index] = {"id": d.id, "name": d.function.name, "arguments": ""}
        else:
            assert d.id is None and d.function.name is None
            calls[d.index]["arguments"] += d.function.arguments
    assert [(v["id"], v["name"], json.loads(v["arguments"])) for _, v in sorted(calls.items())] == expected
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    # the SDK's own accumulator agrees
    with c.chat.completions.stream(model="sim", messages=messages, tools=tools, seed=1) as stream:
        final = stream.get_final_completion()
    assert [(t.id, t.function.name, t.function.arguments) for t in final.choices[0].message.tool_calls] == [
        (t.id, t.function.name, t.function.arguments) for t in whole.choices[0].message.tool_calls]


# ---- the Responses API ---------------------------------------------------------------------------

def test_responses_text_is_the_chat_reply(server):
    c = _client(server)
    r = c.responses.create(model="sim", input=PROMPT, instructions="Be brief.", temperature=1.0, extra_body={"seed": 5})
    chat = c.chat.completions.create(model="sim", seed=5, temperature=1.0,
                                     messages=[{"role": "system", "content": "Be brief."}, *ARITH])
    assert r.object == "response" and r.id.startswith("resp_") and r.status == "completed" and r.model == "sim"
    assert r.instructions == "Be brief." and r.incomplete_details is None and r.error is None
    [item] = r.output
    assert item.type == "message" and item.role == "assistant" and item.status == "completed"
    assert [p.type for p in item.content] == ["output_text"]
    assert r.output_text == item.content[0].text == chat.choices[0].message.content  # one code path
    u = r.usage
    assert (u.input_tokens, u.output_tokens) == (chat.usage.prompt_tokens, chat.usage.completion_tokens)
    assert u.total_tokens == u.input_tokens + u.output_tokens
    raw = json.loads(_http(server, "/v1/responses", json.dumps({"model": "sim", "input": PROMPT}).encode())[2])
    assert raw["output_text"] == raw["output"][0]["content"][0]["text"]  # the convenience field is on the wire too


def test_responses_message_items(server):
    c = _client(server)
    items = [
        {"role": "developer", "content": "Be brief."},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": PROMPT}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Answer: 14"}]},
        {"role": "user", "content": "Incorrect. Try again."},
    ]
    r = c.responses.create(model="sim", input=items, temperature=0)
    chat = c.chat.completions.create(model="sim", temperature=0, messages=[
        {"role": "system", "content": "Be brief."}, *ARITH, {"role": "assistant", "content": "Answer: 14"},
        {"role": "user", "content": "Incorrect. Try again."}])
    assert r.output_text == chat.choices[0].message.content


def test_responses_function_calls_and_their_outputs(server, tools_task):
    env, prompt, chat_tools = tools_task
    tools = [{"type": "function", **t["function"]} for t in chat_tools]  # the Responses API's flat shape
    c = _client(server)
    history: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
    r = c.responses.create(model="sim", input=history, tools=tools)
    calls = [o for o in r.output if o.type == "function_call"]
    assert calls and len(calls) == len(r.output) and r.output_text == "" and r.status == "completed"
    assert [o.name for o in calls] == ["price_lookup", "price_lookup"]
    assert len({o.id for o in calls}) == len({o.call_id for o in calls}) == 2
    # the environment answers the calls; its results go back as function_call_output items
    action = {"role": "assistant", "content": "", "tool_calls": [
        {"id": o.call_id, "type": "function", "function": {"name": o.name, "arguments": o.arguments}} for o in calls]}
    _, _, _, _, info = env.step(action)
    history += [o.model_dump(include={"type", "call_id", "name", "arguments"}) for o in calls]
    history += [{"type": "function_call_output", "call_id": m["tool_call_id"], "output": m["content"]}
                for m in info["tool_messages"]]
    final = c.responses.create(model="sim", input=history, tools=tools, temperature=0)
    assert [o.type for o in final.output] == ["message"]
    assert env.verify(env.task, final.output_text), final.output_text  # it used the looked-up prices


def test_responses_stream_text(server):
    c = _client(server)
    whole = c.responses.create(model="sim", input=PROMPT, extra_body={"seed": 2})
    events = list(c.responses.create(model="sim", input=PROMPT, stream=True, extra_body={"seed": 2}))
    types = [e.type for e in events]
    n = types.count("response.output_text.delta")
    assert n >= 2 and types == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        *["response.output_text.delta"] * n,
        "response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].response.status == "in_progress" and events[0].response.output == []
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    done = events[-1].response
    assert text == events[-3].part.text == events[-4].text == done.output_text == whole.output_text
    assert done.usage.model_dump() == whole.usage.model_dump() and done.id == events[0].response.id
    with c.responses.stream(model="sim", input=PROMPT, extra_body={"seed": 2}) as stream:  # the SDK's helper
        assert stream.get_final_response().output_text == whole.output_text


def test_responses_stream_function_calls(server, tools_task):
    _, prompt, chat_tools = tools_task
    tools = [{"type": "function", **t["function"]} for t in chat_tools]
    c = _client(server)
    whole = c.responses.create(model="sim", input=prompt, tools=tools)
    events = list(c.responses.create(model="sim", input=prompt, tools=tools, stream=True))
    per_item: dict[int, list[str]] = defaultdict(list)
    args: dict[str, str] = defaultdict(str)
    for e in events:
        if hasattr(e, "output_index"):
            per_item[e.output_index].append(e.type)
        if e.type == "response.output_item.added":
            assert e.item.type == "function_call" and e.item.arguments == "" and e.item.status == "in_progress"
        if e.type == "response.function_call_arguments.delta":
            args[e.item_id] += e.delta
        if e.type == "response.function_call_arguments.done":
            assert e.arguments == args[e.item_id]
    assert len(per_item) == 2
    for types in per_item.values():
        assert types[0] == "response.output_item.added" and types[-2:] == [
            "response.function_call_arguments.done", "response.output_item.done"]
        assert set(types[1:-2]) == {"response.function_call_arguments.delta"}
    final = events[-1].response
    assert events[-1].type == "response.completed"
    assert [o.model_dump(exclude={"id"}) for o in final.output] == [o.model_dump(exclude={"id"}) for o in whole.output]
    assert [args[o.id] for o in final.output] == [o.arguments for o in whole.output]


def test_stats_count_each_endpoint(server):
    before = _stats(server)
    c = _client(server)
    c.responses.create(model="sim", input=PROMPT)
    list(c.responses.create(model="sim", input=PROMPT, stream=True))
    list(c.chat.completions.create(model="sim", messages=ARITH, stream=True))
    after = _stats(server)
    delta = {k: after[k] - before[k] for k in ("requests", "chat", "responses", "stream", "ok")}
    assert delta == {"requests": 3, "chat": 1, "responses": 2, "stream": 2, "ok": 3}


def test_the_readme_streaming_example_runs(server):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    [code] = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if b.startswith("# stream from agentsynth serve")]
    assert "http://127.0.0.1:8000/v1" in code
    r = subprocess.run([sys.executable, "-c", code.replace("http://127.0.0.1:8000/v1", server)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    streamed, rest = r.stdout.split("\ntokens: ")
    tokens, responded = rest.split("\n", 1)
    assert streamed.strip() and int(tokens) > 0  # the streamed text, then the usage chunk
    text, total = responded.strip().rsplit(" ", 1)
    assert text.strip() and int(total) > 0  # the Responses API's output_text and usage
