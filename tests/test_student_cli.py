"""The student through the CLI, as a user drives it: `student init`, `model = "student:PATH"` in a
spec into a real store, `serve --student` answered by the real openai client and evaluated by
`agentsynth eval`, and `train --export` from a real export of a real run (lineage in the manifest).
Tiny models and few steps: these test the plumbing, test_student_learning.py the learning."""

from __future__ import annotations

import json
from pathlib import Path

import agentsynth.student  # noqa: F401 - first, so its OpenMP setting precedes torch's load
import pytest

pytest.importorskip("torch")

import openai  # noqa: E402

from agentsynth.student import Student  # noqa: E402

from conftest import agentsynth_serve, cli, q, write_spec  # noqa: E402

pytestmark = pytest.mark.timeout(300)
TINY = ["--width", "48", "--layers", "2", "--heads", "4", "--context", "192"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("student") / "ckpt0"
    r = cli("student", "init", "--envs", "arithmetic,strings", "--difficulty", "1", "--out", str(out), "--tasks", "300",
            "--steps", "30", "--seed", "3", *TINY)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("wrote student s-") and "30 steps" in r.stdout
    assert "student init" in r.stderr and "loss" in r.stderr and "tok/s" in r.stderr  # the progress bar
    return out


def test_init_writes_a_base_with_its_lineage(ckpt: Path) -> None:
    m = json.loads((ckpt / "manifest.json").read_text())
    assert m["parent"] is None
    assert m["data"] == {"source": "references", "envs": ["arithmetic", "strings"], "difficulty": 1, "tasks_per_env": 300,
                         "seed_start": 0, "examples": 600, "review": None}
    assert m["training"]["steps"] == 30 and m["training"]["seed"] == 3 and m["training"]["config"]["lr"] == 2e-3
    assert m["training"]["tokens_per_s"] > 0 and m["training"]["wall_s"] > 0 and m["training"]["final_loss"] > 0
    assert m["tokenizer"]["vocab_size"] == 1024 and "sql" in m["tokenizer"]["corpus_envs"]
    r = cli("student", "info", str(ckpt))
    assert r.returncode == 0 and m["id"] in r.stdout and "parent: none" in r.stdout


def test_student_in_a_spec_runs_into_a_real_store(ckpt: Path, tmp_path: Path, store: Path) -> None:
    spec = write_spec(tmp_path / "spec.toml", f"""
        name = "student-run"
        model = "student:{ckpt}"
        samples = 2
        temperature = 1.0
        concurrency = 32
        max_tokens = 24
        store = "{store}"

        [[envs]]
        id = "arithmetic"
        tasks = 20
        max_turns = 2
        feedback = ["binary", "hint"]

        [[envs]]
        id = "strings"
        tasks = 10
        max_turns = 1
        """)
    r = cli("run", str(spec), "-q")
    assert r.returncode == 0, r.stderr
    assert "100 ok, 0 failed of 100 planned" in r.stdout
    [(model, status)] = q(store, "SELECT model, status FROM runs")
    sid = json.loads((ckpt / "manifest.json").read_text())["id"]
    assert model == f"student:{ckpt}@{sid}" and status == "completed"
    assert q(store, "SELECT count(*) FROM messages WHERE role = 'assistant' AND content = ''") == [(0,)]
    [(pt, ct, turns)] = q(store, "SELECT sum(prompt_tokens), sum(completion_tokens), sum(turns) FROM episodes")
    assert pt > 100 * 30 and 0 < ct <= (24 + 1) * turns  # max_tokens, and <|end|> when it stops
    # a second turn after feedback reads the whole conversation, so its prompt is longer
    assert q(store, "SELECT count(*) FROM episodes WHERE turns = 2")[0][0] > 0
    again = cli("run", str(spec), "-q")
    assert again.returncode == 0 and "0 run now, 100 already stored" in again.stdout


def test_serve_student_to_the_openai_client_and_eval(ckpt: Path, tmp_path: Path, store: Path) -> None:
    tok = Student.load(ckpt).tokenizer
    messages = [{"role": "user", "content": "Compute the value of: 3 + 4 * 2\nShow your work if you like, then end "
                                            "with a line 'Answer: <integer>'."}]
    with agentsynth_serve("--student", str(ckpt)) as served:
        url = served.url
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
        assert [m.id for m in client.models.list().data] == ["student"]
        a = client.chat.completions.create(model="student", messages=messages, n=4, seed=7, temperature=1.0, max_tokens=12)
        b = client.chat.completions.create(model="student", messages=messages, n=4, seed=7, temperature=1.0, max_tokens=12)
        c = client.chat.completions.create(model="student", messages=messages, n=4, seed=8, temperature=1.0, max_tokens=12)
        g = client.chat.completions.create(model="student", messages=messages, n=3, seed=1, temperature=0.0, max_tokens=12)
        texts = lambda r: [ch.message.content for ch in r.choices]  # noqa: E731
        assert len(a.choices) == 4 and texts(a) == texts(b) != texts(c)
        assert len(set(texts(g))) == 1
        assert a.usage.prompt_tokens == len(tok.encode_prompt(messages))
        cut = sum(ch.finish_reason == "length" for ch in a.choices)  # those wrote exactly max_tokens tokens
        assert 12 * cut + (4 - cut) <= a.usage.completion_tokens <= 12 * cut + 13 * (4 - cut)
        assert all(ch.finish_reason in ("stop", "length") for ch in a.choices)
        assert a.usage.total_tokens == a.usage.prompt_tokens + a.usage.completion_tokens
        # the same API as the sim's: streaming, the Responses API (one code path), the model-name rule
        chunks = list(client.chat.completions.create(model="student", messages=messages, seed=1, temperature=0.0,
                                                     max_tokens=12, stream=True))
        assert "".join(ch.choices[0].delta.content or "" for ch in chunks) == texts(g)[0]
        assert chunks[-1].choices[0].finish_reason == g.choices[0].finish_reason
        parts = [{"role": "developer", "content": [{"type": "text", "text": "Be brief."}]}, *messages]
        chat = client.chat.completions.create(model="student", messages=parts, temperature=0.0, max_tokens=16)
        resp = client.responses.create(model="student", instructions="Be brief.", input=messages[0]["content"],
                                       temperature=0.0, max_output_tokens=16)
        assert resp.output_text == chat.choices[0].message.content
        with pytest.raises(openai.NotFoundError, match="'student'"):
            client.chat.completions.create(model="sim", messages=messages)
        r = cli("eval", "--model", "student", "--base-url", url, "--envs", "arithmetic", "--tasks", "20",
                "--store", str(store), "-q")
    assert r.returncode == 0, r.stderr
    assert q(store, "SELECT model, n FROM evaluations") == [("student", 20)]
    assert q(store, "SELECT count(*) FROM episodes") == [(20,)]


def test_train_on_a_real_export_records_its_lineage(ckpt: Path, tmp_path: Path, store: Path) -> None:
    spec = write_spec(tmp_path / "synth.toml", f"""
        name = "synth"
        model = "sim"
        samples = 2
        store = "{store}"
        [[envs]]
        id = "arithmetic"
        tasks = 40
        max_turns = 1
        """)
    assert cli("run", str(spec), "-q").returncode == 0
    out = tmp_path / "train.jsonl"
    r = cli("export", "--run", "synth", "--select", "correct", "--format", "sft", "--out", str(out), "--store", str(store))
    assert r.returncode == 0, r.stderr
    [(export_id, sha)] = q(store, "SELECT export_id, sha256 FROM exports")
    base = json.loads((ckpt / "manifest.json").read_text())

    child = tmp_path / "ckpt1"
    r = cli("train", "--export", export_id, "--base", str(ckpt), "--out", str(child), "--steps", "6", "--seed", "1",
            "--replay", "0.25", "--store", str(store))
    assert r.returncode == 0, r.stderr
    assert f"trained on export {export_id}" in r.stdout and "train" in r.stderr  # summary; progress bar
    m = json.loads((child / "manifest.json").read_text())
    assert m["parent"] == {"id": base["id"], "path": str(ckpt.resolve())}
    assert m["data"]["source"] == "export" and m["data"]["export_id"] == export_id and m["data"]["sha256"] == sha
    assert m["data"]["examples"] == q(store, "SELECT rows FROM exports")[0][0]
    assert m["data"]["replay"] == {"fraction": 0.25, "examples": 600, "of": base["id"]}
    assert m["training"]["steps"] == 6 and m["training"]["config"]["lr"] == 3e-4 and m["id"] != base["id"]
    assert m["model"] == base["model"] and (child / "tokenizer.json").read_text() == (ckpt / "tokenizer.json").read_text()

    by_path = tmp_path / "ckpt2"  # the JSONL path finds the same export id by its sha256
    r = cli("train", "--export", str(out), "--base", str(ckpt), "--out", str(by_path), "--steps", "2", "--store", str(store), "-q")
    assert r.returncode == 0, r.stderr
    assert json.loads((by_path / "manifest.json").read_text())["data"]["export_id"] == export_id

    # the child answers in process, as `student:PATH`, in a held-out evaluation
    r = cli("eval", "--model", f"student:{child}", "--envs", "arithmetic", "--tasks", "10", "--store", str(store),
            "--trained-on", export_id, "--base-model", f"student:{ckpt}", "-q")
    assert r.returncode == 0, r.stderr
    assert q(store, "SELECT model, trained_on, n FROM evaluations") == [(f"student:{child}", export_id, 10)]


def test_train_refuses_bad_exports(ckpt: Path, tmp_path: Path, store: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')
    for args, msg in [(["--export", "x-000000000000"], "no such file, and no store at"),
                      (["--export", str(bad)], "bad.jsonl:1: expected"),
                      (["--export", str(bad), "--replay", "0.5"], "--replay needs --base")]:
        r = cli("train", *args, "--out", str(tmp_path / "never"), "--store", str(store), "-q")
        assert r.returncode == 2 and msg in r.stderr and r.stderr.count("\n") == 1, (args, r.stderr)
    assert not (tmp_path / "never").exists() and not store.exists()
