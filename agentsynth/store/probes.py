"""The ``probes`` table (``agentsynth probe``): writing a probe's rows, and reading the flags of
the latest probe of each environment × grader (shown by ``agentsynth envs`` and the audit)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb

from .._version import __version__
from ..signals import SignalType
from .clock import utcnow
from .connection import connect
from .runs import record_signal_types
from .transaction import transaction

COLUMNS = ("probe_id", "created_at", "env_id", "grader", "strategy", "kind", "n", "failures", "rate", "ci_low",
           "ci_high", "example", "flagged", "surface", "difficulty", "tasks", "judge_model", "agentsynth_version")


def check_writable(store: str | Path) -> None:
    """Open ``store`` for writing once (creating and upgrading it), so a probe fails before its work
    when the store cannot be written (locked, newer, not a store): :class:`StoreError`."""
    connect(store, read_only=False).close()


def save_probe(store: str | Path, rows: Sequence[Mapping[str, Any]], types: Iterable[SignalType]) -> None:
    """Add one probe's rows (dicts with the :data:`COLUMNS` but ``created_at`` and the version) and
    the probed graders' signal types, in one transaction: all or nothing."""
    con = connect(store, read_only=False)
    try:
        now = utcnow()
        with transaction(con):
            record_signal_types(con, types)
            con.executemany(f"INSERT INTO probes ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                            [[{**r, "created_at": now, "agentsynth_version": __version__}[c] for c in COLUMNS] for r in rows])
    finally:
        con.close()


def latest_flags(con: duckdb.DuckDBPyConnection, env_ids: Sequence[str] | None = None) -> dict[tuple[str, str], list[str]]:
    """(env_id, grader) -> the flags of the latest probe of that grader in that environment
    (``["hackable"]``, ``["brittle"]``, both, or ``[]`` when probed and not flagged; surface
    graders, never flagged, get ``["surface"]``); only environments in ``env_ids`` when given.
    Empty when the store holds no probes."""
    rows = con.execute(
        """
        WITH latest AS (
            SELECT env_id, grader, probe_id FROM probes
            WHERE $envs IS NULL OR list_contains($envs, env_id)
            QUALIFY row_number() OVER (PARTITION BY env_id, grader ORDER BY created_at DESC, probe_id DESC) = 1
        )
        SELECT p.env_id, p.grader,
               bool_or(p.flagged AND p.kind = 'hack') AS hackable,
               bool_or(p.flagged AND p.kind = 'brittle') AS brittle,
               bool_and(p.surface) AS surface
        FROM probes p JOIN latest USING (env_id, grader, probe_id)
        GROUP BY ALL
        """,
        {"envs": list(env_ids) if env_ids is not None else None},
    ).fetchall()
    out: dict[tuple[str, str], list[str]] = {}
    for env_id, grader, hackable, brittle, surface in rows:
        out[(env_id, grader)] = ["surface"] if surface else [f for f, on in (("hackable", hackable), ("brittle", brittle)) if on]
    return out


def describe_flags(flags: list[str] | None) -> str:
    """How a grader's probe flags read in a table: ``hackable``, ``brittle``, ``hackable, brittle``,
    ``ok`` (probed, not flagged), ``surface (not flagged)``; ``""`` when never probed."""
    if flags is None:
        return ""
    if flags == ["surface"]:
        return "surface (not flagged)"
    return ", ".join(flags) or "ok"
