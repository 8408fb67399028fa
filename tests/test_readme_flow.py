"""The README's offline flow runs as written, in a fresh folder, and prints the figures the README
shows: the quickstart, the sweep and its audit, regrading, From Python, exports, held-out
evaluation, the offline generalization loop, and the run-spec example (over two servers and in
process). Commands and code are read out of the README, not copied here."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from conftest import ROOT, agentsynth_serve, cli, free_port

README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    """The README's text from the heading ``title`` to the next heading of level 2."""
    start = README.index(f"\n## {title}")
    end = README.find("\n## ", start + 1)
    return README[start:end if end > 0 else None]


def blocks(text: str, lang: str) -> list[str]:
    """The fenced blocks of ``text`` in language ``lang`` ("" for output shown without one)."""
    return [body for fence, body in re.findall(r"^ *```(\w*)\n(.*?)^ *```$", text, re.M | re.S) if fence == lang]


def commands(block: str) -> list[list[str]]:
    """The shell commands of a bash block, as argument lists: comments dropped, continuation lines
    and quoted strings over several lines joined, a trailing ``&`` dropped."""
    out, acc = [], ""
    for line in block.splitlines():
        acc += line + "\n"
        if line.rstrip().endswith("\\"):
            continue
        try:
            args = shlex.split(acc.replace("\\\n", " "), comments=True)
        except ValueError:  # a quoted string goes on
            continue
        acc = ""
        if args:
            out.append(args[:-1] if args[-1] == "&" else args)
    return out


def agentsynth(project: Path, args: list[str], **kw) -> subprocess.CompletedProcess[str]:
    assert args[0] == "agentsynth", args
    r = cli(*args[1:], cwd=project, **kw)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r


def table_rows(text: str) -> list[list[str]]:
    """The body rows of a rich table (``│ a │ b │``), as stripped cells."""
    return [[c.strip() for c in line.strip().strip("│").split("│")] for line in text.splitlines()
            if line.startswith("│")]


def fresh_project(root: Path) -> Path:
    """``root`` with the shipped specs in ``runs/``, as a clone has them."""
    (root / "runs").mkdir()
    for spec in (ROOT / "runs").glob("*.toml"):
        shutil.copy(spec, root / "runs" / spec.name)
    return root


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh folder with the shipped specs; the quickstart and the sweep run in it, as the
    README's commands run them."""
    return fresh_project(tmp_path_factory.mktemp("readme"))


@pytest.fixture(scope="module")
def quickstart(project: Path) -> subprocess.CompletedProcess[str]:
    install = commands(blocks(section("Set up (two commands)"), "bash")[0])
    assert install[0][-3:] == ["agentsynth", "run", "runs/quickstart.toml"]  # the install command's job
    return agentsynth(project, install[0][-3:])


@pytest.fixture(scope="module")
def sweep(project: Path) -> Path:
    for args in commands(blocks(section("The information audit"), "bash")[0]):
        if "--format" in args:
            args = args[:args.index("--format")] + ["--format", "json", "--out", "audit.json"]
        agentsynth(project, args)
    return project / "audit.json"


def test_quickstart_prints_what_the_readme_shows(project: Path, quickstart: subprocess.CompletedProcess[str]) -> None:
    text = section("Quickstart")
    shown = re.sub(r"in [\d.]+s$", "", re.sub(r"\(r-[0-9a-f]+\)", "(r-…)", "\n".join(quickstart.stdout.splitlines()[:5])), flags=re.M)
    assert shown == re.sub(r"in [\d.]+s$", "", blocks(text, "")[0].strip(), flags=re.M)
    sql, *rest = commands(blocks(text, "bash")[0])
    r = agentsynth(project, [*sql, "--format", "json"])
    got = {row["feedback"]: (row["first"], row["last"]) for row in json.loads(r.stdout)}
    said = {f.removesuffix("-review"): (float(a), float(b))
            for f, a, b in re.findall(r"([\w-]+) (\d\.\d\d) →\s+(\d\.\d\d)", text)}
    assert said.keys() == got.keys()
    for f, rates in got.items():  # two decimals, rounded half up
        assert all(abs(x - y) <= 0.005 + 1e-9 for x, y in zip(rates, said[f])), (f, rates, said[f])
    spec = (project / "runs" / "quickstart.toml").read_text()
    channels = json.loads(re.search(r"^feedback = (\[.*\])", spec, re.M)[1])
    words = {"three": 3, "four": 4, "five": 5, "six": 6}
    assert words[re.search(r"(\w+) feedback channels", spec)[1]] == len(channels)
    assert words[re.search(r"under (\w+) feedback channels", text)[1]] == len(channels)
    for args in rest:
        agentsynth(project, args)


