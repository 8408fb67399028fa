"""Exporting training data: the episodes a signal accepted, as SFT or DPO JSONL or a flat Parquet
table, with lineage recorded in the store.

Selection: an episode-turn is *accepted* when the selection signal graded that turn with
``passed = true`` (or, with ``min_value``, ``value >= min_value``). Only ``ok`` episodes of
synthesis runs count, and each episode gives at most one item: its first accepted turn.

Formats:

- ``sft``: ``{"messages": [...]}`` per line (OpenAI chat fine-tuning / TRL conversational
  language modeling), plus ``"tools"`` (the environment's tool schemas) for environments that
  declare tools. ``trajectory="final"``: system prompt + task prompt + the tool calls and tool
  results before the accepted answer + the accepted answer (failed answers and the feedback on
  them are left out); ``"full"``: the conversation up to and including the accepted answer.
- ``dpo``: ``{"prompt", "chosen", "rejected"}`` per line (TRL conversational preference). Per task,
  accepted answers are paired with answers the signal graded and did not accept; distinct answer
  keys (``messages.answer``) on each side, never the same key on both. Tool-using episodes are
  skipped.
- ``parquet``: one row per accepted episode-turn: episode columns, prompt, reference, the reply
  and its answer key, and ``<signal>_value`` / ``<signal>_passed`` for every signal at that turn.

Rows with the same content are written once (sft/dpo: the same line; parquet: the same task and
answer key). The file is written to ``PATH.tmp``, synced and renamed, and in the same
transaction one ``exports`` row and one ``export_items`` row per file row (dpo: a ``chosen`` and
a ``rejected`` row) are recorded, each with the sha256 of the row's canonical JSON.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from ._version import __version__
from .store.clock import utcnow
from .store.connection import StoreError, connect
from .store.transaction import transaction

FORMATS = ("sft", "dpo", "parquet")
TRAJECTORIES = ("final", "full")


class ExportError(ValueError):
    """The export was asked for something the store does not hold (bad input; nothing written)."""


class NothingToExport(ExportError):
    """The selection is valid but accepts nothing (nothing written)."""


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote and recorded."""

    export_id: str
    path: Path
    rows: int
    sha256: str
    domains: list[str]
    skipped_duplicates: int
    format: str = "sft"
    skipped_tool_episodes: int = 0
    already_recorded: bool = False

    def summary(self) -> str:
        """One line for the terminal."""
        dup = f"{self.skipped_duplicates} duplicate{'s' if self.skipped_duplicates != 1 else ''} dropped"
        tools = f", {self.skipped_tool_episodes} tool-using episode(s) skipped" if self.skipped_tool_episodes else ""
        again = " (already recorded)" if self.already_recorded else ""
        return (f"exported {self.rows} {self.format} row{'s' if self.rows != 1 else ''} ({dup}{tools}; domains: "
                f"{', '.join(self.domains)}) to {self.path} as export {self.export_id}{again}")


@dataclass(frozen=True)
class _Graded:
    """One turn the selection signal graded."""

    episode_id: str
    turn: int
    task_id: str
    domain: str | None
    env_id: str
    env_config: str | None
    accepted: bool
    rejected: bool


@dataclass
class _Row:
    """One file row: its canonical JSON text and the (part, graded turn) it holds."""

    text: str
    parts: list[tuple[str, _Graded]]
    data: dict[str, Any] = field(default_factory=dict)  # parquet: the row's values


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


# ---- checking the request ------------------------------------------------------------------


def _check_request(fmt: str, trajectory: str, min_value: float | None, out: Path) -> None:
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    if trajectory not in TRAJECTORIES:
        raise ExportError(f"unknown trajectory {trajectory!r}; choose from {', '.join(TRAJECTORIES)}")
    if fmt != "sft" and trajectory != "final":
        raise ExportError("--trajectory applies to --format sft only")
    if min_value is not None and not math.isfinite(min_value):
        raise ExportError(f"--min must be a finite number, got {min_value}")
    if out.is_dir():
        raise ExportError(f"--out {out} is a directory; give a file path")
    if not out.parent.is_dir():
        raise ExportError(f"output directory {out.parent} does not exist")


