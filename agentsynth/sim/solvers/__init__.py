"""The sim model's per-domain competence: read a prompt, know its answer and its likely mistakes.

A solver sees only the prompt text, as a model would, and returns a :class:`Problem` or None when
the prompt is not of its domain. Each module in this package that defines ``SOLVER`` (a function
``prompt -> Problem | None``) is one domain; they are found automatically. Domains without a
solver get a guess.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

from .base import Problem

Solver = Callable[[str], "Problem | None"]


def _discover() -> list[Solver]:
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        solver = getattr(module, "SOLVER", None)
        if solver is not None:
            found.append(solver)
    return found


SOLVERS: list[Solver] = _discover()


def solve(prompt: str) -> Problem | None:
    """The first solver that recognises the prompt, or None."""
    for s in SOLVERS:
        p = s(prompt)
        if p is not None:
            p.key = p.key or prompt
            return p
    return None


__all__ = ["Problem", "SOLVERS", "Solver", "solve"]
