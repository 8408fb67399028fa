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

Exports stream: DuckDB selects the turns (graded, each episode's first accepted turn, parquet's
duplicates) chunk by chunk of the run into a temp table (:mod:`.staging`), and the rows are built,
de-duplicated and written, and their lineage staged, one batch of ``batch_size`` episodes (dpo:
whole tasks) at a time, with DuckDB held to a fixed memory budget; so memory is bounded by the
batch, not by the run. sft/dpo duplicates are found by the sha256 of the line (a set of 32-byte
digests: exact, ~100 bytes per row written); the file does not depend on the batch size.

Modules: :mod:`.selection` reads what the export selects (run, signal, domains, chunks of the
run, messages); :mod:`.staging` stages it in SQL and hands it out in batches; :mod:`.chat` builds
OpenAI / TRL chat messages; :mod:`.formats` turns a batch of selected turns into sft / dpo /
parquet rows; :mod:`.writing` writes the file and stages and records the lineage rows;
:mod:`.errors` holds the two errors. This module holds the public API and :func:`export`, which
checks the request, streams the rows to the file, and records its lineage and renames the file
in one transaction.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from .._version import __version__
from ..store.clock import utcnow
from ..store.connection import connect
from ..store.transaction import transaction
from . import staging
from .chat import chat_message, sft_messages
from .errors import ExportError, NothingToExport
from .formats import (
    FORMATS,
    RowBuilder,
    canonical_json,
    parquet_schema,
    row_digest,
    sha256_text,
)
from .formats import line_json as line_json
from .selection import check_domains, check_signal, resolve_run
from .staging import Selection
from .writing import FileWriter, Lineage, fsync_dir

TRAJECTORIES = ("final", "full", "reference")
BATCH_SIZE = 2_000  # episodes built per batch (dpo: whole tasks, about as many episodes)


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


def _check_request(fmt: str, trajectory: str, min_value: float | None, out: Path, batch_size: int) -> None:
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    if trajectory not in TRAJECTORIES:
        raise ExportError(f"unknown trajectory {trajectory!r}; choose from {', '.join(TRAJECTORIES)}")
    if fmt != "sft" and trajectory != "final":
        raise ExportError("--trajectory applies to --format sft only")
    if min_value is not None and not math.isfinite(min_value):
        raise ExportError(f"--min must be a finite number, got {min_value}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ExportError(f"batch_size must be a positive integer, got {batch_size!r}")
    if out.is_dir():
        raise ExportError(f"--out {out} is a directory; give a file path")
    if not out.parent.is_dir():
        raise ExportError(f"output directory {out.parent} does not exist")


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
    batch_size: int = BATCH_SIZE,
) -> ExportResult:
    """Export run ``run``'s episodes accepted by signal ``select`` to ``out`` and record lineage.

    Raises :class:`ExportError` for bad input (unknown run, signal, domain, format; a missing
    output directory), :class:`NothingToExport` when the selection accepts nothing, and
    :class:`~agentsynth.store.StoreError` when the store cannot be opened (e.g. a running writer
    holds it). On any error no file is left at ``out`` and the store is unchanged.

    The rows are built and written ``batch_size`` episodes at a time (dpo: whole tasks, about
    ``batch_size`` episodes), the run is selected chunk by chunk and DuckDB's memory is capped
    while the export runs: memory is bounded by the batch, not the run. The file and its lineage
    are the same whatever the batch size.

    ``export_id`` is derived from the run, the selection, the format, the trajectory, the output
    path and the file's sha256, so repeating an identical export records it once.
    """
    store = Path(store_path)
    out_path = Path(out)
    _check_request(format, trajectory, min_value, out_path, batch_size)
    con = connect(store, read_only=False, create=False)
    try:
        with staging.memory_budget(con, staging.DUCKDB_MEMORY_MIB):
            return _export(con, store, run, select, min_value, domains, format, out_path, trajectory, batch_size)
    finally:
        con.close()


