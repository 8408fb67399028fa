"""The information audit on real runs: the shipped feedback sweep, regraded, audited end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conftest import ROOT, cli, q, table_digest, write_spec

import agentsynth
from agentsynth.analysis.audit import audit
from agentsynth.regrade import regrade
from agentsynth.spec import load_spec
from rubrics import max_length


def short_reply() -> agentsynth.Grader:
    """A length check: passes replies under 60 characters (regraded onto the sweep below)."""
    return max_length(59, name="short_reply")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped sweep (every domain × none/binary/reference/hint/judge/self), with the sim
    hedging at length when unsure (SimParams.hedge), so that reply length is correlated
    with correctness by construction; then self-consistency and a length check regraded on."""
    store = tmp_path_factory.mktemp("audit") / "sweep.duckdb"
    spec = load_spec(ROOT / "runs" / "feedback-sweep.toml", store=str(store))
    spec = spec.model_copy(update={"sim": {"hedge": 0.8}})
    assert agentsynth.Runner(spec).run().status == "completed"
    regrade(store, "feedback-sweep", ["self_consistency", "test_audit:short_reply"])
    return store


@pytest.fixture(scope="module")
def result(sweep: Path):
    return audit(sweep, ["feedback-sweep"], bootstrap=400, seed=1)


def _row(res, name: str, metric: str, scope: str = "signal", domain: str | None = None):
    r = res.get(scope, name, metric, domain)
    assert r is not None, (scope, name, metric, domain)
    return r


def test_closed_signals_have_openness_intervals_containing_zero(result) -> None:
    for name in ("self", "self_consistency", "judge_same_model"):
        r = _row(result, name, "openness")
        assert r.estimate is not None and r.ci_low <= 0 <= r.ci_high, (name, r)
        assert result.labels[name]["openness"] == "closed"


def test_verifier_openness_is_clearly_above_zero(result) -> None:
    for name in ("correct", "hint", "reference"):
        r = _row(result, name, "openness")
        assert r.ci_low > 0.5, (name, r)


def test_a_length_check_correlated_with_correctness_has_a_spurious_component(result) -> None:
    short = _row(result, "short_reply", "spurious")
    assert short.ci_low > 0.05, short
    assert _row(result, "short_reply", "mi").ci_low > 0, "correlated with correctness by construction"
    verifier = _row(result, "correct", "spurious")
    assert verifier.ci_high < short.ci_low  # the verifier follows truth, not the surface


def test_mutual_information_of_the_truth_signal_is_the_entropy_of_truth(sweep: Path, result) -> None:
    # an independent check of the plumbing: I(T;T) = H(T), with H(T) computed here by SQL
    ((p, n),) = q(sweep, """SELECT avg(passed::INT), count(*) FROM (
        SELECT episode_id, turn, bool_or(passed) AS passed FROM signals WHERE role = 'truth' GROUP BY ALL)""")
    h = -(p * math.log2(p) + (1 - p) * math.log2(1 - p))
    r = _row(result, "correct", "mi")
    assert r.n == n and abs(r.estimate - h) < 0.01
    assert _row(result, "correct", "kappa").estimate == pytest.approx(1.0)


def test_feedback_gain_per_channel_and_across_domains(sweep: Path, result) -> None:
    ((first, last, n),) = q(sweep, """SELECT avg(passed_first::INT), avg(passed_last::INT), count(*)
        FROM episodes WHERE feedback = 'reference' AND status = 'ok'""")
    gain = _row(result, "reference", "gain", "channel")
    assert gain.n == n and gain.estimate == pytest.approx(last - first)
    assert gain.ci_low > 0.3
    none = _row(result, "none", "gain", "channel")
    assert none.ci_low < gain.ci_low
    per_domain = [_row(result, "reference", "gain", "channel", d).estimate for d in result.domains]
    assert _row(result, "reference", "gain_spread", "channel").estimate == pytest.approx(max(per_domain) - min(per_domain))
    assert _row(result, "reference", "gain_min", "channel").estimate == pytest.approx(min(per_domain))


def test_acceptance_entropy_is_higher_for_coarse_signals(result) -> None:
    # the format check accepts many different answers to a task; the verifier accepts few
    assert _row(result, "format", "acceptance_entropy").ci_low > _row(result, "correct", "acceptance_entropy").ci_high


def test_efficiency_per_token_only_for_signals_that_cost_tokens(result) -> None:
    free = _row(result, "correct", "bits_per_1k_tokens")
    assert free.estimate is None and "free" in free.note
    paid = _row(result, "self", "bits_per_1k_tokens")
    assert paid.estimate is not None
    per_ep = _row(result, "correct", "bits_per_episode")
    assert per_ep.estimate > _row(result, "correct", "openness").estimate  # several graded turns per episode


