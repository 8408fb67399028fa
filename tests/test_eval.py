"""Held-out evaluation (`agentsynth eval`) and the `generalization` view: disjoint seeds, tasks a
synthesis run holds left out, rows that match the stored episodes, and the whole loop
synthesis → export → "trained" model (the sim served with more skill in one domain) → view."""

from __future__ import annotations

import json
import math
import textwrap
import urllib.request
from pathlib import Path
from statistics import NormalDist

import pytest
from conftest import cli, free_port, q, table_digest, write_spec

import agentsynth
from agentsynth.evaluation import EvalError, evaluate
from agentsynth.sim import SimParams
from agentsynth.sim.process import running_server
from agentsynth.spec import EVAL_SEED_START, SpecError, parse_spec

pytestmark = pytest.mark.timeout(300)

Z95 = NormalDist().inv_cdf(0.975)

TINY = '''
from agentsynth import TextEnv, final_answer


class TinyEnv(TextEnv):
    """Nine tasks in all: seeds repeat them."""

    name = "tiny"
    domain = "tiny"

    def generate(self, rng):
        a, b = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        return self.make_task(f"What is {a} plus {b}? End with a line 'Answer: <n>'.", a + b)

    def verify(self, task, answer):
        return final_answer(answer).strip() == task.answer
'''

# Per (env, domain) of an eval run, counted from its episodes: each task once (its lowest seed),
# tasks a synthesis run holds left out.
RECOUNT = """
    WITH synth AS (SELECT DISTINCT task_id FROM episodes JOIN runs USING (run_id) WHERE runs.kind = 'synthesis'),
    firsts AS (
        SELECT env_id, domain, task_id, arg_min(passed_first, seed) AS passed
        FROM episodes WHERE run_id = ? AND status = 'ok' GROUP BY ALL)
    SELECT env_id, domain, count(*) AS n, count(*) FILTER (passed) AS correct
    FROM firsts WHERE task_id NOT IN (SELECT task_id FROM synth) GROUP BY ALL ORDER BY ALL
"""


def assert_wilson(k: int, n: int, low: float, high: float) -> None:
    """Wilson's bounds are the p with |k/n - p| = z sqrt(p(1-p)/n) (clipped to [0, 1])."""
    p_hat = k / n
    assert 0.0 <= low <= p_hat <= high <= 1.0
    for bound in (low, high):
        if bound not in (0.0, 1.0):
            assert math.isclose((p_hat - bound) ** 2, Z95**2 * bound * (1 - bound) / n, rel_tol=1e-9)


def test_synthesis_seeds_may_not_reach_the_evaluation_range(tmp_path: Path, store: Path) -> None:
    spec = write_spec(tmp_path / "s.toml", f"""
        name = "greedy"
        store = "{store}"

        [[envs]]
        id = "arithmetic"
        tasks = 10
        seed_start = {EVAL_SEED_START - 5}
        """)
    r = cli("run", str(spec), "-q")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "seeds from 1,000,000,000 up are reserved for held-out evaluation" in r.stderr
    assert "Traceback" not in r.stderr and not store.exists()
    # the seed just below the range is still allowed; an eval spec may not go below it
    parse_spec({"name": "ok", "envs": [{"id": "arithmetic", "tasks": 5, "seed_start": EVAL_SEED_START - 5}]})
    with pytest.raises(SpecError, match="an eval run must use seeds from 1,000,000,000 up"):
        parse_spec({"name": "e", "purpose": "eval", "envs": [{"id": "arithmetic", "seed_start": EVAL_SEED_START - 1}]})


