"""The algebra environment: linear equations in x with exact rational answers, and its sim solver."""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

import agentsynth
from agentsynth.sim.solvers import solve
from envs.algebra import AlgebraEnv

from conftest import assert_runs_and_reference_helps, assert_seeded

DIFFICULTIES = (1, 2, 3)
SEEDS = range(20)


def tasks(difficulty: int):
    env = AlgebraEnv(difficulty=difficulty, feedback="hint")
    for seed in SEEDS:
        env.reset(seed=seed)
        yield env, env.task, Fraction(env.task.answer)


def terminates(x: Fraction) -> bool:
    den = x.denominator
    for p in (2, 5):
        while den % p == 0:
            den //= p
    return den == 1


def side(text: str, x: Fraction) -> Fraction:
    """Evaluate one side of the shown equation (implicit products made explicit)."""
    return eval(re.sub(r"(\d)\s*([x(])", r"\1*\2", text), {"__builtins__": {}}, {"x": x})


def numbers(text: str) -> list[Fraction]:
    return [Fraction(n) / Fraction(d or 1) for n, d in re.findall(r"(-?\d+(?:\.\d+)?)(?:/(\d+))?", text)]


def equivalent(x: Fraction) -> list[str]:
    """Other correct forms of x: fractions reduced or not, LaTeX, decimals, with or without 'x ='."""
    n, d = x.numerator, x.denominator
    sign = "-" if x < 0 else ""
    forms = [
        f"Answer: x = {x}", f"x={x}", f"Answer: {x}", f"Answer: {2 * n}/{2 * d}", f"Answer: X = {3 * n}/{3 * d}",
        f"Answer: x = {sign}\\frac{{{abs(n)}}}{{{d}}}", f"Answer: $\\boxed{{x = \\dfrac{{{n}}}{{{d}}}}}$",
        f"The solution is x = {x}.", f"Work...\n**Answer:** x = {x}", f"Answer: x = {x}".replace("-", "−"),
        f"Answer: x = {x} (check: both sides agree = ok)",
    ]
    if terminates(x):
        dec = Decimal(n) / Decimal(d)
        forms += [f"Answer: x = {dec}", f"Answer: x = {dec:.6f}", f"x = {x} = {dec}", f"Answer: x = {float(x):e}"]
        if d == 1:
            forms += [f"Answer: x = {n}.0", f"x = {n}."]
        elif abs(x) < 1:
            forms.append(f"Answer: {sign}{str(abs(dec))[1:]}")  # .5 / -.5
    else:
        forms += [f"Answer: x = {float(x):.4g}", f"x ≈ {float(x):.8f}", f"Answer: x = {x} ≈ {float(x):.5g}"]
    return forms


def wrong(x: Fraction) -> list[str]:
    forms = [f"Answer: x = {x + 1}", f"Answer: x = {-x}", f"Answer: x = {2 * x}", f"Answer: x = {x} or x = {x + 1}",
             "Answer: x = 0", "", "Answer:", "Answer: x = 1/0", "x is unknown"]
    if x.denominator > 1:  # forgot to divide; the reciprocal
        forms += [f"Answer: {x.numerator}", f"Answer: {x.denominator}/{x.numerator}"]
    if abs(x) != 1:
        forms.append(f"Answer: x = {1 / x}")
    approx = f"{float(x):.2g}"
    if abs(Fraction(approx) - x) > abs(x) / 1000 or terminates(x):
        forms.append(f"Answer: x = {approx}" if Fraction(approx) != x else f"Answer: x = {float(x) * 1.01:.6g}")
    return forms



def test_same_seed_same_task_and_seeds_differ() -> None:
    assert_seeded(AlgebraEnv, DIFFICULTIES, SEEDS, 18)


@pytest.mark.parametrize("d", DIFFICULTIES)
def test_reference_answer_solves_the_equation_and_difficulty_shapes_it(d: int) -> None:
    non_integer = 0
    for _, task, x in tasks(d):
        left, right = task.metadata["equation"].split("=")
        assert side(left, x) == side(right, x) and x != 0
        assert task.answer == str(x)  # reduced fraction or integer
        non_integer += x.denominator > 1
        eq = task.metadata["equation"]
        if d == 1:
            assert eq.count("x") == 1 and "(" not in eq and "/" not in eq
        elif d == 2:
            assert re.search(r"x.*=.*x", eq) and "(" not in eq and "/" not in eq
        else:
            assert "(" in eq or "/" in eq
    assert non_integer >= 5


@pytest.mark.parametrize("d", DIFFICULTIES)
def test_verifier_accepts_every_equal_form_and_rejects_wrong_ones(d: int) -> None:
    for env, task, x in tasks(d):
        assert env.verify(task, task.answer) and env.verify(task, f"Answer: x = {task.answer}")
        for good in equivalent(x):
            assert env.verify(task, good), (task.answer, good)
        for bad in wrong(x):
            assert not env.verify(task, bad), (task.answer, bad)


