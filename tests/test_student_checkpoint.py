"""Student checkpoints: what a manifest records, and a missing or corrupt checkpoint as one clear
line (StudentError in Python, exit 2 from every command that loads one)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import agentsynth.student  # noqa: F401 - first, so its OpenMP setting precedes torch's load
import pytest

pytest.importorskip("torch")

from agentsynth.student import Student, StudentError, TrainConfig, reference_examples  # noqa: E402
from agentsynth.student.build import build_tokenizer, new_student  # noqa: E402
from agentsynth.student.training import train  # noqa: E402

from conftest import cli, write_spec  # noqa: E402


def tiny_student(out: Path, seed: int = 0, steps: int = 3) -> Student:
    examples = reference_examples(["arithmetic"], difficulty=1, tasks=64)
    s = new_student(build_tokenizer(examples), seed=seed, width=32, layers=1, heads=2, context=96)
    report = train(s.model, s.tokenizer, examples, TrainConfig(steps=steps, batch_size=16, seed=seed))
    s.save(out, {"parent": None, "data": {"source": "test"}, "training": report.to_dict()})
    return s


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ckpt") / "good"
    tiny_student(out)
    return out


def broken(good: Path, tmp_path: Path) -> Path:
    p = tmp_path / "ckpt"
    shutil.copytree(good, p)
    return p


def test_manifest_records_the_checkpoint(good: Path) -> None:
    m = json.loads((good / "manifest.json").read_text())
    assert m["format"] == "agentsynth-student" and m["format_version"] == 1
    assert m["id"] == "s-" + m["weights"]["sha256"][:12] and m["weights"]["bytes"] == (good / "weights.pt").stat().st_size
    assert m["model"] == {"vocab_size": 1024, "context": 96, "width": 32, "layers": 1, "heads": 2, "mlp_ratio": 4}
    assert m["training"]["steps"] == 3 and m["training"]["seed"] == 0 and m["agentsynth_version"]
    s = Student.load(good)
    assert s.id == m["id"] and s.model.n_params() == m["weights"]["params"]
    assert sorted(p.name for p in good.iterdir()) == ["manifest.json", "tokenizer.json", "weights.pt"]


def one_line_error(path: Path, match: str) -> None:
    with pytest.raises(StudentError, match=match) as e:
        Student.load(path)
    assert "\n" not in str(e.value)
    r = cli("student", "info", str(path))
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().count("\n") == 0 and r.stderr.startswith("error: ") and re.search(match, r.stderr)


def test_missing_checkpoint(tmp_path: Path) -> None:
    one_line_error(tmp_path / "nowhere", "no student checkpoint at")


def test_directory_without_manifest(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    one_line_error(tmp_path / "empty", "is not a student checkpoint")


def test_corrupt_manifest(good: Path, tmp_path: Path) -> None:
    p = broken(good, tmp_path)
    (p / "manifest.json").write_text('{"format": "agentsynth-student", "id": ')
    one_line_error(p, "manifest.json is corrupt: not valid JSON")
    (p / "manifest.json").write_text('{"format": "something-else"}')
    one_line_error(p, "is not a student manifest")


def test_truncated_weights(good: Path, tmp_path: Path) -> None:
    p = broken(good, tmp_path)
    data = (p / "weights.pt").read_bytes()
    (p / "weights.pt").write_bytes(data[: len(data) // 2])
    one_line_error(p, "weights.pt is [0-9,]+ bytes, its manifest says [0-9,]+: truncated or replaced")


def test_missing_and_replaced_weights(good: Path, tmp_path: Path) -> None:
    p = broken(good, tmp_path)
    data = bytearray((p / "weights.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (p / "weights.pt").write_bytes(bytes(data))
    one_line_error(p, "does not match the sha256 in its manifest")
    (p / "weights.pt").unlink()
    one_line_error(p, "weights.pt is missing")


def test_weights_that_do_not_fit_the_config(good: Path, tmp_path: Path) -> None:
    p = broken(good, tmp_path)
    m = json.loads((p / "manifest.json").read_text())
    m["model"]["width"] = 64
    (p / "manifest.json").write_text(json.dumps(m))
    one_line_error(p, "does not fit the model in manifest.json: size mismatch")
    m["model"] = {**m["model"], "width": 32, "layers": 2}
    (p / "manifest.json").write_text(json.dumps(m))
    one_line_error(p, "does not fit the model in manifest.json: Missing key")
    m["model"] = {**m["model"], "layers": 1, "depth": 3}
    (p / "manifest.json").write_text(json.dumps(m))
    one_line_error(p, "unknown field")


def test_corrupt_tokenizer(good: Path, tmp_path: Path) -> None:
    p = broken(good, tmp_path)
    (p / "tokenizer.json").write_text("{}")
    one_line_error(p, "tokenizer.json is not a valid tokenizer")


def test_commands_that_load_a_bad_checkpoint_exit_with_one_line(good: Path, tmp_path: Path) -> None:
    p = broken(good, tmp_path)
    data = (p / "weights.pt").read_bytes()
    (p / "weights.pt").write_bytes(data[:100])
    store = tmp_path / "s.duckdb"
    spec = write_spec(tmp_path / "spec.toml", f"""
        name = "bad-student"
        model = "student:{p}"
        store = "{store}"
        [[envs]]
        id = "arithmetic"
        tasks = 2
        """)
    sft = tmp_path / "x.jsonl"
    sft.write_text(json.dumps({"messages": [{"role": "user", "content": "1 + 1?"}, {"role": "assistant", "content": "Answer: 2"}]}) + "\n")
    for args in (["run", str(spec), "-q"],
                 ["eval", "--model", f"student:{p}", "--envs", "arithmetic", "--tasks", "2", "--store", str(store), "-q"],
                 ["train", "--export", str(sft), "--base", str(p), "--out", str(tmp_path / "child"), "-q"],
                 ["serve", "--student", str(p), "--port", "0"]):
        r = cli(*args, timeout=60)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert r.stderr.strip().count("\n") == 0 and "truncated or replaced" in r.stderr, (args, r.stderr)
    assert not (tmp_path / "child").exists()


def test_existing_out_is_refused_before_training(good: Path, tmp_path: Path) -> None:
    r = cli("student", "init", "--envs", "arithmetic", "--out", str(good), "--steps", "100000", "-q")
    assert r.returncode == 2 and "already exists and is not empty" in r.stderr
    r = cli("student", "init", "--envs", "arithmetic", "--out", str(tmp_path / "no" / "such" / "dir"), "--steps", "1", "-q")
    assert r.returncode == 2 and "does not exist" in r.stderr
