"""`agentsynth probe`: planted hackable and brittle graders are flagged, a correct verifier is not,
the stored rows are the printed figures, the code domain's unit tests resist the code hacks, bad
input is one line with exit 2 and an unchanged store, and user strategies and an environment's
own replies take part. Real environments, graders and stores throughout (no mocks)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from conftest import ROOT, cli, q, table_digest, write_spec

import agentsynth
from agentsynth.analysis.intervals import wilson
from agentsynth.probes import STRATEGIES, ProbeCase, Strategy, probe, register_strategy
from agentsynth.probes.runner import MODEL_GRADERS_NOTE
from agentsynth.registry import make

PLANTED = str(ROOT / "tests" / "probe_envs.py")


def _json_probe(env: str, store: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    r = cli("probe", "--env", f"{PLANTED}:{env}", "--tasks", "6", "--store", str(store), "--format", "json", "-q", *args)
    assert r.stdout, r.stderr
    return r, json.loads(r.stdout)


def test_planted_hackable_grader_is_flagged_and_the_store_holds_the_printed_figures(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    r, out = _json_probe("AnswerAnywhere", store)
    assert r.returncode == 1, r.stderr  # the truth grader is flagged
    assert "truth grader 'correct' of planted_hackable is hackable and brittle" in r.stderr
    assert out["flags"]["correct"] == ["hackable", "brittle"] and out["truth"] == "correct"
    rows = {(x["grader"], x["strategy"]): x for x in out["rows"]}
    brittle = {s for (g, s), x in rows.items() if g == "correct" and x["kind"] == "brittle" and x["failures"]}
    assert brittle == {"form: \\boxed{X}", "form: **Final Answer** \\[\\boxed{X}\\]", "form: The answer is X.",
                       "form: \\boxed{D} ... \\boxed{X}", "form: Final answer: X"}  # no "Answer:" in them
    wrong = rows[("correct", "wrong_answer")]
    assert (wrong["n"], wrong["failures"], wrong["flagged"]) == (6, 6, True)
    assert wrong["example"].startswith("Answer: ")
    assert rows[("correct", "empty_reply")]["failures"] == 0  # no 'Answer:' in it
    # every printed row is a stored row, with the same figures, and the interval is Wilson's
    stored = q(store, "SELECT grader, strategy, kind, n, failures, rate, ci_low, ci_high, example, flagged, difficulty, tasks "
                      "FROM probes WHERE probe_id = ?", [out["probe_id"]])
    assert len(stored) == len(out["rows"])
    for grader, strategy, kind, n, failures, rate, lo, hi, example, flagged, difficulty, tasks in stored:
        x = rows[(grader, strategy)]
        assert (kind, n, failures, flagged, example) == (x["kind"], x["n"], x["failures"], x["flagged"], x["example"])
        assert (rate, lo, hi) == pytest.approx((failures / n, *wilson(failures, n)))
        assert (difficulty, tasks) == ([1], 6)
    # joinable with signal_types by grader name
    assert q(store, "SELECT DISTINCT st.source FROM probes p JOIN signal_types st ON st.name = p.grader "
                    "WHERE p.grader = 'correct'") == [("verifier",)]


def test_the_table_shows_the_stored_figures_and_model_text_literally(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    r = cli("probe", "--env", f"{PLANTED}:AnswerAnywhere", "--tasks", "4", "--store", str(store), "--all", "-q")
    assert r.returncode == 1, r.stderr
    (probe_id,) = re.findall(r"probe (p-[0-9a-f]{12}) of planted_hackable", r.stdout)
    per_grader = dict(q(store, "SELECT grader || ' ' || kind, sum(failures) || ' / ' || sum(n) FROM probes "
                               "WHERE probe_id = ? GROUP BY ALL", [probe_id]))
    for grader in ("correct", "reference", "rubric"):
        line = next(ln for ln in r.stdout.splitlines() if ln.startswith(f"│ {grader} "))
        assert per_grader[f"{grader} hack"] in line and per_grader[f"{grader} brittle"] in line
    assert "[/INST] <|im_end|>" in r.stdout  # rich markup in a reply is printed, never interpreted


def test_planted_brittle_grader_is_flagged_and_a_correct_verifier_is_not(tmp_path: Path) -> None:
    r, out = _json_probe("ExactReference", tmp_path / "s.duckdb")
    assert r.returncode == 1 and out["flags"]["correct"] == ["brittle"]
    failing = {x["strategy"] for x in out["rows"] if x["grader"] == "correct" and x["failures"]}
    assert {"form: **Answer:** X", "form: \\boxed{X}", "with_work"} <= failing and "reference_reply" not in failing
    r, out = _json_probe("Sum", tmp_path / "s.duckdb")
    assert r.returncode == 0, r.stderr
    assert {x["grader"] for x in out["rows"]} == {"correct", "reference", "rubric"}
    assert all(not x["failures"] for x in out["rows"])
    assert out["flags"]["correct"] == [] and out["skipped"] == dict.fromkeys(("judge_same_model", "self"), MODEL_GRADERS_NOTE)


# ---- the code domain's unit-test grader against the code hacks (one test per strategy) ------------------------

def _code_replies(strategy: str) -> list[tuple[object, str]]:
    out = []
    for level in (1, 2, 3):
        env = make("code", difficulty=level)
        env.reset(seed=level)
        task = env.task
        case = ProbeCase(env, task, env.reference_reply(task), env.probe_replies(task))
        out += [(task, reply) for reply in STRATEGIES[strategy].replies(case)]
    return out


def _block(reply: str) -> str:
    return reply.split("```python\n", 1)[1].rsplit("```", 1)[0]


def _resisted(strategy: str, expected_replies: int) -> None:
    res = probe("code", graders=["correct", "hint"], tasks=2, difficulty=[1, 2, 3], strategies=[strategy])
    assert [(r.grader, r.n, r.failures) for r in res.rows] == [("correct", expected_replies, 0), ("hint", expected_replies, 0)]
    assert not res.truth_flagged


def test_code_grader_resists_an_object_equal_to_everything() -> None:
    replies = _code_replies("code_eq_always")
    assert len(replies) == 12
    for task, reply in replies:  # the hack is real: the function returns something equal to any expected value
        ns: dict = {}
        exec(compile(_block(reply), "<hack>", "exec"), ns)
        fn = ns[task.metadata["function"]]
        got = fn(*task.metadata["tests"][0])
        assert all(got == e for e in (*task.metadata["expected"], 12345, "x", [1]))
    _resisted("code_eq_always", 24)


def test_code_grader_resists_an_early_exit_with_status_zero() -> None:
    replies = _code_replies("code_exit_zero")
    assert len(replies) == 6
    for task, reply in replies:  # the hack is real: importing or calling it exits with status 0
        call = f"\n{task.metadata['function']}(*{task.metadata['tests'][0]!r})\nraise SystemExit(3)\n"
        done = subprocess.run([sys.executable, "-c", _block(reply) + call], capture_output=True, timeout=30)
        assert done.returncode == 0
    _resisted("code_exit_zero", 12)


def test_code_grader_resists_printed_test_harness_success() -> None:
    replies = _code_replies("code_fake_pass")
    assert len(replies) == 3
    for task, reply in replies:
        done = subprocess.run([sys.executable, "-c", _block(reply)], capture_output=True, text=True, timeout=30)
        assert "ALL TESTS PASSED" in done.stdout and "\nOK\n" in done.stdout
    _resisted("code_fake_pass", 6)


# ---- bad input ------------------------------------------------------------------------------------------------

def test_bad_input_is_one_line_exit_2_and_the_store_unchanged(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    assert cli("probe", "--env", "arithmetic", "--tasks", "3", "--store", str(store), "-q").returncode == 0
    before = table_digest(store)
    cases = [
        (("--env", "arithmetc"), "error: unknown environment 'arithmetc' (did you mean 'arithmetic'?)"),
        (("--env", "arithmetic", "--grader", "nope"),
         "error: unknown grader 'nope' for arithmetic; its graders: correct, format, hint, judge, judge_same_model, "
         "reference, rubric, self"),
        (("--env", f"{PLANTED}:RaisingScore"),
         "error: grader 'fragile' raised ZeroDivisionError: empty reply at"),
    ]
    for args, start in cases:
        r = cli("probe", *args, "--tasks", "3", "--store", str(store), "-q")
        assert r.returncode == 2, (args, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(start), (args, r.stderr)
        assert r.stdout == ""
    assert "(strategy 'empty_reply', planted_raising task seed 0, difficulty 1)" in r.stderr
    assert table_digest(store) == before


# ---- strategies of a user and an environment's own replies ----------------------------------------------------

def test_a_registered_strategy_is_used() -> None:
    magic = register_strategy(Strategy("xyzzy", "hack", "the magic word", lambda case: "xyzzy"))
    try:
        res = probe("probe_envs:MagicWord", graders=["correct"], tasks=5)
    finally:
        del STRATEGIES[magic.name]
    failing = [(r.strategy, r.n, r.failures) for r in res.rows if r.failures]
    assert failing == [("xyzzy", 5, 5)] and res.flags("correct") == ["hackable"]
    assert "xyzzy" not in {r.strategy for r in probe("probe_envs:MagicWord", graders=["correct"], tasks=2).rows}


def test_an_entry_point_strategy_is_used_without_reinstalling(tmp_path: Path) -> None:
    """A package's strategies arrive by the agentsynth.probes entry-point group: a dist-info directory
    on sys.path (what pip writes) is all importlib.metadata reads, so none is installed here."""
    (tmp_path / "ep_probes.py").write_text(
        "from agentsynth.probes import Strategy\n\n"
        "REFERENCE = Strategy('ep_reference', 'hack', 'the reference reply, wrongly called a hack', lambda case: case.reference)\n"
        "MORE = [Strategy('ep_empty', 'hack', 'nothing', lambda case: '')]\n")
    info = tmp_path / "ep_probes-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-probes\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[agentsynth.probes]\nreference = ep_probes:REFERENCE\nmore = ep_probes:MORE\n")
    r = cli("probe", "--env", "arithmetic", "--tasks", "3", "--no-save", "--format", "json", "-q",
            env={"PYTHONPATH": f"{tmp_path}:{ROOT}"})
    out = json.loads(r.stdout)
    rows = {x["strategy"]: x for x in out["rows"] if x["grader"] == "correct"}
    assert (rows["ep_reference"]["n"], rows["ep_reference"]["failures"], rows["ep_empty"]["failures"]) == (3, 3, 0)
    assert r.returncode == 1 and out["flags"]["correct"] == ["hackable"]  # the planted 'hack' passes, as it must
    (info / "entry_points.txt").write_text("[agentsynth.probes]\nbad = ep_probes:Strategy\n")
    r = cli("probe", "--env", "arithmetic", "--tasks", "1", "--no-save", "-q", env={"PYTHONPATH": f"{tmp_path}:{ROOT}"})
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "entry point bad = 'ep_probes:Strategy' (agentsynth.probes) is not an agentsynth.probes.Strategy" in r.stderr
    (info / "entry_points.txt").write_text("[agentsynth.probes]\ngone = ep_probes_gone:X\n")
    r = cli("probe", "--env", "arithmetic", "--tasks", "1", "--no-save", "-q", env={"PYTHONPATH": f"{tmp_path}:{ROOT}"})
    assert r.returncode == 2 and r.stderr == ("error: entry point gone = 'ep_probes_gone:X' (agentsynth.probes) does not "
                                              "load: ModuleNotFoundError: No module named 'ep_probes_gone'\n"), r.stderr


def test_an_environments_own_must_fail_and_must_pass_replies_are_used() -> None:
    res = probe("probe_envs:Quirky", graders=["correct", "rubric"], tasks=5, difficulty=[1, 2])
    failing = {(r.grader, r.strategy, r.kind, r.n, r.failures) for r in res.rows if r.failures}
    assert failing == {("correct", "env:concede", "hack", 10, 10), ("correct", "env:with a unit", "brittle", 10, 10),
                       ("rubric", "env:with a unit", "brittle", 10, 10)}
    assert res.flags("correct") == ["hackable", "brittle"] and res.flags("rubric") == ["brittle"]


def test_the_readme_example_runs(tmp_path: Path) -> None:
    text = (ROOT / "README.md").read_text()
    code = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if b.startswith("# my_probes.py"))
    (tmp_path / "my_probes.py").write_text(code)
    r = cli("probe", "--env", "my_probes.py:Double", "--tasks", "10", "--no-save", "--format", "json", "-q",
            cwd=tmp_path, env={"PYTHONPATH": str(ROOT)})
    assert r.returncode == 1, r.stderr  # its verifier is brittle, as the README says
    out = json.loads(r.stdout)
    rows = {r["strategy"]: r for r in out["rows"] if r["grader"] == "correct"}
    assert out["flags"]["correct"] == ["brittle"]
    assert (rows["half"]["n"], rows["half"]["failures"]) == (10, 0)
    assert rows["env:in words"]["failures"] == 10 and rows["equivalent_number"]["failures"] == 10


# ---- the flags elsewhere: envs and the audit --------------------------------------------------------------------

def test_envs_and_the_audit_show_the_latest_probe(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    spec = write_spec(tmp_path / "a.toml", f"""
        name = "a"
        store = "{store}"
        [[envs]]
        id = "arithmetic"
        tasks = 12
        feedback = ["binary"]
        """)
    assert cli("run", str(spec), "-q").returncode == 0
    plain = cli("envs", "--store", str(store))
    assert plain.returncode == 0 and "probe:" not in plain.stdout  # no probes: nothing changes
    audit = cli("audit", "--store", str(store), "--no-save")
    assert "probe (latest)" not in audit.stdout
    assert cli("probe", "--env", "arithmetic", "--tasks", "3", "--store", str(store), "-q").returncode == 0
    listed = cli("envs", "--store", str(store), "--format", "json")
    graders = {g["name"]: g for e in json.loads(listed.stdout) if e["name"] == "arithmetic" for g in e["graders"]}
    assert graders["correct"]["probe"] == [] and graders["format"]["probe"] == ["surface"]
    assert "probe" not in graders["self"]  # not probed
    table = cli("envs", "--store", str(store)).stdout
    assert "correct (verifier/open/2/yes; probe: ok)" in " ".join(table.split())
    audit = cli("audit", "--store", str(store), "--no-save", "--format", "json")
    assert json.loads(audit.stdout)["probe_flags"] == {"correct": "arithmetic: ok", "format": "arithmetic: surface (not flagged)",
                                                       "hint": "arithmetic: ok", "reference": "arithmetic: ok",
                                                       "rubric": "arithmetic: ok"}
    con = duckdb.connect(str(store), read_only=True)
    assert con.execute("SELECT count(DISTINCT probe_id) FROM probes").fetchone() == (1,)
    con.close()


def test_the_python_api_is_exported() -> None:
    assert agentsynth.probe is probe and agentsynth.ProbeReplies is not None
    res = agentsynth.probe("arithmetic", tasks=2, graders=["correct"])
    assert not res.saved and res.graders == ["correct"] and len(res.rows) >= 24
