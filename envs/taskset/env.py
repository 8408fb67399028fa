"""``TaskSetEnv``: a fixed set of questions (a file) as an environment.

In a spec, ``id = "tasks:PATH"`` with the column mapping in ``kwargs``; in Python
:meth:`TaskSetEnv.from_file`, or a subclass setting ``path`` and overriding :meth:`render_prompt`
(or ``prompt_template``), :meth:`answer_key` or :meth:`hint`. The split and the seed order are
:mod:`envs.taskset.table`'s; the file formats :mod:`envs.taskset.source`'s.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from agentsynth.env import ProbeReplies, TextEnv
from agentsynth.signals import Grader
from agentsynth.spec import EVAL_SEED_START
from agentsynth.tasks import Task

from . import graders as g
from .source import MISSING, TaskSetError
from .table import TaskTable, open_table

DEFAULT_HELD_OUT = 0.2


def _kind(v: Any) -> str:
    return "null" if v is None else "a number" if isinstance(v, (int, float)) else f"a {type(v).__name__}"


def part_of(seed: int) -> tuple[str, int]:
    """The split part and position a task seed draws: seeds below
    :data:`~agentsynth.spec.EVAL_SEED_START` the train part, seeds from it the held-out part."""
    return ("held_out", seed - EVAL_SEED_START) if seed >= EVAL_SEED_START else ("train", seed)


class TaskSetEnv(TextEnv):
    """A task set: one task per row of a JSONL, CSV or Parquet file or a saved ``datasets`` directory.

    Keyword arguments (the column mapping; all but ``path`` optional; a column is named as in the file):
        path: the file (relative: from the working directory); a subclass may set it as a class attribute.
        prompt: the prompt column (default ``prompt``); its text, or ``template`` filled from the row, is the prompt.
        answer: the answer column (default ``answer``; numbers are written as text). Required by the
            ``exact``, ``normalized`` and ``numeric`` graders unless a subclass overrides :meth:`answer_key`.
        id: a column of row ids, kept in the task's metadata as ``id``.
        metadata: columns copied into the task's metadata.
        grader: ``exact``, ``normalized`` (default), ``numeric``, ``unit_tests`` (needs ``tests``),
            ``criteria`` (needs ``rubric``), ``judge``, or ``module:attr`` (a Grader or a factory of one).
        domain: the tasks' domain (default: the task set's name); ``domain_column``: a column holding it per row.
        tests, rubric, hint: columns of unit tests, criteria and hints (a hint column offers the ``hint`` channel).
        template: a prompt template, ``str.format`` fields naming columns (``"{question}\\n\\nEnd with 'Answer: <number>'."``).
        held_out: the share of distinct questions held out for ``agentsynth eval`` (default 0.2).
        shuffle_seed: salts the order in which seeds draw rows (default 0).
        name: the task set's name (tasks' ``env_id``; default: the file's stem).
    Other keywords (``feedback``, ``max_turns``, ...) are :class:`~agentsynth.TextEnv`'s.
    """

    name: ClassVar[str] = "tasks"
    path: ClassVar[str | None] = None
    prompt_template: ClassVar[str | None] = None
    sim_solver = "envs.taskset_sim:word_problem"

    def __init__(self, *, path: str | None = None, prompt: str = "prompt", answer: str | None = "answer",
                 id: str | None = None, metadata: Sequence[str] = (), grader: str = "normalized",  # noqa: A002
                 domain: str | None = None, domain_column: str | None = None, tests: str | None = None,
                 rubric: str | None = None, hint: str | None = None, template: str | None = None,
                 held_out: float = DEFAULT_HELD_OUT, shuffle_seed: int = 0, name: str | None = None,
                 judge_is_policy: bool = True, **kwargs: Any) -> None:
        path = path or type(self).path
        if not path:
            raise TaskSetError("a task set needs a path: TaskSetEnv(path=...), or 'tasks:PATH' as the environment id")
        if not 0.0 <= float(held_out) < 1.0:
            raise TaskSetError(f"held_out must be in [0, 1), not {held_out}")
        if isinstance(metadata, str):
            metadata = [metadata]
        self.file = str(path)
        self.template = template if template is not None else type(self).prompt_template
        self.prompt_column, self.answer_column, self.id_column = prompt, answer or None, id
        self.metadata_columns = list(metadata)
        self.grader_name = grader
        self.domain_column, self.tests_column, self.rubric_column, self.hint_column = domain_column, tests, rubric, hint
        self._grader = g.load_grader(grader)
        self._judge = g.judge_grader(judge_is_policy) if grader in g.MODEL_GRADERS else None
        self._set_name = name or _stem(self.file)
        self._domain = domain or self._set_name
        self.table: TaskTable = self._open(float(held_out), int(shuffle_seed))
        if self._judge is not None:
            kwargs.setdefault("truth", self._judge.name)
        super().__init__(judge_is_policy=judge_is_policy, **kwargs)

    # ---- opening: the mapping checked against the file -------------------------------------
    def _fields(self) -> list[str]:
        if not self.template:
            return [self.prompt_column]
        try:
            names = [f for _, f, _, _ in string.Formatter().parse(self.template) if f]
        except ValueError as exc:
            raise TaskSetError(f"template {self.template!r}: {exc}") from None
        return list(dict.fromkeys(n.split(".")[0].split("[")[0] for n in names)) or [self.prompt_column]

    def _needs_answer(self) -> bool:
        return type(self).answer_key is TaskSetEnv.answer_key and (
            self.grader_name in g.NEEDS_ANSWER or ":" in self.grader_name)

    def _open(self, held_out: float, shuffle_seed: int) -> TaskTable:
        content = self._fields()
        needed = {c: why for c, why in (("answer", self.answer_column), ("tests", self.tests_column),
                                        ("rubric", self.rubric_column)) if why}
        if self._needs_answer() and not self.answer_column:
            raise TaskSetError(f"grader {self.grader_name!r} needs an answer column: set answer = COLUMN")
        for kw, col in g.NEEDS_COLUMN.items():
            if self.grader_name == kw and not getattr(self, f"{col}_column"):
                raise TaskSetError(f"grader {kw!r} needs a {col} column: set {col} = COLUMN")
        checked = list(needed.values())
        mapped = {"prompt" if not self.template else "template": content, "answer": [self.answer_column],
                  "id": [self.id_column], "metadata": self.metadata_columns, "domain_column": [self.domain_column],
                  "tests": [self.tests_column], "rubric": [self.rubric_column], "hint": [self.hint_column]}

        def check_columns(have: list[str]) -> str | None:
            for kw, cols in mapped.items():
                for c in cols:
                    if c and have and c not in have:
                        role = "" if kw == c else f" ({kw})"
                        return (f"column {c!r}{role} is not in the file; its columns: {', '.join(have)}"
                                + (f"; map yours: {kw} = COLUMN" if kw in ("prompt", "answer") else ""))
            return None

        def content_problem(c: str, v: Any) -> str | None:
            if v is MISSING:
                return f"no column {c!r}"
            if not isinstance(v, str) and (not self.template or v is None):
                return f"column {c!r} is {_kind(v)}, not text"
            if isinstance(v, str) and not self.template and (not v or v.isspace()):
                return f"column {c!r} is empty"
            return None

        def other_problem(c: str, v: Any) -> str | None:
            if v is MISSING:
                return f"no column {c!r}"
            if c == self.answer_column:
                if v is None or (isinstance(v, str) and (not v or v.isspace())):
                    return f"column {c!r} is empty" if self._needs_answer() else None
                if not isinstance(v, (str, int, float)) or isinstance(v, bool):
                    return f"column {c!r} is {_kind(v)}, not text or a number"
            elif c == self.tests_column and (why := g.tests_problem(v)):
                return f"column {c!r} {why}"
            elif c == self.rubric_column:
                try:
                    g.criteria_of(v)
                except ValueError as exc:
                    return f"column {c!r} {exc}"
            return None

        def check(cols: list[list[Any]]) -> tuple[int, str] | None:
            """The first row of a batch at fault (quick tests first: rows are usually fine)."""
            found: list[tuple[int, str]] = []
            for c, values in zip(content, cols):
                fine = (lambda v: v is not None and v is not MISSING) if self.template else (
                    lambda v: type(v) is str and v and not v.isspace())
                bad = next((i for i, v in enumerate(values) if not fine(v)), None)
                if bad is not None and (why := content_problem(c, values[bad])):
                    found.append((bad, why))
            for c, values in zip(checked, cols[len(content):]):
                simple = c == self.answer_column
                for i, v in enumerate(values):
                    if simple and (type(v) is int or (type(v) is str and v and not v.isspace())):
                        continue
                    if why := other_problem(c, v):
                        found.append((i, why))
                        break
            return min(found) if found else None

        return open_table(self.file, columns=checked, content=content, held_out=held_out,
                          shuffle_seed=shuffle_seed, check=check, check_columns=check_columns)

    # ---- what a subclass may override ------------------------------------------------------
    def render_prompt(self, row: dict[str, Any]) -> str:
        """The prompt of a row: ``template`` filled from the row, else the prompt column."""
        if self.template:
            return self.template.format(**row)
        return str(row[self.prompt_column])

    def answer_key(self, row: dict[str, Any]) -> str:
        """The reference answer of a row: the answer column as text (numbers without a trailing ``.0``)."""
        v = row.get(self.answer_column) if self.answer_column else None
        if v is None:
            return ""
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        return str(v).strip()

    # ---- TextEnv ---------------------------------------------------------------------------
    @property
    def env_name(self) -> str:
        """The task set's name (``name``, default the file's stem)."""
        return self._set_name

    def offers_hint(self) -> bool:
        """A hint column, or a subclass's own :meth:`hint`."""
        return bool(self.hint_column) or type(self).hint is not TaskSetEnv.hint

    def hint(self, task: Task, answer: str) -> str | None:
        """The row's hint column (shown on a wrong answer), if mapped."""
        return task.metadata.get("hint") or None

    def verify(self, task: Task, answer: str) -> bool:
        """The named grader; ``criteria``: every criterion of the rubric column met; ``judge``:
        a normalized match with the answer column (the judge itself is the truth grader)."""
        if self.grader_name == "criteria":
            return g.criteria_met(task.metadata.get("rubric"), answer)
        if self._grader is None:
            return bool(task.answer) and g.passes(g.NAMED["normalized"](), task, answer)
        return g.passes(self._grader, task, answer)

    def scores(self) -> Sequence[Grader]:
        """The judge, when it is the grader."""
        return [self._judge] if self._judge is not None else []

    def check_seeds(self, seeds: range) -> None:
        """Every seed must name a row of its part: no cycling, a clear error instead."""
        if not len(seeds):
            return
        part, first = part_of(seeds.start)
        last = part_of(seeds[-1])[1]
        size = self.table.size(part)
        if part_of(seeds[-1])[0] != part or last >= size:
            which = "train part" if part == "train" else "held-out part"
            raise ValueError(
                f"{len(seeds)} tasks from position {first} need {first + len(seeds)} rows of the {which}, which holds "
                f"{size} of {self.table.rows} rows (held_out = {self.table.key.held_out:g}); ask for at most "
                f"{max(size - first, 0)} tasks")

    def generate(self, rng: np.random.Generator) -> Task:
        """The row this seed names (see :func:`part_of`); without a seed, a random train row."""
        seed = self._seed
        if seed < 0:
            seed = int(rng.integers(self.table.size("train")))
        part, position = part_of(seed)
        if position >= self.table.size(part):
            raise ValueError(f"seed {seed}: the {part.replace('_', '-')} part holds {self.table.size(part)} rows")
        index, row = self.table.row(part, position)
        meta: dict[str, Any] = {"difficulty": self.difficulty, "row": index, "split": part}
        if self.id_column:
            meta["id"] = row.get(self.id_column)
        meta.update({c: row.get(c) for c in self.metadata_columns})
        for key, col in (("hint", self.hint_column), ("rubric", self.rubric_column)):
            if col:
                meta[key] = g.as_json(row.get(col)) if key == "rubric" else row.get(col)
        if self.tests_column:
            meta.update(g.as_json(row.get(self.tests_column)))
        domain = str(row.get(self.domain_column) or self._domain) if self.domain_column else self._domain
        return Task(self._set_name, domain, self._seed, self.render_prompt(row), self.answer_key(row), meta)

    def probe_replies(self, task: Task) -> ProbeReplies:
        """Wrong answers by construction for numeric answers (off by one, negated, tenfold)."""
        try:
            v = float(task.answer)
        except ValueError:
            return ProbeReplies(single_answer=self.grader_name in g.NEEDS_ANSWER)
        fmt = (lambda x: str(int(x))) if v.is_integer() else (lambda x: f"{x:g}")
        wrong = tuple(dict.fromkeys(fmt(x) for x in (v + 1, v - 1, -v if v else 1, v * 10 if v else 2) if x != v))
        return ProbeReplies(wrong=wrong, single_answer=self.grader_name in g.NEEDS_ANSWER)

    def describe(self) -> dict[str, Any]:
        """Rows, the split's sizes and the duplicated questions."""
        t = self.table
        return {"file": self.file, "format": t.source.kind, "domain": self._domain if not self.domain_column else
                f"per row ({self.domain_column})", "rows": t.rows, "train": t.size("train"),
                "held_out": t.size("held_out"), "held_out_share": t.key.held_out, "duplicates": t.duplicates}

    @classmethod
    def from_file(cls, path: str, **kwargs: Any) -> "TaskSetEnv":
        """The task set in ``path`` (see the class docstring for the keywords)."""
        return cls(path=path, **kwargs)


def _stem(path: str) -> str:
    from pathlib import PurePath

    p = PurePath(path.rstrip("/\\"))
    return p.stem or p.name or "tasks"


_classes: dict[str, type[TaskSetEnv]] = {}


def task_set(arg: str) -> type[TaskSetEnv]:
    """The ``tasks`` scheme: ``tasks:PATH`` is a :class:`TaskSetEnv` bound to ``PATH`` (one class per path)."""
    if not arg.strip():
        raise TaskSetError("'tasks:' needs a path: tasks:data/questions.jsonl")
    cls = _classes.get(arg)
    if cls is None:
        cls = _classes[arg] = type(f"TaskSet[{arg}]", (TaskSetEnv,), {"path": arg, "__module__": __name__})
    return cls
