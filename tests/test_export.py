"""Exporting training data: sft / dpo / parquet files that load as TRL expects, hold only what the
selection signal accepted, carry no duplicates, and whose lineage in the store matches the file."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import datasets
import duckdb
import pyarrow.parquet as pq
import pytest
from conftest import cli, export_source_store, q, table_digest

from agentsynth.exports import ExportError, NothingToExport, canonical_json, export

SYSTEM = "You are a careful assistant."
ROLES = {"system", "user", "assistant", "tool"}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run "src" (system prompt; arithmetic x binary/reference/rubric, units x none, tools x binary,
    3 samples) and "plain" (no system prompt) on the sim."""
    return export_source_store(tmp_path_factory.mktemp("export") / "s.duckdb", SYSTEM)


def _export(store: Path, out: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], str]:
    r = cli("export", "--store", str(store), "--out", str(out), *args)
    assert r.returncode == 0, r.stderr
    m = re.search(r"as export (x-[0-9a-f]{12})", r.stdout)
    assert m, r.stdout
    return r, m.group(1)


def _lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    return text[:-1].split("\n")


def _items(store: Path, export_id: str) -> list[tuple[Any, ...]]:
    return q(store, "SELECT item, part, episode_id, turn, task_id, domain, content_hash FROM export_items "
                    "WHERE export_id = ? ORDER BY item, part", [export_id])


def _signal(store: Path, episode_id: str, turn: int, name: str) -> tuple[float | None, bool | None]:
    rows = q(store, "SELECT DISTINCT value, passed FROM signals WHERE episode_id = ? AND turn = ? AND name = ?",
             [episode_id, turn, name])
    assert len(rows) == 1, rows  # one outcome, whatever the roles it is recorded under
    return rows[0]


def _stored_answer(store: Path, episode_id: str, turn: int) -> tuple[str, str]:
    rows = q(store, "SELECT content, answer FROM messages WHERE episode_id = ? AND turn = ? AND role = 'assistant' "
                    "AND tool_calls IS NULL", [episode_id, turn])
    assert len(rows) == 1
    return rows[0]


def _conversation(store: Path, episode_id: str) -> list[tuple[Any, ...]]:
    return q(store, "SELECT turn, role, content, tool_calls, tool_call_id FROM messages WHERE episode_id = ? ORDER BY position",
             [episode_id])


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_lineage(store: Path, export_id: str, out: Path, parts: list[str]) -> list[tuple[Any, ...]]:
    """The export's rows and items match the file exactly; returns the items."""
    (rows, sha, domains, path, fmt), = q(store, "SELECT rows, sha256, domains, path, format FROM exports WHERE export_id = ?",
                                         [export_id])
    assert Path(path) == out.resolve() and sha == _sha(out.read_bytes())
    assert not Path(f"{out}.tmp").exists()
    items = _items(store, export_id)
    if fmt == "parquet":
        hashes = [_sha(canonical_json(r).encode()) for r in pq.read_table(out).to_pylist()]
    else:
        hashes = [_sha(line.encode()) for line in _lines(out)]
    assert rows == len(hashes) > 0
    for part in parts:
        mine = [i for i in items if i[1] == part]
        assert [i[0] for i in mine] == list(range(rows))
        assert [i[6] for i in mine] == hashes
    assert len(items) == rows * len(parts)
    assert json.loads(domains) == sorted({i[5] for i in items})
    return items


