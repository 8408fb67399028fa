"""``agentsynth serve``: the sim (a simulator) or a student checkpoint over an OpenAI-compatible
HTTP API, optionally with injected faults and latency."""

from __future__ import annotations

import json
import os
from typing import Any

import click

from .common import bind_error, check_port, fail


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--student", "student_path", metavar="PATH", type=click.Path(),
              help="Serve this student checkpoint instead of the sim (agentsynth student init / train).")
@click.option("--model-name", help="The model name served: listed by /v1/models and the only one requests may name (others get 404 model_not_found; default: sim, or student with --student).")
@click.option("--latency-ms", default=0.0, show_default=True, type=float, help="Added fixed latency per request.")
@click.option("--fault-429", default=0.0, show_default=True, type=float, help="Fraction of requests answered 429 + Retry-After.")
@click.option("--fault-500", default=0.0, show_default=True, type=float, help="Fraction answered 500.")
@click.option("--fault-hang", default=0.0, show_default=True, type=float, help="Fraction that hang for --hang-s.")
@click.option("--fault-malformed", default=0.0, show_default=True, type=float, help="Fraction answered with broken JSON.")
@click.option("--retry-after", default=1.0, show_default=True, type=float, help="Seconds sent in Retry-After.")
@click.option("--hang-s", default=30.0, show_default=True, type=float, help="How long a hanging request hangs.")
@click.option("--fault-seed", default=0, show_default=True, type=int)
@click.option("--api-key-env", help="Require the key held by this environment variable (401 otherwise).")
@click.option("--sim", "sim_params", metavar="KEY=VALUE", multiple=True, help="A sim parameter, e.g. --sim use_hint=0.7 or --sim skill.arithmetic=0.8.")
@click.option("--env", "env_refs", metavar="REF", multiple=True,
              help="Also load this environment (module:Class or path/to/file.py:Class) so the sim knows its sim_solver; "
                   "registered environments are always known. Repeatable.")
def serve(host: str, port: int, student_path: str | None, model_name: str | None, latency_ms: float, fault_429: float,
          fault_500: float, fault_hang: float, fault_malformed: float, retry_after: float, hang_s: float, fault_seed: int,
          api_key_env: str | None, sim_params: tuple[str, ...], env_refs: tuple[str, ...]) -> None:
    """Serve the built-in sim model (a simulator, for offline use, tests and demos) or, with
    --student, a trained student over an OpenAI-compatible HTTP API, optionally with injected
    faults and latency."""
    from ..sim import SimParams
    from ..sim.server import Faults, serve as serve_app

    if student_path and (sim_params or env_refs):
        fail(f"{'--sim parameters apply' if sim_params else '--env applies'} to the sim, not to --student")
    if env_refs:
        from ..registry import UnknownEnvironment, resolve

        for ref in env_refs:
            try:
                resolve(ref)
            except UnknownEnvironment as exc:
                fail(f"--env: {exc}")
    model = None
    if student_path:
        from ..student import StudentError

        try:
            from ..student.errors import require_learn_extra

            require_learn_extra()
            from ..student.chat_model import StudentModel

            model = StudentModel(student_path, name=model_name or "student")
        except StudentError as exc:
            fail(str(exc))
    model_name = model_name or ("student" if student_path else "sim")

    try:
        params = SimParams.from_dict(_parse_sim(sim_params))
        faults = Faults(rate_429=fault_429, rate_500=fault_500, rate_hang=fault_hang, rate_malformed=fault_malformed,
                        retry_after_s=retry_after, hang_s=hang_s, seed=fault_seed)
    except (TypeError, ValueError) as exc:
        fail(str(exc))
    key = None
    if api_key_env:
        key = os.environ.get(api_key_env) or fail(f"environment variable {api_key_env} is not set")
    check_port(host, port)
    try:
        serve_app(host, port, params=params, model_name=model_name, faults=faults, latency_s=latency_ms / 1000, api_key=key,
                  model=model)
    except OSError as exc:  # lost a race for the port after the check, or another bind error
        fail(bind_error(host, port, exc))


def _parse_sim(items: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"--sim {item!r}: expected KEY=VALUE")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if key.startswith("skill."):
            out.setdefault("skill", {})[key[6:]] = value
        else:
            out[key] = value
    return out
