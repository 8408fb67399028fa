"""The lists environment (many correct answers): seeding, the verifier accepts every list that meets
the prompt's conditions (enumerated by brute force from the prompt text) in the forms models write
and rejects plausible slips, the hint, the sim solver and its variety, and a short run through the
runner."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from agentsynth.signals import GradeContext
from agentsynth.sim.solvers import solve
from envs.lists import ListsEnv

from conftest import assert_runs_and_reference_helps, assert_seeded, assert_sim_writes_many_correct_answers

DIFFICULTIES = (1, 2, 3)
SEEDS = range(20)
_KIND = {"integers": lambda v: True, "even integers": lambda v: v % 2 == 0, "odd integers": lambda v: v % 2,
         "multiples of 3": lambda v: v % 3 == 0}


def tasks(difficulty: int, seeds=SEEDS):
    env = ListsEnv(difficulty=difficulty, feedback="hint")
    for seed in seeds:
        env.reset(seed=seed)
        yield env, env.task


def asked(prompt: str) -> tuple[int, str, int, int, int]:
    m = re.match(r"Give (\d+) distinct (.+?) from (\d+) to (\d+) in increasing order with sum (\d+)\.", prompt)
    return int(m[1]), m[2], int(m[3]), int(m[4]), int(m[5])


def brute(prompt: str) -> list[tuple[int, ...]]:
    """Every increasing list meeting the prompt's conditions, read from its text."""
    k, kind, low, high, total = asked(prompt)
    pool = [v for v in range(low, high + 1) if _KIND[kind](v)]
    return [c for c in itertools.combinations(pool, k) if sum(c) == total]


def forms(nums: tuple[int, ...]) -> list[str]:
    """Ways of writing the list that the verifier reads as it."""
    c = ", ".join(map(str, nums))
    return [f"Answer: {c}", c, f"Answer: [{c}]", f"Answer: ({c})", f"Answer: {' '.join(map(str, nums))}",
            f"Answer: {', '.join(map(str, nums[:-1]))} and {nums[-1]}", f"Answer: {' + '.join(map(str, nums))} = {sum(nums)}",
            f"Answer: {';'.join(map(str, nums))}", "Answer: " + ", ".join(f"n{i + 1}={v}" for i, v in enumerate(nums)),
            f"\\boxed{{{c}}}", f"Answer: $\\{{{c}\\}}$", f"Answer: 1, 2\nNo, wait.\nAnswer: {c}", f"The numbers {c} work.",
            f"**Answer:**\n{c}"]


def as_list(answer: str) -> tuple[int, ...]:
    return tuple(int(x) for x in answer.split(", "))


def test_same_seed_same_task_and_seeds_differ() -> None:
    assert_seeded(ListsEnv, DIFFICULTIES, SEEDS, 19)


@pytest.mark.parametrize("d", DIFFICULTIES)
def test_tasks_are_short_and_have_many_solutions(d: int) -> None:
    for env, task in tasks(d):
        k, kind, low, high, total = asked(task.prompt)
        sols = brute(task.prompt)
        assert k == d + 2 and (kind == "integers") == (d == 1) and (low > 1) == (d == 3)
        assert len(sols) == task.metadata["solutions"] >= (5, 10, 20)[d - 1] and as_list(task.answer) in sols
        assert len(task.prompt) <= (105, 115, 120)[d - 1] and len(task.answer) <= 6 * k


