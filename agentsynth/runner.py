"""The runner: plan a spec's episodes, run them concurrently against a model, store each one.

Resuming is running the same spec under the same name again: episodes already stored ``ok`` are
skipped, failed ones are run again (their row replaced, their token costs carried over), none is
duplicated. Every finished episode goes through one :class:`~agentsynth.store.writer.StoreWriter`.

A run rides out a bad endpoint: an episode whose model call ran out of retries on a transient
failure is run again at the end of the plan, up to ``episode_retries`` times (what re-running the
command would do, within the run); while a model's endpoint is not answering (its breaker open,
and so every other endpoint's when ``base_url`` lists several) no episode starts, and if it stays
down the run ends ``failed`` with one line, leaving the episodes it did not finish unstored for a
re-run (:mod:`agentsynth.models.breaker`, :mod:`agentsynth.models.endpoints`). An episode waiting out
a retry's backoff lends its place to another (:mod:`agentsynth.plan_queue`), so the endpoint keeps
its calls in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._version import __version__
from .env import TextEnv
from .episode import EnvCaller, RecentSet
from .models import schemes
from .models.base import ChatModel, EndpointDown, backoff_sleep
from .models.breaker import CLOSED, DOWN
from .models.endpoints import EndpointPool
from .models.build import chat_model
from .plan_queue import Place, Places, PlanQueue
from .registry import UnknownEnvironment, resolve
from .rollout import Setup, config_json, play
from .run_report import RunResult, RunStatus, client_stats, read_result
from .signals import SignalType
from .spec import EnvConfig, PlannedEpisode, RunSpec, SpecError, SpecWarning, env_configs, plan, planned_count
from .store import runs as store_runs
from .store.connection import connect
from .store.run_lock import RunLock
from .store.writer import EpisodeRecord, StoreWriter


def build_model(spec: RunSpec, judge: bool = False) -> ChatModel:
    """The spec's policy model (or with ``judge``, its ``[judge]`` model): an in-process model for a
    registered scheme without a base URL (``sim``, ``student:PATH``: see
    :mod:`agentsynth.models.schemes`), else an OpenAI-compatible endpoint (the key read from the
    variable named by ``api_key_env``), built by :func:`agentsynth.models.build.chat_model`."""
    src: Any = spec.judge if judge else spec
    if schemes.in_process(src.model, src.base_url) and src.api_key_env and not os.environ.get(src.api_key_env):
        where = "[judge] api_key_env" if judge else "api_key_env"
        warnings.warn(f"{where} names {src.api_key_env}, which is not set; ignored: model {src.model!r} runs in this "
                      "process and uses no key", SpecWarning, stacklevel=2)
    try:
        return chat_model(src.model, base_url=src.base_url, api_key_env=src.api_key_env, options=src.sim, judge=judge,
                          timeout_s=spec.timeout_s, concurrency=spec.concurrency, max_retries=spec.max_retries,
                          transport=spec.transport, unreachable_s=spec.unreachable_s)
    except schemes.SchemeError as exc:
        raise SpecError(str(exc)) from None


BACKOFF_ALIVE = 4
"""Episodes alive at most, in units of ``concurrency``, while some wait out backoffs."""


YIELD_EVERY_S = 0.02
"""The longest a worker runs episodes without giving the event loop a turn (an in-process model
may never suspend)."""


@dataclass
class _Shared:
    """What a run's workers share."""

    todo: PlanQueue
    envs: list[tuple[str, type[TextEnv]]]
    configs: list[EnvConfig]
    config_json: list[str]
    callers: list[EnvCaller]
    needs_model: list[bool]
    model: ChatModel
    judge: ChatModel
    pools: list[EndpointPool]
    state: store_runs.RunState
    writer: StoreWriter
    counts: dict[str, int]
    examples: list[str]
    stop: asyncio.Event
    total: int
    tasks_sent: RecentSet
    reruns: dict[str, int]
    places: Places
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    down: EndpointDown | None = None
    setup: Setup | None = None

    def status(self) -> RunStatus:
        """The run as it goes."""
        c = self.counts
        return RunStatus(c["done"], self.total, c["ok"], c["errors"], self.todo.rerunning,
                         client_stats([self.model] if self.judge is self.model else [self.model, self.judge]))


_config_json = config_json


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
        try:
            env.check_seeds(cfg.seeds)
        except ValueError as exc:
            raise SpecError(f"envs: {cfg.ref}: {exc}") from None
        resolved.append((ref.name, ref.cls))
        types += [g.signal_type for g in env.graders.values()]
        needs_model.append(any(getattr(g, "uses_model", False) for g in env.graders.values()))
        env.close()
    return resolved, types, needs_model


