"""An OpenAI-compatible HTTP server for the simulated model (``sim``), for offline use, tests and demos.

It serves :class:`~agentsynth.sim.model.SimModel` — a simulator, not a real model — over the
OpenAI API, so any OpenAI client (the ``openai`` SDK, litellm, inspect-ai …) can talk to it. Any
other :class:`~agentsynth.models.base.ServedModel` can be served instead (``create_app(model=...)``;
``agentsynth serve --student PATH`` serves a trained student); everything below applies to it too:

- ``GET /v1/models`` lists the one model (``"sim"`` by default, set by ``model_name``) and
  ``GET /v1/models/{id}`` describes it;
- ``POST /v1/chat/completions`` answers a chat body (:mod:`agentsynth.sim.requests`) with a
  ``chat.completion`` object, or with ``stream: true`` as ``chat.completion.chunk`` server-sent
  events (:mod:`agentsynth.sim.replies`); with ``tools``, the sim answers with ``tool_calls``
  where its task needs them;
- ``POST /v1/responses`` answers the Responses API's text and function-call subset, streamed or
  not (:mod:`agentsynth.sim.responses_api`); both endpoints convert their body to one
  :class:`~agentsynth.sim.requests.ChatRequest` and call the model the same way;
- ``GET /stats`` returns request counters (handy for tests).

Every error is OpenAI's JSON error shape with its status (:mod:`agentsynth.sim.errors`): invalid
bodies 400 with ``param`` set, a ``model`` other than the served name 404 ``model_not_found``,
unknown routes 404, wrong methods 405.

A :class:`Faults` table makes the server misbehave on purpose — HTTP 429 with ``Retry-After``,
HTTP 500, hanging past a client's timeout, or a 200 whose body is not JSON (a truncated event on a
stream) — drawn per model request, on either endpoint, from a seeded generator, so a run of
requests sees the same faults every time. ``latency_s`` adds a fixed delay to every model request.

:func:`serve` runs it in the foreground; :func:`~agentsynth.sim.process.running_server` runs it
in a separate process for tests and benchmarks (so it shares neither the client's process nor
its GIL)::

    with running_server(faults=Faults(rate_429=0.1)) as base_url:
        client = openai.OpenAI(base_url=base_url, api_key="x")
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from random import Random
from typing import Any

from aiohttp import web

from ..models.base import Choice, ModelError, ServedModel
from .errors import APIError, json_errors, model_not_found
from .model import SimModel, SimParams
from .replies import MALFORMED_CHAT, MALFORMED_CHAT_STREAM, Reply, chat_chunks, chat_completion
from .requests import ChatRequest, chat_request, model_field, parse_json
from .responses_api import MALFORMED_RESPONSE, MALFORMED_RESPONSE_STREAM, response_events, response_object, responses_request

__all__ = ["Faults", "SimServed", "create_app", "serve"]

_JSON = "application/json"
_MAX_BODY = 64 * 1024**2  # long conversations: well above aiohttp's 1 MiB default


@dataclass
class Faults:
    """Injected faults for tests and benchmarks; all rates are probabilities per model request.

    One uniform draw per ``POST /v1/chat/completions`` or ``POST /v1/responses`` (from a ``random.Random(seed)`` owned by
    the app, so the sequence of faults is deterministic) picks at most one fault, in this order:

    rate_429: answer HTTP 429 with ``Retry-After: <retry_after_s>`` and a rate-limit error.
    rate_500: answer HTTP 500 with a server error.
    rate_hang: sleep ``hang_s`` seconds, then answer normally (to exceed a client's timeout).
    rate_malformed: answer HTTP 200, ``Content-Type: application/json``, with a body that is not
        valid JSON (``{"choices": [``); a streamed request gets one truncated event instead.

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


# ---- the app ----------------------------------------------------------------------------------

_STAT_KEYS = ("requests", "chat", "responses", "stream", "ok", "400", "401", "404", "429", "500", "hang", "malformed")


class _State:
    """What the app owns: the model, the fault generator and the counters."""

    __slots__ = ("api_key", "counter", "faults", "latency_s", "model", "model_name", "models_body", "rng", "served", "stats")

    def __init__(self, params: SimParams | None, model_name: str, faults: Faults | None, latency_s: float, api_key: str | None = None,
                 model: ServedModel | None = None):
        self.api_key = api_key
        self.model: ServedModel = model if model is not None else SimServed(params, name=model_name)
        self.model_name = model_name
        self.served = (model_name,)
        self.faults = faults or Faults()
        self.latency_s = float(latency_s)
        self.rng = Random(self.faults.seed)
        self.stats = dict.fromkeys(_STAT_KEYS, 0)
        self.counter = 0
        self.models_body = json.dumps({"object": "list", "data": [_model_card(m) for m in self.served]}).encode()

    def draw(self) -> str | None:
        """This request's fault (``429``, ``500``, ``hang``, ``malformed``) or None; one uniform draw."""
        f = self.faults
        if not f.any:
            return None
        u = self.rng.random()
        for fault, rate in (("429", f.rate_429), ("500", f.rate_500), ("hang", f.rate_hang), ("malformed", f.rate_malformed)):
            if u < rate:
                return fault
            u -= rate
        return None


_STATE: web.AppKey[_State] = web.AppKey("agentsynth_sim_state", _State)


def _model_card(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "agentsynth"}


@dataclass(frozen=True)
class _Endpoint:
    """How one model endpoint reads its body and writes its reply; everything else is shared."""

    name: str  # its /stats counter
    id_prefix: str
    convert: Callable[[dict[str, Any]], tuple[ChatRequest, Any]]
    body: Callable[[Reply, Any], dict[str, Any]]
    events: Callable[[Reply, ChatRequest, Any], Iterator[bytes]]
    malformed: bytes
    malformed_stream: bytes


_CHAT = _Endpoint("chat", "chatcmpl-sim", lambda body: (chat_request(body), None), lambda reply, _: chat_completion(reply),
                  lambda reply, req, _: chat_chunks(reply, req.include_usage), MALFORMED_CHAT, MALFORMED_CHAT_STREAM)
_RESPONSES = _Endpoint("responses", "resp_sim", responses_request, response_object,
                       lambda reply, _, echo: response_events(reply, echo), MALFORMED_RESPONSE, MALFORMED_RESPONSE_STREAM)


async def _models(request: web.Request) -> web.Response:
    return web.Response(body=request.app[_STATE].models_body, content_type=_JSON)


async def _model(request: web.Request) -> web.Response:
    st, name = request.app[_STATE], request.match_info["model"]
    if name not in st.served:
        raise model_not_found(name, st.served)
    return web.json_response(_model_card(name))


async def _stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[_STATE].stats)


async def _chat(request: web.Request) -> web.StreamResponse:
    return await _answer(request, _CHAT)


async def _responses(request: web.Request) -> web.StreamResponse:
    return await _answer(request, _RESPONSES)


async def _answer(request: web.Request, ep: _Endpoint) -> web.StreamResponse:
    """One model request on either endpoint: auth, latency, faults, validation, the model call, the reply."""
    st = request.app[_STATE]
    st.stats["requests"] += 1
    st.stats[ep.name] += 1
    try:
        return await _answer_checked(request, ep, st)
    except APIError as exc:
        key = str(exc.status)
        st.stats[key] = st.stats.get(key, 0) + 1
        return exc.response()
    except Exception:
        st.stats["500"] += 1  # answered by json_errors
        raise


async def _answer_checked(request: web.Request, ep: _Endpoint, st: _State) -> web.StreamResponse:
    if st.api_key is not None and request.headers.get("Authorization") != f"Bearer {st.api_key}":
        # Like some real servers, echo the key it was given: clients must keep it out of their logs.
        given = request.headers.get("Authorization", "").removeprefix("Bearer ")
        raise APIError(401, f"Incorrect API key provided: {given}.", code="invalid_api_key")
    if st.latency_s > 0:
        await asyncio.sleep(st.latency_s)
    f = st.faults
    fault = st.draw()  # before the body is read, as a gateway's would be
    if fault == "429":
        raise APIError(429, f"Rate limit reached for {st.model_name} (simulated fault). Please try again in "
                            f"{f.retry_after_s:g}s.", type_="requests", code="rate_limit_exceeded",
                       headers={"Retry-After": f"{f.retry_after_s:g}"})
    if fault == "500":
        raise APIError(500, "The server had an error while processing your request (simulated fault).", type_="server_error")
    if fault in ("hang", "malformed"):
        st.stats[fault] += 1
    raw = await request.read()
    if fault == "malformed":
        if _wants_stream(raw):
            return (await _stream(request, iter([ep.malformed_stream])))[0]
        return web.Response(status=200, body=ep.malformed, content_type=_JSON)
    body = parse_json(raw)
    model = model_field(body)
    req, echo = ep.convert(body)
    if model not in st.served:
        raise model_not_found(model, st.served)
    if fault == "hang":
        await asyncio.sleep(f.hang_s)
    try:
        choices, prompt_tokens = await st.model.choices(req.messages, n=req.n, temperature=req.temperature, seed=req.seed,
                                                        max_tokens=req.max_tokens, tools=req.tools)
    except ModelError as exc:
        raise APIError(400, str(exc)) from None
    st.counter += 1
    reply = Reply(f"{ep.id_prefix}{st.counter:010d}", int(time.time()), st.model_name, choices, prompt_tokens)
    sent = True
    if req.stream:
        st.stats["stream"] += 1
        resp, sent = await _stream(request, ep.events(reply, req, echo))
    else:
        resp = web.Response(body=json.dumps(ep.body(reply, echo)).encode(), content_type=_JSON)
    if fault is None and sent:
        st.stats["ok"] += 1
    return resp


def _wants_stream(raw: bytes) -> bool:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(body, dict) and body.get("stream") is True


async def _stream(request: web.Request, events: Iterator[bytes]) -> tuple[web.StreamResponse, bool]:
    """Send ``events`` as a ``text/event-stream`` reply; False if the client left before the end."""
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    try:
        await resp.prepare(request)
        for data in events:
            await resp.write(data)
        await resp.write_eof()
    except ConnectionResetError:  # the client hung up mid-stream: nothing left to answer
        return resp, False
    return resp, True


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
    model_name: the served model's id: listed by ``/v1/models``, the only ``model`` a request may
        name (others get 404 ``model_not_found``), and the ``model`` of every reply.
    faults: injected faults (:class:`Faults`); none by default.
    latency_s: a fixed delay before every model reply.
    api_key: if set, model requests must send ``Authorization: Bearer <api_key>``; others get a
        401 whose message echoes the key they sent (as some servers do).
    model: what to serve instead of the sim: any :class:`~agentsynth.models.base.ServedModel`
        (e.g. a :class:`~agentsynth.student.StudentModel`); faults and latency apply to it too.

    Routes: ``GET /v1/models``, ``GET /v1/models/{id}``, ``POST /v1/chat/completions``,
    ``POST /v1/responses``, ``GET /stats``. ``/stats`` counts model requests: ``requests`` in
    all, by endpoint (``chat``, ``responses``; ``stream`` for streamed replies) and by outcome —
    ``ok``, ``400`` (bad body), ``401``, ``404`` (unknown model), ``429``, ``500``, ``hang``
    (answered late) and ``malformed``.
    """
    if isinstance(latency_s, bool) or not isinstance(latency_s, (int, float)) or latency_s < 0:
        raise ValueError(f"latency_s={latency_s!r} must be a number >= 0")
    app = web.Application(middlewares=[json_errors], client_max_size=_MAX_BODY)
    app[_STATE] = _State(params, model_name, faults, latency_s, api_key, model)
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/v1/models/{model}", _model)
    app.router.add_post("/v1/chat/completions", _chat)
    app.router.add_post("/v1/responses", _responses)
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