def test_the_sweep_and_its_audit_as_the_readme_shows(project: Path, sweep: Path) -> None:
    text = section("The information audit")
    episodes, tasks = re.search(r"([\d,]+) episodes over\s+([\d,]+) tasks", text).groups()
    r = agentsynth(project, ["agentsynth", "sql", "SELECT count(*), count(DISTINCT task_id), count(DISTINCT domain), "
                             "count(DISTINCT feedback) FROM episodes JOIN runs USING (run_id) "
                             "WHERE runs.name = 'feedback-sweep'", "--format", "json"])
    n, t, domains, channels = json.loads(r.stdout)[0].values()
    assert (n, t) == (int(episodes.replace(",", "")), int(tasks.replace(",", "")))
    assert f"# {domains} domains × none/binary/reference/hint/judge/self" in text and channels == 6
    assert f"({n:,} episodes" in section("Domains")
    rows = {(x["name"], x["metric"]): x for x in json.loads(sweep.read_text())["rows"]
            if x["scope"] == "signal" and x["domain"] is None}
    shown = re.findall(r"^\| `(\w+)` \([^)]*\) \| (.*) \|$", text, re.M)
    assert len(shown) == 7
    for name, cells in shown:
        for metric, cell in zip(["mi", "openness", "spurious", "acceptance_entropy"], cells.split(" | "), strict=True):
            x = rows[(name, metric)]
            got = f"{x['estimate']:.3f} [{x['ci_low']:.3f}, {x['ci_high']:.3f}]".replace("-0.000", "0.000")
            assert got.replace("-", "−") == cell, (name, metric)


def test_audit_no_save_offers_no_query_for_an_audit_it_did_not_store(project: Path, sweep: Path) -> None:
    r = agentsynth(project, ["agentsynth", "audit", "--run", "feedback-sweep", "--no-save", "--bootstrap", "50"])
    audit_id = re.search(r"^audit (a-[0-9a-f]+) .*\(not saved\)", r.stdout, re.M)[1]
    assert audit_id not in r.stdout.split("(not saved)", 1)[1] and "--no-save" in r.stdout
    stored = agentsynth(project, ["agentsynth", "sql", f"SELECT count(*) AS n FROM audits WHERE audit_id = '{audit_id}'",
                                  "--format", "json"])
    assert json.loads(stored.stdout) == [{"n": 0}]


def test_regrade_example_names_what_it_stores(project: Path, quickstart: subprocess.CompletedProcess[str]) -> None:
    text = section("Regrading stored runs")
    regrade, sql = commands(blocks(text, "bash")[0])
    r = agentsynth(project, regrade)
    assert "rubrics:exact_match: " in r.stdout and "as 'exact'" in r.stdout
    assert "`exact` for\n`rubrics:exact_match`" in text
    names = {row["name"] for row in json.loads(agentsynth(project, [*sql, "--format", "json"]).stdout)}
    assert {"exact", "self_consistency"} <= names


def test_from_python_blocks_run(project: Path, quickstart: subprocess.CompletedProcess[str], sweep: Path) -> None:
    code = "\n".join(blocks(section("From Python"), "python"))  # the second block goes on from the first
    r = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr


def test_exports_and_loading_them_with_datasets(project: Path, quickstart: subprocess.CompletedProcess[str]) -> None:
    text = section("Exporting training data")
    export_block, lineage_block = blocks(text, "bash")
    said = re.search(r"# exported (\d+) sft rows \((\d+) duplicates dropped", export_block)
    for args in commands(export_block):
        r = agentsynth(project, args)
        if "sft" in args:
            assert re.search(rf"exported {said[1]} sft rows \({said[2]} duplicates dropped", r.stdout + r.stderr)
    (lineage,) = commands(lineage_block)
    assert len(json.loads(agentsynth(project, [*lineage, "--format", "json"]).stdout)) >= 3
    code = blocks(text, "python")[0]
    code = code[:code.index("from trl import")]  # TRL is the user's trainer, not a dependency
    r = subprocess.run([sys.executable, "-c", code + "print(len(sft), len(pref), len(table))"], cwd=project,
                       capture_output=True, text=True, timeout=300, env={"HF_DATASETS_OFFLINE": "1", "PATH": ""})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] == said[1]


def test_eval_prints_the_readme_table(project: Path) -> None:
    text = section("Held-out evaluation")
    first = commands(blocks(text, "bash")[0])[0]
    r = agentsynth(project, [*first, "--store", "eval.duckdb"])
    assert table_rows(r.stdout) == table_rows(blocks(text, "")[0])


def test_generalization_offline_prints_the_readme_table(tmp_path: Path) -> None:
    text = section("Which feedback generalizes? (the generalization view)")
    project = fresh_project(tmp_path)  # only what this section runs is in the store
    synthesize, export_step = commands(blocks(text, "bash")[0])
    agentsynth(project, synthesize)
    export = agentsynth(project, export_step)
    export_id = re.search(r"as export (x-[0-9a-f]+)", export.stdout + export.stderr)[1]
    serve, base, trained, sql = commands(blocks(text, "bash")[2])
    assert serve[:4] == ["agentsynth", "serve", "--port", "8001"]
    with agentsynth_serve(*serve[4:], port=free_port()) as server:
        agentsynth(project, base)  # the store the export is in: the view joins the two
        trained = [a.replace("http://127.0.0.1:8001/v1", server.url).replace("x-4781c0bc8a36", export_id)
                   for a in trained]
        agentsynth(project, trained)
    out = agentsynth(project, sql)
    assert table_rows(out.stdout) == table_rows(blocks(text, "")[0])


