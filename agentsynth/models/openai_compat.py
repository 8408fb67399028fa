"""Any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp server, litellm, sim).

Uses the official ``openai`` client — with its default httpx transport up to 128 calls in flight
and its aiohttp transport above, whichever is faster there (:func:`pick_transport`) — the SDK's
own retries off, and the
retry policy of :mod:`agentsynth.models.retry` instead. Requests go through the client's low-level
``post`` (same transport, auth, timeouts and typed errors) and the reply JSON is read directly:
the typed ``chat.completions.create`` path spends ~0.4 ms of CPU per call on transforming params
and building pydantic models, which at hundreds of calls in flight is the bottleneck. Several base
URLs (endpoints serving the same model) share one client object, each with its own HTTP client,
and every attempt goes where :class:`~agentsynth.models.endpoints.EndpointPool` sends it.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Sequence
from typing import Any

import httpx2
import openai

from ..credentials import (
    BaseUrl,
    base_url_list,
    check_base_urls,
    redact,
    secret_values,
    split_query,
    stored_base_url,
    strip_credentials,
    url_secrets,
)
from .base import ClientStats, Completion, EndpointDown, Message, ModelError
from .breaker import CircuitBreaker
from .endpoints import Endpoint, EndpointPool
from .limiter import AdaptiveLimiter
from .retry import (
    MalformedReply,
    RetryPolicy,
    cause,
    is_overload,
    is_transient,
    is_unreachable,
    sleep,
)


def api_key_from_env(var: str | None, base_url: str | None) -> str:
    """The API key from the named environment variable; local endpoints need none."""
    if var:
        key = os.environ.get(var)
        if not key:
            raise ModelError(f"environment variable {var} (api_key_env) is not set")
        return key
    if base_url is None:
        key = os.environ.get("OPENAI_API_KEY")
        if not key:
            raise ModelError("no API key for api.openai.com: set OPENAI_API_KEY, or name another variable with api_key_env")
        return key
    return "not-needed"


class _Call:
    """One call's last endpoint (a retry avoids it; errors and retries are put down to it)."""

    __slots__ = ("endpoint",)

    def __init__(self) -> None:
        self.endpoint: Endpoint | None = None