def test_tasks_held_by_a_synthesis_run_are_not_counted(tmp_path: Path, store: Path) -> None:
    (tmp_path / "tiny.py").write_text(textwrap.dedent(TINY))
    ref = f"{tmp_path / 'tiny.py'}:TinyEnv"
    synth = agentsynth.RunSpec(name="synth", store=str(store), envs=[agentsynth.EnvSpec(id=ref, tasks=4, feedback="binary")])
    assert agentsynth.Runner(synth).run().status == "completed"

    rows = evaluate(store, "sim", envs=[ref], tasks=40)

    assert len(rows) == 1
    row = rows[0]
    kinds = q(store, "SELECT kind, min(seed), max(seed), count(*) FROM episodes JOIN runs USING (run_id) GROUP BY kind ORDER BY kind")
    assert kinds == [("eval", EVAL_SEED_START, EVAL_SEED_START + 39, 40), ("synthesis", 0, 3, 4)]
    (colliding,) = q(store, """
        SELECT count(DISTINCT e.task_id) FROM episodes e JOIN runs r USING (run_id) WHERE r.kind = 'eval'
          AND e.task_id IN (SELECT s.task_id FROM episodes s JOIN runs rs USING (run_id) WHERE rs.kind = 'synthesis')""")[0]
    (distinct,) = q(store, "SELECT count(DISTINCT task_id) FROM episodes JOIN runs USING (run_id) WHERE kind = 'eval'")[0]
    assert colliding > 0 and distinct - colliding > 0  # the case is a real one: some tasks repeat, some do not
    assert row.excluded == colliding
    assert row.duplicates == 40 - distinct
    assert [(row.env_id, row.domain, row.n, row.correct)] == q(store, RECOUNT, [row.run_id])
    assert q(store, "SELECT n, correct FROM evaluations") == [(distinct - colliding, row.correct)]


def test_eval_over_http_records_rows_that_match_its_episodes(tmp_path: Path, store: Path) -> None:
    with running_server() as url:
        args = ("eval", "--model", "sim", "--base-url", url, "--envs", "arithmetic,units", "--tasks", "60",
                "--store", str(store), "-q")
        r = cli(*args)
        assert r.returncode == 0, r.stderr
        with urllib.request.urlopen(url.removesuffix("/v1") + "/stats") as resp:
            calls = json.loads(resp.read())
        again = cli(*args)
        assert again.returncode == 0, again.stderr
        with urllib.request.urlopen(url.removesuffix("/v1") + "/stats") as resp:
            assert json.loads(resp.read()) == calls  # the repeat reused the stored run: no model call
    assert "arithmetic" in r.stdout and "units" in r.stdout and "excluded" in r.stdout

    (run_id, kind, n_runs), = q(store, "SELECT any_value(run_id), any_value(kind), count(*) FROM runs")
    assert (kind, n_runs) == ("eval", 1)
    assert q(store, "SELECT min(seed), max(seed), count(*), count(DISTINCT episode_id), max(turns) FROM episodes") == [
        (EVAL_SEED_START, EVAL_SEED_START + 59, 120, 120, 1)]
    rows = q(store, "SELECT env_id, domain, n, correct, accuracy, ci_low, ci_high, seed_start, seed_end, base_model, "
                    "trained_on, base_url, run_id FROM evaluations ORDER BY env_id")
    assert [r_[:4] for r_ in rows] == q(store, RECOUNT, [run_id])
    for _env, _dom, n, correct, acc, low, high, start, end, base, trained, base_url, rid in rows:
        assert n > 0 and acc == correct / n
        assert 0 < correct < n  # both outcomes occur, so the interval is a real one
        assert_wilson(correct, n, low, high)
        assert (start, end, base, trained, base_url, rid) == (EVAL_SEED_START, EVAL_SEED_START + 60, "sim", None, url, run_id)


