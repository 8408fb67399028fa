"""reasoning-gym: any of its ~100 procedural datasets as an agentsynth environment (optional extra).

``ReasoningGymEnv(task="leg_counting", task_config={...})`` draws a seed, builds the dataset with
``size=1`` and takes its entry: prompt = the question plus "end with 'Answer: <answer>'", answer = the
entry's answer. ``domain`` is the task's family (``reasoning_gym.<family>.<task>``, as reasoning-gym's
own ``category``). ``difficulty`` d applies the task's curriculum at global level d - 1 (then
``task_config`` on top); without a curriculum, or if its config is invalid, the defaults are used.
Truth: the dataset's ``score_answer`` on the final answer is 1.0, the answer read by
:mod:`agentsynth.answers` like every domain's (``Answer: 24.``, ``**Answer:**`` then the answer,
``\\boxed{24}``, ``$24$``, ``The answer is 24.``, ...: the best score over its readings); the entry
is rebuilt from the stored name, config and seed, so a stored task verifies in a fresh process;
scorers that raise or warn on garbage give False. ``raw_score`` records the raw score
(partial credit). No hint. Caveats (reasoning-gym 0.1.25): ``game_of_life_halting``'s scorer checks
``bool(answer) == bool(entry["answer"])`` on strings, so any non-empty reply passes; boxnet,
graph_color, propositional_logic, rubiks_cube and rush_hour have no reference (``answer`` is ""); jugs
at difficulty 2 sometimes draws an unsolvable puzzle whose reference its own scorer rejects.

Probe (``agentsynth probe``): a wrong answer is wrong by construction, never by the scorer's say (the
scorer is what is probed): an integer reference plus or minus one, and another task's reference
whose key (:meth:`TextEnv.canonical`: the final answer case-folded, spaces collapsed) differs from
this task's, except in :data:`SEVERAL_ANSWERS`, whose questions have several right answers that
another task's answer can be.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import warnings
from functools import lru_cache
from typing import Any

import numpy as np

from agentsynth import ProbeReplies, Task, TextEnv
from agentsynth.answers import answer_readings
from agentsynth.signals import Signal, grader

INSTRUCTION = ("\n\nEnd your reply with a line 'Answer: <answer>' (for an answer of several lines, put "
               "'Answer:' on its own line and the answer below it).")
SEVERAL_ANSWERS = frozenset({"jugs", "n_queens", "quantum_lock"})
"""Datasets where another task's reference can be a right answer (jugs: any moves the scorer's
simulation takes to the target; n_queens: any completion in ``valid_answers``; quantum_lock: any
button sequence of the reference's length reaching the target): the probe found their scorers
accepting other tasks' answers, and each accepted one solved the task."""
MAX_CHARS = 20_000  # longer candidates (and 4x the reference) are not scored: some scorers use sympy


def _rg():
    try:
        import reasoning_gym.factory as factory
    except ImportError as exc:
        raise ImportError("reasoning-gym is not installed: pip install 'agentsynth[reasoning-gym]'") from exc
    return factory


def _config(task: str, task_config: str, level: int | None) -> dict[str, Any]:
    """The dataset config: the curriculum at ``level`` (if any), then ``task_config`` (JSON) on top."""
    f, cfg = _rg(), {}
    if level is not None:
        cur = f.create_curriculum(task)
        cur.set_global_level(level)
        c = cur.generate_configuration()
        cfg = {k.name: getattr(c, k.name) for k in dataclasses.fields(c)}
    cfg.update(json.loads(task_config))
    return {k: v for k, v in cfg.items() if k not in ("seed", "size")}


@lru_cache(maxsize=128)
def _build(task: str, task_config: str, level: int | None, seed: int) -> tuple[Any, dict[str, Any]]:
    ds = _rg().create_dataset(task, size=1, seed=seed, **_config(task, task_config, level))
    return ds, ds[0]


