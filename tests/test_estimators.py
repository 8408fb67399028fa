"""Estimators of the information audit against distributions whose true values are known.

Truths come from closed forms (binary entropy, binary symmetric channels) or from a direct
summation over an explicit probability table, never from the estimators under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from agentsynth.analysis.information import (
    agreement,
    conditional_mutual_information,
    entropy,
    mutual_information,
)
from agentsynth.analysis.intervals import (
    Estimate,
    bootstrap,
    bootstrap_many,
    spread,
    spread_of,
    wilson,
)
from agentsynth.analysis.resampling import bootstrap_weights, cluster_table

# --------------------------------------------------------------------------- reference formulas


def h2(p: float) -> float:
    """Binary entropy in bits."""
    return -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


def cascade(a: float, b: float) -> float:
    """Flip probability of two binary symmetric channels in series."""
    return a * (1 - b) + b * (1 - a)


def exact_mi(p: np.ndarray) -> float:
    """I(X;Y) of a probability table by direct summation."""
    p = p / p.sum()
    px = p.sum(1, keepdims=True)
    py = p.sum(0, keepdims=True)
    nz = p > 0
    return float(np.sum(p[nz] * np.log2(p[nz] / (px * py)[nz])))


def exact_cmi(p: np.ndarray) -> float:
    """I(X;Y|Z) of a probability table p[x, y, z] by direct summation."""
    p = p / p.sum()
    pz = p.sum((0, 1), keepdims=True)
    pxz = p.sum(1, keepdims=True)
    pyz = p.sum(0, keepdims=True)
    nz = p > 0
    return float(np.sum(p[nz] * np.log2((p * pz)[nz] / (pxz * pyz)[nz])))


def bsc_joint(e: float) -> np.ndarray:
    """P[x, y]: X ~ Bern(0.5), Y = X flipped with probability e."""
    return 0.5 * np.array([[1 - e, e], [e, 1 - e]])


def hidden_w_joint(pz1: float, e1: tuple[float, float], e2: tuple[float, float]) -> np.ndarray:
    """P[x, y, z]: Z ~ Bern(pz1), W ~ Bern(0.5), X = W flipped w.p. e1[z], Y = W flipped w.p. e2[z]."""
    p = np.zeros((2, 2, 2))
    for z, pz in ((0, 1 - pz1), (1, pz1)):
        for w in (0, 1):
            for x in (0, 1):
                for y in (0, 1):
                    px = e1[z] if x != w else 1 - e1[z]
                    py = e2[z] if y != w else 1 - e2[z]
                    p[x, y, z] += pz * 0.5 * px * py
    return p


def through_z_joint(pz1: float, px1: tuple[float, float], py1: tuple[float, float]) -> np.ndarray:
    """P[x, y, z]: X and Y independent given Z, both depending on Z."""
    p = np.zeros((2, 2, 2))
    for z, pz in ((0, 1 - pz1), (1, pz1)):
        fx = np.array([1 - px1[z], px1[z]])
        fy = np.array([1 - py1[z], py1[z]])
        p[:, :, z] = pz * np.outer(fx, fy)
    return p


P_3X4 = np.array(
    [
        [0.10, 0.02, 0.05, 0.03],
        [0.01, 0.20, 0.04, 0.05],
        [0.06, 0.04, 0.02, 0.38],
    ]
)


def sample_counts(rng: np.random.Generator, p: np.ndarray, n: int, draws: int) -> np.ndarray:
    """``draws`` independent count tables of n observations from the probability table p."""
    flat = rng.multinomial(n, (p / p.sum()).ravel(), size=draws)
    return flat.reshape((draws, *p.shape)).astype(np.float64)


def sample_codes(rng: np.random.Generator, p: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
    """n observations from the probability table p, as one code array per variable."""
    cells = rng.choice(p.size, size=n, p=(p / p.sum()).ravel())
    return tuple(np.unravel_index(cells, p.shape))


# --------------------------------------------------------------------------- entropy


def test_entropy_uniform_is_log2_k() -> None:
    rng = np.random.default_rng(1)
    for k in (2, 5, 8):
        counts = sample_counts(rng, np.ones(k), 100_000, 10)
        est = entropy(counts)
        assert est.shape == (10,)
        assert np.all(np.abs(est - math.log2(k)) < 0.005)


def test_miller_madow_beats_plugin_at_small_n() -> None:
    rng = np.random.default_rng(2)
    k, n = 10, 20
    counts = sample_counts(rng, np.ones(k), n, 4000)
    p = counts / n
    plugin = -np.sum(np.where(p > 0, p * np.log2(np.where(p > 0, p, 1)), 0), axis=-1)
    mm = entropy(counts)
    truth = math.log2(k)
    assert abs(mm.mean() - truth) < abs(plugin.mean() - truth)
    # the correction is exactly (K-1)/(2N ln 2) on top of the plug-in value
    nonzero = (counts > 0).sum(-1)
    np.testing.assert_allclose(mm - plugin, (nonzero - 1) / (2 * n * math.log(2)))


def test_entropy_empty_axes_and_weights() -> None:
    assert np.all(np.isnan(entropy(np.zeros((3, 4)))))
    joint = np.array([[[3.0, 1.0], [0.0, 4.0]], [[2.5, 0.5], [1.0, 0.0]]])  # float weights
    np.testing.assert_allclose(entropy(joint, axes=(-2, -1)), entropy(joint.reshape(2, 4)))
    np.testing.assert_allclose(entropy(joint, axes=(0, 1)), entropy(np.moveaxis(joint, 2, 0).reshape(2, 4)))
    with pytest.raises(ValueError):
        entropy(np.array([1.0, -1.0]))


# --------------------------------------------------------------------------- information


@pytest.mark.parametrize("e", [0.02, 0.11, 0.3, 0.45])
def test_mi_binary_symmetric_channel(e: float) -> None:
    rng = np.random.default_rng(10)
    est = mutual_information(sample_counts(rng, bsc_joint(e), 10_000, 20))
    assert est.shape == (20,)
    assert np.all(np.abs(est - (1 - h2(e))) < 0.02)


def test_mi_independent_is_zero() -> None:
    rng = np.random.default_rng(11)
    p = np.outer([0.2, 0.3, 0.5], [0.6, 0.1, 0.1, 0.2])
    est = mutual_information(sample_counts(rng, p, 10_000, 20))
    assert np.all(np.abs(est) < 0.02)


def test_mi_explicit_3x4_table() -> None:
    rng = np.random.default_rng(12)
    truth = exact_mi(P_3X4)
    assert truth > 0.2
    est = mutual_information(sample_counts(rng, P_3X4, 10_000, 20))
    assert np.all(np.abs(est - truth) < 0.02)
    # symmetric in X and Y
    counts = sample_counts(np.random.default_rng(3), P_3X4, 500, 4)
    np.testing.assert_allclose(
        mutual_information(counts), mutual_information(np.swapaxes(counts, -1, -2))
    )


def test_cmi_hidden_common_cause() -> None:
    e1, e2 = (0.25, 0.1), (0.2, 0.05)
    p = hidden_w_joint(0.4, e1, e2)
    truth = 0.6 * (1 - h2(cascade(e1[0], e2[0]))) + 0.4 * (1 - h2(cascade(e1[1], e2[1])))
    assert abs(exact_cmi(p) - truth) < 1e-12  # the table is what the closed form describes
    rng = np.random.default_rng(13)
    est = conditional_mutual_information(sample_counts(rng, p, 10_000, 20))
    assert est.shape == (20,)
    assert np.all(np.abs(est - truth) < 0.02)


def test_cmi_zero_when_dependent_only_through_z() -> None:
    p = through_z_joint(0.4, (0.1, 0.8), (0.2, 0.9))
    mi_truth = exact_mi(p.sum(2))
    assert mi_truth > 0.1
    rng = np.random.default_rng(14)
    counts = sample_counts(rng, p, 10_000, 20)
    assert np.all(np.abs(conditional_mutual_information(counts)) < 0.02)
    assert np.all(np.abs(mutual_information(counts.sum(-1)) - mi_truth) < 0.02)


# --------------------------------------------------------------------------- agreement


def test_agreement_hand_table() -> None:
    # rows: signal S (0, 1); columns: truth T (0, 1)
    table = np.array([[40.0, 10.0], [5.0, 45.0]])
    a = agreement(table)
    n = 100
    acc = (40 + 45) / n
    ps1, pt1 = 50 / n, 55 / n
    pe = ps1 * pt1 + (1 - ps1) * (1 - pt1)
    assert a["accuracy"] == pytest.approx(acc)
    assert a["precision"] == pytest.approx(45 / 50)
    assert a["recall"] == pytest.approx(45 / 55)
    assert a["pass_rate"] == pytest.approx(ps1)
    assert a["kappa"] == pytest.approx((acc - pe) / (1 - pe))


def test_agreement_undefined_cases_and_batch() -> None:
    never_passes = np.array([[30.0, 20.0], [0.0, 0.0]])
    all_agree_one_value = np.array([[50.0, 0.0], [0.0, 0.0]])
    empty = np.zeros((2, 2))
    good = np.array([[40.0, 10.0], [5.0, 45.0]])
    a = agreement(np.stack([never_passes, all_agree_one_value, empty, good]))
    assert a["kappa"].shape == (4,)
    assert np.isnan(a["precision"][0]) and a["recall"][0] == 0.0
    assert a["kappa"][0] == pytest.approx(0.0)  # S constant, T not: chance-level agreement
    assert np.isnan(a["kappa"][1]) and a["accuracy"][1] == 1.0  # expected agreement is 1
    assert np.isnan(a["precision"][1]) and np.isnan(a["recall"][1])
    assert all(np.isnan(v[2]) for v in a.values())
    single = agreement(good)
    for k, v in a.items():
        assert v[3] == pytest.approx(float(single[k]))
    with pytest.raises(ValueError):
        agreement(np.ones((3, 2)))


# --------------------------------------------------------------------------- tables and weights


def test_bootstrap_weights_rows_mean_and_seed() -> None:
    w = bootstrap_weights(500, 400, np.random.default_rng(7))
    assert w.shape == (400, 500) and w.dtype == np.float32
    assert np.all(w.sum(1) == 500)
    assert np.all(w >= 0) and np.all(w == np.round(w))
    # each task is drawn Binomial(n, 1/n) times: mean 1, variance 1 - 1/n
    assert abs(float(w.mean(0).mean()) - 1) < 1e-6
    assert np.all(np.abs(w.mean(0) - 1) < 0.25)
    assert abs(float(w.var(0).mean()) - (1 - 1 / 500)) < 0.05
    again = bootstrap_weights(500, 400, np.random.default_rng(7))
    other = bootstrap_weights(500, 400, np.random.default_rng(8))
    assert np.array_equal(w, again)
    assert not np.array_equal(w, other)


def test_bootstrap_weights_chunked_and_empty() -> None:
    w = bootstrap_weights(1_500_000, 5, np.random.default_rng(0))  # several chunks of rows
    assert np.all(w.sum(1) == 1_500_000)
    assert not np.array_equal(w[0], w[1])
    assert bootstrap_weights(0, 3, np.random.default_rng(0)).shape == (3, 0)


def test_cluster_table_matches_direct_count_and_drops_unknown() -> None:
    rng = np.random.default_rng(4)
    n, k = 5000, 37
    cl = rng.integers(0, k, n)
    s = rng.integers(-1, 2, n)  # -1 = unknown
    t = rng.integers(0, 2, n)
    m = rng.integers(-1, 3, n)
    tab = cluster_table(cl, (s, t, m), (2, 2, 3), k)
    assert tab.shape == (k, 2, 2, 3) and tab.dtype == np.float64
    ref = np.zeros((k, 2, 2, 3))
    for c, a, b, d in zip(cl, s, t, m, strict=True):
        if a >= 0 and b >= 0 and d >= 0:
            ref[c, a, b, d] += 1
    np.testing.assert_array_equal(tab, ref)
    assert tab.sum() == np.sum((s >= 0) & (m >= 0))
    with pytest.raises(ValueError):
        cluster_table(cl, (s, t, m), (2, 2, 2), k)  # m == 2 is out of range
    with pytest.raises(ValueError):
        cluster_table(cl, (s, t, m), (2, 2, 3), k - 5)


# --------------------------------------------------------------------------- bootstrap


def clustered_table(
    rng: np.random.Generator, p: np.ndarray, n: int, task_size: int
) -> tuple[np.ndarray, int]:
    """Per-task table of n i.i.d. observations from p, grouped into tasks of task_size."""
    k = n // task_size
    return cluster_table(np.arange(n) // task_size, sample_codes(rng, p, n), p.shape, k), k


def coverage(
    rng: np.random.Generator, draw, stat, truth: float, draws: int, B: int = 200, **kw
) -> float:
    hits = 0
    for _ in range(draws):
        table = draw(rng)
        est = bootstrap(stat, table, bootstrap_weights(table.shape[0], B, rng), **kw)
        assert est.ci_low is not None and est.ci_high is not None
        hits += est.ci_low <= truth <= est.ci_high
    return hits / draws


def test_coverage_mi_iid_tasks() -> None:
    rng = np.random.default_rng(20)
    truth = exact_mi(P_3X4)
    cov = coverage(
        rng, lambda r: clustered_table(r, P_3X4, 2000, 5)[0], mutual_information, truth, 200
    )
    assert 0.88 <= cov <= 0.99


def test_coverage_cmi_iid_tasks() -> None:
    rng = np.random.default_rng(21)
    p = hidden_w_joint(0.4, (0.25, 0.1), (0.2, 0.05))
    truth = exact_cmi(p)
    cov = coverage(
        rng,
        lambda r: clustered_table(r, p, 2000, 5)[0],
        conditional_mutual_information,
        truth,
        200,
    )
    assert 0.88 <= cov <= 0.99


def correlated_tasks(rng: np.random.Generator, n: int, task_size: int) -> tuple[np.ndarray, ...]:
    """T ~ Bern(0.5); S = T flipped with a per-task rate (0 or 0.4): episodes of a task correlate.

    Marginally S = T flipped with probability 0.2, so I(S;T) = 1 - h(0.2).
    """
    cl = np.arange(n) // task_size
    rate = np.where(rng.random(n // task_size) < 0.5, 0.0, 0.4)[cl]
    t = (rng.random(n) < 0.5).astype(np.int64)
    s = t ^ (rng.random(n) < rate)
    return cl, s, t


def test_coverage_needs_task_level_resampling_when_episodes_correlate() -> None:
    truth = 1 - h2(0.2)
    n, size = 2000, 10

    def by_task(r: np.random.Generator) -> np.ndarray:
        cl, s, t = correlated_tasks(r, n, size)
        return cluster_table(cl, (s, t), (2, 2), n // size)

    def by_episode(r: np.random.Generator) -> np.ndarray:
        _, s, t = correlated_tasks(r, n, size)
        return cluster_table(np.arange(n), (s, t), (2, 2), n)

    cov_task = coverage(np.random.default_rng(22), by_task, mutual_information, truth, 200)
    cov_episode = coverage(np.random.default_rng(22), by_episode, mutual_information, truth, 200)
    assert 0.88 <= cov_task <= 0.99
    assert cov_episode < 0.85


def test_percentile_interval_covers_weak_dependence_where_basic_does_not() -> None:
    p = np.array([[1.1, 1.0], [1.0, 1.1]])
    truth = exact_mi(p)
    assert 0 < truth < 0.01

    def draw(r: np.random.Generator) -> np.ndarray:
        return clustered_table(r, p, 500, 5)[0]

    pct = coverage(np.random.default_rng(23), draw, mutual_information, truth, 200)
    basic = coverage(
        np.random.default_rng(23), draw, mutual_information, truth, 200, method="basic"
    )
    assert pct >= 0.9
    assert basic < 0.8


def test_bootstrap_point_estimate_and_fields() -> None:
    rng = np.random.default_rng(30)
    table, k = clustered_table(rng, P_3X4, 600, 4)
    w = bootstrap_weights(k, 100, rng)
    est = bootstrap(mutual_information, table, w)
    assert isinstance(est, Estimate)
    assert est.estimate == float(mutual_information(table.sum(0)))
    assert est.n == 600 and est.n_clusters == k and est.note == ""
    assert est.ci_low is not None and est.ci_high is not None
    assert est.ci_low < est.estimate < est.ci_high
    # a subset of tasks (e.g. one domain) with the matching weight columns
    idx = np.arange(0, k, 2)
    sub = bootstrap(mutual_information, table[idx], w[:, idx])
    assert sub.estimate == float(mutual_information(table[idx].sum(0)))
    assert sub.n_clusters == idx.size
    with pytest.raises(ValueError):
        bootstrap(mutual_information, table, w[:, :-1])


def test_bootstrap_too_few_tasks_or_observations() -> None:
    rng = np.random.default_rng(31)
    table, k = clustered_table(rng, P_3X4, 700, 100)  # 7 tasks, plenty of observations
    est = bootstrap(mutual_information, table, bootstrap_weights(k, 50, rng))
    assert est.estimate is None and est.ci_low is None and est.ci_high is None
    assert est.n == 700 and est.n_clusters == 7
    assert "n=7" in est.note and "tasks" in est.note
    table, k = clustered_table(rng, P_3X4, 24, 2)  # 12 tasks, 24 observations
    est = bootstrap(mutual_information, table, bootstrap_weights(k, 50, rng))
    assert est.estimate is None and "n=24" in est.note and "observations" in est.note
    # empty tasks do not count as tasks with data
    padded = np.concatenate([table, np.zeros((20, 3, 4))])
    est = bootstrap(mutual_information, padded, bootstrap_weights(32, 50, rng), min_n=10)
    assert est.n_clusters == 12 and est.estimate is not None


def precision(t: np.ndarray) -> np.ndarray:
    return agreement(t)["precision"]


def test_bootstrap_undefined_point_and_nan_resamples() -> None:
    rng = np.random.default_rng(32)
    n, size = 400, 4
    k = n // size
    cl = np.arange(n) // size
    t = rng.integers(0, 2, n)
    never = cluster_table(cl, (np.zeros(n, np.int64), t), (2, 2), k)
    est = bootstrap(precision, never, bootstrap_weights(k, 100, rng))
    assert est.estimate is None and est.note.startswith("undefined")
    assert "variable 0" in est.note

    # S passes in exactly 3 observations, each in its own task
    s = np.zeros(n, np.int64)
    s[[0, size, 2 * size]] = 1
    table = cluster_table(cl, (s, t), (2, 2), k)
    w = bootstrap_weights(k, 400, rng)
    passes = w @ table[:, 1, :].sum(-1)  # how often S passes in each resample

    def defined_if(cond):
        return lambda x: np.where(cond(x[..., 1, :].sum(-1)), precision(x), np.nan)

    few_nan = bootstrap(defined_if(lambda c: c <= 4), table, w)
    n_nan = int(np.sum((passes > 4) | (passes == 0)))  # precision itself is undefined at 0
    assert 0 < n_nan < 200
    assert few_nan.ci_low is not None and f"{n_nan} of 400" in few_nan.note
    many_nan = bootstrap(defined_if(lambda c: c == 3), table, w)
    assert np.sum(passes != 3) > 200
    assert many_nan.estimate == float(precision(table.sum(0)))
    assert many_nan.ci_low is None and many_nan.ci_high is None
    assert "no interval" in many_nan.note


def feedback_gain(t: np.ndarray) -> np.ndarray:
    """P(last = 1) - P(first = 1) from a (..., 2, 2) table indexed [first, last]."""
    n = t.sum((-2, -1))
    return (t[..., :, 1].sum(-1) - t[..., 1, :].sum(-1)) / n


def test_bootstrap_feedback_gain() -> None:
    p = np.array([[0.45, 0.25], [0.05, 0.25]])  # P(first=1) = 0.30, P(last=1) = 0.50
    truth = p[:, 1].sum() - p[1, :].sum()
    rng = np.random.default_rng(33)
    n = 1000
    first, last = sample_codes(rng, p, n)
    table = cluster_table(np.arange(n) // 5, (first, last), (2, 2), n // 5)
    est = bootstrap(feedback_gain, table, bootstrap_weights(n // 5, 200, rng))
    assert est.estimate == pytest.approx(last.mean() - first.mean())
    cov = coverage(
        np.random.default_rng(34),
        lambda r: clustered_table(r, p, n, 5)[0],
        feedback_gain,
        truth,
        200,
    )
    assert 0.88 <= cov <= 0.99


# --------------------------------------------------------------------------- spread


def test_spread_across_domains() -> None:
    errs = (0.05, 0.2, 0.35)
    mis = [1 - h2(e) for e in errs]
    truth = max(mis) - min(mis)
    n, size = 1500, 5
    k = n // size
    rng = np.random.default_rng(40)
    hits, estimates = 0, []
    for _ in range(100):
        tables = [clustered_table(rng, bsc_joint(e), n, size)[0] for e in errs]
        tables.append(clustered_table(rng, bsc_joint(0.1), 40, 5)[0])  # 8 tasks: left out
        sizes = [t.shape[0] for t in tables]
        w = bootstrap_weights(sum(sizes), 200, rng)
        bounds = np.cumsum([0, *sizes])
        ws = [w[:, bounds[d] : bounds[d + 1]] for d in range(len(tables))]
        out = spread(mutual_information, tables, ws)
        per_domain = [float(mutual_information(t.sum(0))) for t in tables[:3]]
        assert out["spread"].estimate == pytest.approx(max(per_domain) - min(per_domain))
        assert out["min"].estimate == pytest.approx(min(per_domain))
        assert out["max"].estimate == pytest.approx(max(per_domain))
        assert "domain 3" in out["spread"].note and "n=8" in out["spread"].note
        assert out["spread"].n_clusters == 3 * k
        est = out["spread"]
        assert est.ci_low is not None and est.ci_high is not None and est.estimate is not None
        hits += est.ci_low <= truth <= est.ci_high
        estimates.append(est.estimate)
    assert 0.85 <= hits / 100 <= 0.99
    assert abs(float(np.mean(estimates)) - truth) < 0.02


def test_spread_interval_reaches_zero_for_equal_domains() -> None:
    """Three domains with the same information: true spread 0, which the interval must reach."""
    n, size = 1500, 5
    k = n // size
    covered = {"basic": 0, "percentile": 0}
    for method in covered:
        rng = np.random.default_rng(42)
        for _ in range(100):
            tables = [clustered_table(rng, bsc_joint(0.2), n, size)[0] for _ in range(3)]
            w = bootstrap_weights(3 * k, 200, rng)
            ws = [w[:, d * k : (d + 1) * k] for d in range(3)]
            est = spread(mutual_information, tables, ws, method=method)["spread"]
            assert est.estimate is not None and est.estimate > 0
            assert est.ci_low is not None and est.ci_low >= 0
            covered[method] += est.ci_low == 0.0
    assert covered["basic"] >= 75  # the default
    assert covered["percentile"] <= 10  # every resampled range is positive


def test_bootstrap_many_and_spread_of_match_the_single_calls() -> None:
    rng = np.random.default_rng(43)
    n, size = 1000, 5
    k = n // size
    tables = [clustered_table(rng, bsc_joint(e), n, size)[0] for e in (0.1, 0.3)]
    tables.append(clustered_table(rng, bsc_joint(0.1), 30, 5)[0])  # 6 tasks: not estimable
    sizes = [t.shape[0] for t in tables]
    w = bootstrap_weights(sum(sizes), 150, rng)
    bounds = np.cumsum([0, *sizes])
    ws = [w[:, bounds[d] : bounds[d + 1]] for d in range(3)]
    stats = {"mi": mutual_information, "precision": precision}
    items = []
    for t, wd in zip(tables, ws, strict=True):
        many = bootstrap_many(stats, t, wd)
        assert set(many) == set(stats)
        for name, stat in stats.items():
            assert many[name][0] == bootstrap(stat, t, wd)
        items.append(many["mi"])
    assert items[2][1] is None and "n=6 tasks" in items[2][0].note
    assert items[0][1] is not None and items[0][1].shape == (150,)
    joint = spread_of(items, total_domains=3)
    direct = spread(mutual_information, tables, ws)
    for key in ("min", "max", "spread"):
        assert joint[key].estimate == direct[key].estimate
        assert joint[key].ci_low == direct[key].ci_low
        assert joint[key].ci_high == direct[key].ci_high
        assert joint[key].n_clusters == 2 * k
    assert "1 of 3 domains" in joint["spread"].note
    assert "domain 2" in direct["spread"].note


def test_spread_needs_two_estimable_domains() -> None:
    rng = np.random.default_rng(41)
    big, k = clustered_table(rng, bsc_joint(0.1), 500, 5)
    small, ks = clustered_table(rng, bsc_joint(0.1), 20, 5)
    w = bootstrap_weights(k + ks, 50, rng)
    out = spread(mutual_information, [big, small], [w[:, :k], w[:, k:]])
    assert set(out) == {"min", "max", "spread"}
    for est in out.values():
        assert est.estimate is None and est.ci_low is None
        assert "fewer than 2" in est.note and "domain 1" in est.note


# --------------------------------------------------------------------------- wilson


def test_wilson_bounds_solve_the_score_equation_and_cover() -> None:
    z = 1.959963984540054
    for k, n in ((0, 10), (3, 10), (10, 10), (17, 40), (1, 1000)):
        lo, hi = wilson(k, n)
        assert 0 <= lo <= k / n <= hi <= 1
        for b in (lo, hi):
            if 0 < b < 1:  # the clipped ends are exactly 0 or 1
                assert (k / n - b) ** 2 == pytest.approx(z * z * b * (1 - b) / n, abs=1e-12)
    assert wilson(0, 10)[0] == 0.0 and wilson(10, 10)[1] == 1.0
    lo, hi = wilson(3, 10)
    lo2, hi2 = wilson(7, 10)
    assert lo == pytest.approx(1 - hi2) and hi == pytest.approx(1 - lo2)
    assert all(math.isnan(v) for v in wilson(0, 0))
    with pytest.raises(ValueError):
        wilson(5, 4)
    rng = np.random.default_rng(50)
    ks = rng.binomial(50, 0.3, size=2000)
    cover = np.mean([lo <= 0.3 <= hi for lo, hi in (wilson(int(k), 50) for k in ks)])
    assert 0.92 <= cover <= 0.98
