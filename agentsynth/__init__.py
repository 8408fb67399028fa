"""agentsynth: agentic data synthesis around environments, with a DuckDB trajectory store."""

from .env import TextEnv, final_answer
from .signals import GradeContext, Grader, JudgeReply, Signal, SignalType, grader
from .tasks import Task
from . import registry as _registry

__version__ = "0.1.0"

_registry.register_all()

__all__ = [
    "GradeContext",
    "Grader",
    "JudgeReply",
    "Signal",
    "SignalType",
    "Task",
    "TextEnv",
    "final_answer",
    "grader",
]