def test_results_are_stored_and_deterministic_for_a_seed(sweep: Path, result) -> None:
    stored = q(sweep, "SELECT scope, name, domain, metric, estimate, ci_low, ci_high, n, n_tasks FROM audit_results "
                      "WHERE audit_id = ? ORDER BY ALL", [result.audit_id])
    mine = [(r.scope, r.name, r.domain, r.metric, r.estimate, r.ci_low, r.ci_high, r.n, r.n_tasks) for r in result.rows]
    assert len(stored) == len(mine)
    key = lambda r: tuple("" if v is None else v for v in r[:4])  # noqa: E731
    for a, b in zip(sorted(stored, key=key), sorted(mine, key=key)):
        assert a[:4] == b[:4] and a[7:] == b[7:]
        assert all(x == y or (x is None and (y is None or not math.isfinite(y))) or abs(x - y) < 1e-12
                   for x, y in zip(a[4:7], b[4:7]))
    ((runs, boot),) = q(sweep, "SELECT run_names, bootstrap FROM audits WHERE audit_id = ?", [result.audit_id])
    assert json.loads(runs) == ["feedback-sweep"] and boot == 400
    again = audit(sweep, ["feedback-sweep"], bootstrap=400, seed=1, save=False)
    assert [(r.metric, r.estimate, r.ci_low, r.ci_high) for r in again.rows] == \
           [(r.metric, r.estimate, r.ci_low, r.ci_high) for r in result.rows]


def test_a_stored_audit_reads_back_as_the_same_tables(sweep: Path, result) -> None:
    """stored_audit (what `agentsynth view` shows) gives the tables the audit printed when it ran."""
    from agentsynth.analysis import report
    from agentsynth.analysis.audit import stored_audit
    from agentsynth.store.connection import connect

    con = connect(sweep, read_only=True)
    try:
        back = stored_audit(con, result.audit_id)
        assert stored_audit(con, "a-missing") is None
    finally:
        con.close()
    assert (back.runs, back.run_ids, back.bootstrap, back.labels, back.channel_signal, back.domains) == \
           (result.runs, result.run_ids, result.bootstrap, result.labels, result.channel_signal, result.domains)
    for domain in [None, *result.domains]:
        assert report.signal_table(back, domain) == report.signal_table(result, domain)
        assert report.channel_table(back, domain) == report.channel_table(result, domain)


def test_cli_formats_plots_and_per_domain(sweep: Path, tmp_path: Path) -> None:
    png, page = tmp_path / "a.png", tmp_path / "a.html"
    out = cli("audit", "--store", str(sweep), "--by", "domain", "--plot", str(png), "--bootstrap", "100", "--no-save")
    assert out.returncode == 0, out.stderr
    assert "openness I(S;T|M)" in out.stdout and "domain arithmetic" in out.stdout and "[" in out.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = cli("audit", "--store", str(sweep), "--format", "html", "--out", str(page), "--bootstrap", "100", "--no-save")
    assert out.returncode == 0, out.stderr
    html = page.read_text()
    assert "data:image/png;base64," in html and "http://" not in html and "https://" not in html
    out = cli("audit", "--store", str(sweep), "--format", "json", "--bootstrap", "100", "--no-save")
    rows = json.loads(out.stdout)["rows"]
    assert {"openness", "spurious", "gain", "kappa", "acceptance_entropy"} <= {r["metric"] for r in rows}


def test_too_few_tasks_give_a_note_instead_of_a_number(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "small.toml", f"""
        name = "small"
        samples = 2
        store = "{tmp_path / 's.duckdb'}"
        [[envs]]
        id = "arithmetic"
        tasks = 6
        feedback = ["binary"]
    """)
    assert cli("run", str(spec), "-q").returncode == 0
    res = audit(tmp_path / "s.duckdb", bootstrap=100)
    r = res.get("signal", "correct", "mi")
    assert r.estimate is None and r.ci_low is None and "n too small" in r.note and "6 tasks" in r.note
    out = cli("audit", "--store", str(tmp_path / "s.duckdb"), "--bootstrap", "100", "--no-save")
    assert out.returncode == 0 and "n/a: n too small" in out.stdout


def test_bad_input_exits_2_and_leaves_the_store_alone(sweep: Path, tmp_path: Path) -> None:
    before = table_digest(sweep)
    for args, msg in (
        (["--run", "nope"], "no run named 'nope'"),
        (["--plot", str(tmp_path / "x.svg")], "use a .png or .html"),
        (["--bootstrap", "3"], "--bootstrap"),
    ):
        out = cli("audit", "--store", str(sweep), *args)
        assert out.returncode == 2 and msg in out.stderr, (args, out.stderr)
    assert table_digest(sweep) == before
    out = cli("audit", "--store", str(tmp_path / "missing.duckdb"))
    assert out.returncode == 2 and "no store" in out.stderr
