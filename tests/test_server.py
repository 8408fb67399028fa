"""The sim's OpenAI-compatible server, driven by the real ``openai`` client against a real child process."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from random import Random

import openai
import pytest

from agentsynth.sim.process import running_server
from agentsynth.sim.server import Faults, create_app

pytestmark = pytest.mark.timeout(120)

ARITH = [{
    "role": "user",
    "content": "Compute the value of: 3 + 4 * 2\nShow your work if you like, then end with a line 'Answer: <integer>'.",
}]


def _client(base_url: str, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key="x", max_retries=0, **kw)


def _stats(base_url: str) -> dict:
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/stats", timeout=5) as r:
        return json.loads(r.read())


def _post(base_url: str, data: bytes) -> tuple[int, dict]:
    req = urllib.request.Request(base_url + "/chat/completions", data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture(scope="module")
def server():
    with running_server() as url:
        yield url


# ---- normal replies ------------------------------------------------------------------------------

def test_models_lists_sim(server):
    assert server.startswith("http://127.0.0.1:") and server.endswith("/v1")
    assert [m.id for m in _client(server).models.list()] == ["sim"]


def test_chat_completion(server):
    c = _client(server)
    r = c.chat.completions.create(model="sim", messages=ARITH, seed=1)
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-") and isinstance(r.created, int)
    assert r.model == "sim"
    assert len(r.choices) == 1
    ch = r.choices[0]
    assert ch.index == 0 and ch.message.role == "assistant" and ch.message.content
    assert ch.finish_reason == "stop"
    u = r.usage
    assert u.prompt_tokens > 0 and u.completion_tokens > 0 and u.total_tokens == u.prompt_tokens + u.completion_tokens

    r3 = c.chat.completions.create(model="sim", messages=ARITH, n=3, seed=1)
    assert [ch.index for ch in r3.choices] == [0, 1, 2]
    assert all(ch.message.content for ch in r3.choices)
    assert r3.usage.completion_tokens == sum(len(ch.message.content) // 4 + 1 for ch in r3.choices)


def test_deterministic_given_seed(server):
    c = _client(server)
    a = c.chat.completions.create(model="sim", messages=ARITH, n=4, seed=7, temperature=1.0)
    b = c.chat.completions.create(model="sim", messages=ARITH, n=4, seed=7, temperature=1.0)
    assert [x.message.content for x in a.choices] == [x.message.content for x in b.choices]
    assert a.id != b.id  # a fresh id per completion


def test_temperature_zero_samples_agree(server):
    r = _client(server).chat.completions.create(model="sim", messages=ARITH, n=5, temperature=0, seed=3)
    contents = {ch.message.content for ch in r.choices}
    assert len(r.choices) == 5 and len(contents) == 1


def test_max_completion_tokens_truncates(server):
    r = _client(server).chat.completions.create(model="sim", messages=ARITH, seed=1, temperature=0, max_completion_tokens=1)
    assert r.choices[0].finish_reason == "length"
    assert len(r.choices[0].message.content) <= 3


def test_tools_are_accepted(server):
    tools = [{
        "type": "function",
        "function": {
            "name": "calculator",
            "description": "Evaluate an integer expression.",
            "parameters": {"type": "object", "properties": {"expr": {"type": "string"}}, "required": ["expr"]},
        },
    }]
    raw = _client(server).chat.completions.with_raw_response.create(model="sim", messages=ARITH, tools=tools, seed=2)
    assert raw.status_code == 200
    assert raw.parse().choices[0].message.content


# ---- bad bodies ---------------------------------------------------------------------------------

@pytest.mark.parametrize("data, param", [
    (b"not json", None),
    (b"[1, 2]", None),
    (b"{}", "model"),
    (json.dumps({"model": "sim", "messages": []}).encode(), "messages"),
    (json.dumps({"model": "sim", "messages": "hi"}).encode(), "messages"),
    (json.dumps({"model": "sim", "messages": ["hi"]}).encode(), "messages[0]"),
    (json.dumps({"model": "sim", "messages": [{"content": "no role"}]}).encode(), "messages[0].role"),
    (json.dumps({"model": "sim", "messages": ARITH, "n": 0}).encode(), "n"),
    (json.dumps({"model": "sim", "messages": ARITH, "temperature": "hot"}).encode(), "temperature"),
])
def test_bad_bodies_are_400(server, data, param):
    status, body = _post(server, data)
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["param"] == param  # every validation error names its field (tests/test_server_api.py: more)
    assert body["error"]["message"]


def test_bad_bodies_counted(server):
    before = _stats(server)
    _post(server, b"{}")
    after = _stats(server)
    assert after["requests"] == before["requests"] + 1 and after["400"] == before["400"] + 1


# ---- faults -------------------------------------------------------------------------------------

def test_fault_429():
    with running_server(faults=Faults(rate_429=1.0, retry_after_s=2.5)) as url:
        with pytest.raises(openai.RateLimitError) as ei:
            _client(url).chat.completions.create(model="sim", messages=ARITH)
        assert ei.value.status_code == 429
        assert ei.value.response.headers["retry-after"] == "2.5"
        assert ei.value.code == "rate_limit_exceeded"
        s = _stats(url)
        assert s["requests"] == 1 and s["429"] == 1 and s["ok"] == 0


def test_fault_500():
    with running_server(faults=Faults(rate_500=1.0)) as url:
        with pytest.raises(openai.InternalServerError) as ei:
            _client(url).chat.completions.create(model="sim", messages=ARITH)
        assert ei.value.status_code == 500
        s = _stats(url)
        assert s["requests"] == 1 and s["500"] == 1


def test_fault_malformed():
    with running_server(faults=Faults(rate_malformed=1.0)) as url:
        with pytest.raises(Exception) as ei:
            _client(url).chat.completions.create(model="sim", messages=ARITH)
        # openai 3.x does not wrap this: the bare json.JSONDecodeError (a ValueError) escapes,
        # not an openai.APIError — callers must catch it themselves.
        assert isinstance(ei.value, json.JSONDecodeError), type(ei.value)
        assert not isinstance(ei.value, openai.APIError)
        s = _stats(url)
        assert s["requests"] == 1 and s["malformed"] == 1


def test_fault_hang_times_out():
    with running_server(faults=Faults(rate_hang=1.0, hang_s=5)) as url:
        t = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            _client(url, timeout=0.5).chat.completions.create(model="sim", messages=ARITH)
        assert time.monotonic() - t < 3
        s = _stats(url)
        assert s["requests"] == 1 and s["hang"] == 1 and s["ok"] == 0


def test_fault_sequence_is_seeded():
    faults = Faults(rate_429=0.3, rate_500=0.2, seed=11)
    rng = Random(11)
    expected = []
    for _ in range(20):
        u = rng.random()
        expected.append(429 if u < 0.3 else 500 if u < 0.5 else 200)
    with running_server(faults=faults) as url:
        c = _client(url)
        got = []
        for _ in range(20):
            try:
                c.chat.completions.create(model="sim", messages=ARITH)
                got.append(200)
            except openai.APIStatusError as e:
                got.append(e.status_code)
        assert got == expected
        s = _stats(url)
        assert (s["429"], s["500"], s["ok"]) == (expected.count(429), expected.count(500), expected.count(200))


def test_latency():
    with running_server(latency_s=0.3) as url:
        c = _client(url)
        t = time.monotonic()
        c.chat.completions.create(model="sim", messages=ARITH)
        assert time.monotonic() - t >= 0.3


def test_server_stops_on_exit():
    with running_server() as url:
        _client(url).models.list()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/models", timeout=2)


@pytest.mark.parametrize("kw", [
    {"rate_429": 1.5},
    {"rate_500": -0.1},
    {"rate_hang": "x"},
    {"rate_429": 0.6, "rate_malformed": 0.6},
    {"hang_s": -1},
])
def test_invalid_faults(kw):
    with pytest.raises(ValueError):
        Faults(**kw)


def test_invalid_latency():
    with pytest.raises(ValueError):
        create_app(latency_s=-1)
