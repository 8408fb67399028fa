"""The sim model's competence per domain: which solver reads a prompt.

Solvers live beside their environments (:attr:`agentsynth.TextEnv.sim_solver`) and are found by
:func:`agentsynth.registry.sim_solvers`; this module asks them in turn. A prompt no solver
recognises gets the weak guesser (:mod:`agentsynth.sim.guess`).
"""

from __future__ import annotations

from ..registry import sim_solvers
from .problem import Problem, Solver


def solve(prompt: str) -> Problem | None:
    """The Problem of the first solver (in order of environment name) that recognises the prompt,
    or None; its ``key`` is the prompt unless the solver set one."""
    for s in sim_solvers():
        p = s(prompt)
        if p is not None:
            p.key = p.key or prompt
            return p
    return None


__all__ = ["Problem", "Solver", "solve"]
