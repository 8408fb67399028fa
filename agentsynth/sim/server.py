"""An OpenAI-compatible HTTP server for the simulated model (``sim``), for offline use, tests and demos.

It serves :class:`~agentsynth.sim.model.SimModel` — a simulator, not a real model — over the
OpenAI chat API, so any OpenAI client can talk to it. Any other
:class:`~agentsynth.models.base.ServedModel` can be served instead (``create_app(model=...)``;
``agentsynth serve --student PATH`` serves a trained student); everything below applies to it too:

- ``GET /v1/models`` lists the one model (``"sim"`` by default);
- ``POST /v1/chat/completions`` answers a chat body (``model``, ``messages``, ``n``,
  ``temperature``, ``seed``, ``max_tokens`` / ``max_completion_tokens``, ``tools``) with a
  ``chat.completion`` object; with ``tools``, the sim answers with ``tool_calls`` where its task needs them; streaming is
  not supported (HTTP 400);
- ``GET /stats`` returns request counters (handy for tests).

A :class:`Faults` table makes the server misbehave on purpose — HTTP 429 with ``Retry-After``,
HTTP 500, hanging past a client's timeout, or a 200 whose body is not JSON — drawn per request
from a seeded generator, so a run of requests sees the same faults every time. ``latency_s`` adds
a fixed delay to every chat completion.

:func:`serve` runs it in the foreground; :func:`running_server` runs it in a separate process
for tests and benchmarks (so it shares neither the client's process nor its GIL)::

    with running_server(faults=Faults(rate_429=0.1)) as base_url:
        client = openai.OpenAI(base_url=base_url, api_key="x")
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from random import Random
from typing import Any

from aiohttp import web

from ..models.base import Choice, ModelError, ServedModel
from .model import SimModel, SimParams

__all__ = ["Faults", "SimServed", "create_app", "serve"]

_JSON = "application/json"
_MAX_N = 128


@dataclass
class Faults:
    """Injected faults for tests and benchmarks; all rates are probabilities per chat request.

    One uniform draw per ``POST /v1/chat/completions`` (from a ``random.Random(seed)`` owned by
    the app, so the sequence of faults is deterministic) picks at most one fault, in this order:

    rate_429: answer HTTP 429 with ``Retry-After: <retry_after_s>`` and a rate-limit error.
    rate_500: answer HTTP 500 with a server error.
    rate_hang: sleep ``hang_s`` seconds, then answer normally (to exceed a client's timeout).
    rate_malformed: answer HTTP 200, ``Content-Type: application/json``, with a body that is not
        valid JSON (``{"choices": [``).

    The rates must each be in [0, 1] and sum to at most 1; the remainder is normal replies.
    The draw happens before the body is read, as a gateway's would: a faulted request gets its
    fault whatever its body.
    """

    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_hang: float = 0.0
    rate_malformed: float = 0.0
    retry_after_s: float = 1.0
    hang_s: float = 30.0
    seed: int = 0

    def __post_init__(self) -> None:
        total = 0.0
        for name in ("rate_429", "rate_500", "rate_hang", "rate_malformed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= float(v) <= 1.0:
                raise ValueError(f"fault rate {name}={v!r} is not a probability in [0, 1]")
            total += float(v)
        if total > 1.0 + 1e-9:
            raise ValueError(
                f"fault rates sum to {total:g} (> 1): rate_429 + rate_500 + rate_hang + rate_malformed must be at most 1"
            )
        for name in ("retry_after_s", "hang_s"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise ValueError(f"fault {name}={v!r} must be a number >= 0")

    @property
    def any(self) -> bool:
        """Whether any fault can happen."""
        return (self.rate_429 + self.rate_500 + self.rate_hang + self.rate_malformed) > 0


# ---- responses ------------------------------------------------------------------------------

def _error(status: int, message: str, type_: str = "invalid_request_error", code: str | None = None, headers: dict[str, str] | None = None) -> web.Response:
    body = json.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}}).encode()
    return web.Response(status=status, body=body, content_type=_JSON, headers=headers)


class _BadRequest(Exception):
    pass


def _int_field(body: dict[str, Any], name: str, *, lo: int, hi: int | None = None) -> int | None:
    v = body.get(name)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi is not None and v > hi):
        rng = f"in [{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise _BadRequest(f"'{name}' must be an integer {rng}, got {v!r}")
    return v


def _parse(raw: bytes) -> dict[str, Any]:
    """Validate a chat body; raise :class:`_BadRequest` with an OpenAI-style message."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise _BadRequest(f"the request body is not valid JSON: {e}") from None
    if not isinstance(body, dict):
        raise _BadRequest("the request body must be a JSON object")
    if body.get("stream"):
        raise _BadRequest("streaming is not supported by the sim server")
    messages = body.get("messages")
    if messages is None:
        raise _BadRequest("'messages' is a required property")
    if not isinstance(messages, list) or not messages:
        raise _BadRequest("'messages' must be a non-empty list of message objects")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise _BadRequest(f"messages[{i}] must be an object with a string 'role'")
    t = body.get("temperature", 1.0)
    if t is None:
        t = 1.0
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0.0 <= t <= 2.0:
        raise _BadRequest(f"'temperature' must be a number in [0, 2], got {t!r}")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise _BadRequest(f"'seed' must be an integer, got {seed!r}")
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise _BadRequest("'tools' must be a list")
    n = _int_field(body, "n", lo=1, hi=_MAX_N) or 1
    max_tokens = _int_field(body, "max_completion_tokens", lo=1)
    if max_tokens is None:
        max_tokens = _int_field(body, "max_tokens", lo=1)
    model = body.get("model")
    return {"messages": messages, "n": n, "temperature": float(t), "seed": seed, "max_tokens": max_tokens,
            "model": model if isinstance(model, str) else None, "tools": tools}


# ---- the app ----------------------------------------------------------------------------------

class _State:
    """What the app owns: the model, the fault generator and the counters."""

    __slots__ = ("model", "model_name", "faults", "latency_s", "rng", "stats", "counter", "models_body", "err_429", "err_500", "retry_headers", "api_key")

    def __init__(self, params: SimParams | None, model_name: str, faults: Faults | None, latency_s: float, api_key: str | None = None,
                 model: ServedModel | None = None):
        self.api_key = api_key
        self.model: ServedModel = model if model is not None else SimServed(params, name=model_name)
        self.model_name = model_name
        self.faults = faults or Faults()
        self.latency_s = float(latency_s)
        self.rng = Random(self.faults.seed)
        self.stats = {"requests": 0, "ok": 0, "400": 0, "401": 0, "429": 0, "500": 0, "hang": 0, "malformed": 0}
        self.counter = 0
        self.models_body = json.dumps(
            {"object": "list", "data": [{"id": model_name, "object": "model", "created": 0, "owned_by": "agentsynth"}]}
        ).encode()
        self.err_429 = json.dumps({"error": {
            "message": f"Rate limit reached for {model_name} (simulated fault). Please try again in {self.faults.retry_after_s:g}s.",
            "type": "requests", "param": None, "code": "rate_limit_exceeded"}}).encode()
        self.err_500 = json.dumps({"error": {
            "message": "The server had an error while processing your request (simulated fault).",
            "type": "server_error", "param": None, "code": None}}).encode()
        self.retry_headers = {"Retry-After": f"{self.faults.retry_after_s:g}"}


_STATE: web.AppKey[_State] = web.AppKey("agentsynth_sim_state", _State)


async def _models(request: web.Request) -> web.Response:
    return web.Response(body=request.app[_STATE].models_body, content_type=_JSON)


async def _stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[_STATE].stats)


async def _chat(request: web.Request) -> web.Response:
    st = request.app[_STATE]
    stats = st.stats
    stats["requests"] += 1
    if st.api_key is not None and request.headers.get("Authorization") != f"Bearer {st.api_key}":
        stats["401"] += 1
        # Like some real servers, echo the key it was given: clients must keep it out of their logs.
        given = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return _error(401, f"Incorrect API key provided: {given}.", "invalid_request_error", "invalid_api_key")
    if st.latency_s > 0:
        await asyncio.sleep(st.latency_s)
    f = st.faults
    hang = False
    if f.any:
        u = st.rng.random()
        if u < f.rate_429:
            stats["429"] += 1
            return web.Response(status=429, body=st.err_429, content_type=_JSON, headers=st.retry_headers)
        u -= f.rate_429
        if u < f.rate_500:
            stats["500"] += 1
            return web.Response(status=500, body=st.err_500, content_type=_JSON)
        u -= f.rate_500
        if u < f.rate_hang:
            stats["hang"] += 1
            hang = True
        else:
            u -= f.rate_hang
            if u < f.rate_malformed:
                stats["malformed"] += 1
                await request.read()
                return web.Response(status=200, body=b'{"choices": [', content_type=_JSON)
    try:
        req = _parse(await request.read())
    except _BadRequest as e:
        stats["400"] += 1
        return _error(400, str(e))
    if hang:
        await asyncio.sleep(f.hang_s)
    try:
        choices, prompt_tokens = await st.model.choices(req["messages"], n=req["n"], temperature=req["temperature"],
                                                        seed=req["seed"], max_tokens=req["max_tokens"], tools=req["tools"])
    except ModelError as e:
        stats["400"] += 1
        return _error(400, str(e))
    completion_tokens = sum(c.completion_tokens for c in choices)
    st.counter += 1
    body = {
        "id": f"chatcmpl-sim{st.counter:010d}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": req["model"] or st.model_name,
        "choices": [
            {"index": i, "message": c.message, "logprobs": None, "finish_reason": c.finish_reason}
            for i, c in enumerate(choices)
        ],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens},
    }
    if not hang:
        stats["ok"] += 1
    return web.Response(body=json.dumps(body).encode(), content_type=_JSON)


class SimServed:
    """The sim as a :class:`~agentsynth.models.base.ServedModel` (what the server serves by default)."""

    def __init__(self, params: SimParams | None = None, name: str = "sim"):
        self.sim = SimModel(params, name=name)
        self.name = name

    async def choices(self, messages: list[dict[str, Any]], *, n: int, temperature: float, seed: int | None,
                      max_tokens: int | None, tools: list[dict[str, Any]] | None = None) -> tuple[list[Choice], int]:
        out = []
        for c in self.sim.choices(messages, n=n, temperature=temperature, seed=seed, max_tokens=max_tokens, tools=tools):
            if c.get("tool_calls"):
                msg = {"role": "assistant", "content": None, "tool_calls": c["tool_calls"]}
            else:
                msg = {"role": "assistant", "content": c["content"]}
            out.append(Choice(msg, c["finish_reason"], c["tokens"]))
        return out, self.sim.prompt_tokens(messages)


def create_app(
    params: SimParams | None = None,
    *,
    model_name: str = "sim",
    faults: Faults | None = None,
    latency_s: float = 0.0,
    api_key: str | None = None,
    model: ServedModel | None = None,
) -> web.Application:
    """The OpenAI-compatible :class:`aiohttp.web.Application`, serving the sim (default) or ``model``.

    params: the sim's parameters (default :class:`SimParams`()); unused with ``model``.
    model_name: the id listed by ``/v1/models`` (any requested ``model`` is answered and echoed).
    faults: injected faults (:class:`Faults`); none by default.
    latency_s: a fixed delay before every chat completion reply.
    api_key: if set, chat requests must send ``Authorization: Bearer <api_key>``; others get a 401
        whose message echoes the key they sent (as some servers do).
    model: what to serve instead of the sim: any :class:`~agentsynth.models.base.ServedModel`
        (e.g. a :class:`~agentsynth.student.StudentModel`); faults and latency apply to it too.

    Routes: ``GET /v1/models``, ``POST /v1/chat/completions``, ``GET /stats``. ``/stats`` counts
    chat completion requests: ``requests`` in all and by outcome — ``ok``, ``400`` (bad body),
    ``429``, ``500``, ``hang`` (answered late) and ``malformed``.
    """
    if isinstance(latency_s, bool) or not isinstance(latency_s, (int, float)) or latency_s < 0:
        raise ValueError(f"latency_s={latency_s!r} must be a number >= 0")
    app = web.Application()
    app[_STATE] = _State(params, model_name, faults, latency_s, api_key, model)
    app.router.add_get("/v1/models", _models)
    app.router.add_post("/v1/chat/completions", _chat)
    app.router.add_get("/stats", _stats)
    return app


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    params: SimParams | None = None,
    *,
    model_name: str = "sim",
    faults: Faults | None = None,
    latency_s: float = 0.0,
    api_key: str | None = None,
    print_fn: Callable[[str], Any] | None = print,
    model: ServedModel | None = None,
) -> None:
    """Run the server on ``host:port`` until interrupted (Ctrl-C / SIGTERM), serving the sim or
    ``model`` (see :func:`create_app`).

    Prints one line with the base URL through ``print_fn`` (``None``: silent). No access log.
    """
    app = create_app(params, model_name=model_name, faults=faults, latency_s=latency_s, api_key=api_key, model=model)
    if print_fn is not None:
        what = "sim" if model is None else "model"
        print_fn(f'agentsynth {what} server on http://{host}:{port}/v1 (model "{model_name}")')
    web.run_app(app, host=host, port=port, print=None, access_log=None, shutdown_timeout=1.0)
