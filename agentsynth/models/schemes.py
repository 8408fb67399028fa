"""In-process model schemes: ``model = "NAME"`` or ``"NAME:ARG"`` in a run spec (without a
``base_url``) builds a model inside this process instead of calling an endpoint.

Built in: ``sim`` (the simulator; its ``[sim]`` table) and ``student:PATH`` (a trained student
checkpoint, needs the ``learn`` extra). A plugin adds a scheme by an entry point in the
``agentsynth.models`` group whose target is a :class:`Scheme`::

    [project.entry-points."agentsynth.models"]
    mymodel = "mypackage.scheme:SCHEME"

Schemes are named by ``module:attr`` strings and imported on first use, so this module imports
no model implementation (the built-ins are listed here so that a source checkout works without
installed entry-point metadata). Any other model string, or any model with a ``base_url``, is an
OpenAI-compatible endpoint (``ft:gpt-4o:...`` included: only registered names are schemes).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from .base import ChatModel

GROUP = "agentsynth.models"
BUILTIN: dict[str, str] = {
    "sim": "agentsynth.sim.scheme:SCHEME",
    "student": "agentsynth.student.scheme:SCHEME",
}


class SchemeError(ValueError):
    """A scheme cannot build its model from what the spec says (one line: why)."""


@dataclass(frozen=True)
class SchemeRequest:
    """What a scheme's factory gets: the text after ``NAME:`` (None without a colon), the spec's
    options table for in-process models (``[sim]`` / ``[judge.sim]``, named by ``section``),
    and whether the model is the run's judge."""

    arg: str | None
    options: Mapping[str, Any] = field(default_factory=dict)
    section: str = "[sim]"
    judge: bool = False


@dataclass(frozen=True)
class Scheme:
    """An in-process model kind.

    build: the model for a request; raises :class:`SchemeError` (or ``ValueError`` /
        ``TypeError``) for bad input.
    identity: optional; a string that changes whenever the model named by ``arg`` changes (e.g.
        a checkpoint's id), so a stored evaluation of an earlier model is not reused for it.
    """

    build: Callable[[SchemeRequest], ChatModel]
    identity: Callable[[str | None], str | None] | None = None


def _targets() -> dict[str, str]:
    out = dict(BUILTIN)
    for ep in entry_points(group=GROUP):
        out.setdefault(ep.name, ep.value)
    return out


def split(model: str) -> tuple[str, str | None]:
    """``"student:ckpt/"`` → ``("student", "ckpt/")``; ``"sim"`` → ``("sim", None)``."""
    name, sep, arg = model.partition(":")
    return name, (arg if sep else None)


def in_process(model: str, base_url: object) -> bool:
    """Whether ``model`` (with ``base_url``) is built in this process by a registered scheme."""
    return not base_url and split(model)[0] in _targets()


def get(model: str) -> Scheme:
    """The scheme of ``model`` (which :func:`in_process` accepted)."""
    name = split(model)[0]
    target = _targets()[name]
    mod, _, attr = target.partition(":")
    scheme = getattr(import_module(mod), attr)
    if not isinstance(scheme, Scheme):
        raise SchemeError(f"model scheme {name!r} ({target}) is not an agentsynth.models.schemes.Scheme")
    return scheme


def build(model: str, request: SchemeRequest) -> ChatModel:
    """Build the in-process model ``model``; :class:`SchemeError` with one line when it cannot."""
    try:
        return get(model).build(request)
    except SchemeError:
        raise
    except (ValueError, TypeError) as exc:
        raise SchemeError(str(exc)) from None


def identity(model: str) -> str | None:
    """The scheme's identity of ``model`` (None when the scheme has none)."""
    scheme = get(model)
    return scheme.identity(split(model)[1]) if scheme.identity else None
