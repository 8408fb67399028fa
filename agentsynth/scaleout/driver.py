"""The Ray driver: :class:`RayRunner` plans, hands out episodes, and stays the one store writer.

It is the local :class:`~agentsynth.runner.Runner` with the episodes played elsewhere: the run's
bookkeeping (the store's resume logic, the single :class:`~agentsynth.store.writer.StoreWriter`,
counts, reruns after transient failures, fail-fast, the summary) is the runner's own code; only
:meth:`RayRunner._work` differs. Each worker actor (:mod:`.worker`) gets its share of
``concurrency``; ``LANES`` lanes per worker each keep one batch of episodes in flight to it, so a
worker holds at most about twice its share (backpressure: nothing is planned ahead of what the
workers can take, and lanes wait while the store writer is behind). A worker that dies (its
process killed, its node lost) fails its batches: their episodes go back to the head of the plan,
exactly as they were taken, and the next lane to ask — on any worker — runs them; Ray restarts the
actor meanwhile. Results arrive only through a batch's return value, so an episode is stored at
most once. When no worker comes back the run ends ``interrupted`` (:class:`.cluster.ClusterLost`)
with what finished stored. The per-endpoint limit across workers: :mod:`.limits`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from ..models.base import ClientStats, Completion, EndpointDown, EndpointStats
from ..run_report import RunResult
from ..runner import Runner, _probe, build_model
from ..spec import RaySpec, RunSpec, env_configs
from .cluster import ClusterError, ClusterLost, connect, env_payloads, one_line, python_version, worker_count, worker_problem
from .limits import GlobalLimit, shares
from .worker import client_pool, limit_key

LANES = 4
"""Batches in flight per worker."""
READY_S = 180.0
"""How long workers may take to start (a cold node imports Ray, agentsynth and the environments)."""
RESTART_S = 60.0
"""How long a dead worker may take to come back before the driver stops counting on it."""


class RemoteModel:
    """The driver's stand-in for the workers' copies of one model: its name and URL (stored with
    the run), and — for an endpoint client — their stats summed by the driver's polls."""

    def __init__(self, name: str, base_url: str | None):
        self.name = name
        self.base_url = base_url

    async def complete(self, messages: Sequence[dict[str, Any]], **kwargs: Any) -> Completion:
        raise RuntimeError("the driver of a Ray run calls no model: its workers do")

    async def aclose(self) -> None:
        """Nothing to release (the workers close their clients)."""


class RemoteClient(RemoteModel):
    """An endpoint client's stand-in: :meth:`stats` is the last poll's sum over the workers."""

    def __init__(self, name: str, base_url: str | None, concurrency: int):
        super().__init__(name, base_url)
        self.current = ClientStats(concurrency, concurrency, concurrency, 0, {}, "closed")

    def stats(self) -> ClientStats:
        return self.current


