"""One planned episode of a run, played: the code the local runner and the Ray workers share.

:func:`play` takes what a run holds (its spec, environment classes and configurations, model and
judge) and a :class:`~agentsynth.spec.PlannedEpisode`, builds or reuses the worker's environment
instance for the episode's configuration and runs :func:`~agentsynth.episode.run_episode`. The
local runner (:class:`agentsynth.runner.Runner`) and a Ray worker
(:mod:`agentsynth.scaleout.worker`) both call it, so that the same spec gives the same episodes —
and with the deterministic ``sim``, the same messages and signals — wherever they run.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .env import TextEnv
from .episode import EnvCaller, RecentSet, request_seed, run_episode
from .models.base import ChatModel, ModelError
from .signals import JudgeError, JudgeFn, JudgeReply
from .spec import EnvConfig, PlannedEpisode, RunSpec
from .store.writer import EpisodeRecord


def config_json(cfg: EnvConfig) -> str:
    """A configuration's kwargs as canonical JSON (the ``episodes.env_config`` column)."""
    return json.dumps(cfg.kwargs, sort_keys=True, default=str)


@dataclass
class Setup:
    """What every episode of a run (or of one Ray worker) plays with: the spec, the run's id, the
    environment classes (stored name, class) and configurations, a caller per configuration,
    whether each configuration's graders call a model, the policy and judge models, and the task
    ids recently sent to the store."""

    spec: RunSpec
    run_id: str
    envs: Sequence[tuple[str, type[TextEnv]]]
    configs: Sequence[EnvConfig]
    callers: Sequence[EnvCaller]
    needs_model: Sequence[bool]
    model: ChatModel
    judge: ChatModel
    tasks_sent: RecentSet = field(default_factory=RecentSet)
    config_json: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.config_json:
            self.config_json = [config_json(c) for c in self.configs]


async def play(s: Setup, mine: dict[int, TextEnv], p: PlannedEpisode, carry: dict[str, int] | None) -> EpisodeRecord:
    """Run the planned episode ``p`` (``carry``: the costs of its earlier tries) on the caller's
    environment instance for its configuration (made on first use and kept in ``mine``)."""
    spec = s.spec
    loop = asyncio.get_running_loop()
    loop_thread = threading.get_ident()
    model = s.model
    env = mine.get(p.config)
    if env is None:
        env = mine[p.config] = s.envs[p.config][1](**s.configs[p.config].kwargs)

    def make_models(eid: str = p.episode_id, uses_model: bool = s.needs_model[p.config]) -> tuple[JudgeFn | None, JudgeFn | None]:
        if not uses_model:
            return None, None
        return (bridge(spec, model, loop, loop_thread, eid + ":policy", spec.temperature),
                bridge(spec, s.judge, loop, loop_thread, eid + ":judge", spec.judge.temperature if spec.judge else 0.0))

    return await run_episode(
        env=env, model=model, call_env=s.callers[p.config], run_id=s.run_id, episode_id=p.episode_id,
        env_id=s.envs[p.config][0], env_config=s.config_json[p.config], seed=p.seed, sample=p.sample,
        run_seed=spec.seed, temperature=spec.temperature, max_tokens=spec.max_tokens,
        system_prompt=spec.system_prompt, make_models=make_models, carry=carry, tasks_sent=s.tasks_sent,
    )


def bridge(spec: RunSpec, m: ChatModel, loop: asyncio.AbstractEventLoop, loop_thread: int, key: str,
           temperature: float) -> JudgeFn:
    """A blocking call to ``m`` for graders, which run in a worker thread (never the loop's)."""

    def ask(messages: list[dict[str, Any]]) -> JudgeReply:
        if threading.get_ident() == loop_thread:
            raise JudgeError("a grader called a model from the event loop; set uses_model = True on it")
        coro = m.complete(messages, temperature=temperature, seed=request_seed(spec.seed, key, len(messages)),
                          max_tokens=spec.max_tokens)
        try:
            comp = asyncio.run_coroutine_threadsafe(coro, loop).result()
        except ModelError as exc:
            raise JudgeError(str(exc), transient=exc.transient) from None
        return JudgeReply(comp.message.get("content") or "", comp.prompt_tokens + comp.completion_tokens)

    return ask