def test_the_fixed_examples_of_the_brief() -> None:
    env = AlgebraEnv()
    env.reset(seed=0)
    for answer, good, bad in (
        ("1/2", ["1/2", "0.5", "x = 0.5", "x=1/2", ".5", "2/4", "Answer: x = 0.50", "5e-1"], ["0.49", "0.51", "-1/2", "2"]),
        ("-3/2", ["-3/2", "-1.5", "x = −1.5", "Answer: -\\frac{3}{2}", "(-3)/2"], ["3/2", "-2/3", "-1.4"]),
        ("1/3", ["0.333", "0.3333", "1/3", "x ≈ 0.33333"], ["0.33", "0.3", "333/1000", "0.334"]),
        ("4", ["4", "4.0", "8/2", "x = 4 (since 2*4 + 1 = 9)"], ["4.001", "x = 4 (or 5)", "x = 4, 5"]),
    ):
        task = agentsynth.Task("algebra", "algebra", 0, "p", answer, {"lhs": ["2", "1"], "rhs": ["0", "9"]})
        assert all(env.verify(task, g) for g in good), [g for g in good if not env.verify(task, g)]
        assert not any(env.verify(task, b) for b in bad), [b for b in bad if env.verify(task, b)]


@pytest.mark.parametrize("d", DIFFICULTIES)
def test_hint_gives_direction_and_side_values_but_never_the_solution(d: int) -> None:
    for env, task, x in tasks(d):
        for bad in [*wrong(x)[:3], *(f"Answer: x = {m}" for m in solve(task.prompt).mistakes)]:
            hint = env.hint(task, bad)
            assert hint and x not in numbers(hint), (task.answer, bad, hint)
            assert task.answer not in re.findall(r"-?\d+(?:/\d+)?", hint)
            stated = Fraction(bad.split("=")[-1].strip())
            assert ("too large" in hint) == (stated > x)
        assert "no value of x" in env.hint(task, "I give up")


def test_garbage_never_raises() -> None:
    env = AlgebraEnv(feedback="hint", max_turns=50)
    env.reset(seed=3)
    garbage = ["", "\x00\x01", "Answer: " + "9" * 5000, "Answer: 1/0", "Answer: 1e999", "Answer: x = 1e99999999",
               "Answer: " + "(" * 3000, "Answer: \\frac{1}{0}", "é" * 10000, "Answer: x = 9" + "." * 5000,
               {"content": None}, {"content": "x", "tool_calls": []}]
    for action in garbage:
        env.step(action)
        text = action if isinstance(action, str) else ""
        assert env.verify(env.task, text) in (True, False)
        assert isinstance(env.hint(env.task, text), str)


def test_format_score_checks_the_answer_line() -> None:
    env = AlgebraEnv(feedback="binary", max_turns=3)
    env.reset(seed=1)
    for reply, ok in ((f"Answer: x = {env.task.answer}", True), ("Answer: -3/2", True), (f"so x is {env.task.answer}", False)):
        info = env.step(reply)[4]
        assert next(s for s in info["signals"] if s["name"] == "format")["passed"] is ok


@pytest.mark.parametrize("d", DIFFICULTIES)
def test_sim_solver_solves_renders_and_its_mistakes_fail(d: int) -> None:
    for env, task, x in tasks(d):
        prob = solve(task.prompt)
        assert prob is not None and prob.domain == "algebra" and prob.answer == task.answer
        assert 0.9 <= prob.difficulty <= 3.0 and (prob.difficulty == 1.0) == (d == 1)
        for tidy in (True, False):
            assert env.verify(task, prob.render(prob.answer, tidy))
            assert prob.extract(prob.render(prob.answer, tidy)) == prob.answer
            for m in prob.mistakes:
                assert not env.verify(task, prob.render(m, tidy)), (task.answer, m)
        assert len(prob.mistakes) >= 3 and len(set(prob.mistakes)) == len(prob.mistakes)
        assert not env.verify(task, "Answer: " + prob.answer_words(prob.answer))
        left, right = (Fraction(v) for v in task.metadata["lhs"]), (Fraction(v) for v in task.metadata["rhs"])
        (p, q), (r, s) = left, right
        assert Fraction(prob.mistakes[0]) == (s + q) / (p - r)  # the sign slip comes first


def test_sim_solver_ignores_other_prompts() -> None:
    from envs.algebra_sim import algebra

    for prompt in ("Compute the value of: 3 + 4", "Solve for x: x*x = 4", "Solve for x: 2x + 1", "Solve for x: 0x = 0", "hello"):
        assert algebra(prompt) is None


def test_runner_completes_and_reference_feedback_lifts_the_pass_rate(tmp_path: Path) -> None:
    assert_runs_and_reference_helps(tmp_path, "envs.algebra:AlgebraEnv", "algebra")
