"""The generation-training loop (``agentsynth loop``): synthesize with a student, select with an
arm's signal, train the next student on the selection, evaluate it on held-out tasks, repeat.

- :class:`LoopSpec`, :func:`load_loop_spec`, :func:`parse_loop_spec` (:mod:`.spec`): what to run.
- :class:`Arm`, :func:`register_arm`, :data:`ARMS` (:mod:`.arms`): what selects each arm's data.
- :class:`Trainer`, :func:`register_trainer` (:mod:`.trainers`): how checkpoints are trained and
  served (built in: ``student``, ``command``).
- :func:`run_loop`, :class:`LoopRunner`, :class:`LoopCallbacks` (:mod:`.driver`): running and
  resuming a loop.
- :func:`loop_report` (:mod:`.report`): accuracy per arm × generation × split with intervals,
  and the diversity of what each generation produced.
"""

from __future__ import annotations

from .arms import ARMS, Arm, find_arm, register_arm
from .driver import LoopCallbacks, LoopResult, LoopRunner, check_loop, run_loop
from .spec import LoopSpec, LoopSpecError, load_loop_spec, parse_loop_spec
from .trainers import LoopError, Served, Trainer, TrainJob, register_trainer

__all__ = ["ARMS", "Arm", "LoopCallbacks", "LoopError", "LoopResult", "LoopRunner", "LoopSpec", "LoopSpecError", "Served",
           "TrainJob", "Trainer", "check_loop", "find_arm", "load_loop_spec", "parse_loop_spec", "register_arm",
           "register_trainer", "run_loop"]