@pytest.mark.parametrize("d", DIFFICULTIES)
def test_verifier_accepts_every_correct_list_not_only_the_reference(d: int) -> None:
    others = 0
    for env, task in tasks(d):
        sols = brute(task.prompt)
        for s in sols:
            assert env.verify(task, "Answer: " + ", ".join(map(str, s))), (task.prompt, s)
        for s in sols[:: max(1, len(sols) // 10)]:  # every form, for a spread of them
            for reply in forms(s):
                assert env.verify(task, reply), (task.prompt, reply)
        keys = {env.canonical(", ".join(map(str, s))) for s in sols}
        assert len(keys) == len(sols)
        others += len(keys - {env.canonical(task.answer)})
    assert others >= 4 * len(SEEDS)


def slips(task) -> list[str]:
    """Plausible wrong answers: the sum off by one, the order reversed, a repeat, a number out of
    range or without the property, one number too few or too many, a fraction, a false total."""
    ref, (k, _kind, low, high, total) = list(as_list(task.answer)), asked(task.prompt)
    show = lambda xs: ", ".join(map(str, xs))  # noqa: E731
    out = [show(ref[:-1] + [ref[-1] + 1]), show(ref[:-1] + [ref[-1] - 1]), show(ref[::-1]), show(ref[:-1] + [high + 1]),
           show(ref[:-2] + [ref[-2], ref[-2]]), show([low - 1] + ref[1:]), show(ref[:-1]), show(ref + [0]),
           show(ref[:-2] + [ref[-2] - 1, ref[-1] + 1]), show(ref[:-2] + [ref[-2] + 0.5, ref[-1] - 0.5]),
           " + ".join(map(str, ref)) + f" = {total + 1}", show([total - sum(range(1, k)), *range(1, k)]),
           "n1, n2, n3", "", "I cannot find any."]
    return out


@pytest.mark.parametrize("d", DIFFICULTIES)
def test_verifier_rejects_plausible_slips_and_the_hint_never_shows_a_correct_list(d: int) -> None:
    for env, task in tasks(d):
        sols = {", ".join(map(str, s)) for s in brute(task.prompt)}
        for bad in slips(task):
            if bad in sols:
                continue
            reply = f"Answer: {bad}"
            assert not env.verify(task, reply), (task.prompt, reply)
            hint = env.hint(task, reply)
            assert isinstance(hint, str) and hint and not any(s in hint for s in sols), hint


def test_hint_names_the_first_broken_condition() -> None:
    env = ListsEnv(feedback="hint")
    env.reset(seed=0)
    task = env.make_task("hand-made", "2, 8, 20", count=3, kind="even", low=1, high=20, sum=30)
    assert env.verify(task, "Answer: 4, 10, 16") and env.verify(task, "Answer: 2 + 8 + 20 = 30")
    assert env.hint(task, "Answer: 2, 8") == "expected 3 numbers, got 2."
    assert env.hint(task, "Answer: 2, 8, 20.5") == "give whole numbers only."
    assert env.hint(task, "Answer: 2, 6, 22") == "22 is not between 1 and 20."
    assert env.hint(task, "Answer: 3, 8, 19") == "3 is not even (1 other problem too)."
    assert env.hint(task, "Answer: 10, 10, 10") == "10 appears more than once."
    assert env.hint(task, "Answer: 20, 8, 2") == "the numbers are not in increasing order."
    assert env.hint(task, "Answer: 2, 8, 18") == "the numbers add up to 28, but the sum must be 30 (2 too little)."
    assert env.hint(task, "Answer: 2 + 8 + 20 = 31") == "the total after '=' (31) is not the sum of the numbers."
    assert env.hint(task, "nothing here").startswith("no numbers found")
    assert env.hint(task, "Answer: 4, 10, 16") is None


def test_verify_and_hint_survive_garbage() -> None:
    env = ListsEnv(feedback="hint", difficulty=3)
    env.reset(seed=1)
    for junk in ("", " ", "x" * 100_000, "1, " * 20_000, "Answer: " + "9" * 5000, "\u2603\x00", "Answer: 1e9, 2, 3, 4, 5",
                 "Answer: = = =", "Answer: 1 + 2 = "):
        assert env.verify(env.task, junk) is False
        assert isinstance(env.hint(env.task, junk), str)
    assert env.verify(env.task, None) is False  # type: ignore[arg-type]


def test_format_score_checks_the_answer_line() -> None:
    env = ListsEnv()
    env.reset(seed=2)
    fmt = env.graders["format"]
    assert (fmt.signal_type.source, fmt.signal_type.task_relevant) == ("rubric", False)
    for reply, ok in ((f"Work.\nAnswer: {env.task.answer}", True), ("Answer: 1,2 , 3", True), ("Answer: [1, 2, 3]", False),
                      (f"Answer: {env.task.answer}\nDone.", False), ("1, 2, 3", False)):
        assert fmt.grade(GradeContext(env.task, reply, (), 1)).passed is ok, reply


@pytest.mark.parametrize("d", DIFFICULTIES)
def test_sim_solver_finds_lists_that_fit_and_its_mistakes_fail(d: int) -> None:
    for env, task in tasks(d):
        prob = solve(task.prompt)
        assert prob is not None and prob.domain == "lists" and prob.difficulty == d
        sols = brute(task.prompt)
        right = [prob.answer, *prob.alternatives]
        assert len(set(right)) == len(right) == min(41, len(sols)) and as_list(prob.answer) == sols[0]
        for answer in right:
            assert as_list(answer) in sols
            for tidy in (True, False):
                assert env.verify(task, prob.render(answer, tidy))
                assert prob.extract(prob.render(answer, tidy)) == answer
        assert len(prob.mistakes) >= 4
        for m in prob.mistakes:
            for tidy in (True, False):
                assert not env.verify(task, prob.render(m, tidy)), (task.prompt, m)
        assert abs(sum(as_list(prob.mistakes[0])) - asked(task.prompt)[4]) == 1  # the favourite slip: the sum off by one
    assert solve("Compute the value of: 1 + 2").domain != "lists"


def test_sim_writes_many_different_correct_lists() -> None:
    assert_sim_writes_many_correct_answers(ListsEnv)


def test_runner_completes_and_reference_feedback_lifts_the_pass_rate(tmp_path: Path) -> None:
    assert_runs_and_reference_helps(tmp_path, "envs.lists:ListsEnv", "lists")