class Runner:
    """Runs a :class:`RunSpec`. ``Runner(spec).run()`` from a script; the CLI does the same.

    ``on_start(total, todo)`` is called once the plan is known; ``on_progress(done, total, ok,
    errors)`` after each episode of this session (``done`` counts each episode once, a rerun
    that succeeds moves one from ``errors`` to ``ok``); ``on_status(RunStatus)`` every
    ``status_every_s`` seconds and at the end, with what the endpoint client is doing (in-flight
    limit, retries by cause, breaker), so that it shows while no episode finishes.
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
        on_status: Callable[[RunStatus], None] | None = None,
        status_every_s: float = 0.25,
        fail_fast: int = 25,
    ):
        self.spec = spec
        self.model = model
        self.restart = restart
        self.on_progress = on_progress
        self.on_start = on_start
        self.on_status = on_status
        self.status_every_s = status_every_s
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
        run_lock = RunLock(spec.store).acquire()  # one run per store; readers come and go (store/writer.py)
        try:
            with contextlib.closing(connect(spec.store, read_only=False)) as con:
                store_runs.record_signal_types(con, types)
                total = planned_count(spec)
                state = store_runs.begin_run(
                    con, name=spec.name, spec=spec.content(), spec_hash=spec.spec_hash(), model=model.name,
                    base_url=model.base_url, planned=total, version=__version__, restart=self.restart,
                    kind=spec.purpose,
                )
            run_lock.name_run(state.run_id)
            n_todo = total - len(state.done)
            todo = PlanQueue((p for p in plan(spec, configs) if p.episode_id not in state.done), state.failed)  # streamed
            if self.on_start:
                self.on_start(total, n_todo)
            counts = {"done": 0, "ok": 0, "errors": 0}
            examples: list[str] = []
            stop = asyncio.Event()
            status = "interrupted"
            writer = StoreWriter(spec.store)
            executor = ThreadPoolExecutor(max_workers=max(1, min(spec.concurrency, 64)), thread_name_prefix="agentsynth-env")
            callers = [EnvCaller(executor, inline_ok=not uses_model) for uses_model in needs_model]
            pools = [p for m in dict.fromkeys([model, judge]) if isinstance(p := getattr(m, "pool", None), EndpointPool)]
            n_workers = min(spec.concurrency, max(1, n_todo))
            places = Places(n_workers, BACKOFF_ALIVE * n_workers, spawn=lambda: self._spawn(ctx))
            ctx = _Shared(todo, envs, configs, [_config_json(c) for c in configs], callers, needs_model, model, judge, pools,
                          state, writer, counts, examples, stop, n_todo, RecentSet(), {}, places)
            ticker = loop.create_task(self._tick(ctx)) if self.on_status else None
            gc_threshold = gc.get_threshold()
            gc.freeze()  # what setup allocated is long-lived: keep it out of every collection
            gc.set_threshold(max(gc_threshold[0], 20_000), gc_threshold[1], gc_threshold[2])
            try:
                await self._work(ctx, n_workers)
                status = "failed" if stop.is_set() else "completed"
            finally:
                if ticker is not None:
                    ticker.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await ticker
                gc.set_threshold(*gc_threshold)
                gc.unfreeze()
                executor.shutdown(wait=False, cancel_futures=True)
                try:
                    writer.close()
                finally:
                    if status == "interrupted":
                        with contextlib.closing(connect(spec.store, read_only=False, migrate=False)) as con:
                            store_runs.finish_run(con, state.run_id, status)
            if self.on_status:
                self.on_status(ctx.status())
            with contextlib.closing(connect(spec.store, read_only=False, migrate=False)) as con:
                result = read_result(con, name=spec.name, store=Path(spec.store), run_id=state.run_id, planned=total, ran=n_todo,
                                     status=status, elapsed=loop.time() - t0, examples=examples, reran=len(ctx.reruns),
                                     down=ctx.down, models=[model] if judge is model else [model, judge])
                store_runs.finish_run(con, state.run_id, result.status)
            return result
        finally:
            run_lock.release()

    def _spawn(self, c: _Shared) -> None:
        c.places.workers += 1
        c.tasks.append(asyncio.get_running_loop().create_task(self._worker(c)))

    async def _work(self, c: _Shared, n: int) -> None:
        """Run the workers to the end: ``n`` at first, more while episodes wait out backoffs (up to
        ``BACKOFF_ALIVE`` × ``n`` alive, see :class:`~agentsynth.plan_queue.Places`)."""
        for _ in range(n):
            self._spawn(c)
        waited = 0
        while waited < len(c.tasks):  # workers spawned meanwhile are awaited too
            batch = c.tasks[waited:]
            await asyncio.gather(*batch)
            waited += len(batch)

    async def _tick(self, c: _Shared) -> None:
        assert self.on_status is not None
        while True:
            await asyncio.sleep(self.status_every_s)
            self.on_status(c.status())

    async def _gate(self, c: _Shared) -> None:
        """Start nothing while a model has no usable endpoint (every breaker open); EndpointDown
        once all its endpoints are given up."""
        for p in c.pools:
            if p.state != CLOSED:
                await p.wait_usable()

    def _stop_down(self, c: _Shared, exc: EndpointDown) -> None:
        if c.down is None:
            c.down = exc
        c.stop.set()
        c.todo.stop()

    async def _worker(self, c: _Shared) -> None:
        mine: dict[int, TextEnv] = {}
        loop = asyncio.get_running_loop()
        yielded = loop.time()
        try:
            while True:
                try:
                    await self._gate(c)
                except EndpointDown as exc:
                    self._stop_down(c, exc)
                    return
                item = await c.todo.take()
                if item is None:
                    return
                p, carry, rerun = item
                place = Place(c.places)
                try:
                    await place.take()
                    if c.stop.is_set():
                        return
                    lending = backoff_sleep.set(place.lend)  # this task's retries lend the place while they wait
                    try:
                        rec = await self._episode(c, mine, p, carry)
                    finally:
                        backoff_sleep.reset(lending)
                except EndpointDown as exc:  # not finished: not stored, a re-run resumes it
                    self._stop_down(c, exc)
                    return
                finally:
                    place.leave()
                    c.todo.finish()
                self._record(c, p, rec, rerun)
                while c.writer.pending() > 10 * c.writer.batch_size:  # backpressure (a reader holding the file): memory stays flat
                    await asyncio.sleep(0.005)
                if loop.time() - yielded > YIELD_EVERY_S:  # an in-process model may never suspend: let Ctrl-C, the
                    await asyncio.sleep(0)                # progress bar and other workers in at least this often
                    yielded = loop.time()
        finally:
            c.places.workers -= 1
            for env in mine.values():
                env.close()

    async def _episode(self, c: _Shared, mine: dict[int, TextEnv], p: PlannedEpisode, carry: dict[str, int] | None) -> EpisodeRecord:
        if c.setup is None:  # what every episode plays with (shared with the Ray workers: agentsynth.rollout)
            c.setup = Setup(self.spec, c.state.run_id, c.envs, c.configs, c.callers, c.needs_model, c.model, c.judge,
                            c.tasks_sent, c.config_json)
        return await play(c.setup, mine, p, carry)

    def _record(self, c: _Shared, p: PlannedEpisode, rec: EpisodeRecord, rerun: bool) -> None:
        """Store a finished episode, count it, and queue it again if it failed transiently."""
        ok = rec.episode["status"] == "ok"
        if not ok and any(p.state == DOWN for p in c.pools):
            return  # failed because the endpoint went down (e.g. in a grader's call): left for a re-run
        c.writer.submit(rec)
        counts = c.counts
        if not rerun:
            counts["done"] += 1
            counts["ok" if ok else "errors"] += 1
        elif ok:
            counts["ok"] += 1
            counts["errors"] -= 1
        if not ok:
            eid = p.episode_id
            if rec.retryable and c.reruns.get(eid, 0) < self.spec.episode_retries and not c.stop.is_set():
                c.reruns[eid] = c.reruns.get(eid, 0) + 1
                e = rec.episode
                c.todo.again(p, {k: e[k] for k in ("prompt_tokens", "completion_tokens", "judge_tokens", "attempts", "tries")})
            elif len(c.examples) < 3 and rec.episode["error"] not in c.examples:
                c.examples.append(rec.episode["error"])
            if counts["ok"] == 0 and counts["errors"] >= self.fail_fast:
                c.stop.set()
                c.todo.stop()
        if self.on_progress:
            self.on_progress(counts["done"], c.total, counts["ok"], counts["errors"])


def run(spec: RunSpec | str | Path, **kwargs: Any) -> RunResult:
    """Run a spec (a :class:`RunSpec` or a TOML path) to the end; kwargs go to :class:`Runner`."""
    if not isinstance(spec, RunSpec):
        from .spec import load_spec

        spec = load_spec(spec)
    return Runner(spec, **kwargs).run()
