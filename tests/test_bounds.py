"""The lower bounds in pyproject.toml: every dependency has one, and under ``.ci/lowest`` (which
installs them with ``uv pip install --resolution lowest-direct``) the versions installed are exactly
those bounds, so what the fast subset passed against is what pyproject.toml promises."""

from __future__ import annotations

import os
import tomllib
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from conftest import ROOT


def groups() -> dict[str, list[Requirement]]:
    """``runtime`` (``[project] dependencies``) and each extra, as parsed requirements."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {"runtime": project["dependencies"], **project["optional-dependencies"]}
    return {g: [Requirement(r) for r in reqs] for g, reqs in declared.items()}


def floor(req: Requirement) -> Version | None:
    """The lowest version ``req`` allows (its ``>=`` or ``==``), or None if it has no lower bound."""
    for spec in req.specifier:
        if spec.operator in (">=", "=="):
            return Version(spec.version)
    return None


def test_every_dependency_has_a_lower_bound() -> None:
    missing = [f"{g}: {r}" for g, reqs in groups().items() for r in reqs if r.name != "agentsynth" and floor(r) is None]
    assert missing == []


def test_installed_versions_are_the_lower_bounds() -> None:
    """Set by .ci/lowest: AGENTSYNTH_LOWEST names the groups it installed at their lower bounds."""
    named = os.environ.get("AGENTSYNTH_LOWEST")
    if not named:
        pytest.skip("checks a lower-bound install: bash .ci/lowest runs it")
    declared = groups()
    above = {}
    for g in named.split(","):
        for req in declared[g]:
            if req.name == "agentsynth":  # agentsynth[test,plot]: those groups are named on their own
                continue
            installed = Version(metadata.version(req.name))
            if installed != floor(req):
                above[req.name] = f"{req} but {installed} installed"
    # A dependency resolved above its bound: something else (often another dependency's own bound)
    # needs more, so the bound promises a version nothing tested. Raise it to the installed version.
    assert above == {}
