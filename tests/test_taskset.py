"""Task sets as environments (issue 14): every file format, column mapping errors, the content-hash
split (stable under reordering and appending; synthesis and eval never share a task), seeds past
the split, resume, and spec -> CLI -> store end to end."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agentsynth.registry import resolve
from agentsynth.spec import EVAL_SEED_START
from envs.taskset import TaskSetEnv, TaskSetError
from envs.taskset.table import content_key, split_hash
from tests.conftest import cli, q, write_spec

ROWS = [{"qid": f"q{i}", "question": f"What is {i} plus {i + 3}?", "answer": 2 * i + 3, "level": i % 3}
        for i in range(60)]
MAPPING = {"prompt": "question", "answer": "answer", "id": "qid", "metadata": ["level"], "grader": "numeric"}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def write_parquet(path: Path, rows: list[dict]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=16)
    return path


def write_datasets(path: Path, rows: list[dict]) -> Path:
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_list(rows).save_to_disk(str(path))
    return path


WRITERS = {"jsonl": (write_jsonl, "t.jsonl"), "csv": (write_csv, "t.csv"), "parquet": (write_parquet, "t.parquet"),
           "datasets": (write_datasets, "t_ds")}


def tasks_of(env: TaskSetEnv, seeds) -> list:
    out = []
    for s in seeds:
        env.reset(seed=s)
        out.append(env.task)
    return out


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_each_format_gives_the_same_tasks_and_split(tmp_path: Path, fmt: str) -> None:
    writer, name = WRITERS[fmt]
    env = TaskSetEnv.from_file(str(writer(tmp_path / name, ROWS)), **MAPPING, name="sums")
    reference = TaskSetEnv.from_file(str(write_jsonl(tmp_path / "ref.jsonl", ROWS)), **MAPPING, name="sums")
    assert env.describe()["rows"] == 60 and env.describe()["format"] == fmt
    assert env.describe()["train"] == reference.describe()["train"]
    n = env.table.size("train")
    got, want = tasks_of(env, range(n)), tasks_of(reference, range(n))
    assert [t.task_id for t in got] == [t.task_id for t in want]  # same content -> same split, order and ids
    t = got[0]
    assert t.answer == str(next(r["answer"] for r in ROWS if r["question"] == t.prompt))  # 7, not "7.0" or 7
    assert str(t.metadata["level"]) == str(next(r["level"] for r in ROWS if r["question"] == t.prompt))
    env.reset(seed=0)
    assert env.step(f"So it is\nAnswer: {env.task.answer}")[1] == 1.0
    assert env.step("Answer: -1")[1] == 0.0


@pytest.mark.parametrize(("rows", "kwargs", "fmt", "message"), [
    (ROWS, {"prompt": "q"}, "jsonl", "line 1: column 'q' (prompt) is not in the file; its columns: qid, question"),
    (ROWS[:5] + [{"qid": "x", "answer": 1}], {}, "jsonl", "line 6: no column 'question'"),
    (ROWS[:3] + [{**ROWS[3], "answer": ""}], {}, "jsonl", "line 4: column 'answer' is empty"),
    (ROWS[:3] + [{**ROWS[3], "answer": None}], {}, "csv", "row 4: column 'answer' is empty"),
    (ROWS[:7] + [{**ROWS[7], "question": 5}], {}, "jsonl", "line 8: column 'question' is a number, not text"),
    ([{**r, "question": i} for i, r in enumerate(ROWS)], {}, "parquet", "row 1: column 'question' is a number, not text"),
    (ROWS, {"metadata": ["topic"]}, "parquet", "row 1: column 'topic' (metadata) is not in the file"),
    (ROWS, {"grader": "unit_tests"}, "jsonl", "grader 'unit_tests' needs a tests column"),
    (ROWS, {"grader": "nope"}, "jsonl", "unknown grader 'nope'"),
])
def test_mapping_errors_are_one_line_naming_row_and_column(tmp_path: Path, rows, kwargs, fmt, message) -> None:
    writer, name = WRITERS[fmt]
    path = writer(tmp_path / name, rows)
    with pytest.raises(TaskSetError) as err:
        TaskSetEnv.from_file(str(path), **{**MAPPING, **kwargs})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_split_is_stable_under_reordering_and_appending(tmp_path: Path) -> None:
    def split(rows: list[dict], name: str) -> dict[str, set[str]]:
        env = TaskSetEnv.from_file(str(write_jsonl(tmp_path / name, rows)), **MAPPING)
        return {part: {env.table.source.fetch([int(i)])[int(i)]["question"] for i in env.table.parts[part]}
                for part in ("train", "held_out")}

    base = split(ROWS, "a.jsonl")
    shuffled = list(ROWS)
    random.Random(1).shuffle(shuffled)
    assert split(shuffled, "b.jsonl") == base
    more = [{"qid": f"n{i}", "question": f"What is {i} times 7?", "answer": 7 * i} for i in range(40)]
    grown = split(ROWS + more, "c.jsonl")
    assert base["train"] <= grown["train"] and base["held_out"] <= grown["held_out"]
    assert 0 < len(base["held_out"]) < len(base["train"])
    # the split is a function of the content alone: case and spacing do not move a question
    assert split_hash(content_key(["What is 1 plus 4?"])) == split_hash(content_key(["  what IS 1 plus   4? "]))


def test_synthesis_and_eval_seeds_never_share_a_task_and_duplicates_stay_together(tmp_path: Path) -> None:
    rows = ROWS + [dict(ROWS[i], qid=f"dup{i}") for i in range(0, 60, 6)] + [dict(ROWS[1], question="what is 1 PLUS 4?")]
    env = TaskSetEnv.from_file(str(write_jsonl(tmp_path / "d.jsonl", rows)), **MAPPING)
    facts = env.describe()
    assert facts["duplicates"] == 11 and facts["train"] + facts["held_out"] == 71
    train = tasks_of(env, range(facts["train"]))
    held = tasks_of(env, range(EVAL_SEED_START, EVAL_SEED_START + facts["held_out"]))
    key = lambda t: content_key([t.prompt])  # noqa: E731
    assert not {key(t) for t in train} & {key(t) for t in held}
    assert {t.metadata["split"] for t in train} == {"train"} and {t.metadata["split"] for t in held} == {"held_out"}
    with pytest.raises(ValueError, match=f"holds {facts['train']} of 71 rows"):
        env.check_seeds(range(0, facts["train"] + 1))
    env.check_seeds(range(EVAL_SEED_START, EVAL_SEED_START + facts["held_out"]))


def test_seed_order_is_a_permutation_and_channels_follow_the_columns(tmp_path: Path) -> None:
    rows = [{**r, "hint": "add the two numbers"} for r in ROWS]
    path = str(write_jsonl(tmp_path / "h.jsonl", rows))
    plain = TaskSetEnv.from_file(path, **MAPPING)
    assert "hint" not in plain.channels
    env = TaskSetEnv.from_file(path, **MAPPING, hint="hint", feedback="hint")
    first = [t.metadata["row"] for t in tasks_of(env, range(10))]
    assert first != sorted(first)  # drawn in a seeded order, not file order
    other = TaskSetEnv.from_file(path, **MAPPING, shuffle_seed=1)
    assert [t.metadata["row"] for t in tasks_of(other, range(10))] != first
    env.reset(seed=3)
    assert env.step("Answer: -5")[0] == "Incorrect. Hint: add the two numbers"
    ref = TaskSetEnv.from_file(path, **MAPPING, feedback="reference")
    ref.reset(seed=3)
    assert ref.step("Answer: -5")[0] == f"Incorrect. The expected answer is: {ref.task.answer}"


class Templated(TaskSetEnv):
    """A subclass: a prompt template, an answer key and a hint of its own."""

    prompt_template = "{question}\n\nEnd with 'Answer: <number>'."

    def answer_key(self, row: dict) -> str:
        return str(int(row["answer"]) * 10)

    def hint(self, task, answer: str) -> str | None:
        return "think in tens"


def test_subclass_adds_template_answer_key_and_hint(tmp_path: Path) -> None:
    env = Templated.from_file(str(write_jsonl(tmp_path / "s.jsonl", ROWS)), prompt="question", feedback="hint")
    env.reset(seed=0)
    assert env.task.prompt.endswith("End with 'Answer: <number>'.")
    assert env.step("Answer: 1")[0] == "Incorrect. Hint: think in tens"
    row = next(r for r in ROWS if env.task.prompt.startswith(r["question"]))
    assert env.task.answer == str(row["answer"] * 10)


def test_tasks_scheme_resolves_relative_to_the_working_directory(tmp_path: Path, monkeypatch) -> None:
    write_jsonl(tmp_path / "q.jsonl", [{"prompt": r["question"], "answer": r["answer"]} for r in ROWS])
    monkeypatch.chdir(tmp_path)
    ref = resolve("tasks:q.jsonl")
    assert ref.name == "tasks:q.jsonl" and issubclass(ref.cls, TaskSetEnv)
    env = ref.cls()
    env.reset(seed=0)
    assert env.task.env_id == "q"


def test_spec_to_cli_to_store_resume_and_eval(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "qs.jsonl", ROWS)
    store = tmp_path / "s.duckdb"
    kwargs = "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in MAPPING.items()) + " }"
    spec = write_spec(tmp_path / "spec.toml", f"""
        name = "ts"
        model = "sim"
        samples = 2
        store = "{store}"
        [[envs]]
        id = "tasks:{data.name}"
        tasks = 20
        feedback = ["binary", "reference"]
        kwargs = {kwargs}
    """)
    first = cli("run", str(spec), "-q", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = cli("run", str(spec), "-q", cwd=tmp_path)  # resume: everything is stored already
    assert again.returncode == 0 and "(0 run now, 80 already stored)" in again.stdout, again.stdout + again.stderr
    assert q(store, "SELECT count(*), count(DISTINCT env_id) FROM episodes")[0] == (80, 1)
    assert q(store, "SELECT DISTINCT env_id FROM episodes")[0][0] == "tasks:qs.jsonl"
    train_ids = {r[0] for r in q(store, "SELECT DISTINCT task_id FROM episodes")}
    too_many = cli("eval", "--model", "sim", "--spec", str(spec), "--store", str(store), "--tasks", "60", "-q", cwd=tmp_path)
    assert too_many.returncode == 2 and "held-out part, which holds" in too_many.stderr
    held = TaskSetEnv.from_file(str(data), **MAPPING).table.size("held_out")
    ev = cli("eval", "--model", "sim", "--spec", str(spec), "--store", str(store), "--tasks", str(held), "-q", cwd=tmp_path)
    assert ev.returncode == 0, ev.stderr
    assert q(store, "SELECT n FROM evaluations")[0][0] == held  # every held-out task scored, none excluded
    assert ev.stdout.split("\n")[3].rstrip().rstrip("│").split("│")[-1].strip() == "0"  # the excluded column
    eval_ids = {r[0] for r in q(store, "SELECT DISTINCT e.task_id FROM episodes e JOIN runs r USING (run_id) "
                                       "WHERE r.kind = 'eval'")}
    assert len(eval_ids) == held and not eval_ids & train_ids
    listed = cli("envs", "--spec", str(spec), "--format", "json", cwd=tmp_path)
    assert json.loads(listed.stdout)[0]["tasks"]["rows"] == 60
    bad = write_spec(tmp_path / "bad.toml", spec.read_text().replace('prompt = "question"', 'prompt = "text"'))
    refused = cli("run", str(bad), "-q", cwd=tmp_path)
    assert refused.returncode == 2 and "column 'text' (prompt) is not in the file" in refused.stderr
    assert q(store, "SELECT count(*) FROM runs WHERE name = 'ts'")[0][0] == 1
