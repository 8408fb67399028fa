"""The code environment: hidden unit tests in the sandbox accept every correct function and no
wrong one; the hint names the failing input, never the expected value; the sim solver."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from agentsynth.sim.solvers import solve
from envs.code import LEVELS, CodeEnv, extract_code

from conftest import assert_runs_and_reference_helps, assert_seeded

SEEDS = range(20)


def _tasks(difficulty: int, seeds=SEEDS):
    env = CodeEnv(difficulty=difficulty)
    for seed in seeds:
        env.reset(seed=seed)
        yield env, env.task



def test_same_seed_same_task_and_seeds_differ() -> None:
    assert_seeded(CodeEnv, (2,), range(20), 15)


def test_difficulty_picks_harder_families_and_more_tests() -> None:
    seen = {}
    for d in (1, 2, 3):
        tasks = [t for _, t in _tasks(d, range(60))]  # generating is cheap: nothing runs
        seen[d] = {t.metadata["family"] for t in tasks}
        assert {t.metadata["level"] for t in tasks} == {d}
        assert min(len(t.metadata["tests"]) for t in tasks) >= 3 + 3 * d
    assert len(seen[1] | seen[2] | seen[3]) == sum(len(v) for v in LEVELS.values()) == 16


def _alternative(task) -> str:
    """A correct solution in another shape: a wrapper returning tuples for lists, floats for ints."""
    name = task.metadata["function"]
    impl = task.answer.replace(f"def {name}(", "def _impl(", 1)
    return (f"{impl}\n\ndef {name}(*args):\n    out = _impl(*args)\n"
            "    if isinstance(out, list):\n        return tuple(out)\n"
            "    return float(out) if type(out) is int else out\n")


@pytest.mark.parametrize("difficulty", [1, 2, 3])
def test_verifier_accepts_every_form_of_a_correct_function_and_rejects_mistakes(difficulty: int) -> None:
    for i, (env, task) in enumerate(_tasks(difficulty)):
        ref, name = task.answer, task.metadata["function"]
        good = [f"```python\n{ref}```", f"```python\n{_alternative(task)}```"]
        if i < 5:  # forms that differ only in how the code is wrapped: a few tasks suffice (and mostly hit the cache)
            good += [
                f"```\n{ref}\n```",
                ref,  # no fence at all
                f"Here you go:\n\n```py\n{ref}\n```\nIt runs in linear time.",
                f"```python\nprint('a first draft')\n```\nFinal version:\n```python\n{ref}\n```\n```python\nprint({name}.__name__)\n```",
                "```python\r\n" + ref.replace("\n", "\r\n") + "```",
                "```python\n" + ref,  # unterminated fence
                "1. The function:\n\n    ```python\n" + "\n".join("    " + ln for ln in ref.splitlines()) + "\n    ```",
                f"```python\nimport math\n\n{ref}\nif __name__ == '__main__':\n    print({name}(input()))\n```",
            ]
        for reply in good:
            assert env.verify(task, reply), (task.metadata["family"], reply)
        prob = solve(task.prompt)
        assert prob is not None and prob.domain == "code" and prob.render and prob.extract
        assert prob.difficulty == {1: 1.0, 2: 1.6, 3: 2.2}[difficulty]
        for tidy in (True, False):
            reply = prob.render(prob.answer, tidy)
            assert env.verify(task, reply) and prob.extract(reply) == prob.answer
        assert len(prob.mistakes) >= 3
        bad = [prob.render(m, True) for m in prob.mistakes]
        if i < 5:
            bad += [
                f"```python\ndef {name}(*args):\n    return None\n```",
                f"```python\ndef {name}(*args)\n    return None\n```",  # syntax error
                "I am not sure how to write this.",
                f"```python\n{ref.replace(name, name + '_v2')}```",
            ]
        for reply in bad:
            assert not env.verify(task, reply), (task.metadata["family"], reply)
            hint = env.hint(task, reply)
            assert hint and ref not in hint and "that is correct" not in hint
        assert env.hint(task, f"```python\n{ref}```") is None


def test_hint_shows_the_input_and_the_wrong_output_never_the_expected_value() -> None:
    for env, task in _tasks(1):
        name, first = task.metadata["function"], task.metadata["tests"][0]
        hint = env.hint(task, f"```python\ndef {name}(*args):\n    return 'SENTINEL'\n```")
        call = f"{name}({', '.join(map(repr, first))})"
        assert hint == f"your function returned 'SENTINEL' for the call {call}; that is not correct."
        assert repr(task.metadata["expected"][0]) not in hint.replace(call, "")
    env, task = next(_tasks(2))
    name = task.metadata["function"]
    assert "raised ZeroDivisionError: division by zero" in env.hint(task, f"```python\ndef {name}(*a):\n    return 1 / 0\n```")
    assert env.hint(task, "```python\ndef other(x):\n    return x\n```") == f"your code does not define a function named `{name}`."
    assert "SyntaxError" in env.hint(task, f"```python\ndef {name}(:\n```")
    assert "NameError" in env.hint(task, f"```python\nundefined_thing\ndef {name}(*a):\n    return 1\n```")
    assert env.hint(task, "").startswith("no Python code found")


def test_runaway_code_is_stopped_and_the_hint_says_so() -> None:
    env, task = next(_tasks(1))
    name = task.metadata["function"]
    t = time.monotonic()
    assert not env.verify(task, f"```python\ndef {name}(*a):\n    while True:\n        pass\n```")
    hint = env.hint(task, f"```python\ndef {name}(*a):\n    while True:\n        pass\n```")  # cached: no second run
    assert time.monotonic() - t < 5
    assert re.search(r"did not finish the call .*: (cpu limit|wall-clock timeout)\.$", hint), hint
    for code, why in [("import socket\n    socket.create_connection(('127.0.0.1', 80))", "network"),
                      ("print('x' * 10**6)", "output limit"), ("return ' ' * 10**10", "MemoryError")]:
        hint = env.hint(task, f"```python\ndef {name}(*a):\n    {code}\n```")
        assert why in hint, hint


def test_printed_results_cannot_fake_a_pass() -> None:
    env, task = next(_tasks(1))
    name = task.metadata["function"]
    cheat = (f"```python\nimport sys\njob = sys.modules['__main__'].job\nfor _ in job['tests']:\n"
             f"    print(job['marker'] + '{{\"out\": 0}}')\nsys.stdout.flush()\ndef {name}(*a):\n    return 0\n```")
    assert not env.verify(task, cheat)


@pytest.mark.parametrize("garbage", ["", " ", "\x00", "é" * 50, "```", "```python\n```", "Answer: 42", "x" * 200_000,
                                     "```python\n" + "def f():\n    pass\n" * 2000 + "```", "\ud800"])
def test_verify_never_raises_on_garbage(garbage: str) -> None:
    env, task = next(_tasks(1))
    assert env.verify(task, garbage) is False
    assert isinstance(env.hint(task, garbage), str)


def test_format_score_is_a_surface_check() -> None:
    env = CodeEnv(feedback="binary")
    env.reset(seed=1)
    name = env.task.metadata["function"]
    fmt = env.graders["format"]
    assert fmt.signal_type.task_relevant is False
    _, _, _, _, info = env.step(f"```python\ndef {name}(x):\n    return None\n```")
    sig = {s["name"]: s for s in info["signals"]}
    assert sig["format"]["passed"] is True and sig["correct"]["passed"] is False
    assert extract_code("no fence here", name) == "no fence here\n"
    draft, final = f"def {name}(x):\n    return 1\n", f"def {name}(x):\n    return 2\n"
    for reply in (f"```python\n{draft}```\nAnswer:\n```python\n{final}```", f"```python\n{draft}```\nAnswer: {final}",
                  f"```python\n{draft}```\n\\boxed{{{final}}}", f"```python\n{draft}```\nAnswer: `{final}`."):
        assert extract_code(reply, name) == final, reply  # the last mark's code, not the earlier block
    assert extract_code(f"```python\n{final}```\n**Answer:** the function above.", name) == final


def test_solver_ignores_other_prompts() -> None:
    assert solve("Compute the value of: 1 + 2").domain != "code"
    assert solve("Write a Python function `f(x)` that does something nobody specified.\n\nExamples:\n") is None


def test_runner_completes_and_reference_feedback_lifts_the_pass_rate(tmp_path: Path) -> None:
    assert_runs_and_reference_helps(tmp_path, "envs.code:CodeEnv", "code")