def _resolve_run(con: duckdb.DuckDBPyConnection, run: str, store: Path) -> str:
    row = con.execute("SELECT run_id, kind FROM runs WHERE name = ?", [run]).fetchone()
    if row is None:
        names = [r[0] for r in con.execute("SELECT name FROM runs WHERE kind = 'synthesis' ORDER BY name").fetchall()]
        raise ExportError(f"no run named {run!r} in {store}; runs: {', '.join(names) or '(none)'}")
    if row[1] != "synthesis":
        raise ExportError(f"run {run!r} is of kind {row[1]!r}; export takes synthesis runs")
    return row[0]


def _check_signal(con: duckdb.DuckDBPyConnection, run_id: str, run: str, signal: str) -> None:
    names = [r[0] for r in con.execute(
        "SELECT DISTINCT s.name FROM signals s JOIN episodes e USING (episode_id) WHERE e.run_id = ? ORDER BY 1",
        [run_id]).fetchall()]
    if signal not in names:
        raise ExportError(f"run {run!r} has no signal {signal!r}; its signals: {', '.join(names) or '(none)'}")


def _check_domains(con: duckdb.DuckDBPyConnection, run_id: str, run: str, domains: Sequence[str] | None) -> list[str] | None:
    if not domains:
        return None
    have = [r[0] for r in con.execute(
        "SELECT DISTINCT domain FROM episodes WHERE run_id = ? AND domain IS NOT NULL ORDER BY 1", [run_id]).fetchall()]
    unknown = [d for d in dict.fromkeys(domains) if d not in have]
    if unknown:
        raise ExportError(f"run {run!r} has no domain {', '.join(map(repr, unknown))}; its domains: {', '.join(have)}")
    return sorted(set(domains))


# ---- reading the store ---------------------------------------------------------------------


def _graded(con: duckdb.DuckDBPyConnection, run_id: str, signal: str, min_value: float | None,
            domains: list[str] | None) -> list[_Graded]:
    """Every turn of the run's ok episodes the signal graded, by (episode_id, turn). A grader
    recorded under several roles has the same outcome in each: one row per (episode, turn)."""
    rows = con.execute(
        """SELECT s.episode_id, s.turn, e.task_id, e.domain, e.env_id, e.env_config,
                  max(s.value) AS value, bool_or(s.passed) AS passed
           FROM signals s JOIN episodes e USING (episode_id)
           WHERE e.run_id = ? AND e.status = 'ok' AND s.name = ?
             AND (?::VARCHAR[] IS NULL OR list_contains(?::VARCHAR[], e.domain))
           GROUP BY ALL ORDER BY s.episode_id, s.turn""",
        [run_id, signal, domains, domains],
    ).fetchall()
    out = []
    for eid, turn, task_id, domain, env_id, env_config, value, passed in rows:
        if min_value is None:
            accepted, rejected = passed is True, passed is False
        else:
            accepted = value is not None and value >= min_value
            rejected = value is not None and value < min_value
        out.append(_Graded(eid, turn, task_id, domain, env_id, env_config, accepted, rejected))
    return out


def _first_accepted(graded: Iterable[_Graded]) -> list[_Graded]:
    """Each episode's first accepted turn, by episode_id."""
    seen: set[str] = set()
    out = []
    for g in graded:
        if g.accepted and g.episode_id not in seen:
            seen.add(g.episode_id)
            out.append(g)
    return out


def _with_ids(con: duckdb.DuckDBPyConnection, ids: Iterable[str], sql: str) -> list[tuple[Any, ...]]:
    """Run ``sql`` with the episode ids registered as the table ``_export_ids(episode_id)``."""
    con.register("_export_ids", pa.table({"episode_id": pa.array(sorted(set(ids)), pa.string())}))
    try:
        return con.execute(sql).fetchall()
    finally:
        con.unregister("_export_ids")


