"""The student as a chat model: :class:`StudentModel` implements agentsynth's
:class:`~agentsynth.models.base.ChatModel` (``complete``), the server's
:class:`~agentsynth.models.base.ServedModel` (``choices``: ``n`` replies to one request) and a
synchronous batch call for many prompts (:meth:`StudentModel.generate`).

Concurrent calls are batched: each call puts its request on a queue; one collector task takes
every request pending (waiting :data:`LINGER_S` after the first so that calls made together land
together, up to ``max_rows`` replies), runs one batched generation in a worker thread and hands
each caller its replies. A run with concurrency 32 thus costs about one forward pass per token
for 32 episodes instead of 32. A request's replies depend on its own seed only (see
:mod:`.sampling`), not on what it was batched with.

The student answers in text; ``tools`` are accepted and ignored.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..models.base import Choice, Completion, Message, ModelError
from .checkpoint import Student
from .sampling import Request, Sample, generate

LINGER_S = 0.003
DEFAULT_MAX_TOKENS = 256


@dataclass(frozen=True)
class Reply:
    """One generated reply as text, why it stopped, and its token counts."""

    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


class StudentModel:
    """A :class:`Student` behind the ChatModel interface (see the module docstring).

    ``student``: a loaded :class:`Student` or a checkpoint path. ``name``: the model name recorded
    with runs (default ``student:<path>@<checkpoint id>``). ``max_rows``: most replies generated
    in one batch.
    """

    base_url: str | None = None

    def __init__(self, student: Student | str | Path, *, name: str | None = None, max_rows: int = 512,
                 threads: int | None = None):
        self.student = student if isinstance(student, Student) else Student.load(student, threads=threads)
        where = str(self.student.path) if self.student.path else "memory"
        self.name = name or f"student:{where}@{self.student.id}"
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[tuple[Request, asyncio.Future[list[Sample]]]] | None = None
        self._collector: asyncio.Task[None] | None = None
        self.batches = 0
        """Number of batched generations run for async calls (for tests and benchmarks)."""

    # ---- synchronous --------------------------------------------------------------------
    def request(self, messages: Sequence[Mapping[str, Any]], *, n: int = 1, temperature: float = 0.0,
                seed: int | None = None, max_tokens: int | None = None) -> Request:
        """The sampling request for a chat prompt."""
        if not 0.0 <= float(temperature) <= 2.0:
            raise ModelError(f"temperature must be in [0, 2], got {temperature}")
        try:
            prompt = self.student.tokenizer.encode_prompt(messages)
        except ValueError as exc:
            raise ModelError(str(exc)) from None
        return Request(prompt, n=max(1, int(n)), temperature=float(temperature), seed=seed,
                       max_tokens=int(max_tokens or DEFAULT_MAX_TOKENS))

    def _run(self, requests: Sequence[Request]) -> list[list[Sample]]:
        with self._lock:
            return generate(self.student.model, requests, end_id=self.student.tokenizer.end_id,
                            pad_id=self.student.tokenizer.pad_id)

    def _reply(self, s: Sample) -> Reply:
        return Reply(self.student.tokenizer.decode_reply(s.ids), s.finish_reason, s.prompt_tokens,
                     len(s.ids) + (s.finish_reason == "stop"))

    def generate(self, prompts: Sequence[Sequence[Mapping[str, Any]]], *, n: int = 1, temperature: float = 0.0,
                 seed: int | None = 0, max_tokens: int | None = None) -> list[list[Reply]]:
        """``n`` replies to each chat prompt, in one batched generation (blocking). Prompt ``i``
        samples with seed ``seed + i`` (None: fresh randomness); greedy at temperature 0."""
        reqs = [self.request(m, n=n, temperature=temperature, seed=None if seed is None else seed + i,
                             max_tokens=max_tokens) for i, m in enumerate(prompts)]
        return [[self._reply(s) for s in samples] for samples in self._run(reqs)]

    # ---- asynchronous (batched) -------------------------------------------------------------
    async def _submit(self, req: Request) -> list[Sample]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._collector is None or self._collector.done():
            self._loop = loop
            self._queue = asyncio.Queue()
            self._collector = loop.create_task(self._collect(self._queue))
        fut: asyncio.Future[list[Sample]] = loop.create_future()
        assert self._queue is not None
        self._queue.put_nowait((req, fut))
        return await fut

    async def _collect(self, queue: asyncio.Queue[tuple[Request, asyncio.Future[list[Sample]]]]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            pending = [await queue.get()]
            await asyncio.sleep(LINGER_S)
            rows = pending[0][0].n
            while not queue.empty() and rows < self.max_rows:
                item = queue.get_nowait()
                pending.append(item)
                rows += item[0].n
            live = [(r, f) for r, f in pending if not f.done()]  # a cancelled caller needs no reply
            if not live:
                continue
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agentsynth-student")
            try:
                results = await loop.run_in_executor(self._executor, self._run, [r for r, _ in live])
            except Exception as exc:  # noqa: BLE001 - every waiting caller gets the failure
                for _, f in live:
                    if not f.done():
                        f.set_exception(ModelError(f"student generation failed: {type(exc).__name__}: {exc}"))
                continue
            self.batches += 1
            for (_, f), res in zip(live, results):
                if not f.done():
                    f.set_result(res)

    async def choices(self, messages: Sequence[Message], *, n: int = 1, temperature: float = 1.0, seed: int | None = None,
                      max_tokens: int | None = None, tools: list[dict[str, Any]] | None = None) -> tuple[list[Choice], int]:
        """``n`` replies to one chat prompt and the prompt's token count (the server's call)."""
        samples = await self._submit(self.request(messages, n=n, temperature=temperature, seed=seed, max_tokens=max_tokens))
        replies = [self._reply(s) for s in samples]
        return ([Choice({"role": "assistant", "content": r.text}, r.finish_reason, r.completion_tokens) for r in replies],
                replies[0].prompt_tokens)

    async def complete(self, messages: Sequence[Message], *, temperature: float, seed: int | None, max_tokens: int | None,
                       tools: list[dict[str, Any]] | None = None) -> Completion:
        """One reply (the ChatModel call)."""
        t0 = time.perf_counter()
        samples = await self._submit(self.request(messages, n=1, temperature=temperature, seed=seed, max_tokens=max_tokens))
        r = self._reply(samples[0])
        return Completion({"role": "assistant", "content": r.text}, r.finish_reason, r.prompt_tokens, r.completion_tokens,
                          latency_s=time.perf_counter() - t0)

    async def aclose(self) -> None:
        """Stop the collector and the worker thread (a later call starts them again)."""
        collector, self._collector = self._collector, None
        if collector is not None and not collector.done():
            collector.cancel()
            if self._loop is asyncio.get_running_loop():
                try:
                    await collector
                except asyncio.CancelledError:
                    pass
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None
