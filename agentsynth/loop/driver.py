"""Running a loop: per arm and seed, each generation synthesizes with the current checkpoint,
selects with the arm's signal (an export), trains the next checkpoint from it and evaluates it.

Every step is an ordinary run, export, checkpoint and evaluation, tied together by a ``loops``
row (:mod:`agentsynth.store.loops`). Each phase is idempotent, so re-running a killed loop
continues where it stopped and duplicates nothing: a run of the same name resumes, an identical
export is recorded once, a checkpoint is written whole or not at all (and kept once written),
and an evaluation of the same model and tasks resumes and replaces its rows.

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

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..evaluation import EvalError, EvalFailed, evaluate
from ..exports import ExportError, NothingToExport, export
from ..regrade import regrade
from ..registry import UnknownEnvironment, resolve
from ..runner import Runner
from ..spec import EVAL_SEED_START, SpecError, parse_spec
from ..store.connection import StoreError
from ..store.loops import LoopStep, check_spec, load_steps, save_step
from .arms import Arm, find_arm
from .spec import DomainSpec, LoopSpec
from .trainers import LoopError, Served, Trainer, TrainJob, make_trainer

LOOP_SEED_START = 100_000_000
"""First task seed of loop synthesis (in the synthesis range, away from the seeds bases train on)."""
MAX_TOKENS = 96
"""Reply length limit of loop synthesis (the student's replies are short; this bounds a rambling one)."""


@dataclass
class LoopCallbacks:
    """What the loop reports while it works (all optional)."""

    on_event: Callable[[str], None] | None = None
    on_run_start: Callable[[str], Callable[[int, int], None] | None] | None = None
    on_run_progress: Callable[[int, int, int, int], None] | None = None
    on_train: Callable[[str], Callable[[Any], None] | None] | None = None
    on_done: Callable[[], None] | None = None


@dataclass
class LoopResult:
    """What a loop run did."""

    name: str
    store: Path
    steps: dict[tuple[str, int, int], LoopStep] = field(default_factory=dict)
    ran: int = 0
    skipped: int = 0
    wall_s: float = 0.0


def check_loop(spec: LoopSpec) -> tuple[list[Arm], Trainer]:
    """Check everything that can be checked before anything runs; :class:`LoopError` naming the
    first problem: unknown arms, domains or trainer, a domain its kwargs cannot build, a domain
    that cannot supply the tasks the loop draws (a small task set), an arm whose signal the loop
    domains do not record, a self-judge arm without a base that can review, a missing or corrupt
    base, a loop of the same name stored with another spec."""
    return _check(spec)[:2]


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


def _check(spec: LoopSpec) -> tuple[list[Arm], Trainer, frozenset[str]]:
    """:func:`check_loop`, and the loop domains whose seeds are rows."""
    arms = []
    for name in spec.arms:
        try:
            arms.append(find_arm(name))
        except KeyError as exc:
            raise LoopError(str(exc.args[0])) from None
    rows: set[str] = set()
    base_envs = _base_envs(spec) if spec.base.checkpoint is None else []
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
            _check_draws(spec, d, env, kind, rows, base_envs)
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


def _base_envs(spec: LoopSpec) -> list[str]:
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


class LoopRunner:
    """Runs (or resumes) one loop spec; see the module docstring."""

    def __init__(self, spec: LoopSpec, callbacks: LoopCallbacks | None = None):
        self.spec = spec
        self.cb = callbacks or LoopCallbacks()
        self.store = Path(spec.store)
        self.work = spec.work_path()
        self.hash = spec.spec_hash()
        self.rows: frozenset[str] = frozenset()

    def _say(self, text: str) -> None:
        if self.cb.on_event:
            self.cb.on_event(text)

    @contextlib.contextmanager
    def _shown(self) -> Iterator[None]:
        """A phase with a progress display: ``on_done`` when it ends, however it ends."""
        try:
            yield
        finally:
            if self.cb.on_done:
                self.cb.on_done()

    def run(self) -> LoopResult:
        """Run every step not yet done; return the steps."""
        t0 = time.monotonic()
        spec = self.spec
        arms, trainer, self.rows = _check(spec)
        for sub in ("exports", "ckpt"):
            (self.work / sub).mkdir(parents=True, exist_ok=True)
        steps = load_steps(self.store, spec.name)
        result = LoopResult(spec.name, self.store)
        base = self._base(trainer)
        base_served_name = self._model_name(base)
        base_ids = self._base_evaluation(trainer, base, steps)
        base_model = trainer.served(base, base_served_name).model
        for arm in arms:
            for seed in range(spec.seeds):
                key = (arm.name, seed, 0)
                if key not in steps:
                    steps[key] = LoopStep(spec.name, arm.name, seed, 0, "evaluated", self.hash, signal=arm.select,
                                          checkpoint=str(base), model=base_model, evaluation_ids=base_ids,
                                          figures={"spec": spec.content()})
                    save_step(self.store, steps[key])
        for g in range(1, spec.generations + 1):
            for seed in range(spec.seeds):
                for arm in arms:
                    key = (arm.name, seed, g)
                    if key in steps and steps[key].done("evaluated"):
                        result.skipped += 1
                        continue
                    parent = steps[(arm.name, seed, g - 1)]
                    steps[key] = self._step(trainer, arm, seed, g, parent, steps.get(key), base, base_model)
                    result.ran += 1
        result.steps = steps
        result.wall_s = time.monotonic() - t0
        return result

    # ---- the base -------------------------------------------------------------------------------

    def _model_name(self, checkpoint: Path) -> str:
        return f"{self.spec.name}-{checkpoint.name}"

    def _base(self, trainer: Trainer) -> Path:
        b = self.spec.base
        if b.checkpoint is not None:
            p = Path(b.checkpoint)
            return p.resolve() if p.exists() else p  # the command trainer may take a hub id
        out = (self.work / "base").resolve()
        if out.exists():
            trainer.check(out)
            return out
        from ..student.build import init_student
        from ..student.config import TrainConfig
        from ..student.errors import StudentError

        envs = _base_envs(self.spec)
        self._say(f"building the base student on {', '.join(envs)} (difficulty {b.difficulty})")
        t0 = time.monotonic()
        try:
            with self._shown():
                init_student(envs, out, difficulty=b.difficulty, tasks=b.tasks, review=b.review,
                             env_kwargs=self.spec.env_kwargs(),
                             train_cfg=TrainConfig(steps=b.steps, minutes=None if b.steps else b.minutes, seed=b.seed),
                             width=b.width, layers=b.layers, heads=b.heads, context=b.context,
                             on_progress=self.cb.on_train("base") if self.cb.on_train else None)
        except StudentError as exc:
            raise LoopError(f"building the base: {exc}") from None
        self._say(f"built the base in {time.monotonic() - t0:.0f} s")
        return out

    def _base_evaluation(self, trainer: Trainer, base: Path, steps: dict[tuple[str, int, int], LoopStep]) -> list[str]:
        done = [s for s in steps.values() if s.generation == 0]
        if done:
            return done[0].evaluation_ids
        with trainer.serving(base, self._model_name(base)) as served:
            ids, summary = self._evaluate(served, None, None)
        self._say(f"base: {summary}")
        return ids

    # ---- one step -------------------------------------------------------------------------------

    def _step(self, trainer: Trainer, arm: Arm, seed: int, g: int, parent: LoopStep, stored: LoopStep | None,
              base: Path, base_model: str) -> LoopStep:
        spec = self.spec
        label = f"{arm.name} seed {seed} gen {g}"
        parent_ckpt = Path(parent.checkpoint or base)
        step = stored or LoopStep(spec.name, arm.name, seed, g, "synthesized", self.hash, signal=arm.select,
                                  parent=str(parent_ckpt))
        name = run_name(spec, arm.name, seed, g)
        export_path = (self.work / "exports" / f"{name}.jsonl").resolve()
        if stored is None:  # a stored step has at least been synthesized
            t0 = time.monotonic()
            with trainer.serving(parent_ckpt, self._model_name(parent_ckpt)) as served:
                data = synthesis_spec(spec, arm, seed, g, served, self.rows)
                try:
                    run_spec = parse_spec(data, source=f"loop step {name}")
                    on_start = self.cb.on_run_start(f"{label}: synthesize") if self.cb.on_run_start else None
                    with self._shown():
                        res = Runner(run_spec, on_start=on_start, on_progress=self.cb.on_run_progress).run()
                except (SpecError, StoreError) as exc:
                    raise LoopError(f"{label}: synthesis: {exc}") from None
            if res.status != "completed":
                first = f" (e.g. {res.error_examples[0]})" if res.error_examples else ""
                raise LoopError(f"{label}: synthesis run {name} {res.status}: {res.errors} episode(s) failed{first}; "
                                "run the loop again to retry")
            if arm.regrade:
                try:
                    regrade(self.store, name, [arm.regrade])
                except StoreError as exc:
                    raise LoopError(f"{label}: regrade {arm.regrade}: {exc}") from None
            step.run_id = res.run_id
            step.figures.update({"samples": res.ok, "synthesis_s": round(time.monotonic() - t0, 2),
                                 "pass_rate": res.first_pass_rate})
            step.phase = "synthesized"
            save_step(self.store, step)
        if not step.done("exported"):
            try:
                x = export(self.store, name, arm.select, min_value=arm.min_value, format="sft", out=export_path,
                           trajectory=arm.trajectory)
                step.export_id = x.export_id
                step.figures.update({"selected": x.rows, "duplicates_dropped": x.skipped_duplicates})
            except NothingToExport:
                step.export_id = None
                step.figures.update({"selected": 0})
            except (ExportError, StoreError) as exc:
                raise LoopError(f"{label}: export: {exc}") from None
            step.phase = "exported"
            save_step(self.store, step)
        if step.export_id is None:  # nothing selected: the model does not change
            step.checkpoint, step.model, step.evaluation_ids = str(parent_ckpt), parent.model, parent.evaluation_ids
            step.phase = "evaluated"
            save_step(self.store, step)
            self._say(f"{label}: {arm.select} selected nothing; the student stays as it was")
            return step
        ckpt = (self.work / "ckpt" / name).resolve()
        if not step.done("trained"):
            if ckpt.exists():
                trainer.check(ckpt)  # written whole by an earlier attempt that was stopped before recording it
            else:
                job = TrainJob(parent=parent_ckpt, base=base, export_id=step.export_id,
                               export_path=export_path, out=ckpt,
                               steps=spec.steps, seed=seed * 1000 + g, lr=spec.lr, replay=spec.replay,
                               batch_size=spec.batch_size, store=self.store.resolve())
                self._say(f"{label}: training on {step.figures.get('selected')} examples (export {step.export_id})")
                t0 = time.monotonic()
                with self._shown():
                    figures = trainer.train(job, self.cb.on_train(f"{label}: train") if self.cb.on_train else None)
                step.figures.update({**figures, "train_s": round(time.monotonic() - t0, 2)})
            step.checkpoint = str(ckpt)
            step.phase = "trained"
            save_step(self.store, step)
        t0 = time.monotonic()
        with trainer.serving(ckpt, self._model_name(ckpt)) as served:
            step.model = served.model
            ids, summary = self._evaluate(served, step.export_id, base_model)
        step.evaluation_ids = ids
        step.figures["eval_s"] = round(time.monotonic() - t0, 2)
        step.phase = "evaluated"
        save_step(self.store, step)
        self._say(f"{label}: selected {step.figures.get('selected')} of {step.figures.get('samples')} samples; {summary}")
        return step

    def _evaluate(self, served: Served, trained_on: str | None, base_model: str | None) -> tuple[list[str], str]:
        """Evaluate on every loop and held-out domain (grouped by difficulty); the evaluation ids
        and a one-line summary."""
        spec = self.spec
        groups: dict[int, list[str]] = {}
        for d in spec.loop_envs + spec.held_out:
            groups.setdefault(d.difficulty, []).append(d.id)
        ids: list[str] = []
        parts: list[str] = []
        for difficulty, envs in groups.items():
            try:
                on_start = self.cb.on_run_start("evaluate") if self.cb.on_run_start else None
                with self._shown():
                    rows = evaluate(self.store, served.model, base_url=served.base_url, api_key_env=served.api_key_env,
                                    envs=envs, tasks=spec.eval_tasks, difficulty=difficulty, trained_on=trained_on,
                                    env_kwargs=spec.env_kwargs(),
                                    base_model=base_model if trained_on else None, concurrency=spec.concurrency,
                                    on_start=on_start, on_progress=self.cb.on_run_progress)
            except (EvalError, EvalFailed, SpecError, StoreError) as exc:
                raise LoopError(f"evaluation of {served.model}: {exc}") from None
            for r in rows:
                ids.append(r.evaluation_id)
                parts.append(f"{r.domain} {r.correct}/{r.n}")
        return ids, "held-out accuracy " + ", ".join(parts)


def run_loop(spec: LoopSpec, callbacks: LoopCallbacks | None = None) -> LoopResult:
    """Run or resume ``spec`` (see :class:`LoopRunner`)."""
    return LoopRunner(spec, callbacks).run()