class OpenAIModel:
    """A chat model behind an OpenAI-compatible ``/v1/chat/completions``, at one endpoint or several.

    ``base_url``: one URL, or a list of URLs serving the same model (calls spread across them:
    :class:`~agentsynth.models.endpoints.EndpointPool`; ``concurrency`` is the total). ``api_key``
    is sent as the Bearer key. A query string in a base URL is sent with every request to it; a
    base URL with userinfo (``user:password@``) is refused (:class:`ModelError`). :attr:`base_url`
    — what is stored and printed — is the URL without credentials (several: joined by commas,
    :func:`~agentsynth.credentials.stored_base_url`), and every error text is redacted of the key
    and every URL's secrets (:mod:`agentsynth.credentials`).

    Transient failures are retried by :attr:`policy` (:mod:`agentsynth.models.retry`) and counted
    by cause and endpoint (:meth:`stats`); each endpoint's limiter adapts its calls in flight to
    overload signals; its breaker takes it out of rotation while it does not answer, and once every
    endpoint stayed silent for ``unreachable_s`` seconds calls fail with
    :class:`~agentsynth.models.base.EndpointDown`.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: BaseUrl = None,
        api_key: str = "not-needed",
        timeout_s: float = 60.0,
        concurrency: int = 16,
        policy: RetryPolicy | None = None,
        transport: str = "auto",
        unreachable_s: float = 30.0,
    ):
        try:
            base_url = check_base_urls(base_url)
        except ValueError as exc:
            raise ModelError(f"base_url: {exc}") from None
        urls: list[str | None] = list(base_url_list(base_url)) or [None]  # None: api.openai.com
        self.name = model
        self.base_url = stored_base_url(base_url)
        self.base_urls: tuple[str, ...] = tuple(strip_credentials(u) or "" for u in urls if u)
        self._secrets = secret_values(api_key, *(v for u in urls for v in url_secrets(u)))
        self.policy = policy or RetryPolicy()
        self._probe_timeout = min(5.0, timeout_s)
        self.pool = EndpointPool(list(self.base_urls) or ["https://api.openai.com/v1"], self._probe,
                                 concurrency=concurrency, unreachable_s=unreachable_s)
        timeout = httpx2.Timeout(timeout_s, connect=min(10.0, timeout_s))
        limits = httpx2.Limits(max_connections=concurrency + 8, max_keepalive_connections=concurrency + 8)
        self.transport = pick_transport(transport, concurrency)
        self.clients = [self._client(u, api_key, timeout, limits) for u in urls]
        self.client = self.clients[0]

    def _client(self, base_url: str | None, api_key: str, timeout: httpx2.Timeout, limits: httpx2.Limits) -> openai.AsyncOpenAI:
        if self.transport == "aiohttp":
            http = openai.DefaultAioHttpClient(timeout=timeout, limits=limits)
        else:
            http = openai.DefaultAsyncHttpxClient(timeout=timeout, limits=limits)
        url, query = split_query(base_url)  # the client would glue the query to the path
        return openai.AsyncOpenAI(
            api_key=api_key or "not-needed",
            base_url=url,
            default_query=query or None,
            max_retries=0,
            timeout=timeout,
            http_client=http,
        )

    @property
    def limiter(self) -> AdaptiveLimiter:
        """The first endpoint's adaptive limiter (the only one, with one base URL)."""
        return self.pool.endpoints[0].limiter

    @property
    def breaker(self) -> CircuitBreaker:
        """The first endpoint's circuit breaker (the only one, with one base URL)."""
        return self.pool.endpoints[0].breaker

    @property
    def retry_counts(self) -> dict[str, int]:
        """Retried attempts so far by cause, over all endpoints."""
        return self.pool.retry_counts()

    @property
    def retries(self) -> int:
        """Retried attempts so far, all causes."""
        return sum(self.retry_counts.values())

    def stats(self) -> ClientStats:
        """The limits, retries by cause and breakers now (totals, and each endpoint's)."""
        return self.pool.stats()

    def _count_retry(self, exc: BaseException | None, endpoint: Endpoint | None) -> None:
        self.pool.retried(endpoint or self.pool.endpoints[0], cause(exc) if exc is not None else "other")

    async def _probe(self, index: int) -> bool:
        """Does endpoint ``index`` answer at all? ``GET /models``; any HTTP status counts."""
        try:
            await self.clients[index].get("/models", cast_to=httpx2.Response, options={"timeout": self._probe_timeout})
        except openai.APIStatusError:
            return True
        except openai.APIConnectionError:
            return False
        return True

    async def _attempt(self, body: dict[str, Any], call: _Call) -> Completion:
        # The client's low-level post: its transport, auth, timeouts and typed errors, without
        # the typed-params transform and the pydantic response model (~0.4 ms of CPU a call,
        # which caps throughput near 1,000 calls/s on one core). We parse the JSON ourselves.
        pool = self.pool
        slot = await pool.acquire(call.endpoint)  # waits while no endpoint is usable: spends no attempt
        call.endpoint = slot.endpoint
        try:
            response = await self.clients[slot.endpoint.index].post("/chat/completions", body=body, cast_to=httpx2.Response)
        except openai.APIStatusError as exc:
            pool.finish(slot, answered=True, overload=is_overload(exc))
            raise
        except (openai.APIConnectionError, asyncio.TimeoutError) as exc:
            pool.finish(slot, answered=False, overload=is_overload(exc), detail=f"{type(exc).__name__}: {self._brief(exc)}")
            raise
        except BaseException:
            pool.release(slot)
            raise
        pool.finish(slot, answered=True)
        return _completion(response.content, self._secrets)

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        temperature: float,
        seed: int | None,
        max_tokens: int | None,
        tools: list[dict[str, Any]] | None = None,
    ) -> Completion:
        """One completion, retried on transient failures (a retry may go to another endpoint);
        :class:`ModelError` otherwise (:class:`~agentsynth.models.base.EndpointDown` when every
        endpoint stayed unreachable)."""
        kwargs: dict[str, Any] = {"model": self.name, "messages": list(messages), "temperature": temperature}
        if seed is not None:
            kwargs["seed"] = seed
        if max_tokens is not None:
            kwargs["max_tokens"] = max_tokens
        if tools:
            kwargs["tools"] = tools
        attempts = 1
        call = _Call()
        t0 = time.perf_counter()
        try:
            try:
                comp = await self._attempt(kwargs, call)  # the common case: no retry machinery
            except Exception as first:
                if not is_transient(first) or self.policy.max_retries == 0:
                    raise
                backoff = self.policy.backoff()
                self._count_retry(first, call.endpoint)

                def on_retry(state: Any) -> None:
                    self._count_retry(state.outcome.exception() if state.outcome else None, call.endpoint)

                await sleep(backoff.next(first))
                async for attempt in self.policy.retrying(backoff, on_retry, failed=1):
                    with attempt:
                        attempts += 1
                        comp = await self._attempt(kwargs, call)
        except EndpointDown:
            raise
        except Exception as exc:
            last = call.endpoint
            if is_unreachable(exc) and last is not None and last.breaker.suspect:
                await self.pool.verdict(last)  # EndpointDown if all stay down; else this call failed alone
            raise self._error(exc, attempts, last) from None
        comp.attempts = attempts
        comp.latency_s = time.perf_counter() - t0
        return comp

    def _error(self, exc: BaseException, attempts: int, endpoint: Endpoint | None = None) -> ModelError:
        """The ModelError a failed call ends with (redacted); an HTTP error names the endpoint
        that sent it."""
        transient = is_transient(exc)
        if isinstance(exc, openai.APIStatusError):
            where = endpoint.url if endpoint is not None and len(self.base_urls) > 1 else self.base_url or "api.openai.com"
            return ModelError(f"HTTP {exc.status_code} from {where}: {self._brief(exc)}",
                              transient=transient, attempts=attempts, status=exc.status_code)
        if isinstance(exc, (openai.APIConnectionError, openai.APIResponseValidationError)):
            return ModelError(f"{type(exc).__name__}: {self._brief(exc)}", transient=transient, attempts=attempts)
        if isinstance(exc, MalformedReply):
            return ModelError(f"malformed reply: {self._brief(exc)}", transient=transient, attempts=attempts)
        return ModelError(f"malformed reply: {type(exc).__name__}: {self._brief(exc)}", attempts=attempts)

    async def aclose(self) -> None:
        """Stop probing and close the HTTP connections."""
        await self.pool.aclose()
        for client in self.clients:
            await client.close()

    def _brief(self, exc: BaseException) -> str:
        return redact(" ".join(str(exc).split()), self._secrets)[:300]  # redact, then cut: never half a key


