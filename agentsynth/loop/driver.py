"""Running a loop: per arm and seed, each generation synthesizes with the current checkpoint,
selects with the arm's signal (an export), trains the next checkpoint from it and evaluates it.

Every step is an ordinary run, export, checkpoint and evaluation, tied together by a ``loops``
row (:mod:`agentsynth.store.loops`). Each phase is idempotent, so re-running a killed loop
continues where it stopped and duplicates nothing: a run of the same name resumes, an identical
export is recorded once, a checkpoint is written whole or not at all (and kept once written),
and an evaluation of the same model and tasks resumes and replaces its rows.

Which tasks each step draws, its run spec and the checks before anything runs are in
:mod:`agentsynth.loop.plan`.
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
from ..runner import Runner
from ..spec import SpecError, parse_spec
from ..store.connection import StoreError
from ..store.loops import LoopStep, load_steps, save_step
from .arms import Arm
from .plan import base_envs, check_loop, checked, run_name, synthesis_spec
from .spec import LoopSpec
from .trainers import LoopError, Served, Trainer, TrainJob

__all__ = ["LoopCallbacks", "LoopResult", "LoopRunner", "check_loop", "run_loop"]


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
        arms, trainer, self.rows = checked(spec)
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

        envs = base_envs(self.spec)
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
