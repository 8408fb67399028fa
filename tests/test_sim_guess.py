"""The sim on a user's own environment: solvers found beside their environments (same file, by
path, in process), and the weak guesser it is on prompts no solver reads."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time
import urllib.request
import warnings
from pathlib import Path

import pytest

from agentsynth import TextEnv, registry
from agentsynth.sim import Problem, SimModel
from agentsynth.sim.guess import GUESS_PREFIX, candidates, fill, requested_form
from agentsynth.sim.solvers import solve
from conftest import ROOT, cli, free_port, q, write_spec

GAME = '''
from agentsynth import TextEnv, final_answer


class GuessNumber(TextEnv):
    """A guessing game: a whole number from 1 to 20; the hint says too high or too low."""

    name = "guess_number"

    def generate(self, rng):
        return self.make_task("I am thinking of a whole number between 1 and 20. Guess it. "
                              "End with 'Answer: <number>'.", int(rng.integers(1, 21)))

    def verify(self, task, answer):
        return final_answer(answer).strip() == task.answer

    def hint(self, task, answer):
        got = final_answer(answer).strip()
        if not got.lstrip("-").isdigit():
            return "no number found."
        return "too high." if int(got) > int(task.answer) else "too low."
'''


def test_the_guess_is_in_the_requested_form_and_drawn_from_the_prompt() -> None:
    word = "Spell 'planet' backwards. End with 'Answer: <word>'."
    assert requested_form(word) == "Answer: <word>" and candidates(word, "Answer: <word>") == ["planet"]
    game = "A number between 3 and 6, or 9. End with a line 'Answer: <integer>'."
    assert candidates(game, requested_form(game)) == ["3", "4", "5", "6", "9"]
    eq = "Solve for x: 2x = 8\nEnd with a line 'Answer: x = <value>'."
    assert requested_form(eq) == "Answer: x = <value>" and fill("Answer: x = <value>", "4") == "Answer: x = 4"
    assert candidates(eq, requested_form(eq)) == ["2", "8"]
    assert fill("Answer: a=<a>, b=<b>", "7") == "Answer: 7"
    bare = "What is the capital of Mars?"
    assert requested_form(bare) == "Answer: <answer>" and candidates(bare, "Answer: <answer>") == [str(d) for d in range(10)]
    reply = SimModel().reply([{"role": "user", "content": game}], seed=3)
    assert reply.startswith(GUESS_PREFIX) and re.fullmatch(r"Answer: [3-69]", reply.splitlines()[-1])
    greedy = {SimModel().reply([{"role": "user", "content": game}], temperature=0, seed=s) for s in range(5)}
    assert greedy == {f"{GUESS_PREFIX}\nAnswer: 3"}


def test_feedback_rules_guesses_out_and_a_reference_is_copied() -> None:
    game = "A number between 1 and 20. End with 'Answer: <number>'."
    m = SimModel()

    def after(feedback: str, guess: str = "10") -> set[str]:
        msgs = [{"role": "user", "content": game}, {"role": "assistant", "content": f"{GUESS_PREFIX}\nAnswer: {guess}"},
                {"role": "user", "content": feedback}]
        return {m.reply(msgs, seed=s).splitlines()[-1].removeprefix("Answer: ") for s in range(200)}

    assert after("Incorrect. Try again.") == {str(v) for v in range(1, 21)} - {"10"}
    assert after("Incorrect. Hint: too high.") == {str(v) for v in range(1, 10)}
    assert after("Incorrect. Hint: your answer is too low.") == {str(v) for v in range(11, 21)}
    assert after("Please review your answer and try again.") == {str(v) for v in range(1, 21)}  # none: says nothing
    assert after("Correct.") == {"10"}
    copied = after("Incorrect. The expected answer is: 17")
    assert "17" in copied and len(copied) > 1  # copied with probability use_reference (0.9), else a guess
    assert after("Judge: looks wrong.\nVERDICT: incorrect") == {str(v) for v in range(1, 21)} - {"10"}


def test_a_user_environment_without_a_solver_gets_a_weak_model(tmp_path: Path) -> None:
    """Through the real CLI, by path: the guess is always in the requested form; `none` does not
    help; binary feedback eliminates guesses; a too-high/too-low hint narrows them; a reference is
    copied."""
    (tmp_path / "game.py").write_text(GAME)
    store = tmp_path / "s.duckdb"
    spec = write_spec(tmp_path / "g.toml", f"""
        name = "game"
        store = "{store}"
        samples = 2
        [[envs]]
        id = "game.py:GuessNumber"
        tasks = 100
        max_turns = 5
        feedback = ["none", "binary", "hint", "reference"]
        """)
    r = cli("run", str(spec), "-q", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rates = {f: (first, last) for f, first, last in q(store, """
        SELECT feedback, avg(passed_first::INT), avg(passed_last::INT) FROM episodes GROUP BY 1""")}
    assert all(first < 0.15 for first, _ in rates.values()), rates
    assert rates["none"][1] < 0.15
    assert rates["binary"][1] > rates["none"][1] + 0.1
    assert rates["hint"][1] > rates["binary"][1] + 0.2
    assert rates["reference"][1] > 0.85
    lines = q(store, "SELECT DISTINCT regexp_extract(content, '[^\\n]*$') FROM messages WHERE role = 'assistant'")
    assert all(re.fullmatch(r"Answer: \d+", line) for (line,) in lines), lines


class _Shout(TextEnv):
    """A test environment whose solver is a plain function without a domain."""

    name = "shout_test"
    domain = "shouting"

    @staticmethod
    def sim_solver(prompt: str) -> Problem | None:
        m = re.fullmatch(r"SHOUT-TEST (\w+)", prompt)
        return Problem(answer=m[1].upper(), mistakes=[m[1]]) if m else None


class _ShoutLouder(_Shout):
    """Inherits the solver: found once, under the class that defines it."""


def _boom(prompt: str) -> Problem | None:
    if prompt.startswith("BOOM-TEST"):
        raise ValueError("cannot read this")
    return None


class _Boom(TextEnv):
    name = "boom_test"
    sim_solver = _boom


def test_solvers_are_found_beside_their_environments_in_process() -> None:
    prob = solve("SHOUT-TEST hello")
    assert prob is not None and prob.answer == "HELLO" and prob.domain == "shouting"
    assert sum(1 for s in registry.sim_solvers() if s("SHOUT-TEST x") is not None) == 1
    reply = SimModel().reply([{"role": "user", "content": "SHOUT-TEST hi"}], temperature=0)
    assert not reply.startswith(GUESS_PREFIX) and ("HI" in reply or "hi" in reply)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert solve("BOOM-TEST now") is None  # a solver that raises does not recognise the prompt
    assert any("_boom" in str(w.message) and "ValueError: cannot read this" in str(w.message) for w in caught)
    arithmetic = registry.make("arithmetic").reset(seed=0)[0]
    assert solve(arithmetic).domain == "arithmetic"


def test_built_in_solvers_are_found_without_importing_envs() -> None:
    """A fresh process that never imports envs/ (as `agentsynth serve` does) still reads every
    built-in domain: the registry loads the environments from their entry points."""
    code = textwrap.dedent("""
        import sys
        from agentsynth.sim.solvers import solve
        assert not any(m == "envs" or m.startswith("envs.") for m in sys.modules)
        p = solve("Compute the value of: 2 + 3 * 4\\nEnd with a line 'Answer: <integer>'.")
        print(p.domain, p.answer)
    """)
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.split() == ["arithmetic", "14"], r.stderr



def test_serve_env_loads_a_user_solver(tmp_path: Path) -> None:
    """`agentsynth serve --env file.py:Class` makes the served sim read that environment's prompts."""
    readme = (ROOT / "README.md").read_text()
    env_code = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if b.startswith("# my_envs.py"))
    (tmp_path / "my_envs.py").write_text(env_code)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "agentsynth", "serve", "--port", str(port), "--env",
                               str(tmp_path / "my_envs.py") + ":ReverseWord"], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "server on" in server.stdout.readline()
        body = {"model": "sim", "temperature": 0, "messages": [
            {"role": "user", "content": "Spell 'garden' backwards. End with 'Answer: <word>'."}]}
        for _ in range(100):
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", json.dumps(body).encode(),
                                             {"Content-Type": "application/json"})
                reply = json.load(urllib.request.urlopen(req, timeout=10))["choices"][0]["message"]["content"]
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("server did not answer")
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert not reply.startswith(GUESS_PREFIX) and re.search(r"\b(nedrag|nedra|garden)\b", reply), reply
