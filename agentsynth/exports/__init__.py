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
  them are left out); ``"full"``: the conversation up to and including the accepted answer;
  ``"reference"``: the prompt and the environment's reference reply to the task in place of the
  model's answer (imitation of the reference: the loop's ``reference`` arm).
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

Modules: :mod:`.selection` reads what the export selects (run, signal, domains, graded turns,
messages); :mod:`.chat` builds OpenAI / TRL chat messages; :mod:`.formats` turns the selected
turns into sft / dpo / parquet rows; :mod:`.writing` writes the file and the lineage rows;
:mod:`.errors` holds the two errors. This module holds the public API and :func:`export`, which
checks the request, builds and de-duplicates the rows, writes the file atomically and records
its lineage in one transaction.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from .._version import __version__
from ..store.clock import utcnow
from ..store.connection import connect
from ..store.transaction import transaction
from .chat import chat_message, sft_messages
from .errors import ExportError, NothingToExport
from .formats import (
    FORMATS,
    Row,
    build_rows,
    canonical_json,
    dedup_key,
    fill_parquet,
    sha256_text,
)
from .formats import line_json as line_json
from .selection import check_domains, check_signal, graded_turns, resolve_run
from .writing import fsync_dir, record_lineage, write_tmp

TRAJECTORIES = ("final", "full", "reference")


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


def _dedup(rows: list[Row], key: Callable[[Row], Any]) -> tuple[list[Row], int]:
    """The rows with the first of each ``key`` kept, and how many were dropped."""
    seen: set[Any] = set()
    out = []
    for r in rows:
        k = key(r)
        if k not in seen:
            seen.add(k)
            out.append(r)
    return out, len(rows) - len(out)


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
    con = connect(store, read_only=False, create=False)
    try:
        run_id = resolve_run(con, run, store)
        check_signal(con, run_id, run, select)
        dom_filter = check_domains(con, run_id, run, domains)
        graded = graded_turns(con, run_id, select, min_value, dom_filter)
        how = f"passed {select!r}" if min_value is None else f"had {select!r} >= {min_value:g}"
        where = f" in domains {', '.join(dom_filter)}" if dom_filter else ""
        if not any(g.accepted for g in graded):
            raise NothingToExport(f"nothing to export: no ok episode of run {run!r}{where} {how}")
        built = build_rows(con, format, graded, trajectory)
        rows, dups = _dedup(built.rows, dedup_key(format))
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


def _write_and_record(con: duckdb.DuckDBPyConnection, out: Path, fmt: str, trajectory: str, rows: list[Row],
                      dups: int, skipped_tools: int, sel: dict[str, Any]) -> ExportResult:
    """Write ``out`` atomically (``.tmp``, sync, rename) and record its lineage in one transaction."""
    path = out.resolve()
    tmp = path.with_name(path.name + ".tmp")
    renamed = False
    try:
        schema = fill_parquet(rows) if fmt == "parquet" else None
        digest = write_tmp(tmp, fmt, rows, schema)
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
            new = record_lineage(con, export_id, record, rows)
            os.replace(tmp, path)  # last in the transaction: a failed insert leaves no file
            renamed = True
        fsync_dir(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        if renamed:  # the commit itself failed after the rename: do not leave an unrecorded file
            path.unlink(missing_ok=True)
        raise
    return ExportResult(export_id, path, len(rows), digest, domains, dups, fmt, skipped_tools, already_recorded=not new)


# line_json and sha256_text stay importable from here but, as before the split, are not in __all__.
__all__ = ["ExportError", "ExportResult", "NothingToExport", "canonical_json", "chat_message", "export", "sft_messages"]
