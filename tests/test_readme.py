"""The README's examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from conftest import ROOT, cli, write_spec


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def test_new_environment_and_grader_examples_run(tmp_path: Path) -> None:
    env_code = next(b for b in blocks("python") if b.startswith("# my_envs.py"))
    grader_code = next(b for b in blocks("python") if "@grader(" in b)
    (tmp_path / "my_envs.py").write_text(env_code + "\n\n" + grader_code)
    store = tmp_path / "s.duckdb"
    spec = write_spec(tmp_path / "rev.toml", f"""
        name = "rev"
        store = "{store}"
        samples = 2
        [[envs]]
        id = "my_envs:ReverseWordScored"
        tasks = 10
        feedback = ["binary", "hint", "reference"]
        """)
    r = cli("run", str(spec), "-q", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    con = duckdb.connect(str(store), read_only=True)
    assert con.execute("SELECT count(*), count(DISTINCT domain) FROM episodes").fetchone() == (60, 1)
    assert con.execute("SELECT count(*) > 0 FROM signals WHERE name = 'short' AND role = 'score'").fetchone() == (True,)
    hints = con.execute("SELECT DISTINCT feedback FROM signals WHERE name = 'hint' AND NOT passed").fetchall()
    con.close()
    assert all(h.startswith("Incorrect. Hint: the first") for (h,) in hints)


def test_sql_examples_run(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    spec = write_spec(tmp_path / "q.toml", f"""
        name = "q"
        store = "{store}"
        [[envs]]
        id = "arithmetic"
        tasks = 10
        feedback = ["binary", "hint"]
        """)
    assert cli("run", str(spec), "-q").returncode == 0
    for query in blocks("sql")[0].split(";"):
        query = "\n".join(line for line in query.splitlines() if not line.strip().startswith("--"))
        if query.strip():
            r = cli("sql", query, "--store", str(store))
            assert r.returncode == 0, (query, r.stderr)
