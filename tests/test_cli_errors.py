"""Bad input and a busy machine give one ``error:`` line and a non-zero exit, never a traceback or
a wrong explanation (real CLI subprocesses, real files, sockets and DuckDB locks)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import cli, q, write_spec


def one_line_error(r: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """The single ``error: ...`` line of a failed command (asserting there is exactly one)."""
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    return write_spec(tmp_path / "s.toml", f"""
        name = "s"
        store = "{tmp_path / 's.duckdb'}"
        [[envs]]
        id = "arithmetic"
        tasks = 3
        """)


def test_a_spec_that_is_not_utf8(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.toml"
    bad.write_bytes('name = "café"\n'.encode("latin-1"))
    line = one_line_error(cli("run", str(bad)))
    assert "not UTF-8" in line and "line 1" in line and str(bad) in line
    from agentsynth.loop import LoopSpecError, load_loop_spec

    with pytest.raises(LoopSpecError, match="not UTF-8"):  # loop specs share the one TOML reader
        load_loop_spec(bad)


def test_sql_out_into_a_missing_directory(spec: Path, tmp_path: Path) -> None:
    assert cli("run", str(spec), "-q").returncode == 0
    store = str(tmp_path / "s.duckdb")
    for fmt in ("csv", "parquet", "json"):
        out = tmp_path / "nope" / f"x.{fmt}"
        line = one_line_error(cli("sql", "SELECT 1", "--store", store, "--format", fmt, "--out", str(out)))
        assert "no such directory" in line and str(out.parent) in line
    assert not (tmp_path / "nope").exists()
    for option in ("--out", "--plot"):  # audit writes files too, and checks before it stores anything
        line = one_line_error(cli("audit", "--store", store, option, str(tmp_path / "nope" / "a.png")))
        assert f"{option} " in line and "no such directory" in line
    assert q(Path(store), "SELECT count(*) FROM audits") == [(0,)]


def test_sql_max_rows_must_not_be_negative(spec: Path, tmp_path: Path) -> None:
    assert cli("run", str(spec), "-q").returncode == 0
    store = str(tmp_path / "s.duckdb")
    assert "--max-rows" in one_line_error(cli("sql", "SELECT 1", "--store", store, "--max-rows", "-1"))
    ok = cli("sql", "SELECT * FROM range(3)", "--store", store, "--max-rows", "0")
    assert ok.returncode == 0 and "3 rows (showing 0" in ok.stdout


def test_serve_on_a_port_in_use() -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        r = cli("serve", "--port", str(port), timeout=60)
    line = one_line_error(r)
    assert f"127.0.0.1:{port}" in line and "in use" in line and "--port" in line
    assert r.stdout == ""  # no "server on ..." line for a server that never started


def test_an_environment_file_imports_its_sibling_module(tmp_path: Path) -> None:
    """``dir/my_envs.py:Env`` finds ``dir/helpers.py`` as ``python dir/my_envs.py`` would, from any
    working directory; a file that fails to import is one line naming the error."""
    pkg = tmp_path / "lib"
    pkg.mkdir()
    (pkg / "wordlist_helpers.py").write_text('WORD = "silver"\n')
    (pkg / "my_envs.py").write_text(
        "from agentsynth import TextEnv, final_answer\n"
        "from wordlist_helpers import WORD\n\n\n"
        "class Echo(TextEnv):\n"
        "    name = 'echo_sibling'\n\n"
        "    def generate(self, rng):\n"
        "        return self.make_task(f\"Repeat '{WORD}'. End with 'Answer: <word>'.\", WORD)\n\n"
        "    def verify(self, task, answer):\n"
        "        return final_answer(answer) == task.answer\n")
    (pkg / "broken.py").write_text("import no_such_module_anywhere\n")
    elsewhere = tmp_path / "work"
    elsewhere.mkdir()
    spec = write_spec(elsewhere / "e.toml", f"""
        name = "e"
        store = "{tmp_path / 'e.duckdb'}"
        [[envs]]
        id = "{pkg / 'my_envs.py'}:Echo"
        tasks = 2
        feedback = "reference"
        """)
    r = cli("run", str(spec), "-q", cwd=elsewhere)
    assert r.returncode == 0, r.stderr
    broken = write_spec(elsewhere / "b.toml", f"""
        name = "b"
        store = "{tmp_path / 'b.duckdb'}"
        [[envs]]
        id = "{pkg / 'broken.py'}:Env"
        """)
    line = one_line_error(cli("run", str(broken), "-q", cwd=elsewhere))
    assert "ModuleNotFoundError" in line and "no_such_module_anywhere" in line


def test_a_store_held_open_read_only_by_another_process_is_named(spec: Path, tmp_path: Path) -> None:
    """A notebook's read-only connection blocks a run: the error names that process (its PID) and
    says to close the connection, not that another `agentsynth run` is running."""
    store = tmp_path / "s.duckdb"
    assert cli("run", str(spec), "-q").returncode == 0
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, sys; c = duckdb.connect({str(store)!r}, read_only=True); "
                               "print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        line = one_line_error(cli("run", str(spec), "-q", "--name", "s2"))
    finally:
        holder.stdin.close()
        holder.wait()
    assert f"another process (PID {holder.pid}" in line and "read-only" in line and "close that connection" in line
    assert "agentsynth run" not in line
    assert cli("run", str(spec), "-q", "--name", "s2").returncode == 0


def test_api_key_env_naming_an_unset_variable(spec: Path, tmp_path: Path) -> None:
    """As the README's "Run specs" says: an endpoint refuses to start; the in-process sim, which
    uses no key, runs and warns in one line."""
    env = {"AGENTSYNTH_TEST_UNSET_KEY": ""}
    r = cli("run", str(spec), "-q", "--api-key-env", "AGENTSYNTH_TEST_UNSET_KEY", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == ("warning: api_key_env names AGENTSYNTH_TEST_UNSET_KEY, which is not set; ignored: "
                                "model 'sim' runs in this process and uses no key")
    ok = cli("run", str(spec), "-q", "--name", "s-set", "--api-key-env", "AGENTSYNTH_TEST_SET_KEY",
             env={"AGENTSYNTH_TEST_SET_KEY": "x"})
    assert ok.returncode == 0 and ok.stderr == ""
    line = one_line_error(cli("run", str(spec), "-q", "--name", "s-url", "--base-url", "http://127.0.0.1:9/v1",
                              "--api-key-env", "AGENTSYNTH_TEST_UNSET_KEY", env=env))
    assert "AGENTSYNTH_TEST_UNSET_KEY" in line and "not set" in line
