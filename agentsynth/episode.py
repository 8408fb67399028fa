"""One episode: reset → (model → step)* until terminated or truncated, as store rows.

The agent keeps the chat history; the environment only grades and answers with feedback.
Environment work runs in a worker thread so that a slow environment never blocks the event loop.
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

from .env import TextEnv
from .models.base import ChatModel, Completion, ModelError
from .signals import GraderError, JudgeError, JudgeReply
from .store.writer import EpisodeRecord
from .store.clock import utcnow


class EnvironmentFailure(RuntimeError):
    """The environment (or one of its graders) raised: a bug to fix, recorded per episode."""


def request_seed(run_seed: int, episode_id: str, turn: int) -> int:
    """The ``seed`` sent with each model request: stable per (run seed, episode, turn)."""
    h = hashlib.blake2b(f"{run_seed}:{episode_id}:{turn}".encode(), digest_size=4).digest()
    return int.from_bytes(h, "big") & 0x7FFFFFFF


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
    executor: Executor,
    run_id: str,
    episode_id: str,
    env_id: str,
    env_config: dict[str, Any],
    seed: int,
    sample: int,
    run_seed: int,
    temperature: float,
    max_tokens: int | None,
    system_prompt: str | None,
    make_judge: Callable[[int], Callable[[list[dict[str, Any]]], JudgeReply]],
    carry: dict[str, int] | None = None,
) -> EpisodeRecord:
    """Run one episode to the end and return its rows. Never raises for model or environment
    failures: the episode is returned with ``status = 'error'`` and the error text."""
    loop = asyncio.get_running_loop()
    started = utcnow()
    t0 = time.perf_counter()
    messages: list[dict[str, Any]] = []
    rows_m: list[dict[str, Any]] = []
    rows_s: list[dict[str, Any]] = []
    prompt_tokens = completion_tokens = judge_tokens = attempts = 0
    turn = 0
    reward = None
    terminated = truncated = None
    truth_first = truth_last = None
    status, error = "ok", None
    task_row = None

    def add(role: str, content: str, turn_: int, **extra: Any) -> None:
        msg = {"role": role, "content": content, **extra}
        messages.append(msg)
        rows_m.append({
            "episode_id": episode_id, "position": len(rows_m), "turn": turn_, "role": role, "content": content,
            "tool_calls": _json(extra.get("tool_calls")), "tool_call_id": extra.get("tool_call_id"),
        })

    try:
        env.judge = make_judge(seed)
        try:
            obs, _info = await loop.run_in_executor(executor, lambda: env.reset(seed=seed))
        except Exception as exc:
            raise EnvironmentFailure(f"environment {env_id} raised in reset: {_describe(exc)}") from exc
        task = env.task
        task_row = task.as_row() if task is not None else None
        if system_prompt:
            add("system", system_prompt, 0)
        add("user", obs, 0)
        while True:
            turn += 1
            comp: Completion = await model.complete(
                messages, temperature=temperature, seed=request_seed(run_seed, episode_id, turn), max_tokens=max_tokens
            )
            attempts += comp.attempts
            prompt_tokens += comp.prompt_tokens
            completion_tokens += comp.completion_tokens
            extra = {"tool_calls": comp.message["tool_calls"]} if comp.message.get("tool_calls") else {}
            add("assistant", comp.message.get("content") or "", turn, **extra)
            action = comp.message if extra else comp.message.get("content") or ""
            try:
                obs, reward, terminated, truncated, info = await loop.run_in_executor(executor, env.step, action)
            except Exception as exc:
                raise EnvironmentFailure(f"environment {env_id} raised in step: {_describe(exc)}") from exc
            seen_tokens = set()
            for s in info.get("signals", ()):
                rows_s.append({
                    "episode_id": episode_id, "turn": turn, "name": s["name"], "role": s["role"], "value": s["value"],
                    "passed": s["passed"], "feedback": s["feedback"], "details": _json(s["details"]), "tokens": s["tokens"],
                })
                if s["tokens"] and s["name"] not in seen_tokens:
                    judge_tokens += s["tokens"]
                    seen_tokens.add(s["name"])
                if s["role"] == "truth":
                    truth_last = s["passed"]
                    if turn == 1:
                        truth_first = s["passed"]
            add("user", obs, turn)
            if terminated or truncated:
                break
    except ModelError as exc:
        status, error = "error", f"model: {exc}"
        attempts += exc.attempts
    except JudgeError as exc:
        status, error = "error", f"model (grading call): {exc}"
    except EnvironmentFailure as exc:
        status, error = "error", str(exc)
    except Exception as exc:  # noqa: BLE001 - anything else is recorded, not lost
        status, error = "error", f"internal: {_describe(exc)}"
    finally:
        env.judge = None
    carry = carry or {}
    episode = {
        "episode_id": episode_id, "run_id": run_id, "task_id": task_row["task_id"] if task_row else None,
        "env_id": env_id, "env_config": _json(env_config), "feedback": env.feedback,
        "domain": task_row["domain"] if task_row else None, "seed": seed, "sample": sample,
        "status": status, "error": error, "turns": turn, "reward": reward,
        "terminated": terminated, "truncated": truncated, "passed_first": truth_first, "passed_last": truth_last,
        "prompt_tokens": prompt_tokens + carry.get("prompt_tokens", 0),
        "completion_tokens": completion_tokens + carry.get("completion_tokens", 0),
        "judge_tokens": judge_tokens + carry.get("judge_tokens", 0),
        "attempts": attempts + carry.get("attempts", 0), "tries": 1 + carry.get("tries", 0),
        "latency_s": time.perf_counter() - t0, "started_at": started, "finished_at": utcnow(),
    }
    return EpisodeRecord(episode, task_row, rows_m, rows_s, replaces=bool(carry))
