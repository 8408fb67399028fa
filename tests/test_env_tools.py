"""The tool-use environment: tool calls and results are stored, and replay exactly."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

import agentsynth
from agentsynth import registry
from agentsynth.sim.process import running_server


def test_tools_are_declared_and_answer_from_the_hidden_table() -> None:
    env = registry.make("tools", difficulty=3)
    _, info = env.reset(seed=5)
    assert [t["function"]["name"] for t in info["tools"]] == ["price_lookup", "discount_lookup", "calculator"]
    item, price = next(iter(env.task.metadata["prices"].items()))
    call = lambda name, **args: {"id": "c1", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}  # noqa: E731
    obs, reward, term, trunc, info = env.step({"role": "assistant", "content": "", "tool_calls": [call("price_lookup", item=item.upper())]})
    assert info["tool_messages"] == [{"role": "tool", "tool_call_id": "c1", "content": str(price)}]
    assert json.loads(obs)["tool_results"][0]["content"] == str(price) and info["signals"] == [] and not term
    assert str(env.task.answer) not in obs


@pytest.mark.parametrize("calls", [
    [{"id": "x", "function": {"name": "price_lookup", "arguments": "{not json"}}],
    [{"id": "x", "function": {"name": "price_lookup", "arguments": "[1, 2]"}}],
    [{"id": "x", "function": {"name": "rm_rf", "arguments": "{}"}}],
    [{"id": "x", "function": {"name": "calculator", "arguments": json.dumps({"expression": "__import__('os')"})}}],
    [{"id": "x", "function": {"name": "calculator", "arguments": json.dumps({"expression": "9" * 300})}}],
    ["not a call"],
])
def test_bad_tool_calls_get_an_error_reply_never_an_exception(calls: list) -> None:
    env = registry.make("tools")
    env.reset(seed=1)
    _, _, _, _, info = env.step({"content": "", "tool_calls": calls})
    assert info["tool_messages"][0]["content"].startswith("error:")


def _run(store: Path, name: str, base_url: str | None = None) -> None:
    spec = agentsynth.RunSpec(name=name, store=str(store), samples=2, base_url=base_url, concurrency=8,
                              envs=[agentsynth.EnvSpec(id="tools", tasks=8, difficulty=3, max_turns=4, feedback=["binary", "hint"])])
    assert agentsynth.Runner(spec).run().ok == 32


def _replay(store: Path) -> int:
    """Re-run every stored episode's actions through a fresh environment; compare what it says."""
    con = duckdb.connect(str(store), read_only=True)
    episodes = con.execute("SELECT episode_id, env_config, seed FROM episodes").fetchall()
    checked = 0
    for eid, cfg, seed in episodes:
        rows = con.execute("SELECT role, content, tool_calls, tool_call_id FROM messages WHERE episode_id = ? ORDER BY position", [eid]).fetchall()
        env = registry.make("tools", **json.loads(cfg))
        obs, _ = env.reset(seed=seed)
        assert rows[0][1] == obs
        i = 1
        while i < len(rows):
            role, content, tool_calls, _ = rows[i]
            assert role == "assistant"
            action = {"role": "assistant", "content": content, "tool_calls": json.loads(tool_calls)} if tool_calls else content
            obs, _, _, _, info = env.step(action)
            i += 1
            if tool_calls:
                for tm in info["tool_messages"]:
                    assert rows[i][0] == "tool" and (rows[i][1], rows[i][3]) == (tm["content"], tm["tool_call_id"])
                    i += 1
                checked += 1
            else:
                assert rows[i] == ("user", obs, None, None)
                i += 1
    con.close()
    return checked


def test_tool_calls_and_results_are_stored_and_replay_in_process(tmp_path: Path) -> None:
    _run(tmp_path / "s.duckdb", "tools")
    assert _replay(tmp_path / "s.duckdb") >= 32


def test_tool_calls_survive_the_http_round_trip(tmp_path: Path) -> None:
    with running_server() as url:
        _run(tmp_path / "h.duckdb", "tools-http", base_url=url)
    assert _replay(tmp_path / "h.duckdb") >= 32
    con = duckdb.connect(str(tmp_path / "h.duckdb"), read_only=True)
    (n_tool,) = con.execute("SELECT count(*) FROM messages WHERE role = 'tool'").fetchone()
    (ids_ok,) = con.execute("""SELECT bool_and(list_contains(
            (SELECT list(json_extract_string(c, '$.id')) FROM (SELECT unnest(json_extract(a.tool_calls, '$[*]')) AS c)), t.tool_call_id))
        FROM messages t JOIN messages a ON a.episode_id = t.episode_id AND a.turn = t.turn AND a.role = 'assistant'
        WHERE t.role = 'tool'""").fetchone()
    con.close()
    assert n_tool >= 32 * 4 and ids_ok


@pytest.mark.parametrize("difficulty", [1, 2, 3])
def test_verifier_accepts_equivalent_totals_and_rejects_plausible_slips(difficulty: int) -> None:
    env = registry.make("tools", difficulty=difficulty)
    for seed in range(20):
        env.reset(seed=seed)
        total, meta = int(env.task.answer), env.task.metadata
        for good in (f"Answer: {total}", f"The total is {total} cents.", f"Answer: {total}.0", f"Answer: {total:,}"):
            assert env.verify(env.task, good), good
        forgot_quantity = sum(meta["prices"].values())
        for bad in {total + 1, total - 1, forgot_quantity} - {total}:
            assert not env.verify(env.task, f"Answer: {bad}"), bad
            assert str(total) not in env.hint(env.task, f"Answer: {bad}")
