"""The sim server in a child process, for tests and benchmarks (:func:`running_server`).

A separate process matters: a benchmark measures the client's CPU, so the server must not share
its process or GIL.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict

from aiohttp import web

from .model import SimParams
from .server import Faults, create_app

def _child_main() -> None:
    """Entry point of the :func:`running_server` child: config as JSON in argv[1]; the port on stdout.

    The child exits when its stdin closes, so it never outlives the parent that started it.
    """
    import threading

    cfg = json.loads(sys.argv[1])
    params = SimParams.from_dict(cfg["params"]) if cfg["params"] is not None else None
    faults = Faults(**cfg["faults"]) if cfg["faults"] is not None else None
    app = create_app(params, model_name=cfg["model_name"], faults=faults, latency_s=cfg["latency_s"],
                     api_key=os.environ.get("AGENTSYNTH_SIM_API_KEY") or None)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)

    def watch_stdin() -> None:
        with contextlib.suppress(Exception):
            sys.stdin.buffer.read()
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    sys.stdout.write(f"{sock.getsockname()[1]}\n")
    sys.stdout.flush()
    web.run_app(app, sock=sock, print=None, access_log=None, shutdown_timeout=0.5, backlog=1024)


def _wait_ready(base_url: str, proc: subprocess.Popen, deadline: float) -> None:
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sim server process exited with code {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(base_url + "/models", timeout=1.0) as r:
                if r.status == 200:
                    return
        except Exception as e:  # not up yet
            last = e
        time.sleep(0.02)
    raise TimeoutError(f"sim server at {base_url} did not answer /v1/models in time (last error: {last!r})")


@contextlib.contextmanager
def running_server(
    params: SimParams | None = None,
    *,
    model_name: str = "sim",
    faults: Faults | None = None,
    latency_s: float = 0.0,
    api_key: str | None = None,
    startup_timeout: float = 30.0,
) -> Iterator[str]:
    """Run the sim server in a separate process on a free port of 127.0.0.1; yield its base URL.

    The base URL ends in ``/v1`` (e.g. ``http://127.0.0.1:43117/v1``), ready for
    ``openai.OpenAI(base_url=...)``; the server answers ``/v1/models`` before this yields. It is
    a child process (``python -c ...``), not a thread, so a benchmark's client CPU is the
    client's alone. On exit the process is stopped (and it also stops if this process dies).
    Arguments as for :func:`create_app`; they are checked here, before the process starts.
    """
    if faults is not None and not isinstance(faults, Faults):
        raise TypeError("faults must be a Faults")
    if faults is not None:
        Faults(**asdict(faults))  # validate in the caller
    if isinstance(latency_s, bool) or not isinstance(latency_s, (int, float)) or latency_s < 0:
        raise ValueError(f"latency_s={latency_s!r} must be a number >= 0")
    cfg = {
        "params": params.as_dict() if params is not None else None,
        "model_name": model_name,
        "faults": asdict(faults) if faults is not None else None,
        "latency_s": float(latency_s),
    }
    code = "from agentsynth.sim.process import _child_main; _child_main()"
    env = {**os.environ, "AGENTSYNTH_SIM_API_KEY": api_key or ""}  # not on the command line
    proc = subprocess.Popen(
        [sys.executable, "-c", code, json.dumps(cfg)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else b""
        if not line.strip():
            proc.wait(timeout=5)
            raise RuntimeError(f"sim server process failed to start (exit code {proc.returncode})")
        base_url = f"http://127.0.0.1:{int(line)}/v1"
        _wait_ready(base_url, proc, time.monotonic() + startup_timeout)
        yield base_url
    finally:
        for stream in (proc.stdin, proc.stdout):
            with contextlib.suppress(Exception):
                stream.close()  # the child exits when its stdin closes
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


