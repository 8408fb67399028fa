"""The student: a small transformer language model trained from scratch on CPU, which reads an
environment's real prompt and writes a reply the environment's own truth grades.

Importing this package does not import torch (the ``learn`` extra); the names below that need it
load it on first use.

- :class:`Student` (:mod:`.checkpoint`): a loaded checkpoint (network, tokenizer, manifest);
  ``Student.load(path)``.
- :class:`StudentModel` (:mod:`.chat_model`): a student as agentsynth's ChatModel (batched
  ``complete``), the server's model (``choices``) and a blocking batch call (``generate``).
- :func:`init_student`, :func:`finetune`, :func:`resolve_export`, :func:`replay_examples`
  (:mod:`.build`): make a base from the environments' references, fine-tune on an export or
  examples.
- :func:`train` (:mod:`.training`), :func:`generate` (:mod:`.sampling`): the loops underneath.
- :class:`Example`, :func:`reference_examples`, :func:`read_sft` (:mod:`.data`): training pairs.
- :class:`GPTConfig`, :class:`TrainConfig` (:mod:`.config`); :class:`StudentError`.
"""

from __future__ import annotations

import os
from importlib import import_module
from typing import Any

# Threads that sleep instead of spinning while they wait: on a machine whose cores other processes
# also use, torch's OpenMP threads spinning for each other made 2 threads 3-4x slower than 1
# (measured, README "The student"). Read when torch loads, so only if it has not loaded yet; an
# explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .config import GPTConfig, TrainConfig
from .data import Example, read_sft, reference_examples
from .errors import StudentError

_LAZY = {
    "Student": ".checkpoint",
    "read_manifest": ".checkpoint",
    "StudentModel": ".chat_model",
    "Reply": ".chat_model",
    "init_student": ".build",
    "finetune": ".build",
    "new_student": ".build",
    "resolve_export": ".build",
    "replay_examples": ".build",
    "train": ".training",
    "TrainReport": ".training",
    "Progress": ".training",
    "generate": ".sampling",
    "Request": ".sampling",
    "StudentTokenizer": ".tokenizer",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Example", "GPTConfig", "StudentError", "TrainConfig", "read_sft", "reference_examples", *_LAZY]
