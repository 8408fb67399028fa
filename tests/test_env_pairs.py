"""The pairs environment (many correct answers): seeding, the verifier accepts every pair that meets
the prompt's conditions (found by brute force from the prompt text) and rejects plausible slips,
the hint, the sim solver and its variety, and a short run through the runner."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agentsynth.signals import GradeContext
from agentsynth.sim.solvers import solve
from envs.pairs import PairsEnv

from conftest import assert_runs_and_reference_helps, assert_seeded, assert_sim_writes_many_correct_answers

DIFFICULTIES = (1, 2, 3)
SEEDS = range(20)
_PY = [(r"(\w) is even", r"\1 % 2 == 0"), (r"(\w) is odd", r"\1 % 2 == 1"), (r"(\w) is a multiple of 3", r"\1 % 3 == 0"),
       (r" = ", " == ")]


def tasks(difficulty: int, seeds=SEEDS):
    env = PairsEnv(difficulty=difficulty, feedback="hint")
    for seed in seeds:
        env.reset(seed=seed)
        yield env, env.task


def brute(prompt: str) -> list[tuple[int, int]]:
    """Every pair of positive integers meeting the prompt's conditions, read from its text."""
    text = re.search(r"with (.+)\. End with", prompt).group(1)
    conds = re.split(r", | and ", text)
    for pattern, py in _PY:
        conds = [re.sub(pattern, py, c) for c in conds]
    total = int(re.match(r"a \+ b == (\d+)", conds[0]).group(1))
    code = compile(" and ".join(f"({c})" for c in conds), "<prompt>", "eval")
    return [(a, b) for a in range(1, 2 * total) for b in range(1, 2 * total)
            if eval(code, {"__builtins__": {}}, {"a": a, "b": b})]  # noqa: S307 - the prompt's own conditions


def forms(a: int, b: int) -> list[str]:
    """Ways of writing the pair (a, b) that the verifier reads as it."""
    return [f"Answer: a={a}, b={b}", f"a = {a}, b = {b}", f"Answer: b={b}, a={a}", f"Answer: ({a}, {b})", f"Answer: {a}, {b}",
            f"Answer: {a} and {b}", f"Answer: a: {a}; b: {b}", f"I would take a = {a} and b = {b}.", f"Answer: a={a}.0, b={b}",
            f"Answer: $a = {a},\\ b = {b}$", f"\\boxed{{a={a}, b={b}}}", f"Answer: a={a+1}, b={b}\nNo, wait.\nAnswer: a={a}, b={b}",
            f"Answer: a is {a} and b is {b}", f"**Answer:** A = {a}, B = {b}", f"Answer: a = {a} and b = {b}, since a + b = {a + b}"]


def pair(answer: str) -> tuple[int, int]:
    a, b = (int(x.split("=")[1]) for x in answer.split(", "))
    return a, b


def test_same_seed_same_task_and_seeds_differ() -> None:
    assert_seeded(PairsEnv, DIFFICULTIES, SEEDS, 19)


@pytest.mark.parametrize("d", DIFFICULTIES)
def test_tasks_are_short_have_many_solutions_and_every_condition_matters(d: int) -> None:
    for env, task in tasks(d):
        sols = brute(task.prompt)
        conds = task.metadata["conditions"]
        assert len(conds) == d + 1 and len(sols) == task.metadata["solutions"] >= 4
        assert pair(task.answer) in sols
        assert len(task.prompt) <= (100 if d == 1 else 140) and len(task.answer) <= 12
        for i in range(1, len(conds)):  # dropping any condition but the sum admits more pairs
            loose = env.make_task("", task.answer, conditions=conds[:i] + conds[i + 1:])
            total = conds[0][1]
            assert sum(env.verify(loose, f"Answer: a={total - b}, b={b}") for b in range(1, total)) > len(sols)


@pytest.mark.parametrize("d", DIFFICULTIES)
def test_verifier_accepts_every_correct_pair_in_every_form_not_only_the_reference(d: int) -> None:
    others = 0
    for env, task in tasks(d):
        sols = brute(task.prompt)
        for a, b in sols:
            for reply in forms(a, b):
                assert env.verify(task, reply), (task.prompt, reply)
        others += len([s for s in sols if s != pair(task.answer)])
    assert others >= 3 * len(SEEDS)


