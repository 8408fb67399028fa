"""A task set as a loop domain: its column mapping (``kwargs``) reaches every place the loop builds
it (the checks, the base's reference examples, the synthesis runs, the evaluations, the replay),
a loop stored with kwargs resumes, and a task set too small for the loop is refused before
anything runs. The real loop, with a tiny student (well under a minute)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import agentsynth.student  # noqa: F401 - first, so its OpenMP setting precedes torch's load
import pytest

pytest.importorskip("torch")

from conftest import cli, q, write_spec  # noqa: E402

from agentsynth.loop import LoopError, check_loop, driver, load_loop_spec, run_loop  # noqa: E402

pytestmark = pytest.mark.timeout(300)

MAPPING = {"prompt": "question", "answer": "solution", "grader": "numeric", "domain": "sums"}


def write_tasks(path: Path, rows: int = 200) -> Path:
    """Sums, with columns named ``question`` and ``solution`` (not the default prompt/answer)."""
    with path.open("w") as f:
        for i in range(rows):
            a, b = 3 + i % 17, 5 + (i * 7) % 23 + i // 17
            f.write(json.dumps({"question": f"What is {a} + {b}?", "solution": a + b}) + "\n")
    return path


def loop_spec(tmp_path: Path, *, tasks: int = 8, generations: int = 2, eval_tasks: int = 10, base_tasks: int = 40,
              held_out: str = "") -> Path:
    data = write_tasks(tmp_path / "sums.jsonl")
    kwargs = ", ".join(f"{k} = {json.dumps(v)}" for k, v in MAPPING.items())
    return write_spec(tmp_path / "loop.toml", f"""
        name = "ts"
        store = "{tmp_path / 'loops.duckdb'}"
        arms = ["keep-all"]
        generations = {generations}
        samples = 2
        tasks = {tasks}
        steps = 3
        batch_size = 8
        eval_tasks = {eval_tasks}
        concurrency = 4
        [base]
        tasks = {base_tasks}
        steps = 5
        width = 32
        layers = 1
        heads = 2
        context = 256                     # a prompt and a whole reply (up to the loop's 96 tokens) always fit
        [[loop_envs]]
        id = "tasks:{data}"
        kwargs = {{ {kwargs} }}
        {held_out}
        """)


def test_task_set_loop_domain_carries_its_mapping_everywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = load_loop_spec(loop_spec(tmp_path, held_out='[[held_out]]\nid = "units"'))
    ref = spec.loop_envs[0].id
    check_loop(spec)
    synth: list[dict[str, Any]] = []
    evals: list[dict[str, Any]] = []
    real_synthesis, real_evaluate = driver.synthesis_spec, driver.evaluate

    def synthesis_spec(*args: Any, **kw: Any) -> dict[str, Any]:
        synth.append(real_synthesis(*args, **kw))
        return synth[-1]

    def evaluate(*args: Any, **kw: Any) -> Any:
        evals.append(kw)
        return real_evaluate(*args, **kw)

    monkeypatch.setattr(driver, "synthesis_spec", synthesis_spec)
    monkeypatch.setattr(driver, "evaluate", evaluate)
    result = run_loop(spec)
    assert result.ran == 2
    # synthesis: the mapping, and the train rows 0.., a new block each generation
    assert [[(e["id"], e["kwargs"], e["seed_start"]) for e in s["envs"]] for s in synth] == [
        [(ref, MAPPING, 0)], [(ref, MAPPING, 8)]]
    # evaluations: the base's and each generation's, with the mapping of the task set only
    assert len(evals) == 3 and all(e["env_kwargs"] == {ref: MAPPING} for e in evals)
    assert all(set(e["envs"]) == {ref, "units"} for e in evals)
    store = Path(spec.store)
    splits = q(store, "SELECT CASE WHEN r.name LIKE 'ts-%' THEN 'synthesis' ELSE 'eval' END, json_extract_string(t.metadata, '$.split'), count(*) FROM episodes e "
                      "JOIN runs r USING (run_id) JOIN tasks t USING (task_id) WHERE e.env_id = ? GROUP BY ALL ORDER BY ALL",
               [ref])
    assert {(p, s) for p, s, _ in splits} == {("eval", "held_out"), ("synthesis", "train")}
    # the base learned the task set's references through the mapping, and records it for replay
    manifest = json.loads((spec.work_path() / "base" / "manifest.json").read_text())
    assert manifest["data"]["envs"] == [ref, "units"] and manifest["data"]["env_kwargs"] == {ref: MAPPING}
    from agentsynth.student.build import replay_examples
    from agentsynth.student.checkpoint import Student

    replay = replay_examples(Student.load(spec.work_path() / "base"))
    assert any(ex.messages[0]["content"].startswith("What is ") for ex in replay)
    # stored with its kwargs, the loop resumes: nothing is redone
    again = run_loop(load_loop_spec(tmp_path / "loop.toml"))
    assert again.ran == 0 and again.skipped == 2
    # the kwargs are part of the spec: another mapping under the same name is refused
    changed = (tmp_path / "loop.toml").read_text().replace('domain = "sums"', 'domain = "other"')
    (tmp_path / "loop.toml").write_text(changed)
    with pytest.raises(LoopError, match="already stored .* with a different spec"):
        check_loop(load_loop_spec(tmp_path / "loop.toml"))


@pytest.mark.parametrize("change, message", [
    ({"tasks": 100}, r"synthesis draws seeds x generations x tasks = 1 x 2 x 100 = 200 of its train rows, and it "
                     r"supplies (\d+): set tasks to at most (\d+), or lower generations or seeds"),
    ({"eval_tasks": 150}, r"evaluation draws eval_tasks = 150 held-out tasks, and it supplies (\d+): "
                          r"set eval_tasks to at most (\d+)"),
    ({"base_tasks": 190}, r"the base learns base.tasks = 190 of its train rows, and it supplies (\d+): "
                          r"set base.tasks to at most (\d+), or name base.envs without it"),
])
def test_a_task_set_too_small_for_the_loop_is_refused_before_anything_runs(tmp_path: Path, change: dict[str, int],
                                                                            message: str) -> None:
    path = loop_spec(tmp_path, **change)
    with pytest.raises(LoopError, match="loop domain tasks:.*: " + message) as err:
        check_loop(load_loop_spec(path))
    found = re.search(message, str(err.value))
    assert found is not None
    supplies, most = map(int, found.groups())
    assert 0 < supplies < 200 and most == (supplies // 2 if "tasks" in change else supplies)
    r = cli("loop", str(path), "-q")
    assert r.returncode == 2 and r.stderr.startswith("error: loop domain tasks:") and len(r.stderr.splitlines()) == 1
    assert not (tmp_path / "loops.duckdb").exists() and not (tmp_path / "ts").exists()


def test_a_bad_column_mapping_is_refused_by_name(tmp_path: Path) -> None:
    path = loop_spec(tmp_path)
    path.write_text(path.read_text().replace('prompt = "question"', 'prompt = "text"'))
    with pytest.raises(LoopError, match=r"loop domain tasks:.*: cannot create it .*column 'text' \(prompt\) is not in the file"):
        check_loop(load_loop_spec(path))


def test_student_init_takes_a_run_specs_task_set_with_its_mapping(tmp_path: Path) -> None:
    data = write_tasks(tmp_path / "sums.jsonl")
    kwargs = ", ".join(f"{k} = {json.dumps(v)}" for k, v in MAPPING.items())
    spec = write_spec(tmp_path / "run.toml", f"""
        name = "r"
        model = "sim"
        [[envs]]
        id = "tasks:{data}"
        kwargs = {{ {kwargs} }}
        [[envs]]
        id = "units"
        """)
    out = tmp_path / "ckpt"
    small = ["--tasks", "20", "--steps", "2", "--width", "16", "--layers", "1", "--heads", "2", "--context", "64", "-q"]
    r = cli("student", "init", "--spec", str(spec), "--envs", f"tasks:{data}", "--out", str(out), *small, timeout=300)
    assert r.returncode == 0, r.stderr
    data_entry = json.loads((out / "manifest.json").read_text())["data"]
    assert data_entry["envs"] == [f"tasks:{data}"] and data_entry["env_kwargs"] == {f"tasks:{data}": MAPPING}
    r = cli("student", "init", "--out", str(tmp_path / "none"), *small)
    assert r.returncode == 2 and "name the environments: --envs" in r.stderr
    r = cli("student", "init", "--envs", f"tasks:{data}", "--out", str(tmp_path / "bad"), *small)  # no mapping
    assert r.returncode == 2 and "column 'prompt' is not in the file; its columns: question, solution" in r.stderr, r.stderr
