"""What the runner needs from a model (one async chat-completion call: :class:`ChatModel`) and what
the OpenAI-compatible server serves (``n`` replies to one request: :class:`ServedModel`).

Also what the runner shares with endpoint clients without importing them (they pull in the
``openai`` SDK, ~1 s of import): :class:`ClientStats`, the retry causes (:data:`CAUSES`) and the
hook through which a retry waits out its backoff (:data:`backoff_sleep`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

CAUSES = ("429", "5xx", "timeout", "malformed", "connection")
"""The causes a run reports its retries by (plus ``other`` for 409 and the like, when any); see
:func:`agentsynth.models.retry.cause`."""

backoff_sleep: ContextVar[Callable[[float], Awaitable[None]]] = ContextVar("agentsynth_backoff_sleep", default=asyncio.sleep)
"""How a retry waits out its backoff in this context: ``asyncio.sleep`` unless the caller lends
what it holds meanwhile (the runner: an episode waiting out a backoff lends its place to another
episode, see :mod:`agentsynth.plan_queue`)."""

Message = dict[str, Any]


@dataclass(slots=True)
class Completion:
    """One assistant reply, with its cost and how many HTTP attempts it took."""

    message: Message
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float = 0.0
    attempts: int = 1


@dataclass(slots=True)
class EndpointStats:
    """One endpoint of a client (a URL of its ``base_url`` list): the URL without credentials,
    HTTP attempts sent to it (``calls``), the failed ones retried by cause, its own in-flight
    limit (now, at its lowest), calls in flight, its breaker's state and how often it tripped."""

    url: str
    calls: int
    retries: dict[str, int]
    limit: int
    lowest: int
    in_flight: int
    breaker: str = "closed"
    trips: int = 0


@dataclass(slots=True)
class ClientStats:
    """What an endpoint client is doing, for progress bars and run summaries: its in-flight limit
    now, at its lowest and at most, calls in flight, retries so far by cause (``429``, ``5xx``,
    ``timeout``, ``malformed``, ``connection``, ``other``) and its breaker's state (``closed``,
    ``open`` while probing a silent endpoint, ``down`` once given up). With several endpoints
    (:mod:`agentsynth.models.endpoints`) these are the totals — the limit is the sum of theirs,
    capped at the maximum; the breaker ``closed`` while any endpoint is usable, ``down`` once all
    are — and ``endpoints`` holds each one's :class:`EndpointStats`."""

    limit: int
    maximum: int
    lowest: int
    in_flight: int
    retries: dict[str, int] = field(default_factory=dict)
    breaker: str = "closed"
    endpoints: list[EndpointStats] = field(default_factory=list)


class ModelError(RuntimeError):
    """A model call failed for good: non-transient (400, 401, malformed reply) or out of retries.

    ``attempts`` counts HTTP attempts, ``transient`` says whether the last failure was one that
    a later retry (e.g. a resumed run) could get past.
    """

    def __init__(self, message: str, *, transient: bool = False, attempts: int = 1, status: int | None = None):
        super().__init__(message)
        self.transient = transient
        self.attempts = attempts
        self.status = status


class EndpointDown(ModelError):
    """An endpoint stayed unreachable past its breaker's bound (see
    :mod:`agentsynth.models.breaker`): the run stops starting episodes and ends ``failed`` with
    this one-line message; the episodes it did not finish are not stored (a re-run resumes them)."""

    def __init__(self, message: str, *, endpoint: str):
        super().__init__(message, transient=True)
        self.endpoint = endpoint


class ChatModel(Protocol):
    """A chat model the runner can call (an OpenAI-compatible endpoint or the built-in sim)."""

    name: str
    base_url: str | None

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        temperature: float,
        seed: int | None,
        max_tokens: int | None,
        tools: list[dict[str, Any]] | None = None,
    ) -> Completion:
        """One completion for ``messages``; raises :class:`ModelError` when it cannot."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


@dataclass(slots=True)
class Choice:
    """One of the ``n`` replies to one request: the assistant message (text, or tool calls), why
    it stopped (``stop``, ``length``, ``tool_calls``) and its completion tokens."""

    message: Message
    finish_reason: str
    completion_tokens: int


class ServedModel(Protocol):
    """A model that ``agentsynth serve`` can put behind its OpenAI-compatible API."""

    name: str

    async def choices(
        self,
        messages: Sequence[Message],
        *,
        n: int,
        temperature: float,
        seed: int | None,
        max_tokens: int | None,
        tools: list[dict[str, Any]] | None = None,
    ) -> tuple[list[Choice], int]:
        """``n`` replies to ``messages`` and the prompt's token count."""
        ...
