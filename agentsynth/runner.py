"""The runner: plan a spec's episodes, run them concurrently against a model, store each one.

Resuming is running the same spec under the same name again: episodes already stored ``ok`` are
skipped, failed ones are run again (their row replaced, their token costs carried over), none is
duplicated. Every finished episode goes through one :class:`~agentsynth.store.writer.StoreWriter`.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._version import __version__
from .env import TextEnv
from .episode import EnvCaller, RecentSet, request_seed, run_episode
from .models import schemes
from .models.base import ChatModel, ModelError
from .registry import UnknownEnvironment, resolve
from .signals import JudgeError, JudgeFn, JudgeReply, SignalType
from .spec import EnvConfig, PlannedEpisode, RunSpec, SpecError, SpecWarning, env_configs, plan, planned_count
from .store import runs as store_runs
from .store.connection import connect
from .store.writer import EpisodeRecord, StoreWriter


@dataclass
class RunResult:
    """What a run did, read back from the store at the end."""

    run_id: str
    name: str
    store: Path
    status: str
    planned: int
    skipped: int
    ran: int
    ok: int
    errors: int
    first_pass_rate: float | None
    last_pass_rate: float | None
    prompt_tokens: int
    completion_tokens: int
    judge_tokens: int
    retries: int
    elapsed_s: float
    error_examples: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """A human summary, one fact per line."""
        pct = lambda x: "n/a" if x is None else f"{100 * x:.1f}%"  # noqa: E731
        out = [
            f"run {self.name} ({self.run_id}): {self.status}",
            f"episodes: {self.ok} ok, {self.errors} failed of {self.planned} planned"
            f" ({self.ran} run now, {self.skipped} already stored) in {self.elapsed_s:.1f}s",
            f"pass rate (truth): first turn {pct(self.first_pass_rate)}, last turn {pct(self.last_pass_rate)}",
            f"tokens: {self.prompt_tokens:,} prompt + {self.completion_tokens:,} completion"
            + (f" + {self.judge_tokens:,} grading" if self.judge_tokens else "")
            + (f"; {self.retries} retried calls" if self.retries else ""),
            f"store: {self.store}",
        ]
        if self.error_examples:
            out.append("errors (see episodes.error): " + " | ".join(self.error_examples))
        return out


def build_model(spec: RunSpec, judge: bool = False) -> ChatModel:
    """The spec's policy model (or with ``judge``, its ``[judge]`` model): an in-process model for a
    registered scheme without a base URL (``sim``, ``student:PATH``: see
    :mod:`agentsynth.models.schemes`), else an OpenAI-compatible endpoint (the key read from the
    variable named by ``api_key_env``)."""
    src: Any = spec.judge if judge else spec
    if schemes.in_process(src.model, src.base_url):
        if src.api_key_env and not os.environ.get(src.api_key_env):
            where = "[judge] api_key_env" if judge else "api_key_env"
            warnings.warn(f"{where} names {src.api_key_env}, which is not set; ignored: model {src.model!r} runs in this "
                          "process and uses no key", SpecWarning, stacklevel=2)
        request = schemes.SchemeRequest(schemes.split(src.model)[1], options=src.sim,
                                        section="[judge.sim]" if judge else "[sim]", judge=judge)
        try:
            return schemes.build(src.model, request)
        except schemes.SchemeError as exc:
            raise SpecError(str(exc)) from None
    from .models.openai_compat import OpenAIModel, api_key_from_env
    from .models.retry import RetryPolicy

    return OpenAIModel(
        src.model,
        base_url=src.base_url,
        api_key=api_key_from_env(src.api_key_env, src.base_url),
        timeout_s=spec.timeout_s,
        concurrency=spec.concurrency,
        policy=RetryPolicy(max_retries=spec.max_retries),
        transport=spec.transport,
    )


@dataclass
class _Shared:
    """What a run's workers share."""

    todo: Iterator[PlannedEpisode]
    envs: list[tuple[str, type[TextEnv]]]
    configs: list[EnvConfig]
    config_json: list[str]
    callers: list[EnvCaller]
    needs_model: list[bool]
    model: ChatModel
    judge: ChatModel
    state: store_runs.RunState
    writer: StoreWriter
    counts: dict[str, int]
    examples: list[str]
    stop: asyncio.Event
    total: int
    tasks_sent: RecentSet


def _config_json(cfg: EnvConfig) -> str:
    return json.dumps(cfg.kwargs, sort_keys=True, default=str)