def _jsonable(meta: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in meta.items():
        try:
            out[str(k)] = json.loads(json.dumps(v))
        except (TypeError, ValueError):
            pass
    return out


class ReasoningGymEnv(TextEnv):
    """One reasoning-gym dataset, verified by its own ``score_answer``."""

    name = "reasoning_gym"

    def __init__(self, *, task: str, task_config: dict[str, Any] | None = None, **kwargs: Any) -> None:
        f = _rg()
        if task not in f.DATASETS:
            close = difflib.get_close_matches(str(task), f.DATASETS, n=5, cutoff=0.5)
            some = f"close names: {', '.join(close)}" if close else f"e.g. {', '.join(sorted(f.DATASETS)[:5])}"
            raise ValueError(f"unknown reasoning-gym task {task!r}; {some} "
                             f"({len(f.DATASETS)} tasks in reasoning_gym.factory.DATASETS)")
        cls, config_cls = f.DATASETS[task]
        parts = cls.__module__.split(".")
        self.task_name, self.family = task, parts[1] if len(parts) >= 3 else "other"
        try:
            self.task_config = json.dumps(dict(task_config or {}), sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"task_config must be a JSON-serialisable dict: {exc}") from exc
        known = {k.name for k in dataclasses.fields(config_cls)} - {"seed", "size"}
        if set(task_config or {}) - known:
            raise ValueError(f"task_config for {task!r}: unknown keys {sorted(set(task_config) - known)}; "
                             f"known: {', '.join(sorted(known))}")
        levels = [int(kwargs.get("difficulty", 1)) - 1] if f.has_curriculum(task) else []
        errors = []
        for level in [*levels, None]:
            try:
                getattr(config_cls(**_config(task, self.task_config, level)), "validate", lambda: None)()
                break
            except Exception as exc:  # noqa: BLE001 - invalid curriculum level or task_config
                errors.append(exc)
        else:
            raise ValueError(f"reasoning-gym task {task!r}: invalid task_config: {errors[-1]!r}") from errors[-1]
        if errors:
            warnings.warn(f"{task}: curriculum level {levels[0]} is invalid ({errors[0]!r}); using the defaults",
                          stacklevel=2)
        self.level = level
        super().__init__(**kwargs)

    def make_task(self, prompt: str, answer: Any, **metadata: Any) -> Task:
        return dataclasses.replace(super().make_task(prompt, answer, **metadata), domain=self.family)

    def generate(self, rng: np.random.Generator) -> Task:
        seed = int(rng.integers(2**31))
        _, entry = _build(self.task_name, self.task_config, self.level, seed)
        answer = "" if entry["answer"] is None else entry["answer"]
        return self.make_task(entry["question"] + INSTRUCTION, answer, rg_task=self.task_name, rg_seed=seed,
                              rg_config=json.loads(self.task_config), rg_level=self.level,
                              rg_metadata=_jsonable(entry.get("metadata") or {}))

    def score(self, task: Task, answer: str) -> float:
        """The best ``score_answer`` over the readings of the final answer
        (:func:`agentsynth.answers.answer_readings`: its line, its paragraph and, when the reference
        spans lines, everything after the last answer mark or the whole reply without a mark; when
        the reference ends in a full stop, each also with its trailing full stop kept); 0.0 on
        errors. A one-line reference's answer ends with its paragraph: a critique or verdict after
        it is not fed to scorers that read letters anywhere (sokoban's moves)."""
        try:
            m = task.metadata
            ds, entry = _build(m["rg_task"], json.dumps(m["rg_config"], sort_keys=True), m["rg_level"], m["rg_seed"])
        except Exception:  # noqa: BLE001 - metadata not from this environment
            return 0.0
        if not task.prompt.startswith(entry["question"]):  # another reasoning-gym version: use what was stored
            entry = {"question": task.prompt, "answer": task.answer or None, "metadata": m.get("rg_metadata", {})}
        best = 0.0
        ref = str(entry["answer"] or "").strip()
        keep_stop = ref.endswith(".")  # a final "." is part of the answer only then
        to_end = "\n" in ref or not ref  # a one-line reference ends with its paragraph (none: may not)
        for cand in answer_readings(answer if isinstance(answer, str) else "", keep_stop, to_end):
            if len(cand) <= max(MAX_CHARS, 4 * len(task.answer)):
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        v = float(ds.score_answer(answer=cand, entry=entry))
                except Exception:  # noqa: BLE001 - some scorers raise on garbage
                    continue
                best = v if 0.0 <= v <= 1.0 and v > best else best
        return best

    def probe_replies(self, task: Task) -> ProbeReplies:
        """An integer reference plus or minus one is wrong, and so is another task's reference with
        another key (``single_answer``, except in :data:`SEVERAL_ANSWERS`); none for a task without
        a reference (its answer is "")."""
        a = task.answer.strip()
        if not a:
            return ProbeReplies()
        wrong = (str(int(a) + 1), str(int(a) - 1)) if re.fullmatch(r"-?\d{1,30}", a) else ()
        return ProbeReplies(wrong=wrong, single_answer=self.task_name not in SEVERAL_ANSWERS)

    def verify(self, task: Task, answer: str) -> bool:
        return self.score(task, answer) >= 1.0

    def scores(self):
        @grader("raw_score", source="verifier", openness="open", meta_level=1,
                description="reasoning-gym's score_answer on the final answer, in [0, 1]")
        def raw_score(ctx):
            v = self.score(ctx.task, ctx.answer)
            return Signal("raw_score", v, v >= 1.0)

        return [raw_score]
