"""The forms in which models write their final answer, as whole replies (for tests, benchmarks and
probes of the graders).

:data:`FORMS` names the forms; :func:`render` writes a reply in one, by default after a discarded
first attempt showing a distractor, so a reader that picks up any answer-looking text instead of
the one the reply settles on is caught: with a wrong distractor, a correct answer must pass in
every form; with the reference as the distractor, a wrong answer must fail in every form.
:func:`cases` draws tasks of the built-in domains with a wrong answer each, from the environment's
own :meth:`~agentsynth.TextEnv.probe_replies` (:data:`LEVELS`: each domain's distinct difficulty levels).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from .env import TextEnv
from .registry import make
from .tasks import Task


FORMS: dict[str, Callable[[str, str], str]] = {
    "Answer: X": lambda a, d: f"Answer: {a}",
    "**Answer:** X": lambda a, d: f"**Answer:** {a}",
    "**Answer:** then X below": lambda a, d: f"**Answer:**\n{a}",
    "**Answer: X**": lambda a, d: f"**Answer: {a}**",
    "Final answer: X": lambda a, d: f"Final answer: {a}",
    "\\boxed{X}": lambda a, d: f"So the result is \\boxed{{{a}}}",
    "**Final Answer** \\[\\boxed{X}\\]": lambda a, d: f"**Final Answer**\n\\[\n\\boxed{{{a}}}\n\\]",
    "Final Answer: $\\boxed{X}$.": lambda a, d: f"Final Answer: $\\boxed{{{a}}}$.",
    "Answer: $X$": lambda a, d: f"Answer: ${a}$",
    "Answer: \\(X\\)": lambda a, d: f"Answer: \\({a}\\)",
    "Answer: X.": lambda a, d: f"Answer: {a}.",
    'Answer: "X"': lambda a, d: f'Answer: "{a}"',
    "Answer: `X`": lambda a, d: f"Answer: `{a}`",
    "Answer: then a fenced block": lambda a, d: f"Answer:\n```\n{a}\n```",
    "The answer is X.": lambda a, d: f"The answer is {a}.",
    "Answer: D ... Answer: X": lambda a, d: f"Answer: {d}\nWait, that is wrong; let me redo it.\nAnswer: {a}",
    "\\boxed{D} ... \\boxed{X}": lambda a, d: f"I first wrote \\boxed{{{d}}}, which is wrong.\nSo it is \\boxed{{{a}}}",
}
"""Form name -> ``(answer, distractor) -> the reply's ending``; the last two show the distractor
under an earlier mark themselves."""


def render(form: str, answer: str, distractor: str, draft: bool = True) -> str:
    """A whole reply giving ``answer`` in form ``form``; with ``draft``, after a discarded first
    attempt that shows ``distractor`` in a fenced block."""
    head = f"Let me work through this step by step.\nA first attempt gave:\n```\n{distractor}\n```\nbut checking it shows a mistake.\n\n"
    return (head if draft else "") + FORMS[form](answer, distractor)


LEVELS: dict[str, tuple[int, ...]] = {
    "arithmetic": (1, 2, 3), "algebra": (1, 2, 3), "units": (1, 2, 3), "strings": (1, 2, 3, 4, 5, 6),
    "logic": (1, 2, 3, 4, 5, 6, 7), "code": (1, 2, 3), "sql": (1, 2, 3), "extraction": (1, 2, 3), "tools": (1, 2, 3),
    "pairs": (1, 2, 3), "countdown": (1, 2, 3), "lists": (1, 2, 3),
}
"""The built-in domains' difficulty levels to draw from: each distinct level for strings (1-6 steps)
and logic (2-8 people); 1-3 for the others (the levels their generators tell apart, past which
arithmetic and tools only grow)."""
NOT_APPLICABLE: dict[tuple[str, str], str] = {
    ("code", 'Answer: "X"'): "code holds quotes itself, so quotes around it do not wrap one string",
}
"""(domain, form) pairs that are meaningless, and why."""


def reference(task: Task) -> str:
    """The reference answer as a model would write it (the task's answer without a final newline)."""
    return task.answer.strip("\n")


def cases(domain: str, seeds: Iterable[int] = range(20)) -> Iterator[tuple[TextEnv, Task, str, str]]:
    """(environment, task, its reference, a wrong answer) for each level of a built-in ``domain``
    and each seed; the wrong answer is the first of the environment's
    :meth:`~agentsynth.TextEnv.probe_replies` ``wrong`` answers that the truth rejects as ``Answer: W``."""
    seeds = list(seeds)
    for level in LEVELS[domain]:
        env = make(domain, difficulty=level)
        for seed in seeds:
            env.reset(seed=seed)
            task = env.task
            assert task is not None
            wrong = next(w for w in env.probe_replies(task).wrong if not env.verify(task, f"Answer: {w}"))
            yield env, task, reference(task), wrong