def test_the_run_spec_example_runs_over_two_servers_and_in_process(tmp_path: Path) -> None:
    text = section("Run specs")
    spec = next(b for b in blocks(text, "toml") if b.startswith('name = "my-run"'))
    assert "agentsynth serve --port 8000" in text and "agentsynth serve --port 8001" in text
    keys = {"OPENAI_API_KEY": "any", "JUDGE_API_KEY": "any"}
    with agentsynth_serve() as policy, agentsynth_serve() as judge:
        served = spec.replace("http://127.0.0.1:8000/v1", policy.url).replace("http://127.0.0.1:8001/v1", judge.url)
        (tmp_path / "served.toml").write_text(served)
        r = cli("run", "served.toml", "-q", cwd=tmp_path, env=keys)
        assert r.returncode == 0, r.stderr
        assert "1200 ok, 0 failed of 1200 planned" in r.stdout
        missing = cli("run", "served.toml", "-q", "--name", "no-key", cwd=tmp_path)
        assert missing.returncode == 2 and "OPENAI_API_KEY" in missing.stderr
    local = "\n".join(line for line in spec.splitlines() if not line.startswith(("base_url", "api_key_env")))
    (tmp_path / "local.toml").write_text(local)
    r = cli("run", "local.toml", "-q", "--store", "local.duckdb", cwd=tmp_path)
    assert r.returncode == 0 and "1200 ok, 0 failed" in r.stdout and not r.stderr, r.stderr


def test_gymnasium_make_finds_agentsynth_environments_as_the_readme_says(tmp_path: Path) -> None:
    said = re.search(r'`gymnasium.make\("(agentsynth:agentsynth/arithmetic-v0)"\)` works as is', README)[1]
    code = f"import gymnasium\nenv = gymnasium.make({said!r})\nprint(env.reset(seed=0)[0].splitlines()[0])"
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("Compute the value of"), r.stderr
    bare = subprocess.run([sys.executable, "-c", code.replace(said, "agentsynth/arithmetic-v0")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert bare.returncode != 0 and "after `import agentsynth`" in README  # the README says why


def test_a_relative_environment_path_is_read_from_the_working_directory(tmp_path: Path) -> None:
    assert "is read from the working directory (not from the spec's folder)" in README
    (tmp_path / "specs").mkdir()
    (tmp_path / "envs_here").mkdir()
    env_code = next(b for b in blocks(README, "python") if b.startswith("# my_envs.py"))
    (tmp_path / "envs_here" / "my_envs.py").write_text(env_code)
    spec = tmp_path / "specs" / "rev.toml"
    spec.write_text('name = "rev"\nmodel = "sim"\nstore = "s.duckdb"\n[[envs]]\n'
                    'id = "envs_here/my_envs.py:ReverseWord"\ntasks = 3\n')
    r = cli("run", "specs/rev.toml", "-q", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    elsewhere = cli("run", "rev.toml", "-q", cwd=tmp_path / "specs")
    assert elsewhere.returncode == 2 and len(elsewhere.stderr.strip().splitlines()) == 1
    assert f"no such file envs_here/my_envs.py (a relative path is read from the working directory, {tmp_path / 'specs'})" \
        in elsewhere.stderr


def test_your_own_questions_flow_runs_as_the_readme_shows(tmp_path: Path) -> None:
    text = section("Your own questions")
    shown = tomllib.loads(next(b for b in blocks(text, "toml") if 'id = "tasks:' in b))
    assert shown["envs"] == tomllib.loads((ROOT / "runs" / "tasks-example.toml").read_text())["envs"]
    project = fresh_project(tmp_path)
    shutil.copytree(ROOT / "examples", project / "examples")
    out = {}
    for args in commands(blocks(text, "bash")[0]):
        r = agentsynth(project, args)
        out[args[1]] = r.stdout + r.stderr
    first, last = re.search(r"first turn ([\d.]+%), last turn ([\d.]+%)", blocks(text, "bash")[0]).groups()
    assert f"pass rate (truth): first turn {first}, last turn {last}" in out["run"]
    rows, train, held_out = map(int, re.search(r"# (\d+) rows \(jsonl\): (\d+) train, (\d+) held out", text).groups())
    listed = json.loads(agentsynth(project, ["agentsynth", "envs", "--spec", "runs/tasks-example.toml", "--format", "json"]).stdout)
    assert (listed[0]["tasks"]["rows"], listed[0]["tasks"]["train"], listed[0]["tasks"]["held_out"]) == (rows, train, held_out)
    assert f"which holds {train} of 300 rows (held_out = 0.2); ask for at most {train} tasks" in text
    distinct, seeds, repeats = re.search(r"scores (\d+) distinct held-out questions \((\d+) seeds; (\d+) repeat", text).groups()
    assert f"{repeats} episode(s) drew a task an earlier seed drew" in out["eval"] and f"--tasks {seeds}" in text
    assert re.search(rf"│ word_problems │ {distinct} +│ [\d.]+% \[[\d.]+%, [\d.]+%\] │ 0 ", out["eval"]), out["eval"]