def test_the_generalization_view_shows_a_gain_in_domain_only(tmp_path: Path, store: Path) -> None:
    spec = write_spec(tmp_path / "synth.toml", f"""
        name = "synth"
        store = "{store}"
        samples = 2

        [[envs]]
        id = "arithmetic"
        tasks = 30
        feedback = "binary"
        """)
    assert cli("run", str(spec), "-q").returncode == 0
    r = cli("export", "--run", "synth", "--select", "correct", "--format", "sft", "--out", str(tmp_path / "train.jsonl"),
            "--store", str(store))
    assert r.returncode == 0, r.stderr
    (export_id, signal), = q(store, "SELECT export_id, signal FROM exports")
    common = ("--envs", "arithmetic", "--envs", "units", "--tasks", "150", "--store", str(store), "-q")
    base = cli("eval", "--model", "sim", *common)
    assert base.returncode == 0, base.stderr
    # "fine-tuned": the same sim, more skilled at arithmetic only, served over HTTP under another name
    with running_server(SimParams.from_dict({"skill": {"arithmetic": 0.95}}), model_name="sim-ft") as url:
        tuned = cli("eval", "--model", "sim-ft", "--base-url", url, "--trained-on", export_id, "--base-model", "sim", *common)
    assert tuned.returncode == 0, tuned.stderr

    view = q(store, """SELECT eval_domain, split, trained_domains, signal, source, openness, meta_level, model, base_model,
                              trained_accuracy, base_accuracy, delta, delta_low, delta_high, n_trained, n_base
                       FROM generalization ORDER BY eval_domain""")
    assert [v[:3] for v in view] == [("arithmetic", "in-domain", ["arithmetic"]), ("units", "out-of-domain", ["arithmetic"])]
    labels = q(store, "SELECT name, source, openness, meta_level FROM signal_types WHERE name = ?", [signal])
    evals = {(m, d): (n, k, acc, lo, hi) for m, d, n, k, acc, lo, hi in
             q(store, "SELECT model, domain, n, correct, accuracy, ci_low, ci_high FROM evaluations")}
    for dom, _split, _doms, sig, src, op, meta, model, base_model, acc_t, acc_b, delta, low, high, n_t, n_b in view:
        assert [(sig, src, op, meta)] == labels
        assert (model, base_model) == ("sim-ft", "sim")
        n1, _, p1, l1, u1 = evals[("sim-ft", dom)]
        n2, _, p2, l2, u2 = evals[("sim", dom)]
        assert (acc_t, acc_b, n_t, n_b) == (p1, p2, n1, n2)
        assert math.isclose(delta, p1 - p2, abs_tol=1e-12)  # Newcombe's hybrid score interval
        assert math.isclose(low, p1 - p2 - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), abs_tol=1e-12)
        assert math.isclose(high, p1 - p2 + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2), abs_tol=1e-12)
    arith, units = view
    assert arith[11] > 0 and arith[12] > 0  # trained on arithmetic: better there, beyond noise
    assert units[12] < 0 < units[13]  # same skill in units: no difference claimed



@pytest.mark.parametrize("args, code, message", [
    (("--envs", "arithmetic", "--trained-on", "x-000000000000"), 2, "needs --base-model"),
    (("--envs", "arithmetic", "--trained-on", "x-000000000000", "--base-model", "sim"), 2, "no such export"),
    (("--envs", "arithmetic,nosuchenv"), 2, "unknown environment 'nosuchenv'"),
    (("--envs", "arithmetic", "--base-url", "http://127.0.0.1:{port}/v1"), 1, "cannot evaluate 'sim' at http://127.0.0.1:{port}/v1"),
])
def test_bad_input_and_an_unreachable_endpoint_leave_the_store_unchanged(
        store: Path, args: tuple[str, ...], code: int, message: str) -> None:
    rows = evaluate(store, "sim", envs=["arithmetic"], tasks=5)
    assert len(rows) == 1
    before = table_digest(store)
    port = str(free_port())
    r = cli("eval", "--model", "sim", "--tasks", "5", "--store", str(store), "-q", *(a.replace("{port}", port) for a in args))
    assert r.returncode == code, (r.stdout, r.stderr)
    assert r.stderr.startswith("error: ") and message.replace("{port}", port) in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert table_digest(store) == before


def test_the_python_api_refuses_a_base_model_without_an_export(store: Path) -> None:
    with pytest.raises(EvalError, match="only goes with --trained-on"):
        evaluate(store, "sim", envs=["arithmetic"], base_model="other")
    assert not store.exists()
