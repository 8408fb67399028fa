"""The server's errors as clients see them, against a real server on 127.0.0.1: OpenAI's JSON
error shape with the right status for every validation case (``param`` and ``code`` set), malformed
JSON, an unknown model (404 ``model_not_found`` naming the served one), unknown routes and wrong
methods, a failing model, and the injected faults on both endpoints."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from typing import Any

import openai
import pytest
from aiohttp import web as aiohttp_web
from test_server_api import ARITH, PROMPT, _client, _http, _stats

from agentsynth.models.base import ModelError
from agentsynth.sim.process import running_server
from agentsynth.sim.server import Faults, create_app

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def server():
    with running_server() as url:
        yield url


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
