"""``agentsynth probe``: find hackable and brittle graders before anyone trains on them.

:func:`probe` runs two batteries against every grader of an environment on generated tasks,
without a policy model: replies wrong by construction that must fail (``hack`` strategies:
:mod:`.hacks`) and equivalent forms of a correct reply that must pass (``brittle`` transforms:
:mod:`.transforms`). Add strategies with :func:`register_strategy` (or the ``agentsynth.probes``
entry-point group); an environment adds its own wrong answers and must-fail / must-pass replies
with :meth:`agentsynth.TextEnv.probe_replies`.
"""

from ..env import ProbeReplies
from . import hacks, transforms  # noqa: F401 - registers the built-in strategies
from .registry import STRATEGIES, ProbeCase, Strategy, all_strategies, register_strategy, strategy
from .runner import ProbeError, ProbeResult, ProbeRow, probe, rejects_as_wrong

__all__ = ["STRATEGIES", "ProbeCase", "ProbeError", "ProbeReplies", "ProbeResult", "ProbeRow", "Strategy",
           "all_strategies", "probe", "register_strategy", "rejects_as_wrong", "strategy"]