class RayRunner(Runner):
    """Runs a :class:`~agentsynth.spec.RunSpec` on Ray workers (``ray``: where; default the spec's
    ``[ray]`` table, else a local instance). Same arguments, callbacks, result and store as
    :class:`~agentsynth.runner.Runner`; :attr:`pids` holds the workers' process ids once started."""

    def __init__(self, spec: RunSpec, *, ray: RaySpec | None = None, **kwargs: Any):
        super().__init__(spec, **kwargs)
        self.ray_spec = ray or spec.ray or RaySpec()
        self.pids: list[int] = []
        self.restarts = 0
        self._actors: list[Any] = []
        self._shares: list[int] = []
        self._limits: dict[str, GlobalLimit] = {}
        self._views: dict[str, RemoteModel] = {}
        self._restarting: dict[int, asyncio.Task[bool]] = {}
        self._lost: str | None = None
        self.silent = False  # no worker answered for [ray] silent_s: the cluster is gone

    async def arun(self) -> RunResult:
        """Check the environments, connect, start and check the workers, then run (the local
        runner's :meth:`~agentsynth.runner.Runner._run` with :meth:`_work` dispatching to Ray)."""
        spec = self.spec
        t0 = asyncio.get_running_loop().time()
        configs = env_configs(spec)
        envs, types, needs_model = _probe(configs)
        model = await self._view(spec, "policy")
        judge = model if spec.judge_is_policy() else await self._view(spec, "judge")
        cluster = connect(self.ray_spec)
        try:
            payloads = env_payloads(envs, [c.ref for c in configs])
            await self._start(cluster.address, worker_count(self.ray_spec, cluster), payloads, needs_model)
            return await self._run(model, judge, configs, envs, types, needs_model, t0)  # type: ignore[arg-type]
        finally:
            await self._stop()
            cluster.close()

    async def _view(self, spec: RunSpec, key: str) -> RemoteModel:
        """Build the model here once (its key variable is checked as locally), keep its identity."""
        m = self.model if key == "policy" and self.model is not None else build_model(spec, judge=key == "judge")
        try:
            pool = client_pool(m)
            if pool is not None:
                for ep in pool.endpoints:  # one limit per endpoint, across all workers
                    self._limits[limit_key(key, ep.index)] = GlobalLimit(spec.concurrency)
                view: RemoteModel = RemoteClient(m.name, m.base_url, spec.concurrency)
            else:
                view = RemoteModel(m.name, m.base_url)
        finally:
            if m is not self.model:
                await m.aclose()
        self._views[key] = view
        return view

    async def _start(self, address: str, n: int, payloads: list[tuple[str, bytes | None]], needs_model: list[bool]) -> None:
        import ray

        from .worker import EpisodeWorker

        self._shares = shares(self.spec.concurrency, n)
        cls = ray.remote(EpisodeWorker).options(num_cpus=self.ray_spec.cpus_per_worker, max_restarts=-1,
                                                max_task_retries=0)
        for share in self._shares:
            mine = {k: (share, 0) for k in self._limits}
            self._actors.append(cls.remote(self.spec, "", payloads, needs_model, share, mine))
        try:
            infos = await asyncio.wait_for(asyncio.gather(*(a.ready.remote() for a in self._actors)), READY_S)
        except TimeoutError:
            raise ClusterError(f"the Ray workers did not start within {READY_S:g}s (is the cluster out of CPUs? "
                               f"{n} workers × {self.ray_spec.cpus_per_worker:g} CPUs)") from None
        except ray.exceptions.RayError as exc:
            raise ClusterError(worker_problem(exc, address)) from None
        from .._version import __version__

        for info in infos:
            if info["problem"]:
                raise ClusterError(info["problem"])
            if info["version"] != __version__:
                raise ClusterError(f"the Ray workers run agentsynth {info['version']}, this driver {__version__}: "
                                   "install the same version on every node")
            if info["python"] != python_version():
                raise ClusterError(f"the Ray workers run Python {info['python']}, this driver {python_version()}: "
                                   "use the same Python on every node")
        self.pids = [info["pid"] for info in infos]

    async def _stop(self) -> None:
        if not self._actors or self.silent:  # a gone cluster: nothing to tell it
            return
        import ray

        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*(a.close.remote() for a in self._actors), return_exceptions=True), 10)
        for a in self._actors:
            with contextlib.suppress(Exception):
                ray.kill(a, no_restart=True)
        self._actors.clear()

    async def _tick(self, c: Any) -> None:
        """Progress comes from :meth:`_poll` (it needs the workers' figures)."""

    async def _work(self, c: Any, n: int) -> None:
        """Dispatch the plan to the workers until it is done (see the module docstring)."""
        loop = asyncio.get_running_loop()
        batch = max(1, min(64, max(self._shares) // 2))
        lanes = [loop.create_task(self._lane(c, w, batch)) for w in range(len(self._actors)) for _ in range(LANES)]
        poller = loop.create_task(self._poll(c, lanes))
        try:
            await asyncio.wait(lanes)
        finally:
            for t in lanes:
                t.cancel()
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        if not self.silent:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._poll_once(), 5)
        for t in lanes:
            if not t.cancelled() and t.exception() is not None:
                raise t.exception()  # type: ignore[misc]
        left = c.todo.active > 0 or c.todo.take_nowait() is not None
        if left and not c.stop.is_set():
            raise ClusterLost(f"the Ray cluster went away ({self._lost or 'no worker left'}); the episodes that "
                              "finished are stored: run the same command again to resume")

    async def _lane(self, c: Any, w: int, size: int) -> None:
        import ray

        while not c.stop.is_set():
            while c.writer.pending() > 4 * c.writer.batch_size:  # backpressure: the writer is behind
                await asyncio.sleep(0.005)
            first = await c.todo.take()
            if first is None:
                return
            items = [first]
            while len(items) < size and (it := c.todo.take_nowait()) is not None:
                items.append(it)
            try:
                outcomes = await self._actors[w].run.remote([(p, carry) for p, carry, _ in items], c.state.run_id)
            except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as exc:
                for it in items:  # never finished: run again, here or on another worker
                    c.todo.put_back(it)
                if not await self._back(w, exc):
                    return
                continue
            except ray.exceptions.RayError as exc:
                for it in items:
                    c.todo.put_back(it)
                self._lost = one_line(exc, 200)
                return
            for (p, _, rerun), (rec, down) in zip(items, outcomes):
                c.todo.finish()
                if down is not None:
                    self._stop_down(c, EndpointDown(down, endpoint=str(self._views["policy"].base_url)))
                    continue
                self._record(c, p, rec, rerun)

    async def _back(self, w: int, exc: BaseException) -> bool:
        """Wait for worker ``w`` to come back (Ray restarts it); False if it does not."""
        task = self._restarting.get(w)
        if task is None or task.done():
            task = self._restarting[w] = asyncio.get_running_loop().create_task(self._restart(w, exc))
        return await asyncio.shield(task)

    async def _restart(self, w: int, exc: BaseException) -> bool:
        import ray

        loop = asyncio.get_running_loop()
        deadline = loop.time() + RESTART_S
        while True:  # while Ray restarts it, the actor answers "unavailable": ask again
            try:
                info = await asyncio.wait_for(self._ready(w), max(0.1, deadline - loop.time()))
                break
            except ray.exceptions.ActorUnavailableError as again:
                if loop.time() >= deadline:
                    return self._gone(w, exc, again)
                await asyncio.sleep(0.2)
            except Exception as again:  # noqa: BLE001 - dead for good, timed out, cluster gone
                return self._gone(w, exc, again)
        if info["problem"]:
            self._lost = info["problem"]
            return False
        self.pids[w] = info["pid"]
        self.restarts += 1
        for key, lim in self._limits.items():  # the restarted worker started from its first limits
            self._actors[w].set_limit.remote(key, shares(lim.limit, len(self._actors))[w], lim.generation)
        return True

    def _gone(self, w: int, exc: BaseException, again: BaseException) -> bool:
        self._lost = f"worker {w} died ({one_line(exc, 120)}) and did not come back ({one_line(again, 120)})"
        return False

    async def _ready(self, w: int) -> dict[str, Any]:
        return await self._actors[w].ready.remote()

    async def _poll(self, c: Any, lanes: list[asyncio.Task[None]]) -> None:
        """Every ``status_every_s``: the workers' figures (limits, progress); and the watchdog: when
        no worker has answered for ``[ray] silent_s`` the cluster is gone (its head or its nodes
        died: calls to the workers would wait forever), the lanes stop."""
        loop = asyncio.get_running_loop()
        answered = loop.time()
        while True:
            await asyncio.sleep(self.status_every_s)
            with contextlib.suppress(Exception):
                if await asyncio.wait_for(self._poll_once(), max(1.0, 4 * self.status_every_s)):
                    answered = loop.time()
            if loop.time() - answered > self.ray_spec.silent_s:
                self.silent = True
                self._lost = self._lost or f"no Ray worker answered for {self.ray_spec.silent_s:g}s"
                for t in lanes:
                    t.cancel()
                return
            if self.on_status:
                self.on_status(c.status())

    async def _poll_once(self) -> int:
        """Read every worker's client stats and tallies; move the limits; sum the stats. Returns
        how many workers answered."""
        reports = await asyncio.gather(*(a.report.remote() for a in self._actors), return_exceptions=True)
        answered = [r for r in reports if not isinstance(r, BaseException)]
        moved: set[str] = set()
        for _, tallies in answered:
            for key, tally in tallies.items():
                lim = self._limits.get(key)
                if lim is not None and lim.add(tally):
                    moved.add(key)
        for key in moved:
            lim = self._limits[key]
            for a, share in zip(self._actors, shares(lim.limit, len(self._actors))):
                a.set_limit.remote(key, share, lim.generation)
        for name, view in self._views.items():
            got = [stats[name] for stats, _ in answered if name in stats]
            if isinstance(view, RemoteClient) and got:
                view.current = self._sum(name, got)
        return len(answered)

    def _sum(self, name: str, got: list[ClientStats]) -> ClientStats:
        """The workers' stats of one model as one client's: limits and lowest are the driver's,
        calls in flight and retries summed, per endpoint too; a breaker state the worst any
        worker sees."""
        def worst(states: list[str]) -> str:
            return next((b for b in ("down", "open") if b in states), "closed")

        def add(into: dict[str, int], more: dict[str, int]) -> dict[str, int]:
            for k, v in more.items():
                into[k] = into.get(k, 0) + v
            return into

        endpoints = []
        for i, eps in enumerate(zip(*(s.endpoints for s in got))):
            lim = self._limits[limit_key(name, i)]
            retries: dict[str, int] = {}
            for e in eps:
                add(retries, e.retries)
            endpoints.append(EndpointStats(eps[0].url, sum(e.calls for e in eps), retries, lim.limit, lim.aimd.lowest,
                                           sum(e.in_flight for e in eps), worst([e.breaker for e in eps]),
                                           max(e.trips for e in eps)))
        retries = {}
        for s in got:
            add(retries, s.retries)
        limit = min(self.spec.concurrency, sum(e.limit for e in endpoints)) if endpoints else self.spec.concurrency
        lowest = min(self.spec.concurrency, sum(e.lowest for e in endpoints)) if endpoints else limit
        return ClientStats(limit, self.spec.concurrency, lowest, sum(s.in_flight for s in got), retries,
                           worst([s.breaker for s in got]), endpoints)
