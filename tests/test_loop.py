"""`agentsynth loop` end to end with the real student: the shipped smoke spec, resume after SIGKILL
mid-training and mid-synthesis with nothing duplicated, the command trainer calling `agentsynth
train` and `agentsynth serve --student` (evaluated over HTTP), and bad input refused before
anything runs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import agentsynth.student  # noqa: F401 - first, so its OpenMP setting precedes torch's load
import pytest

pytest.importorskip("torch")

from conftest import ROOT, cli, q, table_digest, write_spec  # noqa: E402

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small base student on units and countdown (a few seconds of training)."""
    out = tmp_path_factory.mktemp("base") / "ckpt0"
    r = cli("student", "init", "--envs", "units,countdown", "--tasks", "2000", "--steps", "120", "--review", "0.2",
            "--out", str(out), "-q", timeout=300)
    assert r.returncode == 0, r.stderr
    return out


def loop_spec(path: Path, store: Path, base: Path, *, name: str = "t", arms: str = '["verifier"]', generations: int = 2,
              steps: int = 40, tasks: int = 40, extra: str = "") -> Path:
    return write_spec(path, f"""
        name = "{name}"
        store = "{store}"
        workdir = "{path.parent / (name + '-work')}"
        arms = {arms}
        generations = {generations}
        samples = 4
        tasks = {tasks}
        steps = {steps}
        eval_tasks = 40
        {extra}
        [base]
        checkpoint = "{base}"
        [[loop_envs]]
        id = "countdown"
        [[held_out]]
        id = "units"
        """)


def assert_no_duplicates(store: Path, name: str, arms: int, seeds: int, generations: int) -> None:
    steps = q(store, "SELECT arm, seed, generation, phase, run_id, export_id FROM loops WHERE loop = ?", [name])
    assert len(steps) == arms * seeds * (generations + 1)
    assert all(s[3] == "evaluated" for s in steps)
    runs = q(store, "SELECT name, count(*) FROM runs WHERE name LIKE ? GROUP BY name", [name + "-%"])
    assert runs and all(c == 1 for _, c in runs)
    assert len(runs) == arms * seeds * generations
    [(eps, distinct)] = q(store, "SELECT count(*), count(DISTINCT episode_id) FROM episodes")
    assert eps == distinct
    exported = q(store, "SELECT run_id, count(*) FROM exports GROUP BY run_id")
    assert all(c == 1 for _, c in exported)
    [(items, distinct_items)] = q(store, "SELECT count(*), count(DISTINCT (export_id, item, part)) FROM export_items")
    assert items == distinct_items


