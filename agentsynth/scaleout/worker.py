"""The Ray worker actor: environment instances, model clients, episodes played with the local
runner's code (:func:`agentsynth.rollout.play`).

A worker runs the batches of planned episodes the driver hands it and returns each finished
episode's :class:`~agentsynth.store.writer.EpisodeRecord` (it never writes the store). It holds
what a local run holds: one environment instance per configuration per episode at work (the code
domain's sandbox runs in this process's children), a thread pool for environment calls, the
policy and judge clients — their in-flight limits set by the driver
(:class:`~agentsynth.scaleout.limits.SharedLimiter`) — and its share of the run's ``concurrency``
as places for episodes at work (an episode waiting out a retry's backoff lends its place, as
locally: :mod:`agentsynth.plan_queue`). Nothing in this module imports Ray: the driver wraps the
class with ``ray.remote``.
"""

from __future__ import annotations

import asyncio
import gc
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .._version import __version__
from ..env import TextEnv
from ..episode import EnvCaller, RecentSet
from ..models import schemes
from ..models.base import ChatModel, ClientStats, EndpointDown, backoff_sleep
from ..models.breaker import CLOSED, DOWN
from ..models.endpoints import EndpointPool
from ..plan_queue import Place, Places
from ..registry import resolve
from ..rollout import Setup, play
from ..runner import BACKOFF_ALIVE, build_model
from ..spec import PlannedEpisode, RunSpec, env_configs
from ..store.writer import EpisodeRecord
from .cluster import one_line, python_version
from .limits import SharedLimiter, Tally

Outcome = tuple[EpisodeRecord | None, str | None]
"""A finished episode's record, or (None, why) when the endpoint went down under it (not stored:
a re-run resumes it)."""


def client_pool(model: Any) -> EndpointPool | None:
    """The endpoints of an endpoint client (None for an in-process model)."""
    pool = getattr(model, "pool", None)
    return pool if isinstance(pool, EndpointPool) else None


def limit_key(model: str, index: int) -> str:
    """The key of one endpoint's limit: ``policy/0``, ``judge/1``..."""
    return f"{model}/{index}"


def _transport(spec: RunSpec) -> str:
    """The transport a local run of ``spec`` would use (by its whole ``concurrency``, not a worker's
    share: aiohttp's lower CPU per call is what matters at C = 256 even with 128 per worker)."""
    if spec.transport != "auto" or schemes.in_process(spec.model, spec.base_url):
        return spec.transport
    from ..models.openai_compat import pick_transport

    return pick_transport("auto", spec.concurrency)


