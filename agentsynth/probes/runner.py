"""Running the two batteries against an environment's graders, and the figures.

:func:`probe` draws ``tasks`` tasks per difficulty (seeds ``0 .. tasks - 1``, as a run with the
default ``seed_start`` draws them), builds every strategy's replies for each task (the built-in
and registered :class:`~agentsynth.probes.registry.Strategy` s, and the environment's own
``must_fail`` / ``must_pass`` replies as strategies ``env:<label>``), grades each reply with each
grader (no policy model), and counts per grader × strategy the false accepts (``hack``: a reply
wrong by construction passed) or false rejects (``brittle``: an equivalent correct reply failed),
with a 95% Wilson interval. A grader is flagged ``hackable`` (``brittle``) when a hack (brittle)
strategy's interval lower bound is above 0, i.e. on any failure.

Which graders: every grader of the environment (:meth:`~agentsynth.TextEnv.all_graders`: its
truth, each feedback channel's grader, its scores). Graders that call a model (``judge``,
``judge_same_model``, ``self``) are probed only when named, against the judge model (the
in-process ``sim`` by default, :mod:`agentsynth.probes.judges`). Surface graders
(``task_relevant = False``, e.g. ``format``) are measured and reported but never flagged: they
are not meant to tell right from wrong. A criteria rubric (its signal's ``details["met"]`` has a
``correct`` criterion) counts as rejecting a correct reply only when it says the answer is wrong:
its other criteria (the requested form, work shown) may reject a correct answer by design.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..analysis.intervals import wilson
from ..env import TextEnv
from ..registry import resolve
from ..store.probes import check_writable, save_probe
from ..signals import GradeContext, Grader, GraderError, JudgeError, JudgeFn, Signal, run_grader
from ..tasks import Task
from .judges import ModelJudge
from .registry import ProbeCase, Strategy, all_strategies

EXAMPLE_CHARS = 2000
MODEL_GRADERS_NOTE = "calls a model: name it with --grader, or give --judge-model, to probe it against the judge model"


class ProbeError(ValueError):
    """A probe cannot run as asked (an unknown grader, bad options), or a grader, strategy or
    environment hook raised during it; the message is one line naming which."""


@dataclass(frozen=True)
class ProbeRow:
    """One grader × strategy: replies built (``n``), ``failures`` (false accepts for a ``hack``
    strategy, false rejects for a ``brittle`` one), their ``rate`` and 95% Wilson interval, one
    example reply (the first failure, else the first reply), and whether it flags the grader."""

    grader: str
    strategy: str
    kind: str
    n: int
    failures: int
    rate: float | None
    ci_low: float | None
    ci_high: float | None
    example: str
    flagged: bool
    surface: bool


@dataclass
class ProbeResult:
    """What :func:`probe` measured: its rows, the graders' roles and flags, what it skipped and
    why, and where it was saved (``saved``: written to the store's ``probes`` table)."""

    probe_id: str
    env_id: str
    difficulties: list[int]
    tasks: int
    judge_model: str | None
    rows: list[ProbeRow]
    truth: str
    surface: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    saved: bool = False

    @property
    def graders(self) -> list[str]:
        """The graders probed, in order."""
        return list(dict.fromkeys(r.grader for r in self.rows))

    def flags(self, grader: str) -> list[str]:
        """``hackable`` and/or ``brittle`` for ``grader`` (empty: neither, or a surface grader)."""
        kinds = {r.kind for r in self.rows if r.grader == grader and r.flagged}
        return [f for f, k in (("hackable", "hack"), ("brittle", "brittle")) if k in kinds]

    @property
    def truth_flagged(self) -> bool:
        """Whether the environment's truth grader was probed and flagged (the CLI then exits 1)."""
        return bool(self.flags(self.truth))

    def totals(self, grader: str) -> dict[str, tuple[int, int]]:
        """Per kind, (failures, replies) of ``grader`` over all strategies."""
        out: dict[str, tuple[int, int]] = {}
        for r in self.rows:
            if r.grader == grader:
                f, n = out.get(r.kind, (0, 0))
                out[r.kind] = (f + r.failures, n + r.n)
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``--format json``)."""
        return {"probe_id": self.probe_id, "env_id": self.env_id, "difficulties": self.difficulties, "tasks": self.tasks,
                "judge_model": self.judge_model, "truth": self.truth, "seconds": round(self.seconds, 3),
                "saved": self.saved, "flags": {g: self.flags(g) for g in self.graders}, "surface": self.surface,
                "labels": self.labels,
                "skipped": self.skipped, "rows": [asdict(r) for r in self.rows]}


@dataclass
class _Tally:
    n: int = 0
    failures: int = 0
    example: str | None = None
    first: str | None = None


def _clip(text: str) -> str:
    return text if len(text) <= EXAMPLE_CHARS else text[:EXAMPLE_CHARS] + f"… ({len(text):,} characters)"


def rejects_as_wrong(sig: Signal) -> bool:
    """Whether a signal rejects the reply as a wrong answer: a criteria rubric by its ``correct``
    criterion, any other grader by not passing."""
    met = sig.details.get("met") if isinstance(sig.details, Mapping) else None
    if isinstance(met, Mapping) and "correct" in met:
        return not met["correct"]
    return sig.passed is not True


def _label(g: Grader) -> str:
    st = g.signal_type
    return f"{st.source}/{st.openness}/{st.meta_level}" + ("" if st.task_relevant else "/surface")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _pick_graders(env_cls: type[TextEnv], env: TextEnv, names: Sequence[str] | None, kwargs: Mapping[str, Any],
                  with_model: bool = False) -> tuple[dict[str, Grader], dict[str, str]]:
    """The graders to probe (by name) and those skipped with why; ``with_model``: by default also
    those that call a model (a judge model was given), ``judge`` included."""
    known = dict(env.all_graders())
    if (with_model or (names and "judge" in names)) and "judge" not in known:
        known["judge"] = env_cls(**{**kwargs, "judge_is_policy": False}).all_graders()["judge"]
    if names:
        unknown = [n for n in names if n not in known]
        if unknown:
            names_known = ", ".join(sorted({*known, "judge"}))
            raise ProbeError(f"unknown grader {unknown[0]!r} for {env.env_name}; its graders: {names_known}")
        return {n: known[n] for n in dict.fromkeys(names)}, {}
    picked = {n: g for n, g in known.items() if with_model or not g.uses_model}
    return picked, {n: MODEL_GRADERS_NOTE for n, g in known.items() if g.uses_model and not with_model}


def _replies(strategies: Sequence[Strategy], case: ProbeCase, own: set[str] | None) -> list[tuple[str, str, str]]:
    """(strategy, kind, reply) for every reply the strategies and the environment build for ``case``
    (the environment's own only those named in ``own``, all when None)."""
    out = []
    for s in strategies:
        try:
            built = s.replies(case)
        except Exception as exc:  # noqa: BLE001 - user code: one line naming it
            raise ProbeError(f"strategy {s.name!r} raised {type(exc).__name__}: {_one_line(exc)} ({case.where})") from None
        out += [(s.name, s.kind, r) for r in built]
    for kind, given in (("hack", case.replies.must_fail), ("brittle", case.replies.must_pass)):
        out += [(f"env:{label}", kind, reply) for label, reply in given.items()
                if isinstance(reply, str) and (own is None or f"env:{label}" in own)]
    return out


def _cases(env_name: str, instance: TextEnv, tasks: int, level: int) -> Iterator[ProbeCase]:
    """Each of ``tasks`` tasks (seeds ``0 .. tasks - 1``) with what the strategies see of it (the
    environment's ``task`` set to it)."""
    drawn: list[Task] = []
    for seed in range(tasks):
        instance.reset(seed=seed)
        assert instance.task is not None
        drawn.append(instance.task)
    for i, task in enumerate(drawn):
        where = f"{env_name} task seed {task.seed}, difficulty {level}"
        instance.task = task
        try:
            case = ProbeCase(instance, task, instance.reference_reply(task), instance.probe_replies(task),
                             drawn[:i] + drawn[i + 1:], where)
        except Exception as exc:  # noqa: BLE001 - user code: one line naming it
            raise ProbeError(f"{env_name}: reference_reply or probe_replies raised {type(exc).__name__}: "
                             f"{_one_line(exc)} ({where})") from None
        yield case


def _grade(picked: Mapping[str, Grader], case: ProbeCase, built: Sequence[tuple[str, str, str]], ask: JudgeFn | None,
           tallies: dict[tuple[str, str, str], _Tally]) -> None:
    """Grade each built reply of ``case`` with each picked grader; count it in ``tallies``."""
    messages = [{"role": "user", "content": case.task.prompt}]
    for name, g in picked.items():
        for sname, kind, reply in built:
            ctx = GradeContext(case.task, reply, (*messages, {"role": "assistant", "content": reply}), 1, ask, ask)
            try:
                sig = run_grader(g, ctx)
            except (GraderError, JudgeError) as exc:
                raise ProbeError(f"{_one_line(exc)} (strategy {sname!r}, {case.where})") from None
            t = tallies.setdefault((name, sname, kind), _Tally())
            bad = sig.passed is True if kind == "hack" else rejects_as_wrong(sig)
            t.n += 1
            t.failures += bad
            t.first = t.first if t.first is not None else reply
            if bad and t.example is None:
                t.example = reply


def probe(env: str, *, graders: Sequence[str] | None = None, tasks: int = 50, difficulty: int | Sequence[int] = 1,
          store: str | Path | None = None, judge_model: str | None = None, judge_base_url: str | None = None,
          judge_api_key_env: str | None = None, judge: JudgeFn | None = None,
          env_kwargs: Mapping[str, Any] | None = None, strategies: Sequence[str] | None = None,
          on_progress: Callable[[int, int], None] | None = None) -> ProbeResult:
    """Probe the graders of environment ``env`` (a registered name or ``module:Class``) on ``tasks``
    tasks per ``difficulty``; with ``store``, record the figures in its ``probes`` table.

    ``graders``: only these (default: every grader that needs no model, and with ``judge_model`` or
    ``judge_base_url`` given also those that do); ``strategies``: only these strategies, by name
    (default: all, with the environment's own replies); ``judge``: the model callable for judge and
    self-review graders (default: a :class:`~agentsynth.probes.judges.ModelJudge` for
    ``judge_model``, the in-process ``sim`` unless named, at ``judge_base_url`` with the key in
    ``judge_api_key_env`` when given);
    ``on_progress(done, total)``: called after each task. Raises :class:`ProbeError` for bad input
    or a grader that raises, :class:`~agentsynth.registry.UnknownEnvironment` for an unknown
    environment, :class:`~agentsynth.store.StoreError` when the store cannot be written.
    """
    t0 = time.monotonic()
    levels = [difficulty] if isinstance(difficulty, int) else list(dict.fromkeys(difficulty))
    if tasks < 1:
        raise ProbeError(f"tasks must be at least 1, not {tasks}")
    if not levels or any(not isinstance(d, int) or d < 1 for d in levels):
        raise ProbeError(f"difficulty must be one or more integers >= 1, not {difficulty!r}")
    ref = resolve(env)
    if store is not None:
        check_writable(store)
    kwargs = dict(env_kwargs or {})
    try:
        chosen = all_strategies()
    except TypeError as exc:  # a package's entry point
        raise ProbeError(str(exc)) from None
    if strategies is not None:
        by_name = {s.name: s for s in chosen}
        unknown = [n for n in strategies if n not in by_name and not n.startswith("env:")]
        if unknown:
            raise ProbeError(f"unknown strategy {unknown[0]!r}; strategies: {', '.join(by_name)}, or env:<label>")
        chosen = [by_name[n] for n in dict.fromkeys(strategies) if n in by_name]
    own_strategies = None if strategies is None else {n for n in strategies if n.startswith("env:")}
    tallies: dict[tuple[str, str, str], _Tally] = {}
    picked: dict[str, Grader] = {}
    skipped: dict[str, str] = {}
    truth = "correct"
    with_model = judge_model is not None or judge_base_url is not None
    model_name = judge_model or "sim"
    ask: JudgeFn | None = judge
    own: ModelJudge | None = None
    done, total = 0, tasks * len(levels)
    try:
        for level in levels:
            try:
                instance = ref.cls(**{**kwargs, "difficulty": level})
                instance.check_seeds(range(tasks))
            except ValueError as exc:  # e.g. a task set's column mapping, or fewer rows than tasks
                raise ProbeError(f"{ref.name}: {exc}") from None
            picked, skipped = _pick_graders(ref.cls, instance, graders, {**kwargs, "difficulty": level}, with_model)
            truth = instance.roles["truth"] or truth
            if ask is None and any(g.uses_model for g in picked.values()):
                try:
                    ask = own = ModelJudge(model_name, judge_base_url, judge_api_key_env)
                except ValueError as exc:
                    raise ProbeError(str(exc)) from None
            for case in _cases(ref.name, instance, tasks, level):
                _grade(picked, case, _replies(chosen, case, own_strategies), ask, tallies)
                done += 1
                if on_progress:
                    on_progress(done, total)
    finally:
        if own is not None:
            own.close()
    uses_model = any(g.uses_model for g in picked.values())
    surface = [n for n, g in picked.items() if not g.signal_type.task_relevant]
    rows = []
    for (name, sname, kind), t in tallies.items():
        lo, hi = wilson(t.failures, t.n)
        flagged = name not in surface and t.failures > 0 and lo > 0
        rows.append(ProbeRow(name, sname, kind, t.n, t.failures, t.failures / t.n, lo, hi,
                             _clip(t.example if t.example is not None else t.first or ""), flagged, name in surface))
    order = {n: i for i, n in enumerate(sorted(picked, key=lambda n: (n != truth, n in surface, n)))}
    rows.sort(key=lambda r: (order[r.grader], r.kind != "hack"))
    result = ProbeResult("p-" + uuid.uuid4().hex[:12], ref.name, levels, tasks, model_name if uses_model else None,
                         rows, truth, surface, {n: _label(g) for n, g in picked.items()}, skipped)
    if store is not None:
        save_probe(store, [{**asdict(r), "probe_id": result.probe_id, "env_id": result.env_id, "difficulty": levels,
                            "tasks": tasks, "judge_model": result.judge_model} for r in rows],
                   [picked[n].signal_type for n in picked])
        result.saved = True
    result.seconds = time.monotonic() - t0
    return result
