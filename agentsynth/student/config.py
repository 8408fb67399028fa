"""The student's settings: the network's shape (:class:`GPTConfig`) and how it trains
(:class:`TrainConfig`). Plain dataclasses, importable without torch, stored in a checkpoint's
manifest.

The defaults are the measured ones (README, "The student"; ``benchmarks/bench_student.py``):
width 96, 3 layers, 4 heads (0.46M parameters with a 1,024-token vocabulary), batches of 64 at a
peak learning rate of 2e-3 learned difficulty-1 arithmetic from references faster per minute on
2 CPU threads than width 128 / 4 layers (1.7x slower per token) or batches of 128.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from .errors import StudentError


def _from_dict(cls: type, data: Any, what: str) -> Any:
    if not isinstance(data, dict):
        raise StudentError(f"{what} must be an object, got {type(data).__name__}")
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise StudentError(f"{what}: unknown field(s) {', '.join(unknown)}")
    try:
        return cls(**data)
    except (TypeError, ValueError) as exc:
        raise StudentError(f"{what}: {exc}") from None


@dataclass(frozen=True)
class GPTConfig:
    """The network: a decoder-only transformer (pre-LayerNorm, GELU MLP, learned positions, tied
    input and output embeddings, no biases in linear layers, no dropout).

    context: the longest sequence (prompt + reply) in tokens; longer prompts are cut from the left
    when sampling and skipped when training.
    """

    vocab_size: int
    context: int = 256
    width: int = 96
    layers: int = 3
    heads: int = 4
    mlp_ratio: int = 4

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{f.name} must be a positive integer, got {v!r}")
        if self.width % self.heads:
            raise ValueError(f"width {self.width} is not a multiple of heads {self.heads}")

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict (for the manifest)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> GPTConfig:
        """From a manifest's ``model`` object; :class:`StudentError` when it is not one."""
        return _from_dict(cls, data, "manifest model config")  # type: ignore[no-any-return]


@dataclass(frozen=True)
class TrainConfig:
    """How one training run goes.

    steps: optimizer steps (deterministic); ``None`` with ``minutes``: as many as fit.
    minutes: a wall-clock budget (used when ``steps`` is None): the schedule's length follows the
        measured speed, so the run is not bit-reproducible; its recorded step count is.
    batch_size: sequences per step (sequences of similar length are batched together).
    lr: peak learning rate (AdamW, betas 0.9/0.95); ``warmup`` steps of linear warm-up, then a
        cosine decay to ``min_lr_ratio`` × lr at the last step.
    weight_decay: AdamW decay on weight matrices (not on norms or embeddings).
    grad_clip: global gradient-norm clip.
    replay: fraction of each batch drawn from replay data (e.g. the base's training data), when
        replay data is given; 0 disables it.
    seed: seeds the initialization (for a new model), the data order and the replay draws.
    threads: torch intra-op threads (default: the machine's cores).
    """

    steps: int | None = None
    minutes: float | None = None
    batch_size: int = 64
    lr: float = 2e-3
    warmup: int = 30
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    replay: float = 0.0
    seed: int = 0
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.steps is None and self.minutes is None:
            raise ValueError("give steps or minutes")
        if self.steps is not None and (isinstance(self.steps, bool) or self.steps < 1):
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.minutes is not None and not self.minutes > 0:
            raise ValueError(f"minutes must be > 0, got {self.minutes}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not 0.0 <= self.replay < 1.0:
            raise ValueError(f"replay must be in [0, 1), got {self.replay}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict (for the manifest)."""
        return asdict(self)
