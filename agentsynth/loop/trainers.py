"""Trainers of a loop: how a checkpoint is trained on an export and how it is used as a model.

A :class:`Trainer` does two things: :meth:`~Trainer.train` writes a new checkpoint trained from a
parent on an SFT export, and :meth:`~Trainer.serving` makes a checkpoint usable as a model (an
in-process scheme, or a server it starts and stops) for synthesis and evaluation.

Built in:

- ``student``: agentsynth's student (:mod:`agentsynth.student`), in process (``student:PATH``).
- ``command``: the user's own commands (e.g. a TRL script and ``vllm serve`` on a GPU machine).
  ``train`` is a template with placeholders ``{export}`` (the sft JSONL file), ``{export_id}``,
  ``{base}`` (the parent checkpoint), ``{out}`` (the directory to write), ``{steps}``, ``{seed}``,
  ``{lr}``, ``{replay}``, ``{replay_from}`` (the loop's base checkpoint), ``{store}``; ``serve``
  has ``{checkpoint}``, ``{port}`` and ``{model}`` (the name the loop asks for). Commands are
  split like a shell would and run without one; values are substituted after splitting, so a
  path with spaces stays one argument. Output goes to ``<workdir>/logs``.

Register more with :func:`register_trainer` or the ``agentsynth.trainers`` entry-point group
(an entry point loads a factory ``f(spec) -> Trainer``).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from .spec import LoopSpec


class LoopError(RuntimeError):
    """A loop step cannot go on (message says which step and why); what is stored stays."""


@dataclass(frozen=True)
class Served:
    """A checkpoint as a model: ``model`` with ``base_url`` (None: in process)."""

    model: str
    base_url: str | None = None
    api_key_env: str | None = None


@dataclass(frozen=True)
class TrainJob:
    """One training step of the loop."""

    parent: Path
    base: Path
    export_id: str
    export_path: Path
    out: Path
    steps: int
    seed: int
    lr: float
    replay: float
    batch_size: int
    store: Path


class Trainer(ABC):
    """Trains checkpoints and serves them (see the module docstring)."""

    name: str = ""

    @abstractmethod
    def check(self, checkpoint: Path) -> None:
        """Raise :class:`LoopError` if ``checkpoint`` is missing or unusable."""

    @abstractmethod
    def train(self, job: TrainJob, on_progress: Callable[[Any], None] | None = None) -> dict[str, Any]:
        """Write ``job.out`` (a complete checkpoint, or nothing); return training figures."""

    @abstractmethod
    def served(self, checkpoint: Path, name: str) -> Served:
        """How ``checkpoint`` is addressed as a model once served (``name``: the model name to use)."""

    @abstractmethod
    def serving(self, checkpoint: Path, name: str) -> contextlib.AbstractContextManager[Served]:
        """A context in which ``checkpoint`` answers as :meth:`served` says."""


def partial_dir(out: Path) -> Path:
    """Where a checkpoint is written before it is renamed to ``out``."""
    return out.with_name(out.name + ".partial")


class StudentTrainer(Trainer):
    """The built-in student, trained and run in process."""

    name = "student"

    def __init__(self) -> None:
        self._replay: dict[Path, list[Any]] = {}  # the base's replay data, rebuilt once per base

    def _replay_of(self, base: Path) -> list[Any]:
        from ..student.build import replay_examples
        from ..student.checkpoint import Student

        if base not in self._replay:
            self._replay[base] = replay_examples(Student.load(base))
        return self._replay[base]

    def check(self, checkpoint: Path) -> None:
        from ..student.checkpoint import Student
        from ..student.errors import StudentError

        try:
            Student.load(checkpoint)
        except StudentError as exc:
            raise LoopError(str(exc)) from None

    def train(self, job: TrainJob, on_progress: Callable[[Any], None] | None = None) -> dict[str, Any]:
        from ..student.build import ExportRef, finetune
        from ..student.checkpoint import Student
        from ..student.config import TrainConfig
        from ..student.data import file_sha256, read_sft
        from ..student.errors import StudentError

        try:  # a checkpoint is written under a temporary name and renamed: whole or absent
            parent = Student.load(job.parent)
            examples = read_sft(job.export_path)
            replay = self._replay_of(job.base) if job.replay else []
            cfg = TrainConfig(steps=job.steps, lr=job.lr, seed=job.seed, replay=job.replay, batch_size=job.batch_size,
                              warmup=10)
            ref = ExportRef(job.export_path.resolve(), file_sha256(job.export_path), job.export_id)
            child = finetune(parent, examples, job.out, train_cfg=cfg, data=ref.lineage(), replay=replay,
                             on_progress=on_progress)
        except StudentError as exc:
            raise LoopError(f"training {job.out.name}: {exc}") from None
        t = child.manifest["training"]
        return {"steps": t["steps"], "final_loss": t["final_loss"], "tokens_per_s": t["tokens_per_s"],
                "train_wall_s": t["wall_s"], "examples": len(examples)}

    def served(self, checkpoint: Path, name: str) -> Served:
        return Served("student:" + str(checkpoint.resolve()))

    @contextlib.contextmanager
    def serving(self, checkpoint: Path, name: str) -> Iterator[Served]:
        yield self.served(checkpoint, name)


class CommandTrainer(Trainer):
    """The user's own train and serve commands (see the module docstring)."""

    name = "command"

    def __init__(self, spec: LoopSpec):
        assert spec.command is not None
        self.cfg = spec.command
        self.logs = spec.work_path() / "logs"
        for what, template in (("train", self.cfg.train), ("serve", self.cfg.serve)):
            try:
                shlex.split(template)
            except ValueError as exc:
                raise LoopError(f"command.{what}: {exc}") from None

    def check(self, checkpoint: Path) -> None:
        text = str(checkpoint)
        local = checkpoint.is_absolute() or text.startswith(".") or text.count("/") != 1
        if local and not checkpoint.exists():  # "org/model" may be a hub id your commands resolve
            raise LoopError(f"no checkpoint at {checkpoint}")

    def _argv(self, template: str, values: dict[str, Any]) -> list[str]:
        try:
            return [part.format(**values) for part in shlex.split(template)]
        except (KeyError, IndexError, ValueError) as exc:
            raise LoopError(f"command template {template!r}: unknown placeholder {exc}") from None

    def train(self, job: TrainJob, on_progress: Callable[[Any], None] | None = None) -> dict[str, Any]:
        tmp = partial_dir(job.out)
        shutil.rmtree(tmp, ignore_errors=True)
        argv = self._argv(self.cfg.train, {
            "export": job.export_path, "export_id": job.export_id, "base": job.parent, "out": tmp,
            "steps": job.steps, "seed": job.seed, "lr": job.lr, "replay": job.replay, "replay_from": job.base,
            "store": job.store, "batch_size": job.batch_size})
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"train-{job.out.name}.log"
        t0 = time.monotonic()
        with open(log, "w") as f:
            try:
                rc = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode
            except OSError as exc:
                raise LoopError(f"train command {argv[0]!r}: {exc.strerror}") from None
        if rc != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise LoopError(f"train command exited with status {rc} for {job.out.name}: {_last_line(log)} (log: {log})")
        if not tmp.exists():
            raise LoopError(f"train command exited 0 but wrote nothing at {tmp} (log: {log})")
        os.replace(tmp, job.out)
        return {"train_wall_s": time.monotonic() - t0}

    def served(self, checkpoint: Path, name: str) -> Served:
        return Served(name, f"http://127.0.0.1:{self.cfg.port}/v1", self.cfg.api_key_env)

    @contextlib.contextmanager
    def serving(self, checkpoint: Path, name: str) -> Iterator[Served]:
        port = self.cfg.port
        argv = self._argv(self.cfg.serve, {"checkpoint": checkpoint, "port": port, "model": name})
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"serve-{checkpoint.name}.log"
        with open(log, "a") as f:
            try:
                proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
            except OSError as exc:
                raise LoopError(f"serve command {argv[0]!r}: {exc.strerror}") from None
        try:
            served = self.served(checkpoint, name)
            assert served.base_url is not None
            _wait_ready(proc, served.base_url, self.cfg.ready_timeout, log)
            yield served
        finally:
            _stop(proc)