def _probe(configs: list[EnvConfig]) -> tuple[list[tuple[str, type[TextEnv]]], list[SignalType], list[bool]]:
    """Resolve and instantiate each config once: bad ids and kwargs fail before anything runs.
    Returns (name, class) per config, the signal types, and whether each config's graders call a model."""
    resolved, types, needs_model = [], [], []
    for i, cfg in enumerate(configs):
        try:
            ref = resolve(cfg.ref)
        except UnknownEnvironment as exc:
            raise SpecError(f"envs: {exc}") from None
        try:
            env = ref.cls(**cfg.kwargs)
        except Exception as exc:  # noqa: BLE001 - user code: report it
            raise SpecError(f"envs: cannot create {cfg.ref} with {cfg.kwargs}: {type(exc).__name__}: {exc}") from None
        resolved.append((ref.name, ref.cls))
        types += [g.signal_type for g in env.graders.values()]
        needs_model.append(any(getattr(g, "uses_model", False) for g in env.graders.values()))
        env.close()
    return resolved, types, needs_model


class Runner:
    """Runs a :class:`RunSpec`. ``Runner(spec).run()`` from a script; the CLI does the same.

    ``on_progress(done, total, ok, errors)`` is called after each episode of this session.
    ``fail_fast``: stop when this many episodes failed before any succeeded (a bad key, a broken
    environment) instead of spending the whole plan on it.
    """

    def __init__(
        self,
        spec: RunSpec,
        *,
        model: ChatModel | None = None,
        restart: bool = False,
        on_progress: Callable[[int, int, int, int], None] | None = None,
        on_start: Callable[[int, int], None] | None = None,
        fail_fast: int = 25,
    ):
        self.spec = spec
        self.model = model
        self.restart = restart
        self.on_progress = on_progress
        self.on_start = on_start
        self.fail_fast = fail_fast

    def run(self) -> RunResult:
        """Run to the end (blocking)."""
        return asyncio.run(self.arun())

    async def arun(self) -> RunResult:
        """Run to the end (in a running event loop)."""
        spec = self.spec
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        configs = env_configs(spec)
        envs, types, needs_model = _probe(configs)
        model = self.model or build_model(spec)
        judge = model if spec.judge_is_policy() else build_model(spec, judge=True)
        try:
            return await self._run(model, judge, configs, envs, types, needs_model, t0)
        finally:
            if self.model is None:
                await model.aclose()
            if judge is not model:
                await judge.aclose()

    async def _run(self, model: ChatModel, judge: ChatModel, configs: list[EnvConfig], envs: list[tuple[str, type[TextEnv]]],
                   types: list[SignalType], needs_model: list[bool], t0: float) -> RunResult:
        spec = self.spec
        loop = asyncio.get_running_loop()
        con = connect(spec.store, read_only=False)
        try:
            store_runs.record_signal_types(con, types)
            total = planned_count(spec)
            state = store_runs.begin_run(
                con, name=spec.name, spec=spec.content(), spec_hash=spec.spec_hash(), model=model.name,
                base_url=model.base_url, planned=total, version=__version__, restart=self.restart,
                kind=spec.purpose,
            )
            n_todo = total - len(state.done)
            todo = (p for p in plan(spec, configs) if p.episode_id not in state.done)  # streamed
            if self.on_start:
                self.on_start(total, n_todo)
            counts = {"done": 0, "ok": 0, "errors": 0}
            examples: list[str] = []
            stop = asyncio.Event()
            status = "interrupted"
            writer = StoreWriter(con)
            executor = ThreadPoolExecutor(max_workers=max(1, min(spec.concurrency, 64)), thread_name_prefix="agentsynth-env")
            callers = [EnvCaller(executor, inline_ok=not uses_model) for uses_model in needs_model]
            gc_threshold = gc.get_threshold()
            gc.freeze()  # what setup allocated is long-lived: keep it out of every collection
            gc.set_threshold(max(gc_threshold[0], 20_000), gc_threshold[1], gc_threshold[2])
            try:
                ctx = _Shared(todo, envs, configs, [_config_json(c) for c in configs], callers, needs_model, model, judge, state, writer,
                              counts, examples, stop, n_todo, RecentSet())
                await asyncio.gather(*[self._worker(ctx) for _ in range(min(spec.concurrency, max(1, n_todo)))])
                status = "failed" if stop.is_set() else "completed"
            finally:
                gc.set_threshold(*gc_threshold)
                gc.unfreeze()
                executor.shutdown(wait=False, cancel_futures=True)
                try:
                    writer.close()
                finally:
                    if status == "interrupted":
                        store_runs.finish_run(con, state.run_id, status)
            result = self._result(con, state, total, n_todo, status, loop.time() - t0, examples, model)
            store_runs.finish_run(con, state.run_id, result.status)
            return result
        finally:
            con.close()

    async def _worker(self, c: "_Shared") -> None:
        spec = self.spec
        loop = asyncio.get_running_loop()
        loop_thread = threading.get_ident()
        model = c.model
        mine: dict[int, TextEnv] = {}
        try:
            for p in c.todo:
                if c.stop.is_set():
                    return
                env = mine.get(p.config)
                if env is None:
                    env = mine[p.config] = c.envs[p.config][1](**c.configs[p.config].kwargs)

                def make_models(eid: str = p.episode_id, uses_model: bool = c.needs_model[p.config]) -> tuple[JudgeFn | None, JudgeFn | None]:
                    if not uses_model:
                        return None, None
                    return (self._bridge(model, loop, loop_thread, eid + ":policy", spec.temperature),
                            self._bridge(c.judge, loop, loop_thread, eid + ":judge", spec.judge.temperature if spec.judge else 0.0))

                rec: EpisodeRecord = await run_episode(
                    env=env, model=model, call_env=c.callers[p.config], run_id=c.state.run_id, episode_id=p.episode_id,
                    env_id=c.envs[p.config][0], env_config=c.config_json[p.config], seed=p.seed, sample=p.sample,
                    run_seed=spec.seed, temperature=spec.temperature, max_tokens=spec.max_tokens,
                    system_prompt=spec.system_prompt, make_models=make_models, carry=c.state.failed.get(p.episode_id),
                    tasks_sent=c.tasks_sent,
                )
                c.writer.submit(rec)
                counts = c.counts
                counts["done"] += 1
                if rec.episode["status"] == "ok":
                    counts["ok"] += 1
                else:
                    counts["errors"] += 1
                    if len(c.examples) < 3 and rec.episode["error"] not in c.examples:
                        c.examples.append(rec.episode["error"])
                    if counts["ok"] == 0 and counts["errors"] >= self.fail_fast:
                        c.stop.set()
                if self.on_progress:
                    self.on_progress(counts["done"], c.total, counts["ok"], counts["errors"])
                while c.writer.pending() > 4 * c.writer.batch_size:  # backpressure: memory stays flat
                    await asyncio.sleep(0.005)
        finally:
            for env in mine.values():
                env.close()

    def _bridge(self, m: ChatModel, loop: asyncio.AbstractEventLoop, loop_thread: int, key: str,
                temperature: float) -> JudgeFn:
        """A blocking call to ``m`` for graders, which run in a worker thread."""
        spec = self.spec

        def ask(messages: list[dict[str, Any]]) -> JudgeReply:
            if threading.get_ident() == loop_thread:
                raise JudgeError("a grader called a model from the event loop; set uses_model = True on it")
            coro = m.complete(messages, temperature=temperature, seed=request_seed(spec.seed, key, len(messages)),
                              max_tokens=spec.max_tokens)
            try:
                comp = asyncio.run_coroutine_threadsafe(coro, loop).result()
            except ModelError as exc:
                raise JudgeError(str(exc)) from None
            return JudgeReply(comp.message.get("content") or "", comp.prompt_tokens + comp.completion_tokens)

        return ask

    def _result(self, con: Any, state: store_runs.RunState, planned: int, ran: int, status: str, elapsed: float,
                examples: list[str], model: ChatModel) -> RunResult:
        row = con.execute(
            """SELECT count(*) FILTER (status = 'ok'), count(*) FILTER (status <> 'ok'),
                      avg(passed_first::INT) FILTER (status = 'ok'), avg(passed_last::INT) FILTER (status = 'ok'),
                      coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0), coalesce(sum(judge_tokens), 0)
               FROM episodes WHERE run_id = ?""",
            [state.run_id],
        ).fetchone()
        ok, errors, first, last, pt, ct, jt = row
        if status == "completed" and ok < planned:
            status = "incomplete"
        return RunResult(
            run_id=state.run_id, name=self.spec.name, store=Path(self.spec.store), status=status, planned=planned,
            skipped=planned - ran, ran=ran, ok=ok, errors=errors, first_pass_rate=first, last_pass_rate=last,
            prompt_tokens=pt, completion_tokens=ct, judge_tokens=jt, retries=getattr(model, "retries", 0),
            elapsed_s=elapsed, error_examples=examples,
        )


def run(spec: RunSpec | str | Path, **kwargs: Any) -> RunResult:
    """Run a spec (a :class:`RunSpec` or a TOML path) to the end; kwargs go to :class:`Runner`."""
    if not isinstance(spec, RunSpec):
        from .spec import load_spec

        spec = load_spec(spec)
    return Runner(spec, **kwargs).run()