AIOHTTP_ABOVE = 128


def pick_transport(transport: str, concurrency: int) -> str:
    """``auto``: the client's default httpx transport up to 128 calls in flight (lower latency there:
    p50 +0.7 ms over the server's delay vs +10 ms for aiohttp at C=64), its aiohttp transport above
    (httpx's pool saturates: ~700 vs ~1,100 calls/s at C=256 on 2 cores)."""
    if transport == "auto":
        return "aiohttp" if concurrency > AIOHTTP_ABOVE else "httpx"
    if transport not in ("aiohttp", "httpx"):
        raise ValueError(f"transport {transport!r}: choose auto, aiohttp or httpx")
    return transport


def _completion(content: bytes, secrets: Sequence[str] = ()) -> Completion:
    """A chat.completion body as a :class:`Completion` (attempts and latency filled in by the
    caller); :class:`MalformedReply` (redacted of ``secrets``) if it is not one."""
    try:
        resp = json.loads(content)
        choice = resp["choices"][0]
        msg = choice["message"]
        content_ = msg.get("content")
        if content_ is not None and not isinstance(content_, str):
            raise TypeError(f"content is {type(content_).__name__}")
        message: Message = {"role": "assistant", "content": content_ or ""}
        if msg.get("tool_calls"):
            message["tool_calls"] = list(msg["tool_calls"])
        usage = resp.get("usage") or {}
        return Completion(
            message=message,
            finish_reason=str(choice.get("finish_reason") or "stop"),
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
        )
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        got = content[:200].decode("utf-8", "replace")
        what, got = redact(str(exc), secrets), redact(" ".join(got.split()), secrets)
        raise MalformedReply(f"{type(exc).__name__}: {what}; got {got!r}") from None