@pytest.mark.parametrize("d", DIFFICULTIES)
def test_verifier_rejects_plausible_slips_and_the_hint_never_shows_a_correct_pair(d: int) -> None:
    for env, task in tasks(d):
        sols = brute(task.prompt)
        total, (a, b) = task.metadata["conditions"][0][1], pair(task.answer)
        wrong = [(total - y, y) for y in range(0, total + 1) if (total - y, y) not in sols]  # the sum right, a bound missed
        wrong += [(a + 1, b), (a, b - 1), (b, a) if (b, a) not in sols else (a, b + 1)]
        replies = [f"Answer: a={x}, b={y}" for x, y in wrong if (x, y) not in sols]
        replies += [f"Answer: a={a}.5, b={b - 0.5}", f"Answer: a={a}", f"Answer: {a}, {b}, {a + b}", f"Answer: a={a}, a={a + 1}, b={b}",
                    f"Answer: a=-{a}, b={total + a}", "Answer: a=<a>, b=<b>", "", "Answer:", "I do not know."]
        for reply in replies:
            assert not env.verify(task, reply), (task.prompt, reply)
            hint = env.hint(task, reply)
            assert isinstance(hint, str) and hint
            assert not any(f"a={x}, b={y}" in hint or f"a = {x}" in hint for x, y in sols), hint


def test_hint_names_the_broken_condition_with_the_pairs_own_value() -> None:
    env = PairsEnv(difficulty=3, feedback="hint")
    env.reset(seed=0)
    task = env.make_task("hand-made", "a=16, b=4", conditions=[["sum", 20], ["diff", ">", 6], ["prop", "b", "even"], ["prod", ">", 40]])
    assert env.verify(task, "Answer: a=16, b=4") and env.verify(task, "Answer: a=14, b=6")
    assert env.hint(task, "Answer: a=17, b=4") == "a + b is 21, but it must be 20."
    assert env.hint(task, "Answer: a=13, b=7") == "a - b is 6, but it must be greater than 6 (1 other condition also fails)."
    assert env.hint(task, "Answer: a=17, b=3") == "b is 3, which is not even."
    assert env.hint(task, "Answer: a=18, b=2") == "a * b is 36, but it must be greater than 40."
    assert env.hint(task, "Answer: a=0, b=20") == "a and b must both be positive whole numbers."
    assert env.hint(task, "Answer: 16").startswith("no pair found")
    assert env.hint(task, "Answer: a=14, b=6") is None


def test_verify_and_hint_survive_garbage() -> None:
    env = PairsEnv(feedback="hint", difficulty=3)
    env.reset(seed=1)
    for junk in ("", " ", "x" * 100_000, "a=1 " * 10_000, "Answer: " + "9" * 5000 + ", 1", "\u2603\x00", "Answer: a=1e9, b=2",
                 "Answer: a=, b=", "Answer: a=1/2, b=3"):
        assert env.verify(env.task, junk) is False
        assert isinstance(env.hint(env.task, junk), str)
    assert env.verify(env.task, None) is False  # type: ignore[arg-type]


def test_format_score_checks_the_answer_line() -> None:
    env = PairsEnv()
    env.reset(seed=2)
    fmt = env.graders["format"]
    assert (fmt.signal_type.source, fmt.signal_type.task_relevant) == ("rubric", False)
    for reply, ok in ((f"Work.\nAnswer: {env.task.answer}", True), ("Answer: a = 3 , b = 4", True), ("Answer: 3, 4", False),
                      (f"Answer: {env.task.answer}\nDone.", False), ("Answer:", False)):
        assert fmt.grade(GradeContext(env.task, reply, (), 1)).passed is ok, reply


@pytest.mark.parametrize("d", DIFFICULTIES)
def test_sim_solver_knows_every_correct_pair_and_its_mistakes_fail(d: int) -> None:
    for env, task in tasks(d):
        prob = solve(task.prompt)
        assert prob is not None and prob.domain == "pairs" and prob.difficulty == d
        right = [prob.answer, *prob.alternatives]
        assert sorted(map(pair, right)) == sorted(brute(task.prompt))
        for answer in right:
            for tidy in (True, False):
                assert env.verify(task, prob.render(answer, tidy))
                assert prob.extract(prob.render(answer, tidy)) == answer
        assert len(prob.mistakes) >= 3
        for m in prob.mistakes:
            for tidy in (True, False):
                assert not env.verify(task, prob.render(m, tidy)), (task.prompt, m)
        # the favourite slip is the pair just past a boundary: it breaks a bound or a property, not the sum
        assert env.hint(task, prob.render(prob.mistakes[0], True)).startswith(("a - b", "a * b", "a is", "b is"))
    assert solve("Compute the value of: 1 + 2").domain != "pairs"
    assert solve("Give positive integers a and b with a + b = 9 and a / b > 2. End with 'Answer: a=<a>, b=<b>'.") is None


def test_sim_writes_many_different_correct_pairs() -> None:
    assert_sim_writes_many_correct_answers(PairsEnv)


def test_runner_completes_and_reference_feedback_lifts_the_pass_rate(tmp_path: Path) -> None:
    assert_runs_and_reference_helps(tmp_path, "envs.pairs:PairsEnv", "pairs")
