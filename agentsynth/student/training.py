"""Training the student: next-token loss on the reply tokens only, AdamW with linear warm-up and a
cosine decay, batches of similar length, a progress callback.

Deterministic: the same model weights, examples, :class:`~agentsynth.student.config.TrainConfig`
(seed included) and thread count give the same weights, bit for bit. The data order is drawn in
this thread from a seeded generator; there is no dropout; torch runs ``threads`` intra-op threads
(default: the machine's cores). With a ``minutes`` budget instead of ``steps``, the schedule's
length is re-estimated after every step from the speed so far (so the cosine ends when the time
does, however the machine's load changes) and the run is not bit-reproducible; the report's
``steps`` used as ``steps`` gives a reproducible run of about the same length.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from .config import TrainConfig
from .data import Batches, Encoded, Example, encode_examples, pad_batch
from .errors import StudentError
from .model import GPT


@dataclass(frozen=True)
class Progress:
    """What the progress callback gets after each step."""

    step: int
    steps: int
    loss: float
    lr: float
    tokens_per_s: float
    elapsed_s: float


@dataclass(frozen=True)
class TrainReport:
    """Figures of a finished training run (stored in the checkpoint's manifest).

    ``tokens`` counts the real (non-padding) tokens read; ``final_loss`` is the mean reply-token
    loss of the last 10 steps.
    """

    steps: int
    final_loss: float
    tokens: int
    tokens_per_s: float
    wall_s: float
    seed: int
    threads: int
    examples: int
    skipped_too_long: int
    replay_examples: int

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict."""
        return asdict(self)


def set_threads(threads: int | None) -> int:
    """Set torch's intra-op threads (default: the machine's cores); return the count."""
    n = threads or os.cpu_count() or 1
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def lr_at(step: int, steps: int, cfg: TrainConfig) -> float:
    """Learning rate of step ``step`` (0-based) of ``steps``: linear warm-up, cosine to ``min_lr_ratio``."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    span = max(1, steps - cfg.warmup)
    frac = min(1.0, (step - cfg.warmup) / span)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * frac)))


def _optimizer(model: GPT, cfg: TrainConfig) -> torch.optim.AdamW:
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": other, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95))


def _stream(tokenizer: Any, examples: Sequence[Example], size: int, seed: int, context: int,
            what: str) -> tuple[Batches | None, list[Encoded], int]:
    if size == 0 or not examples:
        return None, [], 0
    enc, skipped = encode_examples(tokenizer, examples, context)
    if not enc:
        raise StudentError(f"every {what} example is longer than the model's context ({context} tokens)")
    return Batches(enc, size, seed), enc, skipped


def train(model: GPT, tokenizer: Any, examples: Sequence[Example], cfg: TrainConfig, *,
          replay: Sequence[Example] = (), on_progress: Callable[[Progress], None] | None = None) -> TrainReport:
    """Train ``model`` in place on ``examples`` (plus ``cfg.replay`` of each batch from ``replay``)."""
    threads = set_threads(cfg.threads)
    n_replay = round(cfg.batch_size * cfg.replay) if replay else 0
    main, enc, skipped = _stream(tokenizer, examples, cfg.batch_size - n_replay, cfg.seed, model.cfg.context, "training")
    if main is None:
        raise StudentError("no training examples")
    rep, rep_enc, _ = _stream(tokenizer, replay, n_replay, cfg.seed + 1, model.cfg.context, "replay")
    opt = _optimizer(model, cfg)
    model.train()
    budget = None if cfg.steps else 60.0 * float(cfg.minutes or 0)
    steps = cfg.steps or cfg.warmup + 1
    losses: list[float] = []
    tokens = 0
    t0 = time.perf_counter()
    step = 0
    while step < steps:
        batch = main.next() + (rep.next() if rep is not None else [])
        x, y = (torch.from_numpy(a) for a in pad_batch(batch, tokenizer.pad_id))
        lr = lr_at(step, steps, cfg)
        for g in opt.param_groups:
            g["lr"] = lr
        loss = model.loss(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        step += 1
        tokens += sum(len(e.ids) - 1 for e in batch)
        losses.append(loss.item())
        elapsed = time.perf_counter() - t0
        if budget is not None:  # the steps that fit the budget at the speed so far; none once it is spent
            steps = step if elapsed >= budget else max(step + 1, int(budget * step / elapsed))
        if on_progress is not None:
            on_progress(Progress(step, steps, losses[-1], lr, tokens / max(elapsed, 1e-9), elapsed))
    model.eval()
    wall = time.perf_counter() - t0
    tail = losses[-10:]
    return TrainReport(steps=step, final_loss=sum(tail) / len(tail), tokens=tokens, tokens_per_s=tokens / max(wall, 1e-9),
                       wall_s=wall, seed=cfg.seed, threads=threads, examples=len(enc), skipped_too_long=skipped,
                       replay_examples=len(rep_enc))
