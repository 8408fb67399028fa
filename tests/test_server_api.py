"""What clients send, against a real server on 127.0.0.1 driven by the official ``openai`` client:
chat completions streamed and not (content, tool calls, include_usage, n > 1), the Responses API
streamed and not (text and function calls, the tools environment answering the calls), and
errors in OpenAI's JSON shape with the right status (validation, unknown model, route, method)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

import openai
import pytest
from aiohttp import web as aiohttp_web

from agentsynth import registry
from agentsynth.sim import SimParams
from agentsynth.sim.process import running_server
from agentsynth.models.base import ModelError
from agentsynth.sim.server import Faults, create_app

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


# ---- errors --------------------------------------------------------------------------------------

CHAT, RESP = "/v1/chat/completions", "/v1/responses"
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
IMAGE = {"type": "image_url", "image_url": {"url": "http://127.0.0.1/x.png"}}


def chat(**kw: Any) -> dict[str, Any]:
    return {"model": "sim", "messages": ARITH, **kw}


def resp(**kw: Any) -> dict[str, Any]:
    return {"model": "sim", "input": PROMPT, **kw}


INVALID = [  # (route, body, param, code)
    (CHAT, {"messages": ARITH}, "model", "missing_required_parameter"),
    (CHAT, {"model": 7, "messages": ARITH}, "model", "invalid_type"),
    (CHAT, {"model": "sim"}, "messages", "missing_required_parameter"),
    (CHAT, chat(messages=[]), "messages", "empty_array"),
    (CHAT, chat(messages=[{"role": "wizard", "content": "hi"}]), "messages[0].role", "invalid_value"),
    (CHAT, chat(messages=[{"role": "user", "content": 5}]), "messages[0].content", "invalid_type"),
    (CHAT, chat(messages=[{"role": "user"}]), "messages[0].content", "missing_required_parameter"),
    (CHAT, chat(messages=[{"role": "user", "content": [{"type": "text", "text": 1}]}]), "messages[0].content[0].text", "invalid_type"),
    (CHAT, chat(messages=[{"role": "user", "content": [IMAGE]}]), "messages[0].content[0].type", "unsupported_parameter"),
    (CHAT, chat(messages=[*ARITH, {"role": "tool", "content": "12"}]), "messages[1].tool_call_id", "missing_required_parameter"),
    (CHAT, chat(messages=[{"role": "assistant", "content": None, "tool_calls": [{"id": "c"}]}]),
     "messages[0].tool_calls[0].function", "missing_required_parameter"),
    (CHAT, chat(tools=[1, 2]), "tools[0]", "invalid_type"),
    (CHAT, chat(tools="calculator"), "tools", "invalid_type"),
    (CHAT, chat(tools=[{"type": "function"}]), "tools[0].function", "missing_required_parameter"),
    (CHAT, chat(tools=[{"type": "retrieval"}]), "tools[0].type", "invalid_value"),
    (CHAT, chat(tools=[{"type": "function", "function": {"name": "no spaces allowed"}}]), "tools[0].function.name", "invalid_value"),
    (CHAT, chat(tools=[TOOL], tool_choice="sometimes"), "tool_choice", "invalid_value"),
    (CHAT, chat(n=0), "n", "integer_below_min_value"),
    (CHAT, chat(n=129), "n", "integer_above_max_value"),
    (CHAT, chat(n=1.5), "n", "invalid_type"),
    (CHAT, chat(temperature=2.5), "temperature", "decimal_above_max_value"),
    (CHAT, chat(temperature=-1), "temperature", "integer_below_min_value"),
    (CHAT, chat(temperature="hot"), "temperature", "invalid_type"),
    (CHAT, chat(max_tokens=0), "max_tokens", "integer_below_min_value"),
    (CHAT, chat(seed="7"), "seed", "invalid_type"),
    (CHAT, chat(stream="yes"), "stream", "invalid_type"),
    (CHAT, chat(stream_options={"include_usage": True}), "stream_options", "invalid_value"),
    (RESP, {"input": PROMPT}, "model", "missing_required_parameter"),
    (RESP, {"model": "sim"}, "input", "missing_required_parameter"),
    (RESP, resp(input=5), "input", "invalid_type"),
    (RESP, resp(input=[{"role": "wizard", "content": "hi"}]), "input[0].role", "invalid_value"),
    (RESP, resp(input=[{"role": "user", "content": 5}]), "input[0].content", "invalid_type"),
    (RESP, resp(input=[{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]),
     "input[0].content[0].type", "unsupported_parameter"),
    (RESP, resp(input=[{"type": "function_call_output", "output": "12"}]), "input[0].call_id", "missing_required_parameter"),
    (RESP, resp(input=[{"type": "item_reference", "id": "msg_1"}]), "input[0].type", "unsupported_parameter"),
    (RESP, resp(instructions=["be brief"]), "instructions", "invalid_type"),
    (RESP, resp(tools=[1]), "tools[0]", "invalid_type"),
    (RESP, resp(tools=[{"type": "web_search"}]), "tools[0].type", "unsupported_parameter"),
    (RESP, resp(tools=[{"type": "function"}]), "tools[0].name", "missing_required_parameter"),
    (RESP, resp(temperature=3), "temperature", "integer_above_max_value"),
    (RESP, resp(max_output_tokens=1), "max_output_tokens", "integer_below_min_value"),
    (RESP, resp(previous_response_id="resp_1"), "previous_response_id", "unsupported_parameter"),
]


@pytest.mark.parametrize("route, body, param, code", INVALID, ids=[f"{r[1:]}-{p}-{c}" for r, _, p, c in INVALID])
def test_validation_errors_name_the_field(server, route, body, param, code):
    status, headers, raw = _http(server, route, json.dumps(body).encode())
    assert status == 400 and headers["Content-Type"].startswith("application/json")
    error = json.loads(raw)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code), error["message"]
    assert param.split("[")[0] in error["message"] or error["code"] == "invalid_value"


@pytest.mark.parametrize("route", [CHAT, RESP])
def test_malformed_json_is_400(server, route):
    status, _, raw = _http(server, route, b'{"model": "sim", ')
    assert status == 400 and json.loads(raw)["error"]["type"] == "invalid_request_error"


def test_the_sdk_raises_bad_request_with_the_param(server):
    c = _client(server)
    with pytest.raises(openai.BadRequestError) as ei:
        c.chat.completions.create(model="sim", messages=[{"role": "user", "content": 5}])
    assert ei.value.param == "messages[0].content" and ei.value.code == "invalid_type"
    with pytest.raises(openai.BadRequestError) as ei:
        c.responses.create(model="sim", input=PROMPT, tools=[{"type": "web_search"}])
    assert ei.value.param == "tools[0].type"


def test_unknown_model_is_404_naming_the_served_one():
    with running_server(model_name="sim-ft") as url:
        c = _client(url)
        for call in (lambda: c.chat.completions.create(model="sim", messages=ARITH),
                     lambda: c.responses.create(model="sim", input=PROMPT),
                     lambda: list(c.chat.completions.create(model="gpt-4o", messages=ARITH, stream=True)),
                     lambda: c.models.retrieve("sim")):
            with pytest.raises(openai.NotFoundError) as ei:
                call()
            assert ei.value.code == "model_not_found" and "'sim-ft'" in ei.value.message
        assert c.models.retrieve("sim-ft").id == "sim-ft"
        assert c.chat.completions.create(model="sim-ft", messages=ARITH).model == "sim-ft"
        assert c.responses.create(model="sim-ft", input=PROMPT).model == "sim-ft"
        assert _stats(url)["404"] == 3  # the model requests (not the /v1/models lookup)


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/v1/nothing", 404),
    ("POST", "/v1/completions", 404),
    ("POST", "/", 404),
    ("GET", "/v1/chat/completions", 405),
    ("PUT", "/v1/responses", 405),
    ("DELETE", "/v1/models", 405),
])
def test_routes_and_methods(server, method, path, status):
    got, headers, raw = _http(server, path, b"{}" if method in ("POST", "PUT") else None, method=method)
    assert got == status and headers["Content-Type"].startswith("application/json")
    error = json.loads(raw)["error"]
    assert set(error) == {"message", "type", "param", "code"} and path in error["message"]
    if status == 405:
        assert headers["Allow"].split(", ")[0] == ("POST" if path != "/v1/models" else "GET")


class _Failing:
    """A served model that fails: with a ModelError (its own 400) or with a bug (a 500)."""

    name = "failing"

    async def choices(self, messages: Any, **kw: Any) -> Any:
        if "model error" in messages[-1]["content"]:
            raise ModelError("the prompt is too long for this model")
        raise RuntimeError("a bug in the model")


@contextlib.contextmanager
def _serving(app: Any):
    """``app`` on a free port of 127.0.0.1, in a thread of this process; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    loop = asyncio.new_event_loop()
    runner = aiohttp_web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(aiohttp_web.SockSite(runner, sock).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.run_until_complete(runner.cleanup())
        loop.close()


def test_a_failing_model_answers_in_the_error_shape():
    with _serving(create_app(model=_Failing(), model_name="failing")) as url:
        c = _client(url)
        with pytest.raises(openai.BadRequestError) as ei:
            c.chat.completions.create(model="failing", messages=[{"role": "user", "content": "model error"}])
        assert "too long" in ei.value.message
        with pytest.raises(openai.InternalServerError) as ei:
            c.responses.create(model="failing", input="anything")
        assert ei.value.body["type"] == "server_error" and "boom" not in ei.value.message
        assert c.models.list().data[0].id == "failing"  # and it goes on serving


# ---- faults on both endpoints --------------------------------------------------------------------

@pytest.mark.parametrize("endpoint", ["chat", "responses"])
def test_faults_on_each_endpoint(endpoint):
    def call(url: str, stream: bool = False, **kw: Any) -> Any:
        c = _client(url, **kw)
        if endpoint == "chat":
            out = c.chat.completions.create(model="sim", messages=ARITH, stream=stream)
        else:
            out = c.responses.create(model="sim", input=PROMPT, stream=stream)
        return list(out) if stream else out

    with running_server(faults=Faults(rate_429=1.0, retry_after_s=2.5)) as url:
        with pytest.raises(openai.RateLimitError) as ei:
            call(url)
        assert ei.value.code == "rate_limit_exceeded" and ei.value.response.headers["retry-after"] == "2.5"
    with running_server(faults=Faults(rate_500=1.0)) as url:
        with pytest.raises(openai.InternalServerError):
            call(url, stream=True)
    with running_server(faults=Faults(rate_malformed=1.0)) as url:
        with pytest.raises(json.JSONDecodeError):  # the SDK lets the parse error through, as for chat (test_server)
            call(url)
        with pytest.raises(json.JSONDecodeError):  # a streamed request gets one truncated event
            call(url, stream=True)
        assert _stats(url)["malformed"] == 2
    with running_server(faults=Faults(rate_hang=1.0, hang_s=5)) as url:
        with pytest.raises(openai.APITimeoutError):
            call(url, timeout=0.5)
        assert _stats(url)["hang"] == 1


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
