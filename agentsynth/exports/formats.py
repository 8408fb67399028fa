"""Turning the selected turns into file rows of each format (sft, dpo, parquet), with the JSON
and hash forms of a row and what makes two rows the same.

- ``sft``: the conversation of each episode's first accepted turn (see :func:`.chat.sft_messages`),
  plus the environment's tool schemas when it declares tools; a tool-using conversation whose
  schemas cannot be rebuilt is skipped.
- ``dpo``: per task, distinct accepted answers paired with distinct answers the signal graded and
  did not accept (never the same answer key on both sides); tool-using episodes are skipped.
- ``parquet``: one row per first accepted turn: episode columns, prompt, reference, reply, answer
  key, and ``<signal>_value`` / ``<signal>_passed`` for every signal at that turn.

Public (re-exported by ``agentsynth.exports``): :func:`line_json`, :func:`canonical_json`,
:func:`sha256_text`. Package-internal API: ``FORMATS``, :class:`Row`, :class:`Built`,
:func:`build_rows`, :func:`dedup_key`, :func:`fill_parquet`.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from .chat import ReferenceReplies, ToolSchemas, chat_message, sft_messages
from .selection import (
    Graded,
    answer_index,
    first_accepted,
    load_messages,
    prompt_end,
    uses_tools,
    with_ids,
)

FORMATS = ("sft", "dpo", "parquet")


def line_json(obj: Any) -> str:
    """An sft/dpo line: compact JSON, UTF-8, keys in the order built here (role before content)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def canonical_json(obj: Any) -> str:
    """The canonical JSON of a Parquet row (all columns, sorted keys, compact): what its
    ``export_items.content_hash`` hashes. Recompute it from ``pyarrow``'s ``to_pylist()`` rows."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def sha256_text(text: str) -> str:
    """sha256 hex digest of ``text`` in UTF-8."""
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Row:
    """One file row: its canonical JSON text and the (part, graded turn) it holds."""

    text: str
    parts: list[tuple[str, Graded]]
    data: dict[str, Any] = field(default_factory=dict)  # parquet: the row's values


@dataclass
class Built:
    """The rows a format built (before de-duplication) and how many tool-using episodes it skipped."""

    rows: list[Row]
    skipped_tool_episodes: int = 0


def build_rows(con: duckdb.DuckDBPyConnection, fmt: str, graded: list[Graded], trajectory: str) -> Built:
    """The rows of format ``fmt`` (one of ``FORMATS``) for the graded turns of the selection."""
    if fmt == "sft":
        return _build_sft(con, graded, trajectory)
    if fmt == "dpo":
        return _build_dpo(con, graded)
    return _build_parquet(con, graded)


def dedup_key(fmt: str) -> Callable[[Row], Any]:
    """What makes two rows of ``fmt`` the same: sft/dpo the same line; parquet the same task and answer key."""
    if fmt == "parquet":
        return lambda r: (r.data["task_id"], r.data["answer"])
    return lambda r: r.text


def _build_sft(con: duckdb.DuckDBPyConnection, graded: list[Graded], trajectory: str) -> Built:
    accepted = first_accepted(graded)
    msgs = load_messages(con, (g.episode_id for g in accepted))
    if trajectory == "reference":
        return _build_reference(con, accepted, msgs)
    schemas = ToolSchemas()
    built = Built([])
    for g in accepted:
        messages = sft_messages(msgs[g.episode_id], g.turn, trajectory)
        tools = schemas(g.env_id, g.env_config)
        if any("tool_calls" in m for m in messages) and not tools:
            built.skipped_tool_episodes += 1  # tool calls without the schemas would teach calls to unknown tools
            continue
        line: dict[str, Any] = {"messages": messages}
        if tools:
            line["tools"] = tools
        built.rows.append(Row(line_json(line), [("example", g)]))
    return built


def _build_reference(con: duckdb.DuckDBPyConnection, accepted: list[Graded], msgs: dict[str, list[dict[str, Any]]]) -> Built:
    """sft rows of the ``reference`` trajectory: each accepted episode's prompt with the
    environment's reference reply to its task in place of the model's answer (tool-using
    episodes are skipped: a reference reply holds no tool calls)."""
    from ..tasks import Task

    ids = sorted({g.task_id for g in accepted})
    tasks = {r[0]: Task(r[1], r[2], r[3], r[4], r[5], json.loads(r[6]) if r[6] else {}) for r in con.execute(
        "SELECT task_id, env_id, domain, seed, prompt, answer, metadata FROM tasks WHERE list_contains(?, task_id)",
        [ids]).fetchall()}
    replies = ReferenceReplies(tasks)
    built = Built([])
    try:
        for g in accepted:
            m = msgs[g.episode_id]
            if uses_tools(m):
                built.skipped_tool_episodes += 1
                continue
            prompt = [chat_message(x) for x in m[:prompt_end(m)]]
            reply = replies(g.env_id, g.env_config, g.task_id)
            built.rows.append(Row(line_json({"messages": [*prompt, {"role": "assistant", "content": reply}]}),
                                  [("example", g)]))
    finally:
        replies.close()
    return built


def _build_dpo(con: duckdb.DuckDBPyConnection, graded: list[Graded]) -> Built:
    msgs = load_messages(con, {g.episode_id for g in graded if g.accepted or g.rejected})
    tool_eps = {eid for eid, m in msgs.items() if uses_tools(m)}
    first = {(g.episode_id, g.turn) for g in first_accepted(graded)}
    by_task: dict[str, list[Graded]] = defaultdict(list)
    for g in graded:
        if g.episode_id in msgs and g.episode_id not in tool_eps:
            by_task[g.task_id].append(g)

    def answer(g: Graded) -> dict[str, Any]:
        return msgs[g.episode_id][answer_index(msgs[g.episode_id], g.turn)]

    built = Built([], skipped_tool_episodes=len(tool_eps))
    for task_id in sorted(by_task):
        turns = by_task[task_id]  # sorted by (episode_id, turn)
        accepted_keys = {answer(g)["answer"] or "" for g in turns if g.accepted}
        chosen = _distinct(answer, [g for g in turns if (g.episode_id, g.turn) in first])
        rejected = _distinct(answer, [g for g in turns if g.rejected and (answer(g)["answer"] or "") not in accepted_keys])
        for c, r in zip(chosen, rejected):
            m = msgs[c.episode_id]
            line = {
                "prompt": [chat_message(x) for x in m[: prompt_end(m)]],
                "chosen": [{"role": "assistant", "content": answer(c)["content"] or ""}],
                "rejected": [{"role": "assistant", "content": answer(r)["content"] or ""}],
            }
            built.rows.append(Row(line_json(line), [("chosen", c), ("rejected", r)]))
    return built


def _distinct(answer: Callable[[Graded], dict[str, Any]], turns: list[Graded]) -> list[Graded]:
    seen: set[str] = set()
    out = []
    for g in turns:
        key = answer(g)["answer"] or ""
        if key not in seen:
            seen.add(key)
            out.append(g)
    return out


_EPISODE_COLUMNS = [
    ("episode_id", pa.string()), ("run_id", pa.string()), ("task_id", pa.string()), ("env_id", pa.string()),
    ("domain", pa.string()), ("feedback", pa.string()), ("sample", pa.int32()), ("turns", pa.int32()),
    ("reward", pa.float64()), ("passed_first", pa.bool_()), ("passed_last", pa.bool_()), ("turn", pa.int32()),
    ("prompt", pa.string()), ("reference", pa.string()), ("reply", pa.string()), ("answer", pa.string()),
]


def _build_parquet(con: duckdb.DuckDBPyConnection, graded: list[Graded]) -> Built:
    accepted = first_accepted(graded)
    ids = [g.episode_id for g in accepted]
    episodes = {r[0]: r for r in with_ids(con, ids, """
        SELECT e.episode_id, e.run_id, e.task_id, e.env_id, e.domain, e.feedback, e.sample, e.turns, e.reward,
               e.passed_first, e.passed_last, t.prompt, t.answer
        FROM episodes e LEFT JOIN tasks t USING (task_id) WHERE e.episode_id IN (SELECT episode_id FROM _export_ids)""")}
    signals: dict[tuple[str, int], dict[str, tuple[float | None, bool | None]]] = defaultdict(dict)
    for eid, turn, name, value, passed in with_ids(con, ids, """
            SELECT episode_id, turn, name, max(value), bool_or(passed) FROM signals
            WHERE episode_id IN (SELECT episode_id FROM _export_ids) GROUP BY ALL"""):
        signals[(eid, turn)][name] = (value, passed)
    msgs = load_messages(con, ids)
    built = Built([])
    for g in accepted:
        e = episodes[g.episode_id]
        reply = msgs[g.episode_id][answer_index(msgs[g.episode_id], g.turn)]
        data: dict[str, Any] = dict(zip(
            [c for c, _ in _EPISODE_COLUMNS],
            [*e[:11], g.turn, e[11], e[12], reply["content"] or "", reply["answer"]],
        ))
        for name, (value, passed) in sorted(signals[(g.episode_id, g.turn)].items()):
            data[f"{name}_value"], data[f"{name}_passed"] = value, passed
        built.rows.append(Row("", [("row", g)], data))  # text: once all columns are known
    return built


def _parquet_schema(rows: list[Row]) -> pa.Schema:
    """Episode columns, then ``<signal>_value`` / ``<signal>_passed`` for every signal in the rows."""
    base = {c for c, _ in _EPISODE_COLUMNS}
    names = sorted({k for r in rows for k in r.data} - base, key=lambda c: (c.rsplit("_", 1)[0], c.endswith("_passed")))
    return pa.schema(_EPISODE_COLUMNS + [(c, pa.bool_() if c.endswith("_passed") else pa.float64()) for c in names])


def fill_parquet(rows: list[Row]) -> pa.Schema:
    """Give every row every column (None where its turn lacks a signal) and its canonical JSON."""
    schema = _parquet_schema(rows)
    for r in rows:
        r.data = {c: r.data.get(c) for c in schema.names}
        r.text = canonical_json(r.data)
    return schema