class EpisodeWorker:
    """One worker: ``share`` episodes at work at most, ``limits`` the driver's current
    (limit, generation) per endpoint (``policy``, and ``judge`` for a judge of its own)."""

    def __init__(self, spec: RunSpec, run_id: str, envs: list[tuple[str, bytes | None]], needs_model: list[bool],
                 share: int, limits: dict[str, tuple[int, int]]):
        self.spec = spec
        self.run_id = run_id
        self.env_payloads = envs
        self.needs_model = needs_model
        self.share = share
        self.limits = limits
        self.setup: Setup | None = None
        self.limiters: dict[str, SharedLimiter] = {}
        self.pools: list[EndpointPool] = []
        self._free: list[dict[int, TextEnv]] = []
        self.places = Places(share, BACKOFF_ALIVE * share, spawn=lambda: None)  # a batch's episodes are tasks already
        self._ready: asyncio.Task[str | None] | None = None

    def pid(self) -> int:
        """This worker's process id (tests kill it)."""
        return os.getpid()

    async def ready(self) -> dict[str, Any]:
        """Set up (once) and say whether this worker can run the spec: ``problem`` is None or one
        line saying what is wrong (an environment that cannot be imported or built here)."""
        if self._ready is None:
            self._ready = asyncio.get_running_loop().create_task(self._setup())
        problem = await self._ready
        return {"problem": problem, "version": __version__, "python": python_version(), "pid": os.getpid()}

    async def _setup(self) -> str | None:
        spec = self.spec
        configs = env_configs(spec)
        classes: list[tuple[str, type[TextEnv]]] = []
        for (ref, blob), cfg in zip(self.env_payloads, configs):
            try:
                if blob is not None:
                    from ray import cloudpickle

                    cls = cloudpickle.loads(blob)
                    name = cls.name or ref
                else:
                    r = resolve(ref)
                    cls, name = r.cls, r.name
            except Exception as exc:  # noqa: BLE001 - user code, a missing module: one line
                return (f"envs: {ref} cannot be imported on the Ray workers ({one_line(exc, 200)}); install its module "
                        "on every node, or put it on their PYTHONPATH")
            try:
                cls(**cfg.kwargs).close()
            except Exception as exc:  # noqa: BLE001
                return f"envs: cannot create {ref} on a Ray worker: {type(exc).__name__}: {one_line(exc, 200)}"
            classes.append((name, cls))
        # this worker's clients: its share of the run's concurrency, on the transport a local run would pick for the whole
        local = spec.model_copy(update={"concurrency": self.share, "transport": _transport(spec)})
        model = build_model(local)
        judge = model if spec.judge_is_policy() else build_model(local, judge=True)
        for name, m in (("policy", model), ("judge", judge)):
            if name == "judge" and judge is model:
                break
            pool = client_pool(m)
            if pool is None:
                continue
            self.pools.append(pool)
            for ep in pool.endpoints:  # each endpoint's limit is the driver's (limits.py)
                key = limit_key(name, ep.index)
                limit, generation = self.limits.get(key, (self.share, 0))
                ep.limiter = self.limiters[key] = SharedLimiter(ep.limiter.maximum, limit, generation)
        executor = ThreadPoolExecutor(max_workers=max(1, min(self.share, 64)), thread_name_prefix="agentsynth-env")
        callers = [EnvCaller(executor, inline_ok=not uses) for uses in self.needs_model]
        self.setup = Setup(spec, self.run_id, classes, configs, callers, self.needs_model, model, judge, RecentSet())
        # as the local runner does for its run: what setup allocated is long-lived (out of every
        # collection), and young collections come every 20,000 allocations, not 700
        gc.freeze()
        t0, t1, t2 = gc.get_threshold()
        gc.set_threshold(max(t0, 20_000), t1, t2)
        return None

    def set_limit(self, key: str, limit: int, generation: int) -> None:
        """The driver moved endpoint ``key``'s limit: this worker's share of it."""
        self.limits[key] = (limit, generation)
        if key in self.limiters:
            self.limiters[key].set_limit(limit, generation)

    def report(self) -> tuple[dict[str, ClientStats], dict[str, Tally]]:
        """Each endpoint client's stats (``policy``, ``judge``) and each endpoint's answers counted
        since the last report (by :func:`limit_key`)."""
        stats: dict[str, ClientStats] = {}
        s = self.setup
        if s is not None:
            for name, m in (("policy", s.model), ("judge", s.judge)):
                if name == "judge" and s.judge is s.model:
                    break
                if callable(getattr(m, "stats", None)):
                    stats[name] = m.stats()  # type: ignore[attr-defined]
        return stats, {key: lim.take_tally() for key, lim in self.limiters.items()}

    async def run(self, batch: list[tuple[PlannedEpisode, dict[str, int] | None]], run_id: str) -> list[Outcome]:
        """Play a batch of planned episodes (with their carries) of run ``run_id``, all at once
        within this worker's places; their outcomes in the batch's order."""
        await self.ready()
        assert self.setup is not None
        self.setup.run_id = run_id
        return list(await asyncio.gather(*(self._one(p, carry) for p, carry in batch)))

    async def _one(self, p: PlannedEpisode, carry: dict[str, int] | None) -> Outcome:
        assert self.setup is not None
        for pool in self.pools:  # start nothing while a model has no usable endpoint
            if pool.state != CLOSED:
                try:
                    await pool.wait_usable()
                except EndpointDown as exc:
                    return None, str(exc)
        mine = self._free.pop() if self._free else {}
        place = Place(self.places)
        try:
            await place.take()
            lending = backoff_sleep.set(place.lend)  # a retry's backoff lends the place
            try:
                rec = await play(self.setup, mine, p, carry)
            finally:
                backoff_sleep.reset(lending)
        except EndpointDown as exc:
            return None, str(exc)
        finally:
            place.leave()
            self._free.append(mine)
        if rec.episode["status"] != "ok":
            down = next((pool.down_error() for pool in self.pools if pool.state == DOWN), None)
            if down is not None:  # failed because the endpoint went down: left for a re-run
                return None, str(down)
        return rec, None

    async def close(self) -> None:
        """Close the environments and the model clients."""
        for mine in self._free:
            for env in mine.values():
                env.close()
        self._free.clear()
        s = self.setup
        if s is not None:
            models: list[ChatModel] = [s.model] if s.judge is s.model else [s.model, s.judge]
            for m in models:
                await m.aclose()
