"""Finding environments: the Gymnasium registry, entry points, and ``module:Class`` paths.

Built-in and third-party environments are declared the same way, in the ``agentsynth.envs``
entry-point group (``name = "package.module:Class"``), and registered with Gymnasium as
``agentsynth/<name>-v0`` so that ``gymnasium.make("agentsynth/<name>-v0")`` works. (Gymnasium
1.x no longer discovers plugins itself.) An environment can also be named by ``module:Class``
or ``path/to/file.py:Class`` without registering it; a file's folder is put on the import path
first, as Python does for a script, so the file can import its sibling modules.

An environment *scheme* names environments built from an argument: ``tasks:data/questions.jsonl``
is the task set in that file. Schemes are declared in the ``agentsynth.env_schemes`` entry-point
group (``tasks = "envs.taskset:task_set"``); the target is a function ``arg -> TextEnv subclass``.
A known scheme is checked before ``module:Class``, so the library resolves ``tasks:...`` without
importing the plugin layer that implements it.

The sim model's solvers are found here too (:func:`sim_solvers`): each environment class may
carry one (:attr:`TextEnv.sim_solver`), so a domain's solver lives beside its environment and
the library never imports ``envs/``.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym

from .env import TextEnv

if TYPE_CHECKING:
    from .sim.problem import Problem

GROUP = "agentsynth.envs"
SCHEME_GROUP = "agentsynth.env_schemes"
NAMESPACE = "agentsynth"


class UnknownEnvironment(LookupError):
    """No environment matches the reference."""


def _entry_points() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=GROUP)}


def env_schemes() -> dict[str, str]:
    """Environment schemes (``tasks``, ...) and their ``module:function`` targets."""
    return {ep.name: ep.value for ep in entry_points(group=SCHEME_GROUP)}


def _resolve_scheme(ref: str, target: str, arg: str) -> type[TextEnv]:
    """The class a scheme's factory builds for ``arg``; its errors become one-line UnknownEnvironment."""
    factory = load_attr(target)
    try:
        cls = factory(arg)
    except UnknownEnvironment:
        raise
    except (ValueError, OSError, TypeError) as exc:
        raise UnknownEnvironment(f"{ref!r}: {exc}") from None
    return cls


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
            where = "" if Path(mod_name).is_absolute() else f" (a relative path is read from the working directory, {Path.cwd()})"
            raise UnknownEnvironment(f"{target!r}: no such file {mod_name}{where}")
        key = f"_agentsynth_user_{path.stem}_{abs(hash(str(path)))}"
        module = sys.modules.get(key)
        if module is None:
            if str(path.parent) not in sys.path:  # its siblings import, as for `python file.py`
                sys.path.insert(0, str(path.parent))
            spec = importlib.util.spec_from_file_location(key, path)
            assert spec and spec.loader
            module = importlib.util.module_from_spec(spec)
            sys.modules[key] = module
            try:
                spec.loader.exec_module(module)
            except Exception as exc:  # noqa: BLE001 - user code: one line saying what broke
                del sys.modules[key]
                raise UnknownEnvironment(f"{target!r}: importing {mod_name} failed: {_why(exc)}") from None
    else:
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))
        try:
            module = importlib.import_module(mod_name)
        except ModuleNotFoundError as exc:
            raise UnknownEnvironment(f"{target!r}: cannot import module {mod_name!r} ({exc})") from exc
        except Exception as exc:  # noqa: BLE001 - user code: one line saying what broke
            raise UnknownEnvironment(f"{target!r}: importing {mod_name} failed: {_why(exc)}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise UnknownEnvironment(f"{target!r}: module {mod_name!r} has no attribute {attr!r}") from None


def _why(exc: BaseException) -> str:
    """One line for an exception raised by user code: its type and message, and for a syntax
    error the file and line."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"SyntaxError: {exc.msg} ({exc.filename}, line {exc.lineno})"
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


@dataclass(frozen=True)
class EnvRef:
    """A resolved environment reference: the name stored in the store, and the class."""

    name: str
    cls: type[TextEnv]


def resolve(ref: str) -> EnvRef:
    """Resolve ``arithmetic``, ``agentsynth/arithmetic-v0``, ``SCHEME:ARG`` (a known scheme, e.g.
    ``tasks:data/q.jsonl``; stored under that name) or ``module:Class`` to a class."""
    ref = ref.strip()
    scheme, sep, arg = ref.partition(":")
    schemes = env_schemes() if sep else {}
    if scheme in schemes:
        cls = _resolve_scheme(ref, schemes[scheme], arg)
        if not (isinstance(cls, type) and issubclass(cls, TextEnv)):
            raise UnknownEnvironment(f"{ref!r}: scheme {scheme!r} built {cls!r}, not a subclass of agentsynth.TextEnv")
        return EnvRef(ref, cls)
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


SimSolver = Callable[[str], "Problem | None"]
_loaded = False
_solvers: tuple[int, list[SimSolver]] = (-1, [])


def _load_entry_points() -> None:
    """Import every environment of the entry-point group once, so their classes (and solvers)
    exist; one that cannot be imported is skipped with a warning (it fails on its own when used)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for name, target in sorted(_entry_points().items()):
        try:
            load_attr(target)
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the sim
            warnings.warn(f"environment {name!r} ({target}) cannot be imported, so the sim has no solver "
                          f"for it: {_why(exc)}", RuntimeWarning, stacklevel=3)


def _subclasses(cls: type[TextEnv]) -> list[type[TextEnv]]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out


def _with_domain(solver: SimSolver, domain: str) -> SimSolver:
    """``solver`` whose Problems without a domain get ``domain``, and which treats an exception
    as 'not my prompt' (a warning names the solver): the sim asks every solver about every prompt."""
    failed = False

    def solve(prompt: str) -> "Problem | None":
        nonlocal failed
        try:
            prob = solver(prompt)
        except Exception as exc:  # noqa: BLE001 - a model does not crash on a prompt
            if not failed:
                failed = True
                warnings.warn(f"sim solver {getattr(solver, '__qualname__', solver)!r} raised on a prompt "
                              f"({_why(exc)}); treated as not recognising it", RuntimeWarning, stacklevel=2)
            return None
        if prob is not None and not prob.domain:
            prob.domain = domain
        return prob

    return solve


def sim_solvers() -> list[SimSolver]:
    """The sim model's solvers: the ``sim_solver`` of every environment class that exists in this
    process (every registered environment, imported here, plus any other defined or loaded by
    path), one per solver, in order of the environment's name. A solver's Problem without a domain
    gets its environment's domain."""
    global _solvers
    _load_entry_points()
    if _solvers[0] != TextEnv.subclasses_defined:
        found: dict[int, tuple[type[TextEnv], SimSolver]] = {}
        for cls in _subclasses(TextEnv):
            owner = next(k for k in cls.__mro__ if "sim_solver" in k.__dict__)
            solver = _solver_of(owner)
            if solver is not None:
                found.setdefault(id(solver), (owner, solver))
        ordered = sorted(found.values(), key=lambda cs: (cs[0].name or cs[0].__name__, cs[0].__module__, cs[0].__qualname__))
        _solvers = (TextEnv.subclasses_defined, [_with_domain(s, c.domain or c.name or c.__name__) for c, s in ordered])
    return _solvers[1]


def _solver_of(cls: type[TextEnv]) -> SimSolver | None:
    """The class's own ``sim_solver`` as a function (a ``"module:function"`` name imported), or None
    (none, or a name that cannot be imported: a warning says why)."""
    ref = cls.__dict__.get("sim_solver")
    if isinstance(ref, staticmethod):
        ref = ref.__func__
    if not isinstance(ref, str):
        return ref if callable(ref) else None
    try:
        solver = load_attr(ref)
    except Exception as exc:  # noqa: BLE001 - the environment still works; the sim guesses
        warnings.warn(f"{cls.__qualname__}.sim_solver {ref!r} cannot be loaded ({_why(exc)}); the sim guesses "
                      "on its prompts", RuntimeWarning, stacklevel=3)
        return None
    return solver if callable(solver) else None
