"""The ``loops`` table: one row per step (loop, arm, seed, generation) of ``agentsynth loop``.

Each write is one short transaction on a connection opened for it, so runs, exports and
evaluations (which open the store themselves) are never blocked by the loop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .clock import utcnow
from .connection import StoreError, connect
from .transaction import transaction

PHASES = ("synthesized", "exported", "trained", "evaluated")
"""A step's phases in order; ``phase`` is the last one finished."""


@dataclass
class LoopStep:
    """One ``loops`` row."""

    loop: str
    arm: str
    seed: int
    generation: int
    phase: str
    spec_hash: str
    signal: str | None = None
    run_id: str | None = None
    export_id: str | None = None
    parent: str | None = None
    checkpoint: str | None = None
    model: str | None = None
    evaluation_ids: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def done(self, phase: str) -> bool:
        """Whether ``phase`` (one of :data:`PHASES`) is finished."""
        return PHASES.index(self.phase) >= PHASES.index(phase)


_COLS = ("loop", "arm", "seed", "generation", "signal", "phase", "run_id", "export_id", "parent", "checkpoint", "model",
         "evaluation_ids", "figures", "spec_hash", "updated_at")


def check_spec(store: Path, loop: str, spec_hash: str) -> None:
    """:class:`StoreError` if ``loop`` is stored with another spec."""
    if not store.exists():
        return
    con = connect(store, read_only=True)
    try:
        found = {r[0] for r in con.execute("SELECT DISTINCT spec_hash FROM loops WHERE loop = ?", [loop]).fetchall()}
    finally:
        con.close()
    if found - {spec_hash}:
        raise StoreError(f"loop {loop!r} is already stored in {store} with a different spec; give the loop another name")


def load_steps(store: Path, loop: str) -> dict[tuple[str, int, int], LoopStep]:
    """The stored steps of ``loop`` by (arm, seed, generation)."""
    if not store.exists():
        return {}
    con = connect(store, read_only=True)
    try:
        rows = con.execute(f"SELECT {', '.join(_COLS[:-1])} FROM loops WHERE loop = ?", [loop]).fetchall()  # noqa: S608
    finally:
        con.close()
    out = {}
    for r in rows:
        d = dict(zip(_COLS[:-1], r))
        d["evaluation_ids"] = json.loads(d["evaluation_ids"]) if d["evaluation_ids"] else []
        d["figures"] = json.loads(d["figures"]) if d["figures"] else {}
        step = LoopStep(**d)
        out[(step.arm, step.seed, step.generation)] = step
    return out


def save_step(store: Path, step: LoopStep) -> None:
    """Insert or replace ``step``'s row."""
    if step.phase not in PHASES:
        raise StoreError(f"unknown loop phase {step.phase!r}")
    values = [step.loop, step.arm, step.seed, step.generation, step.signal, step.phase, step.run_id, step.export_id,
              step.parent, step.checkpoint, step.model, json.dumps(step.evaluation_ids),
              json.dumps(step.figures, sort_keys=True, default=str), step.spec_hash, utcnow()]
    con = connect(store, read_only=False)
    try:
        with transaction(con):
            con.execute(f"INSERT OR REPLACE INTO loops ({', '.join(_COLS)}) VALUES ({', '.join('?' * len(_COLS))})",  # noqa: S608
                        values)
    finally:
        con.close()
