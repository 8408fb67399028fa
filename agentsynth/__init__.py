"""agentsynth: agentic data synthesis around environments, with a DuckDB trajectory store.

The public API: define environments (:class:`TextEnv`, :func:`grader`, :class:`Signal`,
:class:`SignalType`), run them (:func:`run`, :class:`Runner`, :class:`RunSpec`, :func:`load_spec`),
read what they produced (:func:`open_store`), measure its information (:func:`audit`), export it
(:func:`export`), evaluate trained models on held-out tasks (:func:`evaluate`) and probe an
environment's graders for false accepts and false rejects (:func:`probe`).
"""

from . import registry as _registry
from ._version import __version__
from .analysis.audit import audit
from .analysis.results import AuditResult, AuditRow
from .env import ProbeReplies, TextEnv, final_answer
from .evaluation import evaluate
from .exports import ExportResult, export
from .models.base import ChatModel, Completion, ModelError
from .probes import ProbeResult, probe
from .launch import run
from .runner import RunResult, Runner
from .signals import GradeContext, Grader, JudgeReply, Signal, SignalType, grader
from .spec import EnvSpec, RaySpec, RunSpec, SpecError, load_spec
from .store import Store, StoreError, open_store
from .tasks import Task

_registry.register_all()

__all__ = [
    "AuditResult",
    "AuditRow",
    "ExportResult",
    "audit",
    "evaluate",
    "export",
    "ChatModel",
    "Completion",
    "EnvSpec",
    "GradeContext",
    "Grader",
    "JudgeReply",
    "ModelError",
    "ProbeResult",
    "ProbeReplies",
    "RaySpec",
    "RunResult",
    "RunSpec",
    "Runner",
    "Signal",
    "SignalType",
    "SpecError",
    "Store",
    "StoreError",
    "Task",
    "TextEnv",
    "__version__",
    "final_answer",
    "grader",
    "load_spec",
    "open_store",
    "probe",
    "run",
]
