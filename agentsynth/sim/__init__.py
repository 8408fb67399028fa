"""The built-in simulated model (``sim``): offline use, tests and demos. A simulator, not a model."""

from .model import SimModel, SimParams

__all__ = ["SimModel", "SimParams"]
