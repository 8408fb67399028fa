"""Any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp server, litellm, sim).

Uses the official ``openai`` client with its aiohttp transport (its default httpx transport's
connection pool scales badly past ~100 concurrent requests), the SDK's own retries off, and the
retry policy of :mod:`agentsynth.models.retry` instead.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from typing import Any

import httpx2
import openai

from .base import Completion, Message, ModelError
from .retry import AdaptiveLimiter, RetryPolicy, is_transient


def api_key_from_env(var: str | None, base_url: str | None) -> str:
    """The API key from the named environment variable; local endpoints need none."""
    if var:
        key = os.environ.get(var)
        if not key:
            raise ModelError(f"environment variable {var} (api_key_env) is not set")
        return key
    return os.environ.get("OPENAI_API_KEY", "") if base_url is None else "not-needed"


class OpenAIModel:
    """A chat model behind an OpenAI-compatible ``/v1/chat/completions``."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str = "not-needed",
        timeout_s: float = 60.0,
        concurrency: int = 16,
        policy: RetryPolicy | None = None,
    ):
        self.name = model
        self.base_url = strip_credentials(base_url)
        self._secrets = tuple(x for x in (api_key,) if x and len(x) >= 4 and x != "not-needed")
        self.policy = policy or RetryPolicy()
        self.limiter = AdaptiveLimiter(concurrency)
        self.retries = 0
        timeout = httpx2.Timeout(timeout_s, connect=min(10.0, timeout_s))
        limits = httpx2.Limits(max_connections=concurrency + 8, max_keepalive_connections=concurrency + 8)
        http = openai.DefaultAioHttpClient(timeout=timeout, limits=limits)
        self.client = openai.AsyncOpenAI(
            api_key=api_key or "not-needed",
            base_url=base_url,
            max_retries=0,
            timeout=timeout,
            http_client=http,
        )

    def _on_retry(self, state: Any) -> None:
        self.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, openai.RateLimitError):
            self.limiter.throttled()

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        temperature: float,
        seed: int | None,
        max_tokens: int | None,
        tools: list[dict[str, Any]] | None = None,
    ) -> Completion:
        """One completion, retried on transient failures; :class:`ModelError` otherwise."""
        kwargs: dict[str, Any] = {"model": self.name, "messages": list(messages), "temperature": temperature}
        if seed is not None:
            kwargs["seed"] = seed
        if max_tokens is not None:
            kwargs["max_tokens"] = max_tokens
        if tools:
            kwargs["tools"] = tools
        attempts = 0
        t0 = time.perf_counter()
        try:
            async for attempt in self.policy.retrying(self._on_retry):
                with attempt:
                    attempts += 1
                    async with self.limiter:
                        resp = await self.client.chat.completions.create(**kwargs)
        except openai.APIStatusError as exc:
            raise ModelError(
                f"HTTP {exc.status_code} from {self.base_url or 'api.openai.com'}: {self._brief(exc)}",
                transient=is_transient(exc), attempts=attempts, status=exc.status_code,
            ) from None
        except (openai.APIConnectionError, openai.APIResponseValidationError) as exc:
            raise ModelError(f"{type(exc).__name__}: {self._brief(exc)}", transient=is_transient(exc), attempts=attempts) from None
        except Exception as exc:  # a reply the SDK could not parse (malformed JSON, wrong shape)
            raise ModelError(f"malformed reply: {type(exc).__name__}: {self._brief(exc)}", attempts=attempts) from None
        self.limiter.succeeded()
        return _completion(resp, attempts, time.perf_counter() - t0)

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self.client.close()

    def _brief(self, exc: BaseException) -> str:
        return redact(" ".join(str(exc).split())[:300], self._secrets)


_KEYLIKE = re.compile(r"\b(?:sk|pk|rk|key)-[A-Za-z0-9_\-*.]{6,}|(?<=Bearer )\S+", re.I)


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """``text`` with the given secrets and anything shaped like an API key replaced by [redacted]."""
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    return _KEYLIKE.sub("[redacted]", text)


def strip_credentials(url: str | None) -> str | None:
    """A base URL without user:password@ and without a query string (both can carry keys)."""
    if not url:
        return url
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _completion(resp: Any, attempts: int, latency: float) -> Completion:
    try:
        choice = resp.choices[0]
        msg = choice.message
        message: Message = {"role": "assistant", "content": msg.content or ""}
        if getattr(msg, "tool_calls", None):
            message["tool_calls"] = [tc.model_dump(mode="json") for tc in msg.tool_calls]
        usage = resp.usage
        return Completion(
            message=message,
            finish_reason=str(choice.finish_reason or "stop"),
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            latency_s=latency,
            attempts=attempts,
        )
    except (AttributeError, IndexError, TypeError, ValueError) as exc:
        raise ModelError(f"malformed reply: {type(exc).__name__}: {exc}; got {str(resp)[:200]}", attempts=attempts) from None
