"""inspect-ai against ``agentsynth serve``, for real: ``inspect_ai.eval`` with its ``openai``
provider (the Responses API by default; chat completions with ``responses_api=False``), streamed
and not, with and without tool use, and the ``inspect eval`` command as a user types it."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from agentsynth import registry
from agentsynth.sim import SimParams
from agentsynth.sim.process import running_server

inspect_ai = pytest.importorskip("inspect_ai")

from inspect_ai import Task
from inspect_ai.dataset import Sample
from inspect_ai.scorer import includes
from inspect_ai.solver import Generate, TaskState, generate, solver, use_tools
from inspect_ai.tool import tool
from inspect_ai.util import store

pytestmark = pytest.mark.timeout(300)

PROMPT = "Compute the value of: {}\nShow your work if you like, then end with a line 'Answer: <integer>'."
ARITHMETIC = [Sample(input=PROMPT.format("3 + 4 * 2"), target="11"), Sample(input=PROMPT.format("(2 + 5) * 3"), target="21")]
# Skilled, and asked at temperature 0, the sim answers every sample right: the score checks the round trip.
SKILLED = SimParams.from_dict({"skill": {"arithmetic": 1.0, "tools": 1.0}})


@pytest.fixture(autouse=True)
def _process_state_restored():
    """inspect_ai.eval sets process-wide state (a root-logger handler and level, sys.excepthook,
    variables from a .env file): put it back, so the tests after these run as they would alone."""
    root, hook, environ = logging.getLogger(), sys.excepthook, dict(os.environ)
    handlers, levels = list(root.handlers), {name: logging.getLogger(name).level for name in ("", "httpx", "httpx2")}
    yield
    for h in root.handlers[:]:
        if h not in handlers:
            root.removeHandler(h)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    sys.excepthook = hook
    os.environ.clear()
    os.environ.update(environ)


@pytest.fixture()
def server(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OPENAI_API_KEY", "dummy")  # the openai provider wants one; the server takes any
    with running_server(SKILLED) as url:
        yield url


def _stats(base_url: str) -> dict[str, int]:
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/stats", timeout=5) as r:
        return json.loads(r.read())


def _eval(task: Task, url: str, log_dir: Path, **model_args: Any) -> Any:
    [log] = inspect_ai.eval(task, model="openai/sim", model_base_url=url, model_args=model_args, log_dir=str(log_dir),
                            display="none", temperature=0)
    assert log.status == "success", log.error
    return log


def _accuracy(log: Any) -> float:
    return log.results.scores[0].metrics["accuracy"].value


@pytest.mark.parametrize("streaming", [False, True])
def test_inspect_eval_over_the_responses_api(server: str, tmp_path: Path, streaming: bool) -> None:
    log = _eval(Task(dataset=ARITHMETIC, scorer=includes()), server, tmp_path, streaming=streaming)
    assert _accuracy(log) == 1.0
    assert [s.output.completion.splitlines()[-1] for s in log.samples] == ["Answer: 11", "Answer: 21"]
    s = _stats(server)
    assert s["chat"] == 0 and s["responses"] >= 2 and s["ok"] == s["requests"]  # its default provider path
    assert s["stream"] == (2 if streaming else 0)


@pytest.mark.parametrize("streaming", [False, True])
def test_inspect_eval_over_chat_completions(server: str, tmp_path: Path, streaming: bool) -> None:
    log = _eval(Task(dataset=ARITHMETIC, scorer=includes()), server, tmp_path, responses_api=False, streaming=streaming)
    assert _accuracy(log) == 1.0
    s = _stats(server)
    assert (s["chat"], s["responses"], s["stream"], s["ok"]) == (2, 0, 2 if streaming else 0, 2)


@tool
def price_lookup():
    async def execute(item: str) -> str:
        """Unit price of an item, in cents.

        Args:
            item: the item's name
        """
        return str(store().get("prices")[item.lower()])

    return execute


@solver
def order_prices():
    async def solve(state: TaskState, generate: Generate) -> TaskState:
        store().set("prices", state.metadata["prices"])  # what the tool knows, per sample
        return state

    return solve


@pytest.mark.parametrize("streaming", [False, True])
def test_inspect_tool_use_over_the_responses_api(server: str, tmp_path: Path, streaming: bool) -> None:
    env = registry.make("tools", difficulty=1)
    samples = []
    for seed in (3, 4):
        prompt, _ = env.reset(seed=seed)
        samples.append(Sample(input=prompt, target=str(env.task.answer), metadata={"prices": env.task.metadata["prices"]}))
    task = Task(dataset=samples, solver=[order_prices(), use_tools(price_lookup()), generate()], scorer=includes())
    log = _eval(task, server, tmp_path, streaming=streaming)
    assert _accuracy(log) == 1.0
    for sample in log.samples:
        calls = [c for m in sample.messages if m.role == "assistant" for c in (m.tool_calls or [])]
        results = [m for m in sample.messages if m.role == "tool"]
        assert calls and {c.function for c in calls} == {"price_lookup"}
        assert [r.tool_call_id for r in results] == [c.id for c in calls] and all(r.error is None for r in results)
    s = _stats(server)
    assert s["chat"] == 0 and s["responses"] >= 4 and s["ok"] == s["requests"]  # a call turn and an answer turn each


def test_the_inspect_eval_command(server: str, tmp_path: Path) -> None:
    (tmp_path / "arith.py").write_text(textwrap.dedent(f"""
        from inspect_ai import Task, task
        from inspect_ai.dataset import Sample
        from inspect_ai.scorer import match

        @task
        def arith():
            return Task(dataset=[Sample(input={PROMPT.format("3 + 4 * 2")!r}, target="11"),
                                 Sample(input={PROMPT.format("(2 + 5) * 3")!r}, target="21")], scorer=match())
        """))
    cmd = [sys.executable, "-m", "inspect_ai", "eval", "arith.py", "--model", "openai/sim", "--model-base-url", server,
           "--temperature", "0", "--log-dir", str(tmp_path / "logs"), "--display", "plain"]
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=240, env={**os.environ})
    assert r.returncode == 0, r.stdout + r.stderr
    [log_file] = (tmp_path / "logs").iterdir()
    log = inspect_ai.log.read_eval_log(str(log_file))
    assert log.status == "success" and log.results.scores[0].metrics["accuracy"].value == 1.0
    assert _stats(server)["responses"] >= 2
