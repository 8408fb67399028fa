"""Any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp server, litellm, sim).

Uses the official ``openai`` client — with its default httpx transport up to 128 calls in flight
and its aiohttp transport above, whichever is faster there (:func:`pick_transport`) — the SDK's
own retries off, and the
retry policy of :mod:`agentsynth.models.retry` instead. Requests go through the client's low-level
``post`` (same transport, auth, timeouts and typed errors) and the reply JSON is read directly:
the typed ``chat.completions.create`` path spends ~0.4 ms of CPU per call on transforming params
and building pydantic models, which at hundreds of calls in flight is the bottleneck.
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

from ..credentials import check_base_url, redact, secret_values, split_query, strip_credentials, url_secrets
from .base import ClientStats, Completion, EndpointDown, Message, ModelError
from .breaker import CLOSED, CircuitBreaker
from .limiter import AdaptiveLimiter
from .retry import CAUSES, MalformedReply, RetryPolicy, cause, is_overload, is_transient, is_unreachable, sleep


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


class OpenAIModel:
    """A chat model behind an OpenAI-compatible ``/v1/chat/completions``.

    ``api_key`` is sent as the Bearer key. A query string in ``base_url`` is sent with every
    request; ``base_url`` with userinfo (``user:password@``) is refused (:class:`ModelError`).
    :attr:`base_url` — what is stored and printed — is the URL without credentials, and every
    error text is redacted of the key and the URL's secrets (:mod:`agentsynth.credentials`).

    Transient failures are retried by :attr:`policy` (:mod:`agentsynth.models.retry`) and counted
    by cause (:meth:`stats`); :attr:`limiter` adapts the calls in flight to overload signals;
    :attr:`breaker` pauses calls while the endpoint does not answer and, after ``unreachable_s``
    seconds of that, fails them with :class:`~agentsynth.models.base.EndpointDown`.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str = "not-needed",
        timeout_s: float = 60.0,
        concurrency: int = 16,
        policy: RetryPolicy | None = None,
        transport: str = "auto",
        unreachable_s: float = 30.0,
    ):
        try:
            check_base_url(base_url)
        except ValueError as exc:
            raise ModelError(f"base_url: {exc}") from None
        self.name = model
        self.base_url = strip_credentials(base_url)
        self._secrets = secret_values(api_key, *url_secrets(base_url))
        self.policy = policy or RetryPolicy()
        self.limiter = AdaptiveLimiter(concurrency)
        self.retry_counts: dict[str, int] = dict.fromkeys(CAUSES, 0)
        self._probe_timeout = min(5.0, timeout_s)
        self.breaker = CircuitBreaker(self.base_url or "https://api.openai.com/v1", self._probe, unreachable_s=unreachable_s)
        timeout = httpx2.Timeout(timeout_s, connect=min(10.0, timeout_s))
        limits = httpx2.Limits(max_connections=concurrency + 8, max_keepalive_connections=concurrency + 8)
        self.transport = pick_transport(transport, concurrency)
        if self.transport == "aiohttp":
            http = openai.DefaultAioHttpClient(timeout=timeout, limits=limits)
        else:
            http = openai.DefaultAsyncHttpxClient(timeout=timeout, limits=limits)
        url, query = split_query(base_url)  # the client would glue the query to the path
        self.client = openai.AsyncOpenAI(
            api_key=api_key or "not-needed",
            base_url=url,
            default_query=query or None,
            max_retries=0,
            timeout=timeout,
            http_client=http,
        )

    @property
    def retries(self) -> int:
        """Retried attempts so far, all causes."""
        return sum(self.retry_counts.values())

    def stats(self) -> ClientStats:
        """The limiter, retries by cause and breaker state now."""
        lim = self.limiter
        return ClientStats(lim.limit, lim.maximum, lim.lowest, lim.in_flight, dict(self.retry_counts), self.breaker.state)

    def _on_retry(self, state: Any) -> None:
        self._count_retry(state.outcome.exception() if state.outcome else None)

    def _count_retry(self, exc: BaseException | None) -> None:
        key = cause(exc) if exc is not None else "other"
        self.retry_counts[key] = self.retry_counts.get(key, 0) + 1

    async def _probe(self) -> bool:
        """Does the endpoint answer at all? ``GET /models``; any HTTP status counts."""
        try:
            await self.client.get("/models", cast_to=httpx2.Response, options={"timeout": self._probe_timeout})
        except openai.APIStatusError:
            return True
        except openai.APIConnectionError:
            return False
        return True

    async def _attempt(self, body: dict[str, Any]) -> Completion:
        # The client's low-level post: its transport, auth, timeouts and typed errors, without
        # the typed-params transform and the pydantic response model (~0.4 ms of CPU a call,
        # which caps throughput near 1,000 calls/s on one core). We parse the JSON ourselves.
        breaker, limiter = self.breaker, self.limiter
        if breaker.state != CLOSED:
            await breaker.wait_usable()  # the endpoint is silent: wait for the probe, spend no attempt
        async with limiter:
            generation = limiter.generation
            try:
                response = await self.client.post("/chat/completions", body=body, cast_to=httpx2.Response)
            except openai.APIStatusError as exc:
                breaker.alive()
                limiter.record(is_overload(exc), generation)
                raise
            except (openai.APIConnectionError, asyncio.TimeoutError) as exc:
                if is_overload(exc):  # a timeout
                    limiter.record(True, generation)
                breaker.unreachable(exc, f"{type(exc).__name__}: {self._brief(exc)}")
                raise
        breaker.alive()
        limiter.record(False, generation)
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
        """One completion, retried on transient failures; :class:`ModelError` otherwise
        (:class:`~agentsynth.models.base.EndpointDown` when the endpoint stayed unreachable)."""
        kwargs: dict[str, Any] = {"model": self.name, "messages": list(messages), "temperature": temperature}
        if seed is not None:
            kwargs["seed"] = seed
        if max_tokens is not None:
            kwargs["max_tokens"] = max_tokens
        if tools:
            kwargs["tools"] = tools
        attempts = 1
        t0 = time.perf_counter()
        try:
            try:
                comp = await self._attempt(kwargs)  # the common case: no retry machinery
            except Exception as first:
                if not is_transient(first) or self.policy.max_retries == 0:
                    raise
                backoff = self.policy.backoff()
                self._count_retry(first)
                await sleep(backoff.next(first))
                async for attempt in self.policy.retrying(backoff, self._on_retry, failed=1):
                    with attempt:
                        attempts += 1
                        comp = await self._attempt(kwargs)
        except EndpointDown:
            raise
        except Exception as exc:
            if is_unreachable(exc) and self.breaker.suspect:
                await self.breaker.verdict()  # EndpointDown if it stays down; else this call failed alone
            raise self._error(exc, attempts) from None
        comp.attempts = attempts
        comp.latency_s = time.perf_counter() - t0
        return comp

    def _error(self, exc: BaseException, attempts: int) -> ModelError:
        """The ModelError a failed call ends with (redacted)."""
        transient = is_transient(exc)
        if isinstance(exc, openai.APIStatusError):
            return ModelError(f"HTTP {exc.status_code} from {self.base_url or 'api.openai.com'}: {self._brief(exc)}",
                              transient=transient, attempts=attempts, status=exc.status_code)
        if isinstance(exc, (openai.APIConnectionError, openai.APIResponseValidationError)):
            return ModelError(f"{type(exc).__name__}: {self._brief(exc)}", transient=transient, attempts=attempts)
        if isinstance(exc, MalformedReply):
            return ModelError(f"malformed reply: {self._brief(exc)}", transient=transient, attempts=attempts)
        return ModelError(f"malformed reply: {type(exc).__name__}: {self._brief(exc)}", attempts=attempts)

    async def aclose(self) -> None:
        """Stop probing and close the HTTP connections."""
        await self.breaker.aclose()
        await self.client.close()

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
