"""One episode: reset → (model → step)* until terminated or truncated, as store rows.

The agent keeps the chat history; the environment only grades and answers with feedback.
Environment work runs in a worker thread so that a slow environment never blocks the event loop,
unless it proves cheaper than the hop (:class:`EnvCaller`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from .answers import final_answer, normalize
from .credentials import redact
from .env import TextEnv
from .models.base import ChatModel, Completion, EndpointDown, ModelError
from .signals import GraderError, JudgeError, JudgeFn
from .store.clock import utcnow
from .store.writer import EpisodeRecord


class EnvironmentFailure(RuntimeError):
    """The environment (or one of its graders) raised: a bug to fix, recorded per episode."""


class EnvCaller:
    """Calls one environment configuration's ``reset``/``step`` off the event loop — unless they
    prove cheap. The first ``probe`` calls run in the executor and are timed there; if their
    median took under ``inline_below_s``, later calls run inline (a thread hop costs more than
    such a call). Inline calls keep being timed: if their moving average passes ``back_off_s``,
    or one call takes over ``blocking_s``, the configuration goes back to the executor for good.
    Configurations whose graders call a model (``inline_ok=False``) always use the executor:
    their calls wait on the event loop's own work.
    """

    def __init__(self, executor: Executor, *, inline_ok: bool, probe: int = 32, inline_below_s: float = 0.0003,
                 back_off_s: float = 0.001, blocking_s: float = 0.05):
        self.executor = executor
        self.inline = False
        self._can_inline = inline_ok
        self._probe = probe
        self._times: list[float] = []
        self._avg = 0.0
        self.inline_below_s = inline_below_s
        self.back_off_s = back_off_s
        self.blocking_s = blocking_s

    def _timed_call(self, fn: Callable[..., Any], *args: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self._times.append(time.perf_counter() - t)

    async def __call__(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self.inline:
            t = time.perf_counter()
            out = fn(*args)
            dt = time.perf_counter() - t
            self._avg = 0.95 * self._avg + 0.05 * dt
            if dt > self.blocking_s or self._avg > self.back_off_s:
                self.inline = self._can_inline = False
            return out
        out = await asyncio.get_running_loop().run_in_executor(self.executor, self._timed_call, fn, *args)
        if self._can_inline and len(self._times) >= self._probe:
            median = sorted(self._times)[len(self._times) // 2]
            self.inline = self._can_inline = median < self.inline_below_s
            self._avg = median
        return out


class RecentSet:
    """The last ``size`` keys seen (a bounded set: memory stays flat however long the run)."""

    def __init__(self, size: int = 8192):
        self.size = size
        self._d: dict[str, None] = {}

    def __contains__(self, key: object) -> bool:
        return key in self._d

    def add(self, key: str) -> None:
        self._d[key] = None
        if len(self._d) > self.size:
            del self._d[next(iter(self._d))]


def request_seed(run_seed: int, episode_id: str, turn: int) -> int:
    """The ``seed`` sent with each model request: stable per (run seed, episode, turn)."""
    h = hashlib.blake2b(f"{run_seed}:{episode_id}:{turn}".encode(), digest_size=4).digest()
    return int.from_bytes(h, "big") & 0x7FFFFFFF


def _reset(env: TextEnv, seed: int) -> Any:
    return env.reset(seed=seed)


def _canonical(env: TextEnv, text: str) -> str:
    """The environment's comparison key for a reply (the generic one if its hook raises)."""
    try:
        return env.canonical(text)
    except Exception:  # noqa: BLE001 - a faulty hook must not lose the episode
        return normalize(final_answer(text))


def _json(x: Any) -> str | None:
    return None if x is None else json.dumps(x, sort_keys=True, default=str)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, GraderError):
        return str(exc)
    tb = traceback.extract_tb(exc.__traceback__)[-1:]
    where = f" at {tb[0].filename}:{tb[0].lineno}" if tb else ""
    return f"{type(exc).__name__}: {exc}{where}"


