"""In-process model schemes: `sim` and `student:PATH` are built in this process, anything else (or
anything with a base_url) is an OpenAI-compatible endpoint; bad scheme arguments are spec errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentsynth.models import schemes
from agentsynth.runner import build_model
from agentsynth.sim import SimModel
from agentsynth.spec import SpecError, parse_spec

from conftest import cli, write_spec


def spec(model: str, base_url: str | None = None, **extra: object):  # noqa: ANN201
    return parse_spec({"name": "s", "model": model, "base_url": base_url, "envs": [{"id": "arithmetic"}], **extra})


def test_which_models_are_in_process() -> None:
    assert schemes.in_process("sim", None) and schemes.in_process("student:ckpt/", None)
    assert not schemes.in_process("sim", "http://127.0.0.1:8000/v1")  # the sim served over HTTP
    assert not schemes.in_process("student:ckpt/", "http://127.0.0.1:8000/v1")
    for endpoint_model in ("gpt-4o-mini", "ft:gpt-4o-mini:org::abc", "llama3:8b", "Qwen/Qwen2.5-7B-Instruct"):
        assert not schemes.in_process(endpoint_model, None)
    assert schemes.split("student:a:b") == ("student", "a:b") and schemes.split("sim") == ("sim", None)


def test_sim_is_a_scheme() -> None:
    m = build_model(spec("sim", sim={"default_skill": 0.5}))
    assert isinstance(m, SimModel) and m.name == "sim" and m.params.default_skill == 0.5
    with pytest.raises(SpecError, match=r"^\[sim\]: "):
        build_model(spec("sim", sim={"no_such_param": 1}))
    with pytest.raises(SpecError, match="the sim takes no argument"):
        build_model(spec("sim:fast"))
    assert schemes.identity("sim") is None


def test_student_scheme_errors_are_spec_errors(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="needs a checkpoint"):
        build_model(spec("student"))
    with pytest.raises(SpecError, match=f"model 'student:{tmp_path / 'none'}': no student checkpoint at"):
        build_model(spec(f"student:{tmp_path / 'none'}"))
    store = tmp_path / "s.duckdb"
    r = cli("run", str(write_spec(tmp_path / "x.toml", f"""
        name = "x"
        model = "student:{tmp_path / 'none'}"
        store = "{store}"
        [[envs]]
        id = "arithmetic"
        tasks = 2
        """)), "-q")
    assert r.returncode == 2 and "no student checkpoint at" in r.stderr and r.stderr.count("\n") == 1
    assert not store.exists()  # refused before anything was stored


def test_core_imports_without_torch_and_says_how_to_get_it(tmp_path: Path) -> None:
    import subprocess
    import sys

    from conftest import ROOT

    probe = ("import sys, agentsynth, agentsynth.cli, agentsynth.runner, agentsynth.student, agentsynth.cli.student;"
             "print('torch' in sys.modules, 'tokenizers' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.split() == ["False", "False"], r.stderr
    # without the learn extra (torch unimportable), the student's commands say what to install
    no_torch = ("import sys; sys.modules['torch'] = None; sys.argv = ['agentsynth'] + sys.argv[1:];"
                "from agentsynth.cli import main; main()")
    for args in (["student", "init", "--envs", "arithmetic", "--out", str(tmp_path / "c"), "--steps", "1"],
                 ["serve", "--student", str(tmp_path / "c")]):
        r = subprocess.run([sys.executable, "-c", no_torch, *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and "pip install 'agentsynth[learn]'" in r.stderr and r.stderr.count("\n") == 1, r.stderr
