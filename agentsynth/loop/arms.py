"""Arms of a loop: each is named by what selects its training data.

An :class:`Arm` says how a generation synthesizes (the feedback channel and turns) and how it
selects (the export's signal, threshold and trajectory, and a regrade that records the signal
when the run itself does not). Its labels are the selection signal's, from ``signal_types``, so
the ``generalization`` view lines arms up by openness and meta-level.

Built in (:data:`ARMS`): ``verifier``, ``reference``, ``feedback``, ``keep-all``, ``majority``,
``self-judge``, ``spurious``. Register more with :func:`register_arm` or the
``agentsynth.arms`` entry-point group (an entry point loads an :class:`Arm`).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points


@dataclass(frozen=True)
class Arm:
    """How one arm synthesizes and selects.

    ``feedback``: the synthesis run's channel (``None``: no feedback); ``turns``: its max_turns;
    ``select``: the export's signal; ``min_value``: select by ``value >= min_value`` instead of
    ``passed``; ``trajectory``: the sft export's trajectory (``reference`` trains on the tasks'
    reference replies); ``regrade``: a grader applied to the run before the export (for signals
    computed after the fact: ``keep_all``, ``self_consistency``); ``review``: the arm needs a
    student that can review its own answers (a base with self-review examples).
    """

    name: str
    select: str
    description: str
    feedback: str | None = None
    turns: int = 1
    min_value: float | None = None
    trajectory: str = "final"
    regrade: str | None = None
    review: bool = False

    @property
    def recorded_by_env(self) -> bool:
        """Whether the loop domains' own graders must record ``select`` (else the regrade does)."""
        return self.regrade is None


ARMS: dict[str, Arm] = {}


def register_arm(arm: Arm) -> Arm:
    """Make ``arm`` available to loop specs by its name (a later registration replaces one)."""
    ARMS[arm.name] = arm
    return arm


for _arm in (
    Arm("verifier", "correct", "samples the environment's verifier accepts (rejection sampling; open, outcome level)"),
    Arm("reference", "reference", "the tasks' reference replies, imitated token by token (open, token level)",
        feedback="reference", min_value=0.0, trajectory="reference"),
    Arm("feedback", "hint", "the first answer the verifier accepts, after a hint on a miss (open, step level)",
        feedback="hint", turns=2),
    Arm("keep-all", "keep_all", "every sample (closed: no selection)", regrade="keep_all"),
    Arm("majority", "self_consistency", "samples that agree with the plurality of the task's samples (closed)",
        regrade="self_consistency"),
    Arm("self-judge", "self", "samples the student itself judges correct (closed)", feedback="self", review=True),
    Arm("spurious", "format", "samples whose last line has the requested form, right or wrong (task-irrelevant)"),
):
    register_arm(_arm)


def find_arm(name: str) -> Arm:
    """The arm called ``name`` (built in, registered, or from an ``agentsynth.arms`` entry point);
    :class:`KeyError` naming the known arms when there is none."""
    if name in ARMS:
        return ARMS[name]
    for ep in entry_points(group="agentsynth.arms"):
        if ep.name == name:
            arm = ep.load()
            if not isinstance(arm, Arm):
                raise KeyError(f"entry point {ep.value!r} for arm {name!r} is not an agentsynth.loop.Arm")
            return register_arm(arm)
    known = sorted({*ARMS, *(ep.name for ep in entry_points(group="agentsynth.arms"))})
    raise KeyError(f"unknown arm {name!r}; arms: {', '.join(known)}")
