"""Information estimators of the audit: entropy, mutual information, conditional mutual information, agreement.

Everything works on contingency tables of counts, so one vectorized call handles a whole
batch of tables (leading dimensions are kept): one summed table for a point estimate, or the
resampled tables of a bootstrap (:mod:`agentsynth.analysis.resampling`) at once.

Entropy and information. Entropies are plug-in estimates in bits with the Miller-Madow
correction, ``H_MM = H_plugin + (K - 1) / (2 N ln 2)`` (``K`` = non-empty cells, ``N`` = total
count), which removes the first-order downward bias of the plug-in estimate. Information is
built from corrected entropies: ``I(X;Y) = H(X) + H(Y) - H(X,Y)`` and
``I(X;Y|Z) = H(X,Z) + H(Y,Z) - H(X,Y,Z) - H(Z)``. The correction can take an estimate slightly
below zero when the truth is zero; estimates are reported as they come, not clipped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "agreement",
    "conditional_mutual_information",
    "entropy",
    "mutual_information",
]

_LN2 = math.log(2.0)


def _axes_tuple(axes: int | Sequence[int], ndim: int) -> tuple[int, ...]:
    seq = (axes,) if isinstance(axes, (int, np.integer)) else tuple(axes)
    out = tuple(int(a) % ndim for a in seq)
    if len(set(out)) != len(out):
        raise ValueError(f"repeated axis in {axes!r}")
    return out


def entropy(counts: np.ndarray, axes: int | Sequence[int] = -1) -> np.ndarray:
    """Miller-Madow-corrected plug-in entropy, in bits, over ``axes`` of a count array.

    Leading (non-reduced) dimensions are batch dimensions. Counts may be float weights (e.g. a
    bootstrap-weighted table). ``H_MM = H_plugin + (K - 1) / (2 N ln 2)`` with ``K`` the number of
    non-zero cells; an empty table (``N = 0``) gives nan.
    """
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim == 0:
        raise ValueError("entropy needs at least one axis of counts")
    if np.any(c < 0):
        raise ValueError("counts must be non-negative")
    ax = _axes_tuple(axes, c.ndim)
    n = c.sum(axis=ax)
    pos = c > 0
    clogc = c * np.log2(np.where(pos, c, 1.0))
    s = clogc.sum(axis=ax)
    k = pos.sum(axis=ax)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.log2(n) - s / n + (k - 1) / (2.0 * n * _LN2)
    return np.where(n > 0, h, np.nan)


def mutual_information(joint: np.ndarray) -> np.ndarray:
    """``I(X;Y)`` in bits from a ``(..., nx, ny)`` count table, each entropy Miller-Madow-corrected."""
    j = np.asarray(joint, dtype=np.float64)
    if j.ndim < 2:
        raise ValueError("mutual_information needs a (..., nx, ny) table")
    return entropy(j.sum(-1)) + entropy(j.sum(-2)) - entropy(j, axes=(-2, -1))


def conditional_mutual_information(joint: np.ndarray) -> np.ndarray:
    """``I(X;Y|Z)`` in bits from a ``(..., nx, ny, nz)`` count table.

    ``H(X,Z) + H(Y,Z) - H(X,Y,Z) - H(Z)``, each entropy Miller-Madow-corrected.
    """
    j = np.asarray(joint, dtype=np.float64)
    if j.ndim < 3:
        raise ValueError("conditional_mutual_information needs a (..., nx, ny, nz) table")
    return (
        entropy(j.sum(-2), axes=(-2, -1))
        + entropy(j.sum(-3), axes=(-2, -1))
        - entropy(j, axes=(-3, -2, -1))
        - entropy(j.sum((-3, -2)))
    )


def agreement(joint: np.ndarray) -> dict[str, np.ndarray]:
    """Agreement of a binary signal S with truth T from ``(..., 2, 2)`` counts indexed ``[s, t]``.

    Returns ``accuracy`` P(S=T), ``precision`` P(T=1|S=1), ``recall`` P(S=1|T=1), Cohen's
    ``kappa`` and ``pass_rate`` P(S=1); nan where undefined (precision when S never passes,
    recall when T never passes, kappa when the expected agreement is 1, all of them when empty).
    """
    j = np.asarray(joint, dtype=np.float64)
    if j.shape[-2:] != (2, 2):
        raise ValueError(f"agreement needs a (..., 2, 2) table, got shape {j.shape}")
    n00, n01, n10, n11 = j[..., 0, 0], j[..., 0, 1], j[..., 1, 0], j[..., 1, 1]
    n = n00 + n01 + n10 + n11
    with np.errstate(divide="ignore", invalid="ignore"):
        acc = (n00 + n11) / n
        ps1 = (n10 + n11) / n
        pt1 = (n01 + n11) / n
        pe = ps1 * pt1 + (1.0 - ps1) * (1.0 - pt1)
        kappa = np.where(pe < 1.0, (acc - pe) / (1.0 - pe), np.nan)
        out = {
            "accuracy": acc,
            "precision": n11 / (n10 + n11),
            "recall": n11 / (n01 + n11),
            "kappa": kappa,
            "pass_rate": ps1,
        }
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}
