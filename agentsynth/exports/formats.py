"""Turning the selected turns into file rows of each format (sft, dpo, parquet), with the JSON
and hash forms of a row and what makes two rows the same.

- ``sft``: the conversation of each episode's first accepted turn (see :func:`.chat.sft_messages`),
  plus the environment's tool schemas when it declares tools; a tool-using conversation whose
  schemas cannot be rebuilt is skipped.
- ``dpo``: per task, distinct accepted answers paired with distinct answers the signal graded and
  did not accept (never the same answer key on both sides); tool-using episodes are skipped.
- ``parquet``: one row per first accepted turn: episode columns, prompt, reference, reply, answer
  key, and ``<signal>_value`` / ``<signal>_passed`` for every signal at that turn.

Rows are built one batch of graded turns at a time (:class:`RowBuilder`); what a builder keeps
across batches is the environments it built (tool schemas, reference replies). A batch holds whole
episodes (sft, parquet) or whole tasks (dpo), so building batch by batch writes the same rows in the
same order as building all at once.

Public (re-exported by ``agentsynth.exports``): :func:`line_json`, :func:`canonical_json`,
:func:`sha256_text`. Package-internal API: ``FORMATS``, :class:`Row`, :class:`Built`,
:class:`RowBuilder`, :func:`parquet_schema`, :func:`row_digest`.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
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


def row_digest(row: Row) -> bytes:
    """The sha256 of a row's text (hex: its ``export_items.content_hash``). For sft and dpo it is
    also what makes two rows the same: identical lines, identical digests (parquet rows are
    de-duplicated in SQL, by task and answer key: see :func:`.selection.stage_selection`)."""
    return hashlib.sha256(row.text.encode()).digest()


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


class RowBuilder:
    """Builds the rows of format ``fmt`` (one of ``FORMATS``) one batch of graded turns at a time
    (sft and parquet: each episode's first accepted turn; dpo: every accepted or rejected turn of
    whole tasks). Parquet rows get every column of ``schema``. :meth:`close` closes the
    environments built for tool schemas and reference replies."""

    def __init__(self, con: duckdb.DuckDBPyConnection, fmt: str, trajectory: str, schema: pa.Schema | None = None) -> None:
        if fmt == "parquet" and schema is None:
            raise ValueError("parquet rows need the schema")
        self._con, self._fmt, self._trajectory, self._schema = con, fmt, trajectory, schema
        self._schemas = ToolSchemas()
        self._replies = ReferenceReplies()

    def build(self, graded: list[Graded]) -> Built:
        """The rows of one batch, in file order."""
        if self._fmt == "sft":
            return _build_sft(self._con, graded, self._trajectory, self._schemas, self._replies)
        if self._fmt == "dpo":
            return _build_dpo(self._con, graded)
        assert self._schema is not None
        return _build_parquet(self._con, graded, self._schema)

    def close(self) -> None:
        """Close the environments built."""
        self._replies.close()


def _build_sft(con: duckdb.DuckDBPyConnection, graded: list[Graded], trajectory: str, schemas: ToolSchemas,
               replies: ReferenceReplies) -> Built:
    accepted = first_accepted(graded)
    msgs = load_messages(con, (g.episode_id for g in accepted))
    if trajectory == "reference":
        return _build_reference(con, accepted, msgs, replies)
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


def _build_reference(con: duckdb.DuckDBPyConnection, accepted: list[Graded], msgs: dict[str, list[dict[str, Any]]],
                     replies: ReferenceReplies) -> Built:
    """sft rows of the ``reference`` trajectory: each accepted episode's prompt with the
    environment's reference reply to its task in place of the model's answer (tool-using
    episodes are skipped: a reference reply holds no tool calls)."""
    from ..tasks import Task

    ids = sorted({g.task_id for g in accepted})
    tasks = {r[0]: Task(r[1], r[2], r[3], r[4], r[5], json.loads(r[6]) if r[6] else {}) for r in con.execute(
        "SELECT task_id, env_id, domain, seed, prompt, answer, metadata FROM tasks WHERE list_contains(?, task_id)",
        [ids]).fetchall()}
    built = Built([])
    for g in accepted:
        m = msgs[g.episode_id]
        if uses_tools(m):
            built.skipped_tool_episodes += 1
            continue
        prompt = [chat_message(x) for x in m[:prompt_end(m)]]
        reply = replies(g.env_id, g.env_config, tasks[g.task_id])
        built.rows.append(Row(line_json({"messages": [*prompt, {"role": "assistant", "content": reply}]}),
                              [("example", g)]))
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


def _build_parquet(con: duckdb.DuckDBPyConnection, graded: list[Graded], schema: pa.Schema) -> Built:
    accepted = first_accepted(graded)
    ids = [g.episode_id for g in accepted]
    episodes = {r[0]: r for r in with_ids(con, ids, """
        SELECT e.episode_id, e.run_id, e.task_id, e.env_id, e.domain, e.feedback, e.sample, e.turns, e.reward,
               e.passed_first, e.passed_last, t.prompt, t.answer
        FROM episodes e LEFT JOIN tasks t USING (task_id)
        WHERE e.episode_id BETWEEN $lo AND $hi AND e.episode_id IN (SELECT episode_id FROM _export_ids)""")}
    signals: dict[tuple[str, int], dict[str, tuple[float | None, bool | None]]] = defaultdict(dict)
    for eid, turn, name, value, passed in with_ids(con, ids, """
            SELECT episode_id, turn, name, max(value), bool_or(passed) FROM signals
            WHERE episode_id BETWEEN $lo AND $hi AND episode_id IN (SELECT episode_id FROM _export_ids)
            GROUP BY ALL"""):
        signals[(eid, turn)][name] = (value, passed)
    msgs = load_messages(con, ids)
    built = Built([])
    for g in accepted:
        e = episodes[g.episode_id]
        reply = msgs[g.episode_id][answer_index(msgs[g.episode_id], g.turn)]
        data: dict[str, Any] = dict.fromkeys(schema.names)
        data.update(zip([c for c, _ in _EPISODE_COLUMNS],
                        [*e[:11], g.turn, e[11], e[12], reply["content"] or "", reply["answer"]]))
        for name, (value, passed) in signals[(g.episode_id, g.turn)].items():
            data[f"{name}_value"], data[f"{name}_passed"] = value, passed
        built.rows.append(Row(canonical_json(data), [("row", g)], data))
    return built


def parquet_schema(signals: Iterable[str]) -> pa.Schema:
    """Episode columns, then ``<signal>_value`` / ``<signal>_passed`` for each signal name."""
    names = sorted({n for s in signals for n in (f"{s}_value", f"{s}_passed")},
                   key=lambda c: (c.rsplit("_", 1)[0], c.endswith("_passed")))
    return pa.schema(_EPISODE_COLUMNS + [(c, pa.bool_() if c.endswith("_passed") else pa.float64()) for c in names])
