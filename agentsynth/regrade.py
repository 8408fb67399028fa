"""Regrading: run graders over stored trajectories without calling the policy model.

Each grader is applied to every agent turn of the run's finished episodes, as it would have been
during the episode (same task, same conversation up to that turn), and its outcomes are added to
``signals`` (role ``score`` by default) with its labels in ``signal_types``. Rows already present
for (episode, turn, grader, role) are left alone, so regrading twice adds nothing twice.

Graders are named as ``module:attr`` (a :class:`~agentsynth.Grader`, or a factory called with no
arguments, e.g. ``rubrics:exact_match``), ``env:<name>`` (a grader of the episode's own
environment, e.g. ``env:format`` or ``env:hint``), or ``self_consistency`` (closed: does the
first-turn answer's key agree with a plurality key of the run's first-turn answers to the same task?
see :mod:`agentsynth.store.queries`), or ``keep_all`` (closed: accepts every answer, i.e. no
selection at all; the loop's ``keep-all`` arm selects with it).
Graders that call a model (judges, self-review) are not supported here yet.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from .env import TextEnv
from .registry import UnknownEnvironment, load_attr, resolve
from .signals import GradeContext, Grader, GraderError, Signal, SignalType, run_grader
from .store import runs as store_runs
from .store.connection import StoreError, connect
from .store.queries import turn_answers_sql
from .store.transaction import transaction
from .store.writer import insert_rows
from .tasks import Task

SELF_CONSISTENCY = SignalType(
    "self_consistency", "self", "closed", 2, True,
    "the first-turn answer agrees with the plurality of the model's first-turn answers to the task",
)


class KeepAll(Grader):
    """Accepts every answer: selecting with it keeps all the model produced (no information added)."""

    signal_type = SignalType("keep_all", "self", "closed", 2, False, "accepts every answer: no selection at all")

    def grade(self, ctx: GradeContext) -> Signal:
        return Signal(self.name, 1.0, True)


@dataclass
class RegradeResult:
    """What a regrade added, per grader."""

    run: str
    added: dict[str, int]
    skipped: dict[str, int]
    names: dict[str, str]  # the name each grader's outcomes are stored under (signals.name): exact for rubrics:exact_match


@dataclass
class _Turn:
    episode_id: str
    turn: int
    task: Task
    env_id: str
    env_config: dict[str, Any]
    messages: list[dict[str, Any]]  # up to and including the assistant's message of this turn


def _resolve_grader(ref: str) -> Grader | str:
    if ref == "self_consistency" or ref.startswith("env:"):
        return ref
    if ref == "keep_all":
        return KeepAll()
    try:
        obj = load_attr(ref)
    except UnknownEnvironment as exc:
        raise StoreError(f"--grader {ref}: {exc}".replace("environment", "grader")) from None
    if isinstance(obj, Grader):
        return obj
    if callable(obj):
        out = obj()
        if isinstance(out, Grader):
            return out
    raise StoreError(f"--grader {ref}: not a Grader or a factory of one")


def _turns(con: duckdb.DuckDBPyConnection, run_id: str) -> Iterable[_Turn]:
    rows = con.execute(
        """SELECT e.episode_id, e.env_id, e.env_config, t.task_id, t.env_id, t.domain, t.seed, t.prompt, t.answer, t.metadata,
                  list(struct_pack("position" := m.position, turn := m.turn, role := m.role, content := m.content) ORDER BY m.position)
           FROM episodes e JOIN tasks t USING (task_id) JOIN messages m USING (episode_id)
           WHERE e.run_id = ? AND e.status = 'ok' GROUP BY ALL ORDER BY e.episode_id""",
        [run_id],
    ).fetchall()
    for eid, env_id, env_config, _tid, t_env, domain, seed, prompt, answer, metadata, msgs in rows:
        task = Task(t_env, domain, seed, prompt, answer, json.loads(metadata) if metadata else {})
        convo: list[dict[str, Any]] = []
        for m in msgs:
            convo.append({"role": m["role"], "content": m["content"] or ""})
            if m["role"] == "assistant":
                yield _Turn(eid, m["turn"], task, env_id, json.loads(env_config or "{}"), list(convo))


def regrade(store: str | Path, run: str, graders: list[str], role: str = "score") -> RegradeResult:
    """Apply ``graders`` to run ``run`` in ``store``; return how many signals each added."""
    refs = [(g, _resolve_grader(g)) for g in graders]
    con = connect(store, read_only=False, create=False)
    try:
        row = con.execute("SELECT run_id FROM runs WHERE name = ?", [run]).fetchone()
        if row is None:
            raise StoreError(f"no run named {run!r} in {store}")
        run_id = row[0]
        turns = list(_turns(con, run_id))
        have = set(con.execute(
            "SELECT episode_id, turn, name FROM signals JOIN episodes USING (episode_id) WHERE run_id = ? AND role = ?",
            [run_id, role],
        ).fetchall())
        added: dict[str, int] = {}
        skipped: dict[str, int] = {}
        names: dict[str, str] = {}
        new_rows: list[tuple[Any, ...]] = []
        types: list[SignalType] = []
        for ref, g in refs:
            outcomes, st = _grade_all(ref, g, turns, con, run_id)
            types.append(st)
            names[ref] = st.name
            fresh = [(eid, turn, s) for eid, turn, s in outcomes if (eid, turn, s.name) not in have]
            added[ref], skipped[ref] = len(fresh), len(outcomes) - len(fresh)
            for eid, turn, s in fresh:
                have.add((eid, turn, s.name))
                new_rows.append((eid, turn, s.name, role, s.value, s.passed, s.feedback,
                                 json.dumps(s.details, sort_keys=True, default=str) if s.details else None, s.tokens))
        # in episode order, carrying each episode's episode_seq: one episode's signals stay findable by it
        seqs = dict(con.execute("SELECT episode_id, episode_seq FROM episodes WHERE run_id = ?", [run_id]).fetchall())
        new_rows.sort(key=lambda r: (seqs[r[0]] or 0, r[1]))
        with transaction(con):
            store_runs.record_signal_types(con, types)
            insert_rows(con, "signals", new_rows, seq=[seqs[r[0]] for r in new_rows])
        return RegradeResult(run, added, skipped, names)
    finally:
        con.close()


def _grade_all(ref: str, g: Grader | str, turns: list[_Turn], con: duckdb.DuckDBPyConnection,
               run_id: str) -> tuple[list[tuple[str, int, Signal]], SignalType]:
    if g == "self_consistency":
        return _self_consistency(con, run_id), SELF_CONSISTENCY
    if isinstance(g, str):  # env:<name>
        return _env_grader(g[4:], turns)
    return [(t.episode_id, t.turn, _grade(g, t)) for t in turns], g.signal_type


def _grade(g: Grader, t: _Turn) -> Signal:
    if getattr(g, "uses_model", False):
        raise StoreError(f"grader {g.name!r} calls a model; regrading with model graders is not supported yet")
    answer = t.messages[-1]["content"]
    try:
        return run_grader(g, GradeContext(t.task, answer, tuple(t.messages), t.turn))
    except GraderError as exc:
        raise StoreError(str(exc)) from None


def _env_grader(name: str, turns: list[_Turn]) -> tuple[list[tuple[str, int, Signal]], SignalType]:
    envs: dict[tuple[str, str], TextEnv] = {}
    out, st = [], None
    for t in turns:
        key = (t.env_id, json.dumps(t.env_config, sort_keys=True))
        env = envs.get(key)
        if env is None:
            try:
                env = envs[key] = resolve(t.env_id).cls(**t.env_config)
            except (UnknownEnvironment, TypeError, ValueError) as exc:
                raise StoreError(f"env:{name}: cannot rebuild environment {t.env_id}: {exc}") from None
        g = env.all_graders().get(name)
        if g is None:
            raise StoreError(f"env:{name}: environment {t.env_id} has no grader {name!r}; it has {', '.join(env.all_graders())}")
        st = g.signal_type
        out.append((t.episode_id, t.turn, _grade(g, t)))
    if st is None:
        raise StoreError(f"env:{name}: the run has no finished episodes to regrade")
    return out, st


def _self_consistency(con: duckdb.DuckDBPyConnection, run_id: str) -> list[tuple[str, int, Signal]]:
    rows = con.execute(
        f"SELECT episode_id, samples, self_consistent, plurality_share FROM ({turn_answers_sql('$runs')}) "
        "WHERE turn = 1 ORDER BY episode_id",
        {"runs": [run_id]},
    ).fetchall()
    out = []
    for eid, samples, ok, share in rows:
        if ok is None:
            out.append((eid, 1, Signal("self_consistency", 0.0, None, "", {"samples": samples})))
        else:
            out.append((eid, 1, Signal("self_consistency", float(ok), ok, "", {"samples": samples, "plurality_share": share})))
    return out