def _export(con: duckdb.DuckDBPyConnection, store: Path, run: str, select: str, min_value: float | None,
            domains: Sequence[str] | None, fmt: str, out: Path, trajectory: str, batch_size: int) -> ExportResult:
    """:func:`export` on the open store."""
    run_id = resolve_run(con, run, store)
    check_signal(con, run_id, run, select, staging.CHUNK_EPISODES)
    dom_filter = check_domains(con, run_id, run, domains)
    selection = Selection(con, fmt, run_id, select, min_value, dom_filter, batch_size)
    how = f"passed {select!r}" if min_value is None else f"had {select!r} >= {min_value:g}"
    where = f" in domains {', '.join(dom_filter)}" if dom_filter else ""
    nothing = f"nothing to export: no ok episode of run {run!r}{where} {how}"
    return _stream(con, out, fmt, trajectory, selection, nothing, {
        "run_id": run_id, "signal": select, "min_value": min_value, "domain_filter": dom_filter,
    })


def _stream(con: duckdb.DuckDBPyConnection, out: Path, fmt: str, trajectory: str, selection: Selection,
            nothing: str, sel: dict[str, Any]) -> ExportResult:
    """Build, de-duplicate and write the rows batch by batch to ``out``'s ``.tmp`` while staging
    their lineage (temp tables, outside any transaction: replaced chunks are freed at once), sync
    the file, then in one transaction record the export and its items and rename the file.
    :class:`NothingToExport` if no row (message ``nothing`` when no episode was accepted)."""
    path = out.resolve()
    tmp = path.with_name(path.name + ".tmp")
    schema = parquet_schema(selection.signals()) if fmt == "parquet" else None
    builder = RowBuilder(con, fmt, trajectory, schema)
    seen: set[bytes] = set()  # sha256 of every sft/dpo line written (parquet: de-duplicated in SQL)
    dups, skipped, domains = 0, 0, set()
    lineage = Lineage(con)
    renamed = False
    try:
        with FileWriter(tmp, fmt, schema) as writer:
            for graded in selection.batches():
                built = builder.build(graded)
                skipped += built.skipped_tool_episodes
                kept = []
                for r in built.rows:
                    digest = row_digest(r)
                    if fmt != "parquet":
                        if digest in seen:
                            dups += 1
                            continue
                        seen.add(digest)
                    kept.append((r, digest.hex()))
                    domains.update(g.domain for _, g in r.parts if g.domain is not None)
                writer.write(r for r, _ in kept)
                lineage.add(kept)
            dups += selection.duplicates
            if selection.accepted_episodes == 0:
                raise NothingToExport(nothing)
            if lineage.rows == 0:
                why = ("no task has both an accepted and a rejected answer" if fmt == "dpo"
                       else "every accepted episode used tools whose schemas cannot be rebuilt")
                tools = f" ({skipped} tool-using episode(s) skipped)" if skipped else ""
                raise NothingToExport(f"nothing to export as {fmt}: {why}{tools}")
            sha = writer.finish()
        options = {"trajectory": trajectory} if fmt == "sft" else {}
        export_id = "x-" + sha256_text(canonical_json({
            **sel, "format": fmt, "options": options, "path": str(path), "sha256": sha}))[:12]
        record = {
            "export_id": export_id, "run_id": sel["run_id"], "signal": sel["signal"], "min_value": sel["min_value"],
            "domain_filter": None if sel["domain_filter"] is None else json.dumps(sel["domain_filter"]),
            "domains": json.dumps(sorted(domains)), "format": fmt, "path": str(path), "rows": lineage.rows,
            "sha256": sha, "options": json.dumps({**options, "duplicates_dropped": dups, "tool_episodes_skipped": skipped}),
            "created_at": utcnow(), "agentsynth_version": __version__,
        }
        with transaction(con):
            new = lineage.record(export_id, record)
            os.replace(tmp, path)  # last in the transaction: a failed insert leaves no file
            renamed = True
        fsync_dir(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        if renamed:  # the commit itself failed after the rename: do not leave an unrecorded file
            path.unlink(missing_ok=True)
        raise
    finally:
        builder.close()
    return ExportResult(export_id, path, lineage.rows, sha, sorted(domains), dups, fmt, skipped,
                        already_recorded=not new)


# line_json and sha256_text stay importable from here but, as before the split, are not in __all__.
__all__ = ["ExportError", "ExportResult", "NothingToExport", "canonical_json", "chat_message", "export", "sft_messages"]
