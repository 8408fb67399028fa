"""Task-level resampling for the audit's bootstrap: per-task tables, resample weights, resampled tables.

Task-level bootstrap. Episodes of one task share the task (its difficulty, its reference), so
they are not independent; resampling episodes would understate the uncertainty. Observations
are first summed into one contingency table per task (:func:`cluster_table`); a bootstrap
resample draws tasks with replacement, i.e. a multinomial weight per task
(:func:`bootstrap_weights`), and its table is ``weights @ tables``. One weight matrix is drawn
once and reused for every statistic, signal and domain, so resamples are joint across them
(that is what makes the across-domain spread interval,
:func:`~agentsynth.analysis.intervals.spread`, meaningful).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "bootstrap_weights",
    "cluster_table",
    "resample",
]

_CHUNK_INTS = 4_000_000  # resample indices drawn per chunk in bootstrap_weights (~16-32 MB)
_COUNT_BINS = 2**19  # bins per bincount in bootstrap_weights: the counts fit in the CPU cache


def bootstrap_weights(
    n_clusters: int, B: int, rng: np.random.Generator, order: np.ndarray | None = None
) -> np.ndarray:
    """``(B, n_clusters)`` float32 multinomial resample counts: how often each task is drawn.

    Each row sums to ``n_clusters`` (tasks are resampled, not observations). Drawn in chunks of
    rows with ``rng.integers`` and counted with ``bincount`` a few rows at a time (so that the
    counts stay in the CPU cache), so memory stays small; deterministic for a given generator
    state. ``order`` (a permutation of the clusters) puts cluster ``order[j]`` in column ``j``;
    the draws, so each cluster's weights, are the same.
    """
    if n_clusters < 0 or B < 1:
        raise ValueError(f"need n_clusters >= 0 and B >= 1, got {n_clusters}, {B}")
    out = np.zeros((B, n_clusters), dtype=np.float32)
    if n_clusters == 0:
        return out
    if order is not None:
        order = np.asarray(order)
        if not np.array_equal(np.sort(order), np.arange(n_clusters)):
            raise ValueError("order must be a permutation of range(n_clusters)")
    rows = max(1, min(B, _CHUNK_INTS // n_clusters))
    dtype = np.int32 if rows * n_clusters < 2**31 else np.int64
    step = max(1, min(rows, _COUNT_BINS // n_clusters))
    offsets = (np.arange(step, dtype=dtype) * dtype(n_clusters))[:, None]
    column = None if order is None else np.empty(n_clusters, dtype=dtype)
    if column is not None:
        column[order] = np.arange(n_clusters, dtype=dtype)
    for start in range(0, B, rows):
        r = min(rows, B - start)
        idx = rng.integers(0, n_clusters, size=(r, n_clusters), dtype=dtype)
        if column is not None:
            idx = column[idx]
        for i in range(0, r, step):
            k = min(step, r - i)
            counts = np.bincount((idx[i : i + k] + offsets[:k]).ravel(), minlength=k * n_clusters)
            out[start + i : start + i + k] = counts.reshape(k, n_clusters)
    return out


def cluster_table(
    cluster: np.ndarray,
    cells: tuple[np.ndarray, ...],
    shape: tuple[int, ...],
    n_clusters: int,
) -> np.ndarray:
    """Per-task contingency counts, ``(n_clusters, *shape)`` float64, from observation arrays.

    ``cluster`` is the task index of each observation (``0 <= c < n_clusters``); ``cells`` holds
    one small-int code array per variable (e.g. ``(s, t, m)``), ``cells[i]`` in
    ``[0, shape[i])``. Observations with any code < 0 (unknown) are dropped.
    """
    shape = tuple(int(s) for s in shape)
    if len(cells) != len(shape):
        raise ValueError(f"{len(cells)} code arrays for a table of {len(shape)} dimensions")
    cl = np.asarray(cluster).astype(np.int64, copy=False).ravel()
    codes = [np.asarray(c).astype(np.int64, copy=False).ravel() for c in cells]
    for i, c in enumerate(codes):
        if c.shape != cl.shape:
            raise ValueError(f"code array {i} has {c.size} entries, cluster has {cl.size}")
    keep = np.ones(cl.shape, dtype=bool)
    for c in codes:
        keep &= c >= 0
    if not keep.all():
        cl = cl[keep]
        codes = [c[keep] for c in codes]
    for i, (c, size) in enumerate(zip(codes, shape, strict=True)):
        if c.size and c.max() >= size:
            raise ValueError(f"code {int(c.max())} out of range for variable {i} of size {size}")
    if cl.size and (cl.min() < 0 or cl.max() >= n_clusters):
        raise ValueError(f"cluster index out of range [0, {n_clusters})")
    ncell = math.prod(shape)
    flat = cl * ncell
    stride = ncell
    for c, size in zip(codes, shape, strict=True):
        stride //= size
        flat += c * stride
    counts = np.bincount(flat, minlength=n_clusters * ncell).astype(np.float64)
    return counts.reshape((n_clusters, *shape))


def resample(table: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``weights @ table``: the ``(B, n_cells)`` float64 resampled tables of a per-task table
    flattened to ``(n_clusters, n_cells)``. Float32 weights times small per-task counts are
    exact integers until 2**24 per cell, so float32 arithmetic is used then."""
    w = np.asarray(weights)
    wdtype = w.dtype if w.dtype in (np.float32, np.float64) else np.float64
    return (w.astype(wdtype, copy=False) @ np.asarray(table).astype(wdtype)).astype(np.float64)
