"""Loop specs: which arms, how many generations and seeds, on which domains, from which base, and
how much synthesis, training and evaluation each step gets.

A loop spec is a TOML file (``runs/loop-smoke.toml``) or a :class:`LoopSpec` built in Python,
validated like run specs: every error names its field, and nothing runs until the whole spec is
valid.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..spec import SpecError, validation_errors, read_toml


DEFAULT_LOOP_STORE = "runs/loops.duckdb"
"""Where loops are stored unless a spec says otherwise (apart from runs/agentsynth.duckdb, so a
loop's many runs do not crowd a user's own)."""


class LoopSpecError(SpecError):
    """The loop spec is malformed or names something that does not exist (message says which)."""


class DomainSpec(BaseModel):
    """One environment of the loop: a loop domain (synthesized and trained on) or a held-out one."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="registered name, agentsynth/<name>-v0, tasks:PATH, or module:Class")
    difficulty: int = Field(1, ge=1, le=10)
    kwargs: dict[str, Any] = Field(default_factory=dict, description="other constructor arguments (a task set's "
                                   "column mapping), as in a run spec's [[envs]] kwargs")


class BaseSpec(BaseModel):
    """The generation-0 student: an existing ``checkpoint``, or ``student init`` parameters."""

    model_config = ConfigDict(extra="forbid")

    checkpoint: str | None = Field(None, description="an existing checkpoint directory (then nothing is built)")
    envs: list[str] | None = Field(None, description="environments of its pretraining (default: every loop and held-out domain)")
    difficulty: int = Field(1, ge=1, le=10)
    tasks: int = Field(20_000, ge=1, description="reference tasks per environment")
    steps: int | None = Field(None, ge=1)
    minutes: float | None = Field(None, gt=0)
    seed: int = 0
    review: float = Field(0.0, ge=0, lt=1, description="share of self-review examples (what the self-judge arm needs)")
    width: int = Field(96, ge=8)
    layers: int = Field(3, ge=1)
    heads: int = Field(4, ge=1)
    context: int = Field(256, ge=16)

    @model_validator(mode="after")
    def _budget(self) -> BaseSpec:
        if self.checkpoint is None and self.steps is None and self.minutes is None:
            raise ValueError("give the base a checkpoint, or a training budget (steps or minutes)")
        return self


class CommandSpec(BaseModel):
    """The ``command`` trainer's templates (see :mod:`agentsynth.loop.trainers`)."""

    model_config = ConfigDict(extra="forbid")

    train: str = Field(description="train command; placeholders {export} {base} {out} {steps} {seed} {lr} {replay} {store} {root}")
    serve: str = Field(description="serve command; placeholders {checkpoint} {port} {model}")
    port: int = Field(8719, ge=1, le=65535)
    ready_timeout: float = Field(300.0, gt=0, description="seconds to wait for the server to answer")
    api_key_env: str | None = None


class LoopSpec(BaseModel):
    """A generation-training loop (see :mod:`agentsynth.loop`)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    store: str = DEFAULT_LOOP_STORE
    workdir: str | None = Field(None, description="checkpoints and exports (default: <store's folder>/<name>)")
    loop_envs: list[DomainSpec] = Field(min_length=1, description="domains synthesized and trained on")
    held_out: list[DomainSpec] = Field(default_factory=list, description="domains only evaluated")
    base: BaseSpec
    arms: list[str] = Field(min_length=1)
    generations: int = Field(2, ge=1, le=100)
    seeds: int = Field(1, ge=1, le=100, description="independent repetitions of every arm (seeds 0..seeds-1)")
    samples: int = Field(8, ge=1, le=256, description="samples per task (K)")
    tasks: int = Field(200, ge=1, description="tasks per loop domain per generation")
    temperature: float = Field(1.0, ge=0, le=2)
    steps: int = Field(200, ge=1, description="training steps per generation")
    lr: float = Field(3e-4, gt=0)
    batch_size: int = Field(64, ge=1)
    replay: float = Field(0.5, ge=0, lt=1, description="share of each batch replaying the base's training data")
    eval_tasks: int = Field(200, ge=1, description="held-out tasks per domain")
    concurrency: int = Field(32, ge=1, le=1024)
    trainer: str = "student"
    command: CommandSpec | None = None

    @field_validator("arms")
    @classmethod
    def _arms(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("an arm is listed twice")
        return v

    @model_validator(mode="after")
    def _trainer(self) -> LoopSpec:
        if self.trainer == "command" and self.command is None:
            raise ValueError("trainer = 'command' needs a [command] table with train and serve templates")
        names = [d.id for d in self.loop_envs + self.held_out]
        if len(set(names)) != len(names):
            raise ValueError("a domain is listed twice (loop_envs and held_out must not overlap)")
        return self

    def content(self) -> dict[str, Any]:
        """What decides the loop's results (not where it is stored). A domain's empty ``kwargs`` are
        left out, so loops stored before domains took kwargs keep their hash and resume."""
        data = self.model_dump(exclude={"store", "workdir", "concurrency"}, exclude_defaults=False)
        for d in data["loop_envs"] + data["held_out"]:
            if not d["kwargs"]:
                del d["kwargs"]
        return data

    def spec_hash(self) -> str:
        """Hash of :meth:`content`: a resumed loop must have the same."""
        return hashlib.sha256(json.dumps(self.content(), sort_keys=True).encode()).hexdigest()[:16]

    def env_kwargs(self) -> dict[str, dict[str, Any]]:
        """The constructor arguments of each domain that has some (``evaluate``'s ``env_kwargs``)."""
        return {d.id: dict(d.kwargs) for d in self.loop_envs + self.held_out if d.kwargs}

    def work_path(self) -> Path:
        """The folder of checkpoints and exports."""
        return Path(self.workdir) if self.workdir else Path(self.store).parent / self.name


def parse_loop_spec(data: dict[str, Any], source: str = "loop spec") -> LoopSpec:
    """Validate a loop spec dict; errors name the field, one per line."""
    try:
        return LoopSpec.model_validate(data)
    except ValidationError as exc:
        raise LoopSpecError(f"{source}: invalid loop spec: " + validation_errors(exc)) from None


def load_loop_spec(path: str | Path, **overrides: Any) -> LoopSpec:
    """Read a TOML loop spec; ``overrides`` replace top-level fields when not None. Relative
    paths in it (store, workdir, base checkpoint) are relative to the working directory."""
    p = Path(path)
    data = read_toml(p, "loop spec", LoopSpecError)
    data.update({k: v for k, v in overrides.items() if v is not None})
    return parse_loop_spec(data, source=str(p))