def test_smoke_spec_end_to_end(tmp_path: Path) -> None:
    """The shipped runs/loop-smoke.toml, as a user runs it (its base built from scratch)."""
    store = tmp_path / "smoke.duckdb"
    t0 = time.monotonic()
    r = cli("loop", "runs/loop-smoke.toml", "--store", str(store), "--workdir", str(tmp_path / "work"),
            "--plot", str(tmp_path / "loop.png"), "-q", timeout=600)
    wall = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert "greedy accuracy" in r.stdout and "verifier" in r.stdout and "keep-all" in r.stdout
    assert (tmp_path / "loop.png").stat().st_size > 10_000
    assert_no_duplicates(store, "loop-smoke", arms=2, seeds=1, generations=2)
    # exports with lineage, and checkpoints whose manifests name them
    for arm, g, export_id, ckpt, evals in q(store, "SELECT arm, generation, export_id, checkpoint, evaluation_ids FROM loops "
                                            "WHERE generation > 0"):
        assert export_id is not None, (arm, g)
        [(signal_name, rows)] = q(store, "SELECT signal, rows FROM exports WHERE export_id = ?", [export_id])
        assert signal_name == {"verifier": "correct", "keep-all": "keep_all"}[arm]
        assert q(store, "SELECT count(*) FROM export_items WHERE export_id = ?", [export_id])[0][0] == rows
        manifest = json.loads((Path(ckpt) / "manifest.json").read_text())
        assert manifest["data"]["export_id"] == export_id
        trained = q(store, "SELECT DISTINCT trained_on FROM evaluations WHERE list_contains(?, evaluation_id)",
                    [json.loads(evals)])
        assert trained == [(export_id,)]
    view = q(store, "SELECT signal, split, count(*) FROM generalization GROUP BY ALL ORDER BY ALL")
    assert {(s, sp) for s, sp, _ in view} == {("correct", "in-domain"), ("correct", "out-of-domain"),
                                             ("keep_all", "in-domain"), ("keep_all", "out-of-domain")}
    assert q(store, "SELECT count(*) FROM generalization WHERE delta IS NULL")[0][0] == 0
    print(f"smoke loop: {wall:.0f} s")
    # the report again, as JSON
    r = cli("loop", "report", "--store", str(store), "--format", "json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["splits"] == ["loop", "held-out"] and len(rep["accuracy"]) == 2 * 3 * 2
    assert all(c["ci_low"] <= c["accuracy"] <= c["ci_high"] for c in rep["accuracy"])


def _run_until(cmd: list[str], marker: str, delay: float, timeout: float = 300) -> list[str]:
    """Start the loop, SIGKILL it ``delay`` seconds after a stderr line containing ``marker``
    (the store is not opened meanwhile: a reader would block the loop's writes); its stderr lines."""
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    seen = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if marker in line:
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert seen.wait(timeout), "".join(lines)
    time.sleep(delay)
    assert proc.poll() is None, "".join(lines)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    reader.join(5)
    return lines


def test_sigkill_mid_training_and_mid_synthesis_then_resume(tmp_path: Path, tiny_base: Path) -> None:
    store = tmp_path / "kill.duckdb"
    spec = loop_spec(tmp_path / "kill.toml", store, tiny_base, name="kill", arms='["keep-all"]', steps=150, tasks=400)
    cmd = [sys.executable, "-m", "agentsynth", "loop", str(spec), "-q"]
    work = tmp_path / "kill-work"
    # 1. kill during generation 1's training (150 steps: several seconds)
    _run_until(cmd, "gen 1: training on", 1.0)
    assert not (work / "ckpt" / "kill-keep-all-s0-g1").exists()
    assert q(store, "SELECT phase FROM loops WHERE generation = 1") == [("exported",)]
    # 2. resume: generation 1 trains and is evaluated; kill during generation 2's synthesis
    _run_until(cmd, "gen 1: selected", 1.5)
    assert (work / "ckpt" / "kill-keep-all-s0-g1").is_dir()
    runs = q(store, "SELECT name, status FROM runs WHERE kind = 'synthesis' ORDER BY name")
    assert runs[-1] == ("kill-keep-all-s0-g2", "running"), runs  # killed mid-synthesis
    partial = q(store, "SELECT count(*) FROM episodes JOIN runs USING (run_id) WHERE name = 'kill-keep-all-s0-g2'")[0][0]
    # 3. resume to the end
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "1 step(s) run, 1 already done" in r.stdout, r.stdout
    assert_no_duplicates(store, "kill", arms=1, seeds=1, generations=2)
    [(planned, ok)] = q(store, "SELECT planned, count(*) FILTER (episodes.status = 'ok') FROM runs JOIN episodes USING (run_id) "
                        "WHERE name = 'kill-keep-all-s0-g2' GROUP BY planned")
    assert planned == ok == 400 * 4 and partial < planned
    ckpts = sorted(p.name for p in (work / "ckpt").iterdir() if not p.name.startswith("."))
    assert ckpts == ["kill-keep-all-s0-g1", "kill-keep-all-s0-g2"]
    # running it again does nothing
    before = table_digest(store)
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "0 step(s) run, 2 already done" in r.stdout, r.stdout + r.stderr
    assert table_digest(store) == before


def test_command_trainer_trains_and_serves_through_the_cli(tmp_path: Path, tiny_base: Path) -> None:
    store = tmp_path / "cmd.duckdb"
    py = sys.executable
    extra = f"""
        trainer = "command"
        [command]
        train = "{py} -m agentsynth train --export {{export}} --base {{base}} --out {{out}} --steps {{steps}} --seed {{seed}} --replay {{replay}} --store {{store}} -q"
        serve = "{py} -m agentsynth serve --student {{checkpoint}} --port {{port}} --model-name {{model}}"
        port = 18731
        ready_timeout = 120
        """
    spec = loop_spec(tmp_path / "cmd.toml", store, tiny_base, name="cmd", arms='["verifier", "keep-all"]', generations=1,
                     steps=20, extra=extra)
    r = cli("loop", str(spec), "-q", timeout=600)
    assert r.returncode == 0, r.stderr
    assert_no_duplicates(store, "cmd", arms=2, seeds=1, generations=1)
    evals = q(store, "SELECT model, base_url, trained_on, base_model FROM evaluations ORDER BY model, env_id")
    assert {e[1] for e in evals} == {"http://127.0.0.1:18731/v1"}  # evaluated over HTTP
    assert {e[0] for e in evals} == {"cmd-ckpt0", "cmd-cmd-verifier-s0-g1", "cmd-cmd-keep-all-s0-g1"}
    assert {e[3] for e in evals if e[2]} == {"cmd-ckpt0"}
    for (ckpt, export_id) in q(store, "SELECT checkpoint, export_id FROM loops WHERE generation = 1"):
        manifest = json.loads((Path(ckpt) / "manifest.json").read_text())  # written by `agentsynth train`
        assert manifest["data"]["export_id"] == export_id
    assert (tmp_path / "cmd-work" / "logs").is_dir()
    assert q(store, "SELECT count(*) FROM generalization")[0][0] == 4


BARE_ENV = """
from agentsynth import TextEnv, final_answer


class Bare(TextEnv):
    name = "bare"
    domain = "bare"

    def generate(self, rng):
        n = int(rng.integers(10))
        return self.make_task(f"Say {n}. End with 'Answer: <n>'.", str(n))

    def verify(self, task, answer):
        return final_answer(answer) == task.answer
"""


@pytest.fixture(scope="module")
def prior_store(tmp_path_factory: pytest.TempPathFactory, tiny_base: Path) -> Path:
    """A store holding a finished loop, which bad input must leave as it is."""
    d = tmp_path_factory.mktemp("prior")
    store = d / "prior.duckdb"
    spec = loop_spec(d / "prior.toml", store, tiny_base, name="prior", generations=1, steps=5, tasks=5)
    r = cli("loop", str(spec), "-q", timeout=300)
    assert r.returncode == 0, r.stderr
    return store


@pytest.mark.parametrize(("change", "message"), [
    ('arms = ["verifier", "sideways"]', "unknown arm 'sideways'; arms: "),
    ('arms = ["self-judge"]\nbase = {steps = 5}', "needs a student that learned to review its own answers"),
    ('arms = ["majority"]\nsamples = 1', "set samples to 2 or more"),
    ('arms = ["spurious"]\nloop_envs = [{id = "BARE"}]', "selects with signal 'format', which loop domain "),
    ('arms = ["feedback"]\nloop_envs = [{id = "BARE"}]', "feedback channel 'hint' not offered"),
    ('base = {checkpoint = "MISSING"}', "base: no student checkpoint at "),
    ('base = {checkpoint = "CORRUPT"}', "weights.pt is 1,000 bytes, its manifest says"),
    ('base = {}', "give the base a checkpoint, or a training budget"),
    ('generations = 0', "generations: Input should be greater than or equal to 1"),
    ('trainer = "gpu"', "unknown trainer 'gpu'; trainers: command, student"),
])
def test_bad_loop_specs_fail_in_one_line_and_store_nothing(tmp_path: Path, tiny_base: Path, prior_store: Path, change: str,
                                                           message: str) -> None:
    store = tmp_path / "bad.duckdb"
    shutil.copy(prior_store, store)
    before = table_digest(store)
    corrupt = tmp_path / "corrupt"
    shutil.copytree(tiny_base, corrupt)
    (corrupt / "weights.pt").write_bytes((corrupt / "weights.pt").read_bytes()[:1000])
    body = (f'name = "bad"\nstore = "{store}"\nworkdir = "{tmp_path / "bad-work"}"\narms = ["verifier"]\n'
            f'samples = 4\ntasks = 5\nsteps = 5\neval_tasks = 5\n'
            f'base = {{checkpoint = "{tiny_base}"}}\nloop_envs = [{{id = "countdown"}}]\n')
    keys = {line.split("=")[0].strip() for line in change.splitlines()}
    body = "\n".join(line for line in body.splitlines() if line.split("=")[0].strip() not in keys) + "\n" + change + "\n"
    bare = tmp_path / "bare.py"  # a user's environment with no hint and no format check
    bare.write_text(BARE_ENV)
    body = body.replace("MISSING", str(tmp_path / "nowhere")).replace("CORRUPT", str(corrupt))
    body = body.replace("BARE", f"{bare}:Bare")
    (tmp_path / "bad.toml").write_text(body)
    r = cli("loop", str(tmp_path / "bad.toml"), "-q", timeout=120)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.stderr
    assert table_digest(store) == before
    assert not (tmp_path / "bad-work").exists()
