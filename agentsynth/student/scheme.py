"""The ``student:PATH`` model scheme: a student checkpoint answering in process (see
:mod:`agentsynth.models.schemes`). Imports torch only when a model is built."""

from __future__ import annotations

from ..models.base import ChatModel
from ..models.schemes import Scheme, SchemeError, SchemeRequest
from .checkpoint import read_manifest
from .errors import StudentError, require_learn_extra


def _build(req: SchemeRequest) -> ChatModel:
    if not req.arg:
        raise SchemeError("model 'student' needs a checkpoint: write model = \"student:PATH\"")
    try:
        read_manifest(req.arg)  # a wrong path is the first thing to say, with or without the learn extra
        require_learn_extra()
        from .chat_model import StudentModel

        return StudentModel(req.arg)
    except StudentError as exc:
        raise SchemeError(f"model 'student:{req.arg}': {exc}") from None


def _identity(arg: str | None) -> str | None:
    if not arg:
        raise SchemeError("model 'student' needs a checkpoint: write model = \"student:PATH\"")
    try:
        return str(read_manifest(arg).get("id"))
    except StudentError as exc:
        raise SchemeError(f"model 'student:{arg}': {exc}") from None


SCHEME = Scheme(_build, _identity)