def _messages(con: duckdb.DuckDBPyConnection, ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    rows = _with_ids(con, ids, """
        SELECT episode_id, list(struct_pack(turn := turn, role := role, content := content, tool_calls := tool_calls,
                                            tool_call_id := tool_call_id, answer := answer) ORDER BY position)
        FROM messages WHERE episode_id IN (SELECT episode_id FROM _export_ids) GROUP BY 1""")
    return {eid: msgs for eid, msgs in rows}


def _answer_index(msgs: list[dict[str, Any]], turn: int) -> int:
    """Position in ``msgs`` of the graded assistant answer of ``turn``."""
    for i, m in enumerate(msgs):
        if m["turn"] == turn and m["role"] == "assistant" and m["tool_calls"] is None:
            return i
    raise StoreError(f"the store has a signal at turn {turn} but no assistant answer at that turn")


def _prompt_end(msgs: list[dict[str, Any]]) -> int:
    """Index just past the task prompt (the first user message; system messages before it)."""
    for i, m in enumerate(msgs):
        if m["role"] == "user":
            return i + 1
    return 0


def _uses_tools(msgs: list[dict[str, Any]]) -> bool:
    return any(m["tool_calls"] is not None or m["role"] == "tool" for m in msgs)


# ---- chat messages in the OpenAI / TRL form ----------------------------------------------------


def _tool_call(call: Any, index: int) -> dict[str, Any]:
    fn = call.get("function") if isinstance(call, dict) and isinstance(call.get("function"), dict) else {}
    args = fn.get("arguments", "{}")
    return {
        "id": str(call.get("id") or f"call_{index}") if isinstance(call, dict) else f"call_{index}",
        "type": "function",
        "function": {"name": str(fn.get("name") or ""), "arguments": args if isinstance(args, str) else json.dumps(args)},
    }


def chat_message(m: dict[str, Any]) -> dict[str, Any]:
    """A stored message row as an OpenAI chat message (roles system/user/assistant/tool)."""
    out: dict[str, Any] = {"role": m["role"], "content": m["content"] or ""}
    if m["role"] == "assistant" and m["tool_calls"] is not None:
        calls = json.loads(m["tool_calls"])
        out["tool_calls"] = [_tool_call(c, i) for i, c in enumerate(calls if isinstance(calls, list) else [calls])]
    if m["role"] == "tool":
        out["tool_call_id"] = m["tool_call_id"] or ""
    return out


def sft_messages(msgs: list[dict[str, Any]], turn: int, trajectory: str) -> list[dict[str, Any]]:
    """The conversation of one accepted turn. ``final``: prompt (system + first user message), the
    tool exchanges before the answer, the answer. ``full``: everything up to the answer."""
    end = _answer_index(msgs, turn)
    if trajectory == "full":
        picked = msgs[: end + 1]
    else:
        start = _prompt_end(msgs)
        tools = [m for m in msgs[start:end] if m["role"] == "tool" or (m["role"] == "assistant" and m["tool_calls"] is not None)]
        picked = [*msgs[:start], *tools, msgs[end]]
    return [chat_message(m) for m in picked]


class _ToolSchemas:
    """The tool schemas of each (env_id, env_config), from the environment itself (cached)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str | None], list[dict[str, Any]] | None] = {}

    def __call__(self, env_id: str, env_config: str | None) -> list[dict[str, Any]] | None:
        key = (env_id, env_config)
        if key not in self._cache:
            self._cache[key] = self._load(env_id, env_config)
        return self._cache[key]

    @staticmethod
    def _load(env_id: str, env_config: str | None) -> list[dict[str, Any]] | None:
        from .registry import resolve

        try:
            env = resolve(env_id).cls(**json.loads(env_config or "{}"))
        except Exception:  # noqa: BLE001 - an environment that cannot be built has no schemas to offer
            return None
        try:
            return json.loads(json.dumps(list(env.tools))) if env.tools else []
        finally:
            env.close()


# ---- building the rows of each format ---------------------------------------------------------


@dataclass
class _Built:
    rows: list[_Row]
    skipped_tool_episodes: int = 0


def _build_sft(con: duckdb.DuckDBPyConnection, graded: list[_Graded], trajectory: str) -> _Built:
    accepted = _first_accepted(graded)
    msgs = _messages(con, (g.episode_id for g in accepted))
    schemas = _ToolSchemas()
    built = _Built([])
    for g in accepted:
        messages = sft_messages(msgs[g.episode_id], g.turn, trajectory)
        tools = schemas(g.env_id, g.env_config)
        if any("tool_calls" in m for m in messages) and not tools:
            built.skipped_tool_episodes += 1  # tool calls without the schemas would teach calls to unknown tools
            continue
        line: dict[str, Any] = {"messages": messages}
        if tools:
            line["tools"] = tools
        built.rows.append(_Row(line_json(line), [("example", g)]))
    return built


def _build_dpo(con: duckdb.DuckDBPyConnection, graded: list[_Graded]) -> _Built:
    msgs = _messages(con, {g.episode_id for g in graded if g.accepted or g.rejected})
    tool_eps = {eid for eid, m in msgs.items() if _uses_tools(m)}
    first = {(g.episode_id, g.turn) for g in _first_accepted(graded)}
    by_task: dict[str, list[_Graded]] = defaultdict(list)
    for g in graded:
        if g.episode_id in msgs and g.episode_id not in tool_eps:
            by_task[g.task_id].append(g)

    def answer(g: _Graded) -> dict[str, Any]:
        return msgs[g.episode_id][_answer_index(msgs[g.episode_id], g.turn)]

    built = _Built([], skipped_tool_episodes=len(tool_eps))
    for task_id in sorted(by_task):
        turns = by_task[task_id]  # sorted by (episode_id, turn)
        accepted_keys = {answer(g)["answer"] or "" for g in turns if g.accepted}
        chosen = _distinct(answer, [g for g in turns if (g.episode_id, g.turn) in first])
        rejected = _distinct(answer, [g for g in turns if g.rejected and (answer(g)["answer"] or "") not in accepted_keys])
        for c, r in zip(chosen, rejected):
            m = msgs[c.episode_id]
            line = {
                "prompt": [chat_message(x) for x in m[: _prompt_end(m)]],
                "chosen": [{"role": "assistant", "content": answer(c)["content"] or ""}],
                "rejected": [{"role": "assistant", "content": answer(r)["content"] or ""}],
            }
            built.rows.append(_Row(line_json(line), [("chosen", c), ("rejected", r)]))
    return built


def _distinct(answer: Callable[[_Graded], dict[str, Any]], turns: list[_Graded]) -> list[_Graded]:
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


def _build_parquet(con: duckdb.DuckDBPyConnection, graded: list[_Graded]) -> _Built:
    accepted = _first_accepted(graded)
    ids = [g.episode_id for g in accepted]
    episodes = {r[0]: r for r in _with_ids(con, ids, """
        SELECT e.episode_id, e.run_id, e.task_id, e.env_id, e.domain, e.feedback, e.sample, e.turns, e.reward,
               e.passed_first, e.passed_last, t.prompt, t.answer
        FROM episodes e LEFT JOIN tasks t USING (task_id) WHERE e.episode_id IN (SELECT episode_id FROM _export_ids)""")}
    signals: dict[tuple[str, int], dict[str, tuple[float | None, bool | None]]] = defaultdict(dict)
    for eid, turn, name, value, passed in _with_ids(con, ids, """
            SELECT episode_id, turn, name, max(value), bool_or(passed) FROM signals
            WHERE episode_id IN (SELECT episode_id FROM _export_ids) GROUP BY ALL"""):
        signals[(eid, turn)][name] = (value, passed)
    msgs = _messages(con, ids)
    built = _Built([])
    for g in accepted:
        e = episodes[g.episode_id]
        reply = msgs[g.episode_id][_answer_index(msgs[g.episode_id], g.turn)]
        data: dict[str, Any] = dict(zip(
            [c for c, _ in _EPISODE_COLUMNS],
            [*e[:11], g.turn, e[11], e[12], reply["content"] or "", reply["answer"]],
        ))
        for name, (value, passed) in sorted(signals[(g.episode_id, g.turn)].items()):
            data[f"{name}_value"], data[f"{name}_passed"] = value, passed
        built.rows.append(_Row("", [("row", g)], data))  # text: once all columns are known
    return built


def _dedup(rows: list[_Row], key: Callable[[_Row], Any]) -> tuple[list[_Row], int]:
    seen: set[Any] = set()
    out = []
    for r in rows:
        k = key(r)
        if k not in seen:
            seen.add(k)
            out.append(r)
    return out, len(rows) - len(out)


# ---- writing ------------------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _parquet_schema(rows: list[_Row]) -> pa.Schema:
    """Episode columns, then ``<signal>_value`` / ``<signal>_passed`` for every signal in the rows."""
    base = {c for c, _ in _EPISODE_COLUMNS}
    names = sorted({k for r in rows for k in r.data} - base, key=lambda c: (c.rsplit("_", 1)[0], c.endswith("_passed")))
    return pa.schema(_EPISODE_COLUMNS + [(c, pa.bool_() if c.endswith("_passed") else pa.float64()) for c in names])


def _fill_parquet(rows: list[_Row]) -> pa.Schema:
    """Give every row every column (None where its turn lacks a signal) and its canonical JSON."""
    schema = _parquet_schema(rows)
    for r in rows:
        r.data = {c: r.data.get(c) for c in schema.names}
        r.text = canonical_json(r.data)
    return schema


def _write_tmp(tmp: Path, fmt: str, rows: list[_Row], schema: pa.Schema | None) -> str:
    """Write the rows to ``tmp`` and sync it; return the sha256 of its bytes."""
    if fmt == "parquet":
        assert schema is not None
        pq.write_table(pa.Table.from_pylist([r.data for r in rows], schema=schema), tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
    else:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            for r in rows:
                f.write(r.text + "\n")
            f.flush()
            os.fsync(f.fileno())
    h = hashlib.sha256()
    with open(tmp, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _record(con: duckdb.DuckDBPyConnection, export_id: str, row: dict[str, Any], rows: list[_Row]) -> bool:
    """Insert the export and its items (in the caller's transaction); False if already recorded."""
    if con.execute("SELECT 1 FROM exports WHERE export_id = ?", [export_id]).fetchone():
        return False
    con.execute(f"INSERT INTO exports ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
    items: dict[str, list[Any]] = defaultdict(list)
    for i, r in enumerate(rows):
        h = sha256_text(r.text)
        for part, g in r.parts:
            for col, v in (("export_id", export_id), ("item", i), ("part", part), ("episode_id", g.episode_id),
                           ("turn", g.turn), ("task_id", g.task_id), ("domain", g.domain), ("content_hash", h)):
                items[col].append(v)
    con.register("_export_items", pa.table({
        "export_id": pa.array(items["export_id"], pa.string()), "item": pa.array(items["item"], pa.int64()),
        "part": pa.array(items["part"], pa.string()), "episode_id": pa.array(items["episode_id"], pa.string()),
        "turn": pa.array(items["turn"], pa.int32()), "task_id": pa.array(items["task_id"], pa.string()),
        "domain": pa.array(items["domain"], pa.string()), "content_hash": pa.array(items["content_hash"], pa.string()),
    }))
    try:
        con.execute("INSERT INTO export_items BY NAME SELECT * FROM _export_items")
    finally:
        con.unregister("_export_items")
    return True


# ---- the export ---------------------------------------------------------------------------


def export(
    store_path: str | Path,
    run: str,
    select: str,
    *,
    min_value: float | None = None,
    domains: Sequence[str] | None = None,
    format: str,
    out: str | Path,
    trajectory: str = "final",
) -> ExportResult:
    """Export run ``run``'s episodes accepted by signal ``select`` to ``out`` and record lineage.

    Raises :class:`ExportError` for bad input (unknown run, signal, domain, format; a missing
    output directory), :class:`NothingToExport` when the selection accepts nothing, and
    :class:`~agentsynth.store.StoreError` when the store cannot be opened (e.g. a running writer
    holds it). On any error no file is left at ``out`` and the store is unchanged.

    ``export_id`` is derived from the run, the selection, the format, the trajectory, the output
    path and the file's sha256, so repeating an identical export records it once.
    """
    store = Path(store_path)
    out_path = Path(out)
    _check_request(format, trajectory, min_value, out_path)
    if not store.exists():
        raise StoreError(f"no store at {store} (run `agentsynth run` first, or pass --store PATH)")
    con = connect(store, read_only=False)
    try:
        run_id = _resolve_run(con, run, store)
        _check_signal(con, run_id, run, select)
        dom_filter = _check_domains(con, run_id, run, domains)
        graded = _graded(con, run_id, select, min_value, dom_filter)
        how = f"passed {select!r}" if min_value is None else f"had {select!r} >= {min_value:g}"
        where = f" in domains {', '.join(dom_filter)}" if dom_filter else ""
        if not any(g.accepted for g in graded):
            raise NothingToExport(f"nothing to export: no ok episode of run {run!r}{where} {how}")
        if format == "sft":
            built = _build_sft(con, graded, trajectory)
            rows, dups = _dedup(built.rows, lambda r: r.text)
        elif format == "dpo":
            built = _build_dpo(con, graded)
            rows, dups = _dedup(built.rows, lambda r: r.text)
        else:
            built = _build_parquet(con, graded)
            rows, dups = _dedup(built.rows, lambda r: (r.data["task_id"], r.data["answer"]))
        if not rows:
            why = ("no task has both an accepted and a rejected answer" if format == "dpo"
                   else "every accepted episode used tools whose schemas cannot be rebuilt")
            tools = f" ({built.skipped_tool_episodes} tool-using episode(s) skipped)" if built.skipped_tool_episodes else ""
            raise NothingToExport(f"nothing to export as {format}: {why}{tools}")
        return _write_and_record(con, out_path, format, trajectory, rows, dups, built.skipped_tool_episodes, {
            "run_id": run_id, "signal": select, "min_value": min_value, "domain_filter": dom_filter,
        })
    finally:
        con.close()


def _write_and_record(con: duckdb.DuckDBPyConnection, out: Path, fmt: str, trajectory: str, rows: list[_Row],
                      dups: int, skipped_tools: int, sel: dict[str, Any]) -> ExportResult:
    path = out.resolve()
    tmp = path.with_name(path.name + ".tmp")
    renamed = False
    try:
        schema = _fill_parquet(rows) if fmt == "parquet" else None
        digest = _write_tmp(tmp, fmt, rows, schema)
        options = {"trajectory": trajectory} if fmt == "sft" else {}
        export_id = "x-" + sha256_text(canonical_json({
            **sel, "format": fmt, "options": options, "path": str(path), "sha256": digest}))[:12]
        domains = sorted({g.domain for r in rows for _, g in r.parts if g.domain is not None})
        record = {
            "export_id": export_id, "run_id": sel["run_id"], "signal": sel["signal"], "min_value": sel["min_value"],
            "domain_filter": None if sel["domain_filter"] is None else json.dumps(sel["domain_filter"]),
            "domains": json.dumps(domains), "format": fmt, "path": str(path), "rows": len(rows), "sha256": digest,
            "options": json.dumps({**options, "duplicates_dropped": dups, "tool_episodes_skipped": skipped_tools}),
            "created_at": utcnow(), "agentsynth_version": __version__,
        }
        with transaction(con):
            new = _record(con, export_id, record, rows)
            os.replace(tmp, path)  # last in the transaction: a failed insert leaves no file
            renamed = True
        _fsync_dir(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        if renamed:  # the commit itself failed after the rename: do not leave an unrecorded file
            path.unlink(missing_ok=True)
        raise
    return ExportResult(export_id, path, len(rows), digest, domains, dups, fmt, skipped_tools, already_recorded=not new)


__all__ = ["ExportError", "ExportResult", "NothingToExport", "canonical_json", "chat_message", "export", "sft_messages"]
