"""The built-in simulated model (``sim``): offline use, tests and demos. A simulator, not a model.

:class:`Problem` is what an environment's sim solver returns (:attr:`agentsynth.TextEnv.sim_solver`).
"""

from .model import SimModel, SimParams
from .problem import Problem

__all__ = ["Problem", "SimModel", "SimParams"]
