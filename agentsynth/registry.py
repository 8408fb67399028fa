"""Finding environments: the Gymnasium registry, entry points, and ``module:Class`` paths.

Built-in and third-party environments are declared the same way, in the ``agentsynth.envs``
entry-point group (``name = "package.module:Class"``), and registered with Gymnasium as
``agentsynth/<name>-v0`` so that ``gymnasium.make("agentsynth/<name>-v0")`` works. (Gymnasium
1.x no longer discovers plugins itself.) An environment can also be named by ``module:Class``
or ``path/to/file.py:Class`` without registering it.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import gymnasium as gym

from .env import TextEnv

GROUP = "agentsynth.envs"
NAMESPACE = "agentsynth"


class UnknownEnvironment(LookupError):
    """No environment matches the reference."""


def _entry_points() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=GROUP)}


def register_all() -> None:
    """Register every environment in the entry-point group with Gymnasium (idempotent, lazy:
    nothing is imported until ``gymnasium.make``)."""
    for name, target in _entry_points().items():
        gid = f"{NAMESPACE}/{name}-v0"
        if gid not in gym.registry:
            gym.register(id=gid, entry_point=target, disable_env_checker=False)


def load_attr(target: str) -> Any:
    """The object named by ``module:attr`` or ``path/to/file.py:attr``."""
    mod_name, _, attr = target.partition(":")
    if not attr:
        raise UnknownEnvironment(f"{target!r}: expected 'module:Class'")
    if mod_name.endswith(".py") or "/" in mod_name:
        path = Path(mod_name).resolve()
        if not path.is_file():
            raise UnknownEnvironment(f"{target!r}: no such file {mod_name}")
        key = f"_agentsynth_user_{path.stem}_{abs(hash(str(path)))}"
        module = sys.modules.get(key)
        if module is None:
            spec = importlib.util.spec_from_file_location(key, path)
            assert spec and spec.loader
            module = importlib.util.module_from_spec(spec)
            sys.modules[key] = module
            spec.loader.exec_module(module)
    else:
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))
        try:
            module = importlib.import_module(mod_name)
        except ModuleNotFoundError as exc:
            raise UnknownEnvironment(f"{target!r}: cannot import module {mod_name!r} ({exc})") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise UnknownEnvironment(f"{target!r}: module {mod_name!r} has no attribute {attr!r}") from None


@dataclass(frozen=True)
class EnvRef:
    """A resolved environment reference: the name stored in the store, and the class."""

    name: str
    cls: type[TextEnv]


def resolve(ref: str) -> EnvRef:
    """Resolve ``arithmetic``, ``agentsynth/arithmetic-v0`` or ``module:Class`` to a class."""
    ref = ref.strip()
    eps = _entry_points()
    if ":" in ref:
        name, target = ref, ref
    else:
        short = ref
        if ref.startswith(NAMESPACE + "/"):
            short = ref[len(NAMESPACE) + 1 :].rsplit("-v", 1)[0]
        if short in eps:
            name, target = short, eps[short]
        elif ref in gym.registry and isinstance(gym.registry[ref].entry_point, str):
            name, target = ref, gym.registry[ref].entry_point  # type: ignore[assignment]
        else:
            known = ", ".join(sorted(eps)) or "(none installed)"
            close = difflib.get_close_matches(short, list(eps), n=1)
            maybe = f" (did you mean {close[0]!r}?)" if close else ""
            raise UnknownEnvironment(
                f"unknown environment {ref!r}{maybe}; registered: {known}; or give 'module:Class'"
            )
    cls = load_attr(target)
    if not (isinstance(cls, type) and issubclass(cls, TextEnv)):
        raise UnknownEnvironment(f"{ref!r} is {cls!r}, not a subclass of agentsynth.TextEnv")
    return EnvRef(name if ":" not in ref else (cls.name or ref), cls)


def make(ref: str, **kwargs: Any) -> TextEnv:
    """Instantiate an environment by reference (no Gymnasium wrappers: the runner checks itself)."""
    return resolve(ref).cls(**kwargs)


def available() -> dict[str, str]:
    """Registered environment names and their ``module:Class`` targets."""
    return dict(sorted(_entry_points().items()))
