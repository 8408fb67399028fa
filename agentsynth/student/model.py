"""The student network: a small GPT in plain PyTorch, with a key/value cache for sampling.

Shape (:class:`~agentsynth.student.config.GPTConfig`): token + learned position embeddings,
``layers`` pre-LayerNorm blocks (causal multi-head attention through
``scaled_dot_product_attention``, a GELU MLP), a final LayerNorm and an output layer tied to the
token embeddings. Training computes logits only where the loss is taken (the reply tokens), which
skips most of the output layer's cost: prompts are ~8x longer than replies.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import GPTConfig


class KVCache:
    """Keys and values of every layer for a batch of sequences, preallocated to ``length``.

    ``k``/``v``: (layers, batch, heads, length, head_dim). :meth:`keep` drops finished rows.
    """

    def __init__(self, cfg: GPTConfig, batch: int, length: int, dtype: torch.dtype = torch.float32):
        shape = (cfg.layers, batch, cfg.heads, length, cfg.width // cfg.heads)
        self.k = torch.zeros(shape, dtype=dtype)
        self.v = torch.zeros(shape, dtype=dtype)

    def keep(self, rows: Tensor) -> None:
        """Keep only the batch rows ``rows`` (a 1-D index tensor), in that order."""
        self.k = self.k.index_select(1, rows)
        self.v = self.v.index_select(1, rows)


class _Attention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.heads = cfg.heads
        self.qkv = nn.Linear(cfg.width, 3 * cfg.width, bias=False)
        self.proj = nn.Linear(cfg.width, cfg.width, bias=False)

    def forward(self, x: Tensor, layer: int, cache: KVCache | None, start: int, mask: Tensor | None) -> Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            cache.k[layer, :, :, start:start + t] = k
            cache.v[layer, :, :, start:start + t] = v
            y = F.scaled_dot_product_attention(q, cache.k[layer, :, :, :start + t], cache.v[layer, :, :, :start + t],
                                               attn_mask=mask)
        return self.proj(y.transpose(1, 2).reshape(b, t, c))


class _Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.width)
        self.attn = _Attention(cfg)
        self.ln2 = nn.LayerNorm(cfg.width)
        self.mlp = nn.Sequential(nn.Linear(cfg.width, cfg.mlp_ratio * cfg.width, bias=False), nn.GELU(),
                                 nn.Linear(cfg.mlp_ratio * cfg.width, cfg.width, bias=False))

    def forward(self, x: Tensor, layer: int, cache: KVCache | None, start: int, mask: Tensor | None) -> Tensor:
        x = x + self.attn(self.ln1(x), layer, cache, start, mask)
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """The student network (see the module docstring)."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.width)
        self.wpe = nn.Embedding(cfg.context, cfg.width)
        self.blocks = nn.ModuleList(_Block(cfg) for _ in range(cfg.layers))
        self.ln_f = nn.LayerNorm(cfg.width)
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2's scaled init of the residual projections
            if name.endswith("attn.proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * cfg.layers))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)

    def n_params(self) -> int:
        """Number of parameters (tied embeddings counted once)."""
        return sum(p.numel() for p in self.parameters())

    def logits(self, h: Tensor) -> Tensor:
        """Output logits of final hidden states (the output layer is the token embedding)."""
        return h @ self.wte.weight.T

    def hidden(self, idx: Tensor, positions: Tensor | None = None, cache: KVCache | None = None, start: int = 0,
               mask: Tensor | None = None) -> Tensor:
        """Final hidden states (batch, time, width) of token ids ``idx``.

        Training: ``idx`` only (causal attention, positions 0..T-1). Sampling: ``positions``
        (batch, time), the ``cache`` written at ``start..start+T`` and a boolean attention
        ``mask`` (batch, 1, time, start+time), True where a query may attend to a key.
        """
        if positions is None:
            positions = torch.arange(idx.shape[1]).unsqueeze(0)
        x = self.wte(idx) + self.wpe(positions)
        for i, block in enumerate(self.blocks):
            x = block(x, i, cache, start, mask)
        return self.ln_f(x)

    def loss(self, idx: Tensor, targets: Tensor) -> Tensor:
        """Mean cross-entropy of predicting ``targets`` (batch, time) from ``idx``; positions whose
        target is -1 (the prompt, padding) are not scored and get no logits computed."""
        h = self.hidden(idx)
        keep = targets >= 0
        return F.cross_entropy(self.logits(h[keep]), targets[keep])
