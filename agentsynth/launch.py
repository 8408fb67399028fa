"""Which runner runs a spec: the local :class:`~agentsynth.runner.Runner`, or — when the call or
the spec's ``[ray]`` table asks for Ray — :class:`agentsynth.scaleout.driver.RayRunner` (imported
only then: Ray is an optional extra). ``agentsynth.run`` and ``agentsynth run`` come through here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .run_report import RunResult
from .runner import Runner
from .spec import RaySpec, RunSpec, load_spec

RayArg = bool | str | RaySpec | dict[str, Any] | None
"""``ray=``: None (the spec's ``[ray]`` table decides), False (run locally), True (Ray: the spec's
table, else a local instance), an address (``"local"``, ``"auto"``, ``"ray://head:10001"``), a
:class:`~agentsynth.spec.RaySpec` or its fields as a dict."""


def ray_options(ray: RayArg, spec: RunSpec) -> RaySpec | None:
    """What ``ray=`` and the spec say together: where to run on Ray, or None to run locally. An
    address given to the call overrides the spec table's (its other fields are kept)."""
    if ray is None:
        return spec.ray
    if ray is False:
        return None
    if ray is True:
        return spec.ray or RaySpec()
    if isinstance(ray, str):
        return (spec.ray or RaySpec()).model_copy(update={"address": ray})
    if isinstance(ray, dict):
        return RaySpec.model_validate(ray)
    return ray


def make_runner(spec: RunSpec, *, ray: RayArg = None, **kwargs: Any) -> Runner:
    """The runner for ``spec`` (``kwargs`` as :class:`~agentsynth.runner.Runner`'s)."""
    opts = ray_options(ray, spec)
    if opts is None:
        return Runner(spec, **kwargs)
    from .scaleout.driver import RayRunner

    return RayRunner(spec, ray=opts, **kwargs)


def run(spec: RunSpec | str | Path, *, ray: RayArg = None, **kwargs: Any) -> RunResult:
    """Run a spec (a :class:`RunSpec` or a TOML path) to the end, locally or on Ray (``ray``, see
    :data:`RayArg`); ``kwargs`` go to the runner."""
    if not isinstance(spec, RunSpec):
        spec = load_spec(spec)
    return make_runner(spec, ray=ray, **kwargs).run()