async def run_episode(
    *,
    env: TextEnv,
    model: ChatModel,
    call_env: EnvCaller,
    run_id: str,
    episode_id: str,
    env_id: str,
    env_config: str,
    seed: int,
    sample: int,
    run_seed: int,
    temperature: float,
    max_tokens: int | None,
    system_prompt: str | None,
    make_models: Callable[[], tuple[JudgeFn | None, JudgeFn | None]],
    carry: dict[str, int] | None = None,
    tasks_sent: "RecentSet | None" = None,
) -> EpisodeRecord:
    """Run one episode to the end and return its rows. Never raises for model or environment
    failures: the episode is returned with ``status = 'error'`` and the error text, and
    ``retryable`` when a model call ran out of retries on a transient failure. Raises
    :class:`~agentsynth.models.base.EndpointDown` (nothing to store: a re-run resumes it).

    ``env_config`` is the configuration's kwargs as JSON; ``tasks_sent`` the task ids recently
    handed to the store (their rows are not sent again; the store ignores a repeat anyway)."""
    started = utcnow()
    t0 = time.perf_counter()
    messages: list[dict[str, Any]] = []
    rows_m: list[tuple[Any, ...]] = []
    rows_s: list[tuple[Any, ...]] = []
    prompt_tokens = completion_tokens = judge_tokens = attempts = 0
    turn = 0
    reward = None
    terminated = truncated = None
    truth_first = truth_last = None
    graded = False
    status, error = "ok", None
    retryable = False
    task = task_id = task_row = None

    def add(role: str, content: str, turn_: int, **extra: Any) -> None:
        messages.append({"role": role, "content": content, **extra} if extra else {"role": role, "content": content})
        # MESSAGE_COLUMNS order
        answer = _canonical(env, content) if role == "assistant" and not extra else None
        rows_m.append((episode_id, len(rows_m), turn_, role, content, _json(extra.get("tool_calls")), extra.get("tool_call_id"),
                       answer))

    try:
        env.policy_model, env.judge_model = make_models()
        try:
            obs, reset_info = await call_env(_reset, env, seed)
        except Exception as exc:
            raise EnvironmentFailure(f"environment {env_id} raised in reset: {_describe(exc)}") from exc
        task = env.task
        task_id = task.task_id if task is not None else None
        if task is not None and (tasks_sent is None or task_id not in tasks_sent):
            task_row = task.as_row()
            if tasks_sent is not None:
                tasks_sent.add(task_id)
        if system_prompt:
            add("system", system_prompt, 0)
        add("user", obs, 0)
        tools = reset_info.get("tools") or None
        while True:
            comp: Completion = await model.complete(
                messages, temperature=temperature, seed=request_seed(run_seed, episode_id, turn + 1), max_tokens=max_tokens,
                tools=tools,
            )
            turn += 1  # turns counts the agent's replies
            attempts += comp.attempts
            prompt_tokens += comp.prompt_tokens
            completion_tokens += comp.completion_tokens
            extra = {"tool_calls": comp.message["tool_calls"]} if comp.message.get("tool_calls") else {}
            add("assistant", comp.message.get("content") or "", turn, **extra)
            action = comp.message if extra else comp.message.get("content") or ""
            try:
                obs, reward, terminated, truncated, info = await call_env(env.step, action)
            except (JudgeError, EndpointDown):
                raise
            except Exception as exc:
                raise EnvironmentFailure(f"environment {env_id} raised in step: {_describe(exc)}") from exc
            seen_tokens = set()
            for s in info.get("signals", ()):
                rows_s.append((  # SIGNAL_COLUMNS order
                    episode_id, turn, s["name"], s["role"], s["value"], s["passed"], s["feedback"],
                    _json(s["details"]) if s["details"] else None, s["tokens"],
                ))
                if s["tokens"] and s["name"] not in seen_tokens:
                    judge_tokens += s["tokens"]
                    seen_tokens.add(s["name"])
                if s["role"] == "truth":  # first and last graded answers (tool turns are not graded)
                    if not graded:
                        truth_first = s["passed"]
                    truth_last = s["passed"]
                    graded = True
            tool_messages = info.get("tool_messages")
            if tool_messages:  # a tool turn: the results go back as tool messages
                for tm in tool_messages:
                    add("tool", tm["content"], turn, tool_call_id=tm["tool_call_id"])
            else:
                add("user", obs, turn)
            if terminated or truncated:
                break
    except EndpointDown:
        raise
    except ModelError as exc:
        status, error, retryable = "error", f"model: {exc}", exc.transient
        attempts += exc.attempts
    except JudgeError as exc:
        status, error, retryable = "error", f"model (grading call): {exc}", exc.transient
    except EnvironmentFailure as exc:
        status, error = "error", str(exc)
    except Exception as exc:  # noqa: BLE001 - anything else is recorded, not lost
        status, error = "error", f"internal: {_describe(exc)}"
    finally:
        env.policy_model = env.judge_model = None
    if error is not None:  # what is stored and printed of a failure: no credential, whoever wrote the text
        error = redact(error)
    carry = carry or {}
    episode = {
        "episode_id": episode_id, "run_id": run_id, "task_id": task_id,
        "env_id": env_id, "env_config": env_config, "feedback": env.feedback,
        "domain": task.domain if task is not None else None, "seed": seed, "sample": sample,
        "status": status, "error": error, "turns": turn, "reward": reward,
        "terminated": terminated, "truncated": truncated, "passed_first": truth_first, "passed_last": truth_last,
        "prompt_tokens": prompt_tokens + carry.get("prompt_tokens", 0),
        "completion_tokens": completion_tokens + carry.get("completion_tokens", 0),
        "judge_tokens": judge_tokens + carry.get("judge_tokens", 0),
        "attempts": attempts + carry.get("attempts", 0), "tries": 1 + carry.get("tries", 0),
        "latency_s": time.perf_counter() - t0, "started_at": started, "finished_at": utcnow(),
    }
    return EpisodeRecord(episode, task_row, rows_m, rows_s, replaces=bool(carry), retryable=retryable)
