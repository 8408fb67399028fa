"""Held-out evaluation: a model's accuracy per environment on tasks no synthesis run could hold.

:func:`evaluate` builds an evaluation spec (``purpose = "eval"``: task seeds from
:data:`~agentsynth.spec.EVAL_SEED_START` up, which synthesis specs may not use; one greedy
sample per task; no feedback; one turn, or a few for tool calls) and runs it with the ordinary
:class:`~agentsynth.runner.Runner`, so its episodes, messages and signals are stored like any
run's, under ``runs.kind = 'eval'``. The run's name is derived from everything that decides its
episodes (model, endpoint, environments, seeds, difficulty, the export it was trained on), so
repeating an evaluation resumes or reuses the stored run instead of duplicating it.

Scoring, per environment and domain: a task counts once (its lowest seed) however many seeds
drew it; a task whose ``task_id`` (a hash of its content) appears in any synthesis run of the
store is **excluded** (a small task space can repeat a task under another seed, and the model
may have trained on it); ``correct`` counts tasks whose first graded answer passed the truth
grader; the interval is Wilson's 95% score interval. One ``evaluations`` row per environment and
domain is written (replaced when the same evaluation is repeated).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .analysis.intervals import wilson
from .credentials import BaseUrl, stored_base_url
from .models import schemes
from .models.base import ModelError
from .registry import UnknownEnvironment, resolve
from .runner import Runner, RunResult, build_model
from .spec import EVAL_SEED_START, RunSpec, parse_spec
from .store.clock import utcnow
from .store.connection import connect
from .store.transaction import transaction

__all__ = ["CONFIDENCE", "SCORED_EPISODES", "TOOL_TURNS", "EvalError", "EvalFailed", "EvaluationRow", "eval_spec", "evaluate"]

CONFIDENCE = 0.95
"""Confidence level of the stored Wilson intervals (the ``generalization`` view assumes 95%)."""

TOOL_TURNS = 6
"""Turn limit for environments with tools (tool calls take turns); others get one turn."""


class EvalError(ValueError):
    """Bad input to an evaluation (unknown environment or export, a missing base model)."""


class EvalFailed(RuntimeError):
    """The evaluation could not finish: the endpoint is unreachable, or episodes failed.

    ``result`` is the run's :class:`RunResult` when the run started (its episodes are stored;
    running the same evaluation again retries the failed ones)."""

    def __init__(self, message: str, result: RunResult | None = None):
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class EvaluationRow:
    """One stored ``evaluations`` row, plus what was left out of it.

    ``seed_end`` is exclusive: the tasks are seeds ``[seed_start, seed_end)``. ``n`` counts
    distinct tasks scored, ``correct`` those answered correctly; ``excluded`` counts distinct
    tasks left out because a synthesis run in the store holds them; ``duplicates`` counts
    episodes left out because an earlier seed drew the same task.
    """

    evaluation_id: str
    run_id: str
    run_name: str
    model: str
    base_url: str | None
    base_model: str
    trained_on: str | None
    env_id: str
    domain: str
    env_config: str
    seed_start: int
    seed_end: int
    n: int
    correct: int
    accuracy: float | None
    ci_low: float | None
    ci_high: float | None
    excluded: int
    duplicates: int
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict."""
        return asdict(self)


_COLUMNS = ("evaluation_id", "run_id", "model", "base_url", "base_model", "trained_on", "env_id", "domain",
            "env_config", "seed_start", "seed_end", "n", "correct", "accuracy", "ci_low", "ci_high", "created_at")


def _env_list(envs: Iterable[str]) -> list[str]:
    """Environment references from a list whose items may be comma-separated; de-duplicated."""
    out = [part.strip() for item in envs for part in item.split(",") if part.strip()]
    if not out:
        raise EvalError("no environments to evaluate on: pass --envs, e.g. --envs arithmetic,units")
    return list(dict.fromkeys(out))


