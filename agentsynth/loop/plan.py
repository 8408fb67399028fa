"""What a loop will draw and run, checked before anything runs: the task seeds of each step, the
synthesis run spec of a step and its name, and :func:`check_loop`, which refuses a spec whose arms,
domains, trainer, base or draws cannot work.

Tasks: generation ``g`` of seed ``s`` synthesizes on task seeds ``LOOP_SEED_START + (s * 100 +
g) * tasks`` onwards of each loop domain (new tasks each generation, the same for every arm, so
arms are compared on the same tasks); evaluation uses the held-out seeds of ``agentsynth eval``,
the same for every arm, seed and generation. A domain whose seeds name rows (a task set: no task
at ``LOOP_SEED_START``) synthesizes on its train rows instead, ``(s * generations + g - 1) * tasks``
onwards, so ``seeds * generations * tasks`` rows in all; :func:`check_loop` refuses a domain that
cannot supply them (or ``eval_tasks`` held-out tasks, or the base's reference tasks) before
anything runs.

A domain's ``kwargs`` (a task set's column mapping) go wherever the loop builds it: the checks,
the synthesis run specs, the base's reference examples and the evaluations.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..registry import UnknownEnvironment, resolve
from ..spec import EVAL_SEED_START
from ..store.connection import StoreError
from ..store.loops import check_spec
from .arms import Arm, find_arm
from .spec import DomainSpec, LoopSpec
from .trainers import LoopError, Served, Trainer, make_trainer

LOOP_SEED_START = 100_000_000
"""First task seed of loop synthesis (in the synthesis range, away from the seeds bases train on)."""
MAX_TOKENS = 96
"""Reply length limit of loop synthesis (the student's replies are short; this bounds a rambling one)."""


def check_loop(spec: LoopSpec) -> tuple[list[Arm], Trainer]:
    """Check everything that can be checked before anything runs; :class:`LoopError` naming the
    first problem: unknown arms, domains or trainer, a domain its kwargs cannot build, a domain
    that cannot supply the tasks the loop draws (a small task set), an arm whose signal the loop
    domains do not record, a self-judge arm without a base that can review, a missing or corrupt
    base, a loop of the same name stored with another spec."""
    return checked(spec)[:2]


def _build(d: DomainSpec, **settings: Any) -> Any:
    """Domain ``d``'s environment with ``settings`` (difficulty, feedback, turns) and its kwargs, as
    a run spec's ``[[envs]]`` entry builds it (kwargs win)."""
    return resolve(d.id).cls(**{"difficulty": d.difficulty, **settings, **d.kwargs})


def from_rows(env: Any) -> bool:
    """Whether ``env``'s seeds name rows (a task set): it draws no task at :data:`LOOP_SEED_START`,
    so the loop synthesizes on its train rows from the first (see the module docstring)."""
    try:
        env.check_seeds(range(LOOP_SEED_START, LOOP_SEED_START + 1))
    except ValueError:
        return True
    return False


def synthesis_seeds(spec: LoopSpec, seed: int, generation: int, rows: bool = False) -> range:
    """The task seeds generation ``generation`` of seed ``seed`` synthesizes on, in each loop domain
    (``rows``: one whose seeds are rows, see :func:`from_rows`)."""
    if rows:
        start = (seed * spec.generations + generation - 1) * spec.tasks
    else:
        start = LOOP_SEED_START + (seed * 100 + generation) * spec.tasks
    return range(start, start + spec.tasks)


def checked(spec: LoopSpec) -> tuple[list[Arm], Trainer, frozenset[str]]:
    """:func:`check_loop`, and the loop domains whose seeds are rows."""
    arms = []
    for name in spec.arms:
        try:
            arms.append(find_arm(name))
        except KeyError as exc:
            raise LoopError(str(exc.args[0])) from None
    rows: set[str] = set()
    built_on = base_envs(spec) if spec.base.checkpoint is None else []
    for d in spec.loop_envs + spec.held_out:
        kind = "loop domain" if d in spec.loop_envs else "held-out domain"
        try:
            resolve(d.id)
        except UnknownEnvironment as exc:
            raise LoopError(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - user code that fails to import: report it
            raise LoopError(f"cannot load environment {d.id!r}: {type(exc).__name__}: {exc}") from None
        try:
            env = _build(d, max_turns=1)
        except Exception as exc:  # noqa: BLE001 - a bad column mapping, a missing file, user code: report it
            raise LoopError(f"{kind} {d.id}: cannot create it with {d.kwargs}: {type(exc).__name__}: {exc}") from None
        try:
            _check_draws(spec, d, env, kind, rows, built_on)
        finally:
            env.close()
    for arm in arms:
        for d in spec.loop_envs:
            try:
                env = _build(d, feedback=arm.feedback or "none", max_turns=arm.turns)
            except ValueError as exc:
                raise LoopError(f"arm {arm.name!r}: loop domain {d.id}: {exc}") from None
            try:
                if arm.recorded_by_env and arm.select not in env.graders:
                    raise LoopError(f"arm {arm.name!r} selects with signal {arm.select!r}, which loop domain {d.id} does "
                                    f"not record (it records {', '.join(env.graders)})")
                if env.tools and arm.trajectory == "reference":
                    raise LoopError(f"arm {arm.name!r} imitates reference replies; loop domain {d.id} uses tools")
            finally:
                env.close()
        if arm.regrade == "self_consistency" and spec.samples < 2:
            raise LoopError(f"arm {arm.name!r} votes among a task's samples: set samples to 2 or more (it is {spec.samples})")
    trainer = make_trainer(spec)
    if spec.base.checkpoint is not None:
        try:
            trainer.check(Path(spec.base.checkpoint))
        except LoopError as exc:
            raise LoopError(f"base: {exc}") from None
    for arm in arms:
        if arm.review and not _base_reviews(spec, trainer):
            raise LoopError(f"arm {arm.name!r} needs a student that learned to review its own answers: set base.review "
                            "(e.g. 0.2, the share of self-review examples in its pretraining)")
    try:
        check_spec(Path(spec.store), spec.name, spec.spec_hash())
    except StoreError as exc:
        raise LoopError(str(exc)) from None
    return arms, trainer, frozenset(rows)


def _check_draws(spec: LoopSpec, d: DomainSpec, env: Any, kind: str, rows: set[str], base_envs: list[str]) -> None:
    """Refuse domain ``d`` unless ``env`` can draw every task the loop asks of it: synthesis (a loop
    domain), evaluation, and the base's reference (and review) tasks when the base is built here.
    Adds ``d.id`` to ``rows`` when its seeds are rows."""
    def check(seeds: range, what: str, fix: Callable[[int], str]) -> None:
        try:
            env.check_seeds(seeds)
        except ValueError as exc:
            cap = _capacity(env, seeds.start)
            if cap >= len(seeds):  # refused for another reason than its size: the environment says why
                raise LoopError(f"{kind} {d.id}: {what}: {exc}") from None
            raise LoopError(f"{kind} {d.id}: {what}, and it supplies {cap}: {fix(cap)}") from None

    if d in spec.loop_envs:
        if from_rows(env):
            rows.add(d.id)
            per = spec.seeds * spec.generations
            check(range(per * spec.tasks),
                  f"synthesis draws seeds x generations x tasks = {spec.seeds} x {spec.generations} x {spec.tasks} = "
                  f"{per * spec.tasks} of its train rows",
                  lambda cap: (f"set tasks to at most {cap // per}, or lower" if cap >= per else "lower") + " generations or seeds")
        else:
            for seed in range(spec.seeds):
                for g in range(1, spec.generations + 1):
                    check(synthesis_seeds(spec, seed, g), f"synthesis of seed {seed} generation {g}",
                          lambda cap: "lower tasks")
    check(range(EVAL_SEED_START, EVAL_SEED_START + spec.eval_tasks),
          f"evaluation draws eval_tasks = {spec.eval_tasks} held-out tasks", lambda cap: f"set eval_tasks to at most {cap}")
    if d.id in base_envs:
        from ..student.data import review_tasks

        b = spec.base
        n = b.tasks + review_tasks(b.tasks, b.review)

        def fix(cap: int) -> str:
            most = next(t for t in range(min(cap, b.tasks), -1, -1) if t + review_tasks(t, b.review) <= cap)
            return f"set base.tasks to at most {most}, or name base.envs without it"

        review = f" + {n - b.tasks} self-review" if n > b.tasks else ""
        check(range(n), f"the base learns base.tasks = {b.tasks}{review} = {n} of its train rows" if review else
              f"the base learns base.tasks = {b.tasks} of its train rows", fix)


def _capacity(env: Any, start: int) -> int:
    """How many consecutive seeds from ``start`` ``env`` draws (its :meth:`check_seeds` accepts)."""
    def ok(n: int) -> bool:
        try:
            env.check_seeds(range(start, start + n))
        except ValueError:
            return False
        return True

    high = 1
    while ok(high) and high < 1 << 40:
        high *= 2
    low = 0  # ok(low), not ok(high)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if ok(mid) else (low, mid)
    return low


def base_envs(spec: LoopSpec) -> list[str]:
    """The environments the base is built on (when built here)."""
    return spec.base.envs or [d.id for d in spec.loop_envs + spec.held_out]


def _base_reviews(spec: LoopSpec, trainer: Trainer) -> bool:
    """Whether the base learned self-review (a user's own model behind the command trainer is
    assumed to)."""
    if spec.base.checkpoint is None:
        return spec.base.review > 0
    if trainer.name != "student":
        return True
    from ..student.checkpoint import read_manifest

    return bool((read_manifest(spec.base.checkpoint).get("data") or {}).get("review"))


def synthesis_spec(spec: LoopSpec, arm: Arm, seed: int, generation: int, served: Served,
                   rows: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The run spec (as a dict) of one generation's synthesis; ``rows``: the loop domains whose
    seeds are rows (see :func:`from_rows`)."""
    envs = []
    for d in spec.loop_envs:
        entry = {"id": d.id, "difficulty": d.difficulty, "tasks": spec.tasks,
                 "seed_start": synthesis_seeds(spec, seed, generation, d.id in rows).start,
                 "feedback": arm.feedback or "none", "max_turns": arm.turns}
        if d.kwargs:
            entry["kwargs"] = dict(d.kwargs)
        envs.append(entry)
    return {
        "name": run_name(spec, arm.name, seed, generation), "model": served.model, "base_url": served.base_url,
        "api_key_env": served.api_key_env, "samples": spec.samples, "temperature": spec.temperature,
        "concurrency": spec.concurrency, "store": spec.store, "seed": seed * 1000 + generation, "max_tokens": MAX_TOKENS,
        "envs": envs,
    }


def run_name(spec: LoopSpec, arm: str, seed: int, generation: int) -> str:
    """The synthesis run's name of one step."""
    return f"{spec.name}-{arm}-s{seed}-g{generation}"