def _last_line(log: Path) -> str:
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "(no output)"


def _wait_ready(proc: subprocess.Popen[bytes], base_url: str, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LoopError(f"serve command exited with status {proc.returncode} before answering: {_last_line(log)} "
                            f"(log: {log})")
        try:
            with urllib.request.urlopen(base_url + "/models", timeout=2) as r:  # noqa: S310 - our own localhost URL
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    _stop(proc)
    raise LoopError(f"the served model did not answer at {base_url} within {timeout:g} s (log: {log})")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


TRAINERS: dict[str, Callable[[LoopSpec], Trainer]] = {
    "student": lambda spec: StudentTrainer(),
    "command": CommandTrainer,
}


def register_trainer(name: str, factory: Callable[[LoopSpec], Trainer]) -> None:
    """Make a trainer available to loop specs as ``trainer = name``."""
    TRAINERS[name] = factory


def make_trainer(spec: LoopSpec) -> Trainer:
    """The trainer ``spec.trainer`` names; :class:`LoopError` naming the known ones when unknown."""
    factory = TRAINERS.get(spec.trainer)
    if factory is None:
        for ep in entry_points(group="agentsynth.trainers"):
            if ep.name == spec.trainer:
                factory = ep.load()
                register_trainer(spec.trainer, factory)
                break
    if factory is None:
        known = sorted({*TRAINERS, *(ep.name for ep in entry_points(group="agentsynth.trainers"))})
        raise LoopError(f"unknown trainer {spec.trainer!r}; trainers: {', '.join(known)}")
    return factory(spec)
