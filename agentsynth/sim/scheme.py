"""The ``sim`` model scheme (``model = "sim"``): the simulator, built in process from the spec's
``[sim]`` table (see :mod:`agentsynth.models.schemes`)."""

from __future__ import annotations

from ..models.base import ChatModel
from ..models.schemes import Scheme, SchemeError, SchemeRequest
from .model import SimModel, SimParams


def _build(req: SchemeRequest) -> ChatModel:
    if req.arg is not None:
        raise SchemeError(f"model 'sim:{req.arg}': the sim takes no argument; write model = \"sim\"")
    try:
        return SimModel(SimParams.from_dict(dict(req.options)), name="sim-judge" if req.judge else "sim")
    except (TypeError, ValueError) as exc:
        raise SchemeError(f"{req.section}: {exc}") from None


SCHEME = Scheme(_build)
