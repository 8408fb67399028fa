"""Unit tests (outcome level): run a reply's Python function on hidden inputs in the sandbox.

The task's metadata names the function (``function``), its inputs (``tests``: a list of argument
lists) and the expected results (``expected``). Any implementation returning the expected value on
every input passes. The code runs in :mod:`agentsynth.sandbox` (3 s wall clock, 2 s CPU, 256 MB,
no network); expected values never enter the sandbox, so no printed trick can fake a pass, and under
bubblewrap the code cannot reach them either (it sees neither the project, the store nor other
processes). Without bubblewrap a program can read a world-readable store's ``tasks.metadata`` and
return the stored values: :func:`agentsynth.sandbox.isolation` says which applies.
:func:`check` also says what went wrong first (the failing call and what the function returned or
raised), never the expected value.
"""

from __future__ import annotations

import json
import re
import secrets
import textwrap
from functools import lru_cache

from agentsynth import GradeContext, Grader, Signal, SignalType, Task
from agentsynth.answers import answer_region
from agentsynth.sandbox import run_python

_HARNESS = r'''
import json, sys
job = json.loads(sys.stdin.read())

def emit(obj):
    try:
        line = json.dumps(obj)
    except (TypeError, ValueError):
        line = json.dumps({"error": "the result could not be converted to text"})
    sys.stdout.write("\n" + job["marker"] + line + "\n")
    sys.stdout.flush()

def plain(x, depth=0):
    if x is None or isinstance(x, (bool, int, str)) or (isinstance(x, float) and x - x == 0):
        return x
    if isinstance(x, (list, tuple)) and depth < 20:
        return [plain(v, depth + 1) for v in x]
    return {"repr": repr(x)[:200]}

def main():
    ns = {"__name__": "solution"}
    try:
        exec(compile(job["code"], "solution.py", "exec"), ns)
    except BaseException as e:
        return emit({"load": f"{type(e).__name__}: {e}"[:300]})
    fn = ns.get(job["name"])
    if not callable(fn):
        return emit({"load": "missing"})
    for args in job["tests"]:
        try:
            emit({"out": plain(fn(*json.loads(args)))})
        except BaseException as e:
            emit({"error": f"{type(e).__name__}: {e}"[:300]})

main()
'''
_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)```", re.S)
_DEF = re.compile(r"\bdef\s+\w+\s*\(")


def extract_code(reply: str, name: str) -> str:
    """The code in a reply, dedented: within what its last answer mark introduces
    (:func:`agentsynth.answers.answer_region`) if that defines a function, else within the whole
    reply: the last python/py/unlabelled fenced block defining ``name``, else the last such block,
    else all of it (minus an unterminated opening fence)."""
    text = reply.replace("\r\n", "\n")
    region = answer_region(text)
    if region is not None and _DEF.search(region):
        text = region
    blocks = [body for lang, body in _FENCE.findall(text) if lang.lower() in ("", "python", "py", "python3")]
    defining = [b for b in blocks if re.search(rf"\bdef\s+{re.escape(name)}\s*\(", b)]
    if defining or blocks:
        text = (defining or blocks)[-1]
    elif text.lstrip().startswith("```"):
        text = text.lstrip().split("\n", 1)[-1]
    return textwrap.dedent(text).strip("\n") + "\n"


def _same(got, exp) -> bool:
    if isinstance(exp, bool) or exp is None:
        return got is exp
    if isinstance(exp, (int, float)):
        return isinstance(got, (int, float)) and not isinstance(got, bool) and got == exp
    if isinstance(exp, list):
        return isinstance(got, list) and len(got) == len(exp) and all(_same(g, e) for g, e in zip(got, exp))
    return type(got) is type(exp) and got == exp


def _show(value) -> str:
    text = str(value["repr"]) if isinstance(value, dict) and "repr" in value else repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


@lru_cache(maxsize=512)
def _evaluate(code: str, name: str, tests: str, expected: str) -> tuple[bool, str]:
    """Run ``code``'s ``name`` on the tests in the sandbox: (all passed, what went wrong first)."""
    if not code.strip():
        return False, "no Python code found in your reply; put the function in a ```python code block."
    cases = json.loads(tests)
    marker = "@@result-" + secrets.token_hex(8) + "@@"
    job = json.dumps({"code": code, "name": name, "marker": marker, "tests": [json.dumps(a) for a in cases]})
    res = run_python(_HARNESS, stdin=job, timeout_s=3.0, cpu_s=2, memory_mb=256, max_output=256_000)
    results = []
    for ln in res.stdout.split("\n"):
        if ln.startswith(marker):
            try:
                r = json.loads(ln[len(marker):])
            except ValueError:
                r = None
            results.append(r if isinstance(r, dict) else {"error": "an unreadable result line"})
    if results and "load" in results[0]:
        err = results[0]["load"]
        if err == "missing":
            return False, f"your code does not define a function named `{name}`."
        return False, f"your code failed before `{name}` could be called: {err}."
    for i, (args, exp) in enumerate(zip(cases, json.loads(expected))):
        call = f"{name}({', '.join(_show(a) for a in args)})"
        if i >= len(results):
            why = res.killed_reason or (f"exited with status {res.returncode}" if res.returncode else "stopped")
            tail = (res.stderr.strip().splitlines() or [""])[-1][:200]
            return False, f"your code did not finish the call {call}: {why}" + (f" ({tail})" if tail and not res.timed_out else "") + "."
        r = results[i]
        if "error" in r:
            return False, f"the call {call} raised {r['error']}."
        if not _same(r.get("out"), exp):
            return False, f"your function returned {_show(r.get('out'))} for the call {call}; that is not correct."
    return True, ""


def _check(task: Task, answer: str) -> tuple[bool, str]:
    meta = task.metadata
    if not isinstance(answer, str) or len(answer) > 100_000:
        return False, "the reply is not a usable piece of code."
    code = extract_code(answer, meta["function"])
    return _evaluate(code, meta["function"], json.dumps(meta["tests"]), json.dumps(meta["expected"]))


class _UnitTests(Grader):
    def __init__(self, name: str):
        self.signal_type = SignalType(name, "verifier", "open", 2, True,
                                      "hidden unit tests of the named function, run in the sandbox")

    def grade(self, ctx: GradeContext) -> Signal:
        try:
            ok, why = _check(ctx.task, ctx.answer)
        except (KeyError, TypeError, ValueError) as exc:  # the task lacks function/tests/expected
            return Signal(self.name, 0.0, None, "", {"error": f"task metadata: {exc}"})
        return Signal(self.name, float(ok), ok, "Correct." if ok else "Incorrect.", {} if ok else {"failure": why})


def unit_tests(name: str = "unit_tests") -> Grader:
    """A grader running the task's hidden unit tests (metadata ``function``, ``tests``, ``expected``)."""
    return _UnitTests(name)


check = _check
