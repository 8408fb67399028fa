"""Connect to a Ray cluster (or start a local one) and check it before any episode runs.

Every failure here is bad input with a one-line message (:class:`ClusterError`, a
:class:`~agentsynth.spec.SpecError`: the CLI prints it and exits 2): Ray not installed, an address
nothing answers at, a cluster too small for the workers asked for, workers that cannot import
agentsynth (or another version of it), an environment class that cannot be sent to the workers
or imported there. :class:`ClusterLost` is the cluster going away mid-run.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from .._version import __version__
from ..env import TextEnv
from ..spec import RaySpec, SpecError

INSTALL = 'pip install "agentsynth[ray]"'
"""What a machine needs to run agentsynth's episodes on Ray (or ``pip install -e ".[ray]"`` in a checkout)."""

LOCAL = "local"


class ClusterError(SpecError):
    """The cluster cannot run this spec (the message says why and what to do), found before any
    episode ran."""


class ClusterLost(RuntimeError):
    """The cluster went away while the run was going: the run ends ``interrupted``; finished
    episodes are stored and running the same command again resumes."""


def require_ray() -> ModuleType:
    """The ``ray`` module, or :class:`ClusterError` saying what to install."""
    try:
        import ray
    except ImportError:
        raise ClusterError(f"Ray is not installed: {INSTALL} (or pip install 'ray>=2.40')") from None
    return ray


def one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception as one short line (Ray's messages run over many)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _host_port(address: str) -> tuple[str, int] | None:
    """``HOST:PORT`` of ``ray://HOST:PORT`` or ``HOST:PORT``; None for other forms (``auto``)."""
    rest = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit() or not host:
        return None
    return host.strip("[]"), int(port)


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """:class:`ClusterError` unless something accepts connections at the address's host and port
    (Ray itself would retry for a minute before saying so)."""
    hp = _host_port(address)
    if hp is None:
        return
    try:
        socket.create_connection(hp, timeout=timeout_s).close()
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise ClusterError(f"cannot reach a Ray cluster at {address}: {why} (start one with `ray start --head` "
                           "on the head machine, or check the address and port)") from None


def _local_pythonpath() -> str:
    """PYTHONPATH for a local instance's workers: where this agentsynth and the working directory
    are, so that they import the driver's code (a checkout, an env module beside the spec)."""
    here = str(Path(__file__).resolve().parents[2])
    parts = [here, os.getcwd(), *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
    return os.pathsep.join(dict.fromkeys(parts))


def local_worker_env() -> dict[str, str]:
    """The environment of a local instance's workers: the driver's code on their PYTHONPATH, and
    niceness 0. Ray starts workers at niceness 15 (so that its own daemons stay responsive), which
    on a machine shared with anything else starves exactly the processes doing the run's work:
    measured on this 2-core machine, niced workers got a fraction of a core beside other jobs
    while the local runner, at niceness 0, did not."""
    return {"PYTHONPATH": _local_pythonpath(), "RAY_worker_niceness": "0"}


@dataclass
class Cluster:
    """A connection this run uses: ``address`` as given, whether this run started it (then it
    shuts it down at the end) and the cluster's CPUs."""

    address: str
    started: bool
    cpus: float

    def close(self) -> None:
        """Disconnect (and stop the local instance) if this run connected."""
        if self.started:
            import ray

            ray.shutdown()


def connect(opts: RaySpec) -> Cluster:
    """Connect as ``opts`` says: keep this process's connection if it has one (e.g. a script or a
    test called ``ray.init``), else start a local instance (``address`` unset or ``local``) or join
    the cluster at ``address``."""
    ray = require_ray()
    if ray.is_initialized():
        return Cluster("(this process's Ray connection)", False, float(ray.cluster_resources().get("CPU", 0)))
    address = opts.address or LOCAL
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address == LOCAL:
        want = (opts.workers or 0) * opts.cpus_per_worker
        kwargs.update(num_cpus=max(os.cpu_count() or 1, int(want + 0.999)), include_dashboard=False,
                      runtime_env={"env_vars": local_worker_env()})
    else:
        check_reachable(address)
    try:
        ray.init(address=address, **kwargs)
    except Exception as exc:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ValueError...
        where = "start a local Ray instance" if address == LOCAL else f"connect to the Ray cluster at {address}"
        hint = " (`ray start --head` starts one on this machine; --ray alone starts a local instance)" if address == "auto" else ""
        raise ClusterError(f"cannot {where}: {one_line(exc)}{hint}") from None
    return Cluster(address, True, float(ray.cluster_resources().get("CPU", 0)))


def worker_count(opts: RaySpec, cluster: Cluster) -> int:
    """How many worker actors: ``workers``, else one per ``cpus_per_worker`` CPUs of the cluster;
    :class:`ClusterError` when the cluster has too few CPUs for them."""
    n = opts.workers or max(1, int(cluster.cpus // opts.cpus_per_worker))
    if n * opts.cpus_per_worker > cluster.cpus + 1e-9:
        raise ClusterError(f"the Ray cluster at {cluster.address} has {cluster.cpus:g} CPUs; {n} workers × "
                           f"{opts.cpus_per_worker:g} CPUs need {n * opts.cpus_per_worker:g}: lower [ray] workers or "
                           "cpus_per_worker, or add nodes")
    return n


def env_payloads(envs: list[tuple[str, type[TextEnv]]], refs: list[str]) -> list[tuple[str, bytes | None]]:
    """What tells a worker each configuration's class: its reference (the worker resolves it, as
    the driver did) — or, for a class defined in the driver's ``__main__`` (a script), the class
    itself, pickled by value. :class:`ClusterError` when that class cannot be pickled."""
    from ray import cloudpickle

    out: list[tuple[str, bytes | None]] = []
    for (_, cls), ref in zip(envs, refs):
        blob = None
        if cls.__module__ == "__main__":
            try:
                blob = cloudpickle.dumps(cls)
            except Exception as exc:  # noqa: BLE001 - whatever the class holds
                raise ClusterError(f"envs: {ref}: the environment class cannot be sent to the Ray workers (pickling "
                                   f"failed: {type(exc).__name__}: {one_line(exc, 160)}); define it in a module the "
                                   "workers can import") from None
        out.append((ref, blob))
    return out


def worker_problem(exc: BaseException, address: str) -> str:
    """The one line for a worker actor that could not start (its error from Ray)."""
    text = one_line(exc, 2000)
    if "No module named 'agentsynth'" in text or "No module named 'agentsynth." in text:
        return (f"the Ray workers at {address} cannot import agentsynth: install it on every node of the cluster "
                f"({INSTALL}, version {__version__}, or pip install -e \".[ray]\" in a checkout)")
    return f"a Ray worker could not start: {one_line(exc)}"


def python_version() -> str:
    """This interpreter's major.minor (workers must match the driver's)."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"
