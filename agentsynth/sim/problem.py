"""What a sim solver returns: the sim model's reading of one prompt (:class:`Problem`).

A solver is a function ``prompt -> Problem | None`` that reads a prompt as a model would (the
prompt text only, never the environment's hidden task) and returns None for prompts it does not
recognise. It lives beside its environment, as the environment class's ``sim_solver`` (see
:attr:`agentsynth.TextEnv.sim_solver` and :func:`agentsynth.registry.sim_solvers`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Problem:
    """What the sim believes about a prompt: the correct answer (as the text it would write after
    ``Answer:``), how hard the task looks (1 = easy; skill is raised to this power), plausible
    wrong answers (the first is the mistake it favours on this task), and optionally a rendering
    of an answer in a wrong, unparseable form.

    ``domain`` picks the sim's ``skill``; left empty, it is the solver's environment's domain."""

    domain: str = ""
    answer: str = ""
    difficulty: float = 1.0
    mistakes: list[str] = field(default_factory=list)
    answer_words: Callable[[str], str] | None = None
    render: Callable[[str, bool], str] | None = None
    """``render(answer, tidy)``: the reply carrying ``answer``; ``tidy`` False means the sloppy form
    (prose around the answer). None: ``"...\nAnswer: <answer>"`` / ``"I think the result is <answer>."``."""
    resolve: Callable[[list[dict[str, Any]]], "Problem | list[tuple[str, dict[str, Any]]]"] | None = None
    """For tasks that need tools: ``resolve(messages)`` returns the tool calls still needed as
    (name, arguments) pairs, or, once the tool results are in the conversation, the complete
    Problem (its answer computed from them)."""
    key: str = ""
    """What identifies the task for the sim's per-task luck; :func:`agentsynth.sim.solvers.solve`
    sets it to the prompt."""
    extract: Callable[[str], str | None] | None = None
    """``extract(reply)``: the answer a reply states, comparable with ``answer`` (for self-review).
    None: the last number after ``Answer:``."""
    alternatives: list[str] = field(default_factory=list)
    """Other correct answers it knows, in ``answer``'s form (tasks with many correct answers): a
    correct reply gives one of them at random with probability ``SimParams.variety``. Its review
    still compares with its belief alone (``answer`` or its favourite mistake), so it stays closed."""


Solver = Callable[[str], "Problem | None"]
"""A sim solver: ``prompt -> Problem`` for prompts of its environment, None for any other."""
