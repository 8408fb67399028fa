"""A task set's grader, by name from the rubric library or ``module:attr`` for the user's own.

``exact``, ``normalized`` and ``numeric`` compare the final answer with the answer column;
``unit_tests`` runs the tests column (``{"function": ..., "tests": [...], "expected": [...]}``) in
the sandbox; ``criteria`` checks the rubric column's criteria; ``judge`` asks the run's judge
model (it becomes the truth grader: an answer column is then optional and the verifier used by
the other channels compares with it when present).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from agentsynth.registry import UnknownEnvironment, load_attr
from agentsynth.signals import GradeContext, Grader
from agentsynth.tasks import Task
from rubrics import exact_match, llm_judge, normalized_match, numeric_tolerance, unit_tests

from .source import TaskSetError

NAMED: dict[str, Callable[[], Grader]] = {
    "exact": exact_match,
    "normalized": normalized_match,
    "numeric": numeric_tolerance,
    "unit_tests": unit_tests,
}
MODEL_GRADERS = ("judge",)
NEEDS_ANSWER = ("exact", "normalized", "numeric")
NEEDS_COLUMN = {"unit_tests": "tests", "criteria": "rubric"}
"""Graders that need a column of the mapping, and its keyword."""


def grader_names() -> list[str]:
    """Every grader a task set can name."""
    return [*NAMED, "criteria", *MODEL_GRADERS]


def load_grader(ref: str) -> Grader | None:
    """The grader named ``ref``; None for ``criteria`` and ``judge`` (built by the environment)."""
    if ref in NAMED:
        return NAMED[ref]()
    if ref in ("criteria", *MODEL_GRADERS):
        return None
    if ":" not in ref:
        raise TaskSetError(f"unknown grader {ref!r}; name one of {', '.join(grader_names())} or give 'module:attr'")
    try:
        obj = load_attr(ref)
    except UnknownEnvironment as exc:
        raise TaskSetError(f"grader {exc}".replace("environment", "grader")) from None
    if isinstance(obj, type) and issubclass(obj, Grader):
        obj = obj()
    elif callable(obj) and not isinstance(obj, Grader):
        obj = obj()
    if not isinstance(obj, Grader):
        raise TaskSetError(f"grader {ref!r} is not an agentsynth Grader or a factory of one")
    return obj


def passes(grader: Grader, task: Task, answer: str) -> bool:
    """Does ``grader`` pass ``answer`` (no model, no conversation)?"""
    return grader.grade(GradeContext(task, answer, (), 0)).passed is True


def as_json(value: Any) -> Any:
    """A column value that may hold JSON text (CSV cells, strings in JSONL) as data."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def tests_problem(value: Any) -> str | None:
    """Why a tests column value is unusable (None: usable)."""
    v = as_json(value)
    if not isinstance(v, dict) or not {"function", "tests", "expected"} <= set(v):
        return "is not an object with function, tests and expected"
    if not isinstance(v["tests"], list) or not isinstance(v["expected"], list) or len(v["tests"]) != len(v["expected"]):
        return "needs lists tests and expected of the same length"
    return None


def criteria_of(value: Any) -> list[tuple[str, re.Pattern[str], float]]:
    """A rubric column value as (description, pattern, weight) criteria. Each criterion is a text
    the reply must contain (case-insensitive), or ``{"criterion": ..., "pattern": REGEX,
    "weight": W}``; the value is a list of them (or JSON text of one)."""
    v = as_json(value)
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not v:
        raise ValueError("is not a non-empty list of criteria")
    out = []
    for c in v:
        if isinstance(c, str) and c.strip():
            out.append((f"mentions {c!r}", re.compile(re.escape(c), re.I), 1.0))
        elif isinstance(c, dict) and isinstance(c.get("pattern"), str):
            try:
                pattern = re.compile(c["pattern"], re.I)
            except re.error as exc:
                raise ValueError(f"has a bad pattern {c['pattern']!r} ({exc})") from None
            out.append((str(c.get("criterion") or c["pattern"]), pattern, float(c.get("weight", 1.0))))
        else:
            raise ValueError(f"has a criterion {c!r} that is neither text nor an object with a pattern")
    return out


def criteria_met(value: Any, answer: str) -> bool:
    """All of a rubric column's criteria are met by the reply."""
    return all(p.search(answer or "") for _, p, _ in criteria_of(value))


def judge_grader(judge_is_policy: bool) -> Grader:
    """The judge grader a ``grader = "judge"`` task set uses as truth."""
    return llm_judge(same_model=judge_is_policy)
