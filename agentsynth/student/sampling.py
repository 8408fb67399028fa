"""Batched sampling from the student with a key/value cache.

:func:`generate` writes replies for many prompts at once: rows of similar prompt length are
batched (left-padded; the attention mask hides the padding and positions start at each prompt's
first token), every step runs one forward pass of one token per row, and rows leave the batch
when they write ``<|end|>`` or reach their token limit.

Randomness is per row: a row's draws come from its own generator, seeded from the request's seed
and the sample's index, so a request's samples do not depend on which other requests share its
batch. Temperature 0 is greedy (argmax). Sampling at temperature T picks
``argmax(logits / T - log(E))`` with E ~ Exp(1) per token (the Gumbel-max form of softmax
sampling).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .model import GPT, KVCache

MAX_BATCH_TOKENS = 32_768
"""Rows × (prompt + reply length) per batch: bounds the cache (2 x layers x width x 4 bytes per token: 2.3 KB at the default size)."""
MAX_SCORE_BYTES = 1 << 28
"""Bound on the prefill's attention scores (rows × heads × prompt² × 4 bytes)."""


@dataclass(frozen=True)
class Request:
    """One prompt to answer ``n`` times.

    ``seed`` None: fresh randomness; ``max_tokens``: the reply's limit (cut to fit the context).
    """

    prompt: list[int]
    n: int = 1
    temperature: float = 0.0
    seed: int | None = None
    max_tokens: int = 64


@dataclass(frozen=True)
class Sample:
    """One generated reply: its ids (without ``<|end|>``), why it stopped (``stop``: it wrote
    ``<|end|>``; ``length``: it reached the limit) and how many prompt tokens it read (a prompt
    longer than the context is cut from the left)."""

    ids: list[int]
    finish_reason: str
    prompt_tokens: int


def row_seed(seed: int | None, sample: int) -> int:
    """The generator seed of sample ``sample`` of a request (random when ``seed`` is None)."""
    if seed is None:
        return int.from_bytes(os.urandom(8), "big") >> 1
    h = hashlib.blake2b(f"{seed}:{sample}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") >> 1


@dataclass
class _Row:
    prompt: list[int]
    max_new: int
    temperature: float
    seed: int
    out: int  # index of the result slot


def _rows(requests: Sequence[Request], context: int) -> tuple[list[_Row], list[int]]:
    rows, prompt_tokens = [], []
    for r in requests:
        reserve = max(1, min(r.max_tokens, context // 2))
        prompt = r.prompt[-(context - reserve):] if len(r.prompt) > context - reserve else list(r.prompt)
        prompt_tokens.append(len(prompt))
        max_new = max(1, min(r.max_tokens, context - len(prompt)))
        for j in range(r.n):
            rows.append(_Row(prompt, max_new, float(r.temperature), row_seed(r.seed, j), len(rows)))
    return rows, prompt_tokens


def _chunks(rows: list[_Row]) -> list[list[_Row]]:
    """Rows sorted by prompt length, cut into batches that fit the memory bounds."""
    ordered = sorted(rows, key=lambda r: (len(r.prompt), r.out))
    out: list[list[_Row]] = []
    cur: list[_Row] = []
    for r in ordered:
        trial = cur + [r]
        p = max(len(x.prompt) for x in trial)
        t = p + max(x.max_new for x in trial)
        if cur and (len(trial) * t > MAX_BATCH_TOKENS or len(trial) * 16 * p * p > MAX_SCORE_BYTES):
            out.append(cur)
            trial = [r]
        cur = trial
    if cur:
        out.append(cur)
    return out


@torch.inference_mode()
def _run(model: GPT, batch: list[_Row], end_id: int, pad_id: int) -> list[tuple[list[int], str]]:
    b = len(batch)
    lens = torch.tensor([len(r.prompt) for r in batch])
    p = int(lens.max())
    max_new = torch.tensor([r.max_new for r in batch])
    total = p + int(max_new.max())
    idx = torch.full((b, p), pad_id, dtype=torch.long)
    for i, r in enumerate(batch):
        idx[i, p - len(r.prompt):] = torch.tensor(r.prompt, dtype=torch.long)
    offset = p - lens  # padding before each prompt
    valid = torch.arange(total).unsqueeze(0) >= offset.unsqueeze(1)  # keys that are real tokens
    pos = (torch.arange(p).unsqueeze(0) - offset.unsqueeze(1)).clamp(min=0)
    causal = torch.ones(p, p, dtype=torch.bool).tril()
    mask = (causal.unsqueeze(0) & valid[:, None, :p]) | torch.eye(p, dtype=torch.bool).unsqueeze(0)  # pads see themselves
    cache = KVCache(model.cfg, b, total)
    h = model.hidden(idx, pos, cache, 0, mask.unsqueeze(1))
    logits = model.logits(h[:, -1])
    temps = torch.tensor([r.temperature for r in batch])
    gens = []
    for r in batch:
        g = torch.Generator()
        g.manual_seed(r.seed)
        gens.append(g)
    alive = torch.arange(b)
    next_pos = lens.clone()
    outs: list[list[int]] = [[] for _ in range(b)]
    reasons = ["length"] * b
    t = p
    for step in range(int(max_new.max())):
        tok = logits.argmax(-1)
        hot = (temps[alive] > 0).nonzero().flatten().tolist()
        if hot:
            noise = torch.stack([torch.empty(logits.shape[1]).exponential_(generator=gens[int(alive[i])]) for i in hot])
            scaled = logits[hot] / temps[alive[hot]].unsqueeze(1) - noise.log()
            tok[hot] = scaled.argmax(-1)
        done = torch.zeros(len(alive), dtype=torch.bool)
        for i, (row, k) in enumerate(zip(alive.tolist(), tok.tolist())):
            if k == end_id:
                reasons[row] = "stop"
                done[i] = True
            else:
                outs[row].append(k)
                if len(outs[row]) >= batch[row].max_new:
                    done[i] = True
        if bool(done.all()):
            break
        if bool(done.any()):
            keep = (~done).nonzero().flatten()
            alive, tok, next_pos = alive[keep], tok[keep], next_pos[keep]
            cache.keep(keep)
        valid_now = valid[alive, : t + 1]
        h = model.hidden(tok.unsqueeze(1), next_pos.unsqueeze(1), cache, t, valid_now[:, None, None, :])
        logits = model.logits(h[:, -1])
        next_pos = next_pos + 1
        t += 1
    return [(outs[i], reasons[i]) for i in range(b)]


def generate(model: GPT, requests: Sequence[Request], *, end_id: int, pad_id: int = 0) -> list[list[Sample]]:
    """Replies to ``requests`` (``n`` each), in request order; see the module docstring."""
    model.eval()
    rows, prompt_tokens = _rows(requests, model.cfg.context)
    results: list[tuple[list[int], str]] = [([], "length")] * len(rows)
    for batch in _chunks(rows):
        for r, res in zip(batch, _run(model, batch, end_id, pad_id)):
            results[r.out] = res
    out: list[list[Sample]] = []
    k = 0
    for req, pt in zip(requests, prompt_tokens):
        out.append([Sample(ids, reason, pt) for ids, reason in results[k:k + req.n]])
        k += req.n
    return out