def _slug(model: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip("-._")
    return s[:48] or "model"


def eval_spec(
    model: str,
    *,
    store: str | Path,
    envs: Iterable[str],
    base_url: BaseUrl = None,
    api_key_env: str | None = None,
    tasks: int = 100,
    seed_offset: int = 0,
    difficulty: int | None = None,
    trained_on: str | None = None,
    concurrency: int = 16,
    sim: dict[str, Any] | None = None,
    max_turns: int | None = None,
    env_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
) -> RunSpec:
    """The evaluation's run spec (see the module docstring), named deterministically.

    ``env_kwargs``: constructor arguments per environment reference (e.g. a task set's column
    mapping, taken from a synthesis spec's ``kwargs``). Raises :class:`EvalError` for an unknown environment or bad numbers, :class:`SpecError` for
    anything else the spec refuses. ``max_turns`` None: 1, or :data:`TOOL_TURNS` for an
    environment with tools."""
    if tasks < 1:
        raise EvalError(f"--tasks must be at least 1, got {tasks}")
    if seed_offset < 0:
        raise EvalError(f"--seed-offset must be >= 0, got {seed_offset}")
    entries, names = [], []
    for ref in _env_list(envs):
        try:
            found = resolve(ref)
        except UnknownEnvironment as exc:
            raise EvalError(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - user code that fails to import: report it
            raise EvalError(f"cannot load environment {ref!r}: {type(exc).__name__}: {exc}") from None
        if found.name in names:
            continue
        names.append(found.name)
        turns = max_turns if max_turns is not None else (TOOL_TURNS if found.cls.tools else 1)
        entry: dict[str, Any] = {"id": ref, "tasks": tasks, "seed_start": EVAL_SEED_START + seed_offset,
                                 "feedback": "none", "max_turns": turns}
        if difficulty is not None:
            entry["difficulty"] = difficulty
        if (env_kwargs or {}).get(ref):
            entry["kwargs"] = dict(env_kwargs[ref])  # type: ignore[index]
        entries.append(entry)
    data: dict[str, Any] = {
        "name": "eval-pending", "purpose": "eval", "model": model, "base_url": base_url, "api_key_env": api_key_env,
        "samples": 1, "temperature": 0.0, "concurrency": concurrency, "store": str(store), "envs": entries,
        "sim": dict(sim or {}),
    }
    spec = parse_spec(data, source="evaluation")
    content = spec.content()
    content.pop("name")
    endpoint = stored_base_url(spec.base_url)  # the name may not depend on (or reveal a hash of) a key
    key_data: dict[str, Any] = {"content": content, "base_url": endpoint, "trained_on": trained_on}
    if schemes.in_process(model, base_url):
        try:
            ident = schemes.identity(model)
        except schemes.SchemeError as exc:
            raise EvalError(str(exc)) from None
        if ident is not None:  # e.g. a student checkpoint's id: a changed checkpoint is a new evaluation
            key_data["identity"] = ident
    key = json.dumps(key_data, sort_keys=True, default=str)
    digest = hashlib.blake2b(key.encode(), digest_size=6).hexdigest()
    return spec.model_copy(update={"name": f"eval-{_slug(model)}-{digest}"})


def _stored_state(store: Path, run_name: str, trained_on: str | None) -> bool:
    """Check the export exists (when ``trained_on``); return whether the run is already complete."""
    if not store.exists():
        if trained_on is not None:
            raise EvalError(f"no store at {store}, so no export {trained_on!r} (pass --store PATH)")
        return False
    con = connect(store, read_only=False)
    try:
        if trained_on is not None:
            if con.execute("SELECT count(*) FROM exports WHERE export_id = ?", [trained_on]).fetchone()[0] == 0:
                known = [r[0] for r in con.execute("SELECT export_id FROM exports ORDER BY created_at DESC LIMIT 5").fetchall()]
                hint = f"; recent exports: {', '.join(known)}" if known else "; the store holds no exports (agentsynth export)"
                raise EvalError(f"--trained-on {trained_on!r}: no such export in {store}{hint}")
        row = con.execute(
            "SELECT r.planned, count(e.episode_id) FILTER (e.status = 'ok') FROM runs r LEFT JOIN episodes e USING (run_id)"
            " WHERE r.name = ? GROUP BY r.planned", [run_name]).fetchone()
        return row is not None and row[0] == row[1]
    finally:
        con.close()


async def _preflight(spec: RunSpec) -> None:
    """One tiny request, so an unreachable endpoint or a refused key fails before anything is stored."""
    try:
        model = build_model(spec.model_copy(update={"max_retries": min(spec.max_retries, 1)}))
    except ModelError as exc:  # e.g. the key variable is not set
        raise EvalError(str(exc)) from None
    try:
        await model.complete([{"role": "user", "content": "Reply with the word OK."}], temperature=0.0, seed=0,
                             max_tokens=16)
    except ModelError as exc:
        where = stored_base_url(spec.base_url) or "api.openai.com"
        raise EvalFailed(f"cannot evaluate {spec.model!r} at {where}: {exc}") from None
    finally:
        await model.aclose()


SCORED_EPISODES = """
WITH seen AS (
    SELECT DISTINCT e.task_id FROM episodes e JOIN runs r USING (run_id)
    WHERE r.kind = 'synthesis' AND e.task_id IS NOT NULL
),
ev AS (
    SELECT e.run_id, e.task_id, e.env_id, e.env_config::VARCHAR AS env_config, e.domain, e.passed_first,
           e.task_id IN (SELECT task_id FROM seen) AS leaked,
           row_number() OVER (PARTITION BY e.run_id, e.env_id, e.task_id ORDER BY e.seed, e.sample) AS k
    FROM episodes e WHERE list_contains($runs, e.run_id) AND e.status = 'ok'
)
"""
"""The ``ev`` CTE: each ok episode of the evaluation runs in list parameter ``$runs``, with
``leaked`` (a synthesis run of the store holds its task) and ``k`` (1 for the lowest seed of
its task): a task is scored once, when ``k = 1 AND NOT leaked``."""

_SCORE = SCORED_EPISODES + """
SELECT env_id, any_value(env_config), domain,
       count(*) FILTER (k = 1 AND NOT leaked) AS n,
       count(*) FILTER (k = 1 AND NOT leaked AND passed_first) AS correct,
       count(*) FILTER (k = 1 AND leaked) AS excluded,
       count(*) FILTER (k > 1) AS duplicates
FROM ev GROUP BY env_id, domain ORDER BY env_id, domain
"""


def _score(store: Path, spec: RunSpec, run_id: str, base_model: str, trained_on: str | None,
           order: list[str]) -> list[EvaluationRow]:
    """Count, interval and store one evaluations row per (environment, domain) of the run."""
    seed_start = spec.envs[0].seed_start
    seed_end = seed_start + spec.envs[0].tasks
    now = utcnow()
    rows: list[EvaluationRow] = []
    con = connect(store, read_only=False)
    try:
        base_url = con.execute("SELECT base_url FROM runs WHERE run_id = ?", [run_id]).fetchone()[0]  # key-free
        found = con.execute(_SCORE, {"runs": [run_id]}).fetchall()
        found.sort(key=lambda r: (order.index(r[0]) if r[0] in order else len(order), r[2] or ""))
        for env_id, env_config, domain, n, correct, excluded, duplicates in found:
            domain = domain or env_id
            low, high = wilson(correct, n, CONFIDENCE)
            eid = "ev-" + hashlib.blake2b(f"{spec.name}\x00{env_id}\x00{domain}".encode(), digest_size=8).hexdigest()
            rows.append(EvaluationRow(
                evaluation_id=eid, run_id=run_id, run_name=spec.name, model=spec.model, base_url=base_url,
                base_model=base_model, trained_on=trained_on, env_id=env_id, domain=domain, env_config=env_config,
                seed_start=seed_start, seed_end=seed_end, n=n, correct=correct, accuracy=correct / n if n else None,
                ci_low=None if math.isnan(low) else low, ci_high=None if math.isnan(high) else high,
                excluded=excluded, duplicates=duplicates, created_at=now,
            ))
        with transaction(con):
            for r in rows:
                con.execute(f"INSERT OR REPLACE INTO evaluations ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                            [getattr(r, c) for c in _COLUMNS])
    finally:
        con.close()
    return rows


def evaluate(
    store: str | Path,
    model: str,
    *,
    base_url: BaseUrl = None,
    api_key_env: str | None = None,
    envs: list[str],
    tasks: int = 100,
    seed_offset: int = 0,
    difficulty: int | None = None,
    trained_on: str | None = None,
    base_model: str | None = None,
    concurrency: int = 16,
    sim: dict[str, Any] | None = None,
    max_turns: int | None = None,
    env_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    on_start: Callable[[int, int], None] | None = None,
    on_progress: Callable[[int, int, int, int], None] | None = None,
) -> list[EvaluationRow]:
    """Evaluate ``model`` on held-out tasks of ``envs`` and store one ``evaluations`` row per
    environment and domain (see the module docstring); return those rows.

    ``model`` with ``base_url`` (one URL, or a list of endpoints serving it) is an
    OpenAI-compatible endpoint (``api_key_env`` names the variable holding its key); without one,
    ``model = "sim"`` is the in-process simulator (``sim``: its parameters) and ``student:PATH`` a
    student checkpoint, also in process.
    ``seed_offset`` shifts the task seeds within the evaluation range; ``env_kwargs`` are
    constructor arguments per environment reference (see :func:`eval_spec`).
    ``trained_on`` names the export the model was trained on and needs ``base_model``, the model
    it was trained from; an untrained evaluation is its own base. ``on_start(total, todo)`` and
    ``on_progress(done, total, ok, errors)`` are the :class:`Runner` callbacks.

    Raises :class:`EvalError` (bad input: nothing stored), :class:`~agentsynth.spec.SpecError` or
    :class:`~agentsynth.store.StoreError` (likewise), :class:`EvalFailed` (the endpoint cannot
    be used: nothing stored; or episodes failed: they are stored, no evaluation row is written,
    and running the same evaluation again retries them).
    """
    if trained_on is not None and not base_model:
        raise EvalError(f"--trained-on {trained_on} needs --base-model: the model it was fine-tuned from "
                        "(the store cannot know it), so its evaluation can be compared with the base model's")
    if trained_on is None and base_model and base_model != model:
        raise EvalError("--base-model only goes with --trained-on (an untrained model is its own base)")
    store = Path(store)
    spec = eval_spec(model, store=store, envs=envs, base_url=base_url, api_key_env=api_key_env, tasks=tasks,
                     seed_offset=seed_offset, difficulty=difficulty, trained_on=trained_on, concurrency=concurrency,
                     sim=sim, max_turns=max_turns, env_kwargs=env_kwargs)
    complete = _stored_state(store, spec.name, trained_on)
    if not schemes.in_process(spec.model, spec.base_url) and not complete:
        asyncio.run(_preflight(spec))
    try:
        result = Runner(spec, on_start=on_start, on_progress=on_progress).run()
    except ModelError as exc:  # raised only while setting up the model
        raise EvalError(str(exc)) from None
    if result.message:  # the endpoint went down: nothing more was started
        raise EvalFailed(f"evaluation run {result.name} {result.status}: {result.message}; no evaluation was recorded", result)
    if result.status != "completed":
        first = f" (e.g. {result.error_examples[0]})" if result.error_examples else ""
        raise EvalFailed(
            f"evaluation run {result.name} {result.status}: {result.errors} episode(s) failed{first}; no evaluation "
            "was recorded; run the same command again to retry the failed episodes", result)
    order = [resolve(e.id).name for e in spec.envs]
    return _score(store, spec, result.run_id, base_model or model, trained_on, order)