def _check_messages(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> None:
    """Valid roles and keys; every tool call answered by tool messages right after it, in order."""
    names = {t["function"]["name"] for t in tools or []}
    i = 0
    while i < len(messages):
        m = messages[i]
        assert m["role"] in ROLES and isinstance(m["content"], str)
        allowed = {"role", "content"} | ({"tool_calls"} if m["role"] == "assistant" else set())
        assert set(m) <= allowed, m
        i += 1
        if m.get("tool_calls"):
            for call in m["tool_calls"]:
                assert set(call) == {"id", "type", "function"} and call["type"] == "function"
                assert set(call["function"]) == {"name", "arguments"} and call["function"]["name"] in names
                json.loads(call["function"]["arguments"])
                reply = messages[i]
                assert set(reply) == {"role", "tool_call_id", "content"}
                assert reply["role"] == "tool" and reply["tool_call_id"] == call["id"]
                i += 1
        else:
            assert m["role"] != "tool", "a tool message without the call before it"


def test_sft_final_is_prompt_then_clean_solution(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "train.jsonl"
    _, xid = _export(store, out, "--run", "src", "--select", "correct", "--format", "sft")
    ds = datasets.load_dataset("json", data_files=str(out), split="train")
    assert sorted(ds.column_names) == ["messages", "tools"]  # the run has a tool environment
    items = _check_lineage(store, xid, out, ["example"])
    lines = [json.loads(line) for line in _lines(out)]
    assert len(ds) == len(lines)
    used_tools = 0
    for line, (_, _, eid, turn, task_id, domain, _) in zip(lines, items):
        msgs = line["messages"]
        assert set(line) <= {"messages", "tools"}
        assert ("tools" in line) == (domain == "tools")
        _check_messages(msgs, line.get("tools"))
        (prompt,), = q(store, "SELECT prompt FROM tasks WHERE task_id = ?", [task_id])
        assert msgs[0] == {"role": "system", "content": SYSTEM} and msgs[1] == {"role": "user", "content": prompt}
        # one user message, one answer: the accepted one, the last message
        assert [m["role"] for m in msgs].count("user") == 1
        answers = [m for m in msgs if m["role"] == "assistant" and "tool_calls" not in m]
        assert answers == [msgs[-1]]
        assert msgs[-1]["content"] == _stored_answer(store, eid, turn)[0]
        assert _signal(store, eid, turn, "correct")[1] is True
        earlier = q(store, "SELECT count(*) FROM signals WHERE episode_id = ? AND name = 'correct' AND turn < ? AND passed",
                    [eid, turn])
        assert earlier == [(0,)]  # the episode's first accepted turn
        used_tools += any("tool_calls" in m for m in msgs)
    assert used_tools > 0
    # the dataset holds the same conversations the file does
    assert [[{k: v for k, v in m.items() if v is not None} for m in row] for row in ds["messages"]] == [ln["messages"] for ln in lines]


def test_sft_without_system_prompt_starts_with_the_task(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "plain.jsonl"
    _, xid = _export(store, out, "--run", "plain", "--select", "correct", "--format", "sft")
    assert datasets.load_dataset("json", data_files=str(out), split="train").column_names == ["messages"]
    for line, item in zip(_lines(out), _check_lineage(store, xid, out, ["example"])):
        msgs = json.loads(line)["messages"]
        (prompt,), = q(store, "SELECT prompt FROM tasks WHERE task_id = ?", [item[4]])
        assert msgs[0] == {"role": "user", "content": prompt} and msgs[-1]["role"] == "assistant"


def test_sft_full_keeps_the_failed_attempts_and_feedback(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "full.jsonl"
    _, xid = _export(store, out, "--run", "src", "--select", "correct", "--format", "sft", "--trajectory", "full")
    items = _check_lineage(store, xid, out, ["example"])
    later = 0
    for line, (_, _, eid, turn, *_rest) in zip(_lines(out), items):
        msgs = json.loads(line)["messages"]
        _check_messages(msgs, json.loads(line).get("tools"))
        convo = _conversation(store, eid)
        end = next(i for i, m in enumerate(convo) if m[0] == turn and m[1] == "assistant" and m[3] is None)
        assert [(m["role"], m["content"]) for m in msgs] == [(m[1], m[2]) for m in convo[: end + 1]]
        if turn > 1 and any(m[1] == "user" and m[0] > 0 for m in convo[:end]):
            later += 1
            assert sum(m["role"] == "user" for m in msgs) >= 2  # the feedback is there
    assert later > 0
    assert json.loads(q(store, "SELECT options FROM exports WHERE export_id = ?", [xid])[0][0])["trajectory"] == "full"


def test_dpo_pairs_accepted_with_rejected_answers_of_the_same_task(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "pref.jsonl"
    r, xid = _export(store, out, "--run", "src", "--select", "correct", "--format", "dpo")
    n_tool = q(store, """SELECT count(DISTINCT episode_id) FROM messages JOIN episodes USING (episode_id)
                         JOIN runs USING (run_id) WHERE name = 'src' AND role = 'tool'""")[0][0]
    assert n_tool > 0 and f"{n_tool} tool-using episode(s) skipped" in r.stdout
    ds = datasets.load_dataset("json", data_files=str(out), split="train")
    assert sorted(ds.column_names) == ["chosen", "prompt", "rejected"]
    items = _check_lineage(store, xid, out, ["chosen", "rejected"])
    pairs: dict[tuple[str, str], int] = {}
    for i, line in enumerate(_lines(out)):
        row = json.loads(line)
        assert list(row) == ["prompt", "chosen", "rejected"]
        chosen, rejected = (next(it for it in items if it[0] == i and it[1] == p) for p in ("chosen", "rejected"))
        assert chosen[4] == rejected[4]  # same task
        (prompt,), = q(store, "SELECT prompt FROM tasks WHERE task_id = ?", [chosen[4]])
        assert row["prompt"] == [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
        c_text, c_key = _stored_answer(store, chosen[2], chosen[3])
        r_text, r_key = _stored_answer(store, rejected[2], rejected[3])
        assert row["chosen"] == [{"role": "assistant", "content": c_text}]
        assert row["rejected"] == [{"role": "assistant", "content": r_text}]
        assert c_key != r_key and row["chosen"] != row["rejected"]
        assert _signal(store, chosen[2], chosen[3], "correct")[1] is True
        assert _signal(store, rejected[2], rejected[3], "correct")[1] is False
        for it in (chosen, rejected):
            assert q(store, "SELECT count(*) FROM messages WHERE episode_id = ? AND role = 'tool'", [it[2]]) == [(0,)]
        # each answer key used once per side and task
        for side, key in (("c", c_key), ("r", r_key)):
            assert (side + chosen[4], key) not in pairs
            pairs[(side + chosen[4], key)] = i


def test_parquet_is_the_flat_table_of_accepted_turns(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "accepted.parquet"
    _, xid = _export(store, out, "--run", "src", "--select", "correct", "--format", "parquet")
    ds = datasets.load_dataset("parquet", data_files=str(out), split="train")
    base = ["episode_id", "run_id", "task_id", "env_id", "domain", "feedback", "sample", "turns", "reward",
            "passed_first", "passed_last", "turn", "prompt", "reference", "reply", "answer"]
    assert ds.column_names[: len(base)] == base
    items = _check_lineage(store, xid, out, ["row"])
    signals = {n for (n,) in q(store, """SELECT DISTINCT s.name FROM signals s JOIN export_items i USING (episode_id, turn)
                                         WHERE i.export_id = ?""", [xid])}
    assert {"correct", "format", "reference", "rubric"} <= signals
    assert set(ds.column_names[len(base):]) == {f"{n}_{k}" for n in signals for k in ("value", "passed")}
    keys = set()
    for row, (_, _, eid, turn, task_id, domain, _) in zip(ds, items):
        assert (row["episode_id"], row["turn"], row["task_id"], row["domain"]) == (eid, turn, task_id, domain)
        assert (row["reply"], row["answer"]) == _stored_answer(store, eid, turn)
        assert row["correct_passed"] is True and row["correct_value"] == _signal(store, eid, turn, "correct")[0]
        (prompt, reference), = q(store, "SELECT prompt, answer FROM tasks WHERE task_id = ?", [task_id])
        assert (row["prompt"], row["reference"]) == (prompt, reference)
        for n in signals:  # every signal at that turn, NULL where none was recorded
            got = q(store, "SELECT DISTINCT value, passed FROM signals WHERE episode_id = ? AND turn = ? AND name = ?",
                    [eid, turn, n])
            assert (row[f"{n}_value"], row[f"{n}_passed"]) == (got[0] if got else (None, None))
        assert (task_id, row["answer"]) not in keys
        keys.add((task_id, row["answer"]))


def test_duplicates_are_dropped_and_counted(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "dedup.jsonl"
    r, xid = _export(store, out, "--run", "src", "--select", "correct", "--format", "sft")
    dropped = int(re.search(r"(\d+) duplicates? dropped", r.stdout).group(1))
    lines = _lines(out)
    assert len(set(lines)) == len(lines)
    accepted = q(store, """SELECT count(DISTINCT s.episode_id) FROM signals s JOIN episodes e USING (episode_id)
                           JOIN runs USING (run_id) WHERE runs.name = 'src' AND e.status = 'ok'
                           AND s.name = 'correct' AND s.passed""")[0][0]
    assert dropped > 0 and len(lines) + dropped == accepted
    assert json.loads(q(store, "SELECT options FROM exports WHERE export_id = ?", [xid])[0][0])["duplicates_dropped"] == dropped
    # of the episodes with the same content (outside tools: same task and answer text), the first by id is kept
    acc = q(store, """WITH acc AS (SELECT s.episode_id, min(s.turn) AS turn FROM signals s JOIN episodes e USING (episode_id)
                                   JOIN runs USING (run_id) WHERE runs.name = 'src' AND e.status = 'ok'
                                   AND s.name = 'correct' AND s.passed GROUP BY 1)
                      SELECT a.episode_id, e.task_id, e.domain, m.content FROM acc a JOIN episodes e USING (episode_id)
                      JOIN messages m ON m.episode_id = a.episode_id AND m.turn = a.turn AND m.role = 'assistant'
                      AND m.tool_calls IS NULL""")
    keep: dict[tuple[str, str], str] = {}
    for eid, task_id, domain, content in acc:
        if domain != "tools":
            keep[(task_id, content)] = min(eid, keep.get((task_id, content), eid))
    items = _items(store, xid)
    assert {i[2] for i in items if i[5] != "tools"} == set(keep.values())
    eids = [i[2] for i in items]
    assert eids == sorted(eids)


def test_min_accepts_by_value_and_domains_filter(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "rubric.jsonl"
    _, xid = _export(store, out, "--run", "src", "--select", "rubric", "--min", "0.5", "--format", "sft")
    items = _check_lineage(store, xid, out, ["example"])
    below_pass = 0
    for _, _, eid, turn, *_r in items:
        value, passed = _signal(store, eid, turn, "rubric")
        assert value >= 0.5
        below_pass += passed is False  # accepted by --min although the rubric did not pass it
        assert q(store, "SELECT count(*) FROM signals WHERE episode_id = ? AND name = 'rubric' AND turn < ? AND value >= 0.5",
                 [eid, turn]) == [(0,)]
    assert below_pass > 0
    assert q(store, "SELECT min_value, signal FROM exports WHERE export_id = ?", [xid]) == [(0.5, "rubric")]

    out2 = tmp_path / "units.jsonl"
    _, xid2 = _export(store, out2, "--run", "src", "--select", "correct", "--format", "sft", "--domains", "units")
    assert {i[5] for i in _check_lineage(store, xid2, out2, ["example"])} == {"units"}
    assert q(store, "SELECT domains, domain_filter FROM exports WHERE export_id = ?", [xid2]) == [('["units"]', '["units"]')]

    out3 = tmp_path / "two.parquet"
    _, xid3 = _export(store, out3, "--run", "src", "--select", "correct", "--format", "parquet", "--domains", "units,tools")
    assert set(pq.read_table(out3).column("domain").to_pylist()) == {"units", "tools"}
    assert json.loads(q(store, "SELECT domains FROM exports WHERE export_id = ?", [xid3])[0][0]) == ["tools", "units"]


def test_library_function_and_repeating_an_export(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "lib.jsonl"
    a = export(store, "src", "correct", format="sft", out=out, domains=["arithmetic"])
    assert a.path == out.resolve() and a.rows == len(_lines(out)) and a.domains == ["arithmetic"]
    assert a.sha256 == _sha(out.read_bytes()) and a.export_id.startswith("x-") and not a.already_recorded
    before = table_digest(store)
    b = export(store, "src", "correct", format="sft", out=out, domains=["arithmetic"])
    assert (b.export_id, b.sha256, b.rows, b.already_recorded) == (a.export_id, a.sha256, a.rows, True)
    assert table_digest(store) == before  # recorded once
    c = export(store, "src", "correct", format="sft", out=out, domains=["arithmetic"], trajectory="full")
    assert c.export_id != a.export_id and c.sha256 != a.sha256
    with pytest.raises(NothingToExport):
        export(store, "src", "correct", format="sft", out=tmp_path / "none.jsonl", min_value=1.5)
    with pytest.raises(ExportError, match="no signal"):
        export(store, "src", "nope", format="dpo", out=tmp_path / "none.jsonl")
    assert not (tmp_path / "none.jsonl").exists()


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--run", "nope", "--select", "correct", "--format", "sft"], 2, "no run named 'nope'.*runs: plain, src"),
    (["--run", "src", "--select", "nope", "--format", "sft"], 2, "no signal 'nope'; its signals: correct, format, reference, rubric"),
    (["--run", "src", "--select", "correct", "--domains", "units,poetry", "--format", "dpo"], 2,
     "no domain 'poetry'; its domains: arithmetic, tools, units"),
    (["--run", "src", "--select", "correct", "--min", "1.5", "--format", "parquet"], 1, "nothing to export"),
    (["--run", "src", "--select", "correct", "--format", "dpo", "--trajectory", "full"], 2, "--trajectory applies to --format sft"),
])
def test_bad_input_changes_nothing(store: Path, tmp_path: Path, args: list[str], code: int, message: str) -> None:
    out = tmp_path / "out.jsonl"
    before = table_digest(store)
    r = cli("export", "--store", str(store), "--out", str(out), *args)
    assert r.returncode == code, (r.stdout, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("error: ")
    assert re.search(message, r.stderr), r.stderr
    assert list(tmp_path.iterdir()) == [] and table_digest(store) == before


def test_only_synthesis_runs_are_exported(store: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.duckdb"
    shutil.copy(store, copy)
    con = duckdb.connect(str(copy))
    con.execute("UPDATE runs SET kind = 'evaluation' WHERE name = 'plain'")
    con.close()
    before = table_digest(copy)
    r = cli("export", "--store", str(copy), "--run", "plain", "--select", "correct", "--format", "sft",
            "--out", str(tmp_path / "x.jsonl"))
    assert r.returncode == 2 and "of kind 'evaluation'; export takes synthesis runs" in r.stderr
    r = cli("export", "--store", str(copy), "--run", "nope", "--select", "correct", "--format", "sft",
            "--out", str(tmp_path / "x.jsonl"))
    assert r.returncode == 2 and r.stderr.rstrip().endswith("runs: src")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.duckdb"] and table_digest(copy) == before


def test_missing_output_directory_and_missing_store(store: Path, tmp_path: Path) -> None:
    before = table_digest(store)
    r = cli("export", "--store", str(store), "--run", "src", "--select", "correct", "--format", "sft",
            "--out", str(tmp_path / "no" / "such" / "dir.jsonl"))
    assert r.returncode == 2 and "output directory" in r.stderr and "does not exist" in r.stderr
    assert not (tmp_path / "no").exists() and table_digest(store) == before
    r = cli("export", "--store", str(tmp_path / "absent.duckdb"), "--run", "src", "--select", "correct",
            "--format", "sft", "--out", str(tmp_path / "x.jsonl"))
    assert r.returncode == 2 and "no store at" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_store_held_by_a_running_writer(store: Path, tmp_path: Path) -> None:
    before = table_digest(store)
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, sys; c = duckdb.connect({str(store)!r}); print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        r = cli("export", "--store", str(store), "--run", "src", "--select", "correct", "--format", "sft",
                "--out", str(tmp_path / "x.jsonl"), env={"AGENTSYNTH_LOCK_WAIT_S": "0.5"})
        assert r.returncode == 2 and "in use by another process (PID" in r.stderr and "Traceback" not in r.stderr
    finally:
        holder.stdin.close()
        holder.wait()
    assert list(tmp_path.iterdir()) == [] and table_digest(store) == before


def test_sft_reference_trajectory_trains_on_the_reference_reply(store: Path, tmp_path: Path) -> None:
    """--trajectory reference: the prompt and the environment's reference reply, whatever the model
    answered (the loop's reference arm); one line per task however many samples drew it."""
    from agentsynth.registry import resolve
    from agentsynth.tasks import Task

    out = tmp_path / "ref.jsonl"
    _, xid = _export(store, out, "--run", "src", "--select", "reference", "--min", "0", "--format", "sft",
                     "--trajectory", "reference", "--domains", "arithmetic")
    lines = [json.loads(line) for line in _lines(out)]
    items = _check_lineage(store, xid, out, ["example"])
    env = resolve("arithmetic").cls()
    tasks = set()
    for line, (_, _, eid, _turn, task_id, _domain, _) in zip(lines, items):
        env_id, domain, seed, prompt, answer, meta = q(
            store, "SELECT env_id, domain, seed, prompt, answer, metadata FROM tasks WHERE task_id = ?", [task_id])[0]
        want = env.reference_reply(Task(env_id, domain, seed, prompt, answer, json.loads(meta)))
        assert line["messages"] == [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt},
                                    {"role": "assistant", "content": want}]
        tasks.add(task_id)
    graded = q(store, "SELECT count(DISTINCT e.task_id) FROM episodes e JOIN runs r USING (run_id) JOIN signals s "
                      "USING (episode_id) WHERE r.name = 'src' AND s.name = 'reference' AND e.env_id = 'arithmetic'")[0][0]
    assert len(lines) == len(tasks) == graded  # every task once
    r = cli("export", "--store", str(store), "--out", str(tmp_path / "x.jsonl"), "--run", "src", "--select", "correct",
            "--format", "dpo", "--trajectory", "reference")
    assert r.returncode == 2 and "--trajectory applies to --format sft only" in r.stderr
