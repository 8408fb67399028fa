"""The countdown environment (many correct answers): seeding, the verifier accepts every expression
that makes the target (all of them, enumerated by brute force from the prompt's numbers) in the
forms models write and rejects plausible slips, the hint, the sim solver and its variety, and a
short run through the runner."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from agentsynth.signals import GradeContext
from agentsynth.sim.solvers import solve
from envs.countdown import CountdownEnv

from conftest import assert_runs_and_reference_helps, assert_seeded, assert_sim_writes_many_correct_answers

DIFFICULTIES = (1, 2, 3)
SEEDS = range(20)


def tasks(difficulty: int, seeds=SEEDS):
    env = CountdownEnv(difficulty=difficulty, feedback="hint")
    for seed in seeds:
        env.reset(seed=seed)
        yield env, env.task


def asked(prompt: str) -> tuple[int, list[int]]:
    m = re.match(r"Make (\d+) from ([\d, ]+) using", prompt)
    return int(m.group(1)), [int(x) for x in m.group(2).split(", ")]


def written(nums: list[int]):
    """Every expression over all of ``nums`` (each once), fully parenthesised, with its value."""
    if len(nums) == 1:
        yield str(nums[0]), nums[0]
        return
    for i in range(1, len(nums)):
        for left in itertools.combinations(range(len(nums)), i):
            rest = [nums[j] for j in range(len(nums)) if j not in left]
            for (a, x), (b, y) in itertools.product(list(written([nums[j] for j in left])), list(written(rest))):
                yield f"({a}+{b})", x + y
                yield f"({a}-{b})", x - y
                yield f"({a}*{b})", x * y


def brute(prompt: str) -> list[str]:
    """Every expression over a subset of the prompt's numbers whose value is the target."""
    target, nums = asked(prompt)
    return [e for k in range(1, len(nums) + 1) for sub in itertools.combinations(nums, k)
            for e, v in written(list(sub)) if v == target]


def forms(expr: str, target: int) -> list[str]:
    """Ways of writing ``expr`` that the verifier reads as it."""
    spaced = re.sub(r"([-+*])", r" \1 ", expr)
    latex = spaced.replace("*", "\\times")
    return [f"Answer: {expr}", f"Answer: {spaced}", f"Answer: {spaced.replace('*', '×')}", f"Answer: {expr} = {target}",
            f"Answer: {target} = {expr}", f"One way is {spaced.replace('*', 'x')} = {target}", f"Answer: $ {latex} $",
            f"\\boxed{{{expr}}}", f"Answer: `{expr}`", f"Answer: ({expr})", f"Answer: {expr.replace('-', '−')}.",
            f"Answer: [{expr}]", f"I used the numbers: {expr}", f"Answer: 1+1\nNo, wait.\nAnswer: {expr}"]


def test_same_seed_same_task_and_seeds_differ() -> None:
    assert_seeded(CountdownEnv, DIFFICULTIES, SEEDS, 18)


@pytest.mark.parametrize("d", DIFFICULTIES)
def test_tasks_are_short_and_the_counts_match_brute_force(d: int) -> None:
    for env, task in tasks(d):
        target, nums = asked(task.prompt)
        assert len(nums) == (4, 4, 5)[d - 1] == len(set(nums)) and target not in nums
        sols = brute(task.prompt)
        assert len(sols) == task.metadata["solutions"] >= (6, 8, 16)[d - 1]
        assert len({frozenset(re.findall(r"\d+", s)) for s in sols}) == task.metadata["subsets"] >= 2
        assert env.verify(task, "Answer: " + task.answer) and len(task.prompt) <= 110 and len(task.answer) <= (8, 16, 24)[d - 1]


@pytest.mark.parametrize("d", DIFFICULTIES)
def test_verifier_accepts_every_expression_that_makes_the_target(d: int) -> None:
    keys = 0
    for env, task in tasks(d):
        target, _ = asked(task.prompt)
        sols = brute(task.prompt)
        for e in sols:
            assert env.verify(task, f"Answer: {e}"), (task.prompt, e)
        for e in sols[:: max(1, len(sols) // 20)]:  # every form, for a spread of them
            for reply in forms(env.canonical(e), target):
                assert env.verify(task, reply), (task.prompt, reply)
        found = {env.canonical(f"Answer: {e}") for e in sols}
        assert len(found) == len(sols) == task.metadata["solutions"]  # each written expression is its own answer
        keys += len(found - {task.answer})
    assert keys >= 3 * 20


def slips(task) -> list[str]:
    """Plausible wrong answers: a value off by one, a number reused or not given, a number glued
    from two, the precedence slip, an operation or sign not allowed, a false '= N'."""
    target, nums = asked(task.prompt)
    ref, other = task.answer, next(n for n in range(2, 99) if n not in nums)
    flat = ref.replace("(", "").replace(")", "")
    out = [f"{ref}+1", f"{ref}-1", f"{ref}+{nums[0]}-{nums[0]}", f"{ref}+{other}-{other}", f"{ref}*{other}/{other}",
           f"{ref}+{nums[0]}{nums[1]}-{nums[0]}{nums[1]}", f"-{nums[0]}+{nums[0]}+{ref}", f"{ref} = {target + 1}",
           f"{ref}^1", f"{nums[0]}({ref})", f"({ref}", str(target), f"{target}+0", "1+2*3", "", "Answer: <expression>"]
    return out + ([flat] if eval(flat, {"__builtins__": {}}) != target else [])  # noqa: S307 - digits and + - *


@pytest.mark.parametrize("d", DIFFICULTIES)
def test_verifier_rejects_plausible_slips_and_the_hint_never_shows_a_solution(d: int) -> None:
    for env, task in tasks(d):
        sols = {env.canonical(e) for e in brute(task.prompt)} if d < 3 else {task.answer}
        for bad in slips(task):
            if env.canonical(bad) in sols:
                continue  # removing parentheses may leave the value unchanged
            reply = f"Answer: {bad}"
            assert not env.verify(task, reply), (task.prompt, reply)
            hint = env.hint(task, reply)
            assert isinstance(hint, str) and hint and not any(s in hint.replace(" ", "") for s in sols if len(s) > 2), hint


def test_hint_says_what_is_wrong() -> None:
    env = CountdownEnv(feedback="hint")
    env.reset(seed=0)
    task = env.make_task("hand-made", "3*8+7", numbers=[3, 7, 8], target=31)
    assert env.verify(task, "Answer: 7+3*8") and env.verify(task, "Answer: 3*(8+7)-14+0") is False
    assert env.hint(task, "Answer: 3*8+6") == "6 is not one of the numbers; your expression equals 30, not 31 (1 too low)."
    assert env.hint(task, "Answer: 3*8+8-1") == "1 is not one of the numbers; 8 is used 2 times but given only once."
    assert env.hint(task, "Answer: 3*8") == "your expression equals 24, not 31 (7 too low)."
    assert env.hint(task, "Answer: 3*8+7 = 30") == "the value after '=' (30) is not 31."
    assert env.hint(task, "Answer: 8/2+7").startswith("only +, - and * are allowed")
    assert env.hint(task, "Answer: 3(8+7)").startswith("write every multiplication with an operator")
    assert env.hint(task, "Answer: -3+8").startswith("no negative numbers")
    assert env.hint(task, "Answer: (3*8+7").startswith("the parentheses do not match")
    assert env.hint(task, "I give up").startswith("no expression found")
    assert env.hint(task, "Answer: 8*3+7") is None


def test_verify_and_hint_survive_garbage() -> None:
    env = CountdownEnv(feedback="hint", difficulty=3)
    env.reset(seed=1)
    for junk in ("", " ", "x" * 100_000, "(" * 5000 + "1" + ")" * 5000, "1+" * 5000 + "1", "Answer: " + "9" * 5000,
                 "\u2603\x00", "Answer: 1e9", "Answer: ))((", "= = =", "Answer: 2**10", "Answer: 3 x x 4"):
        assert env.verify(env.task, junk) is False
        assert isinstance(env.hint(env.task, junk), str)
    assert env.verify(env.task, None) is False  # type: ignore[arg-type]


def test_format_score_checks_the_answer_line() -> None:
    env = CountdownEnv()
    env.reset(seed=2)
    fmt = env.graders["format"]
    assert (fmt.signal_type.source, fmt.signal_type.task_relevant) == ("rubric", False)
    for reply, ok in ((f"Work.\nAnswer: {env.task.answer}", True), ("Answer: (3 + 4) * 2 = 14", True), ("3+4", False),
                      (f"Answer: {env.task.answer}\nDone.", False), ("Answer: three", False)):
        assert fmt.grade(GradeContext(env.task, reply, (), 1)).passed is ok, reply


@pytest.mark.parametrize("d", DIFFICULTIES)
def test_sim_solver_finds_many_expressions_and_its_mistakes_fail(d: int) -> None:
    for env, task in tasks(d):
        prob = solve(task.prompt)
        assert prob is not None and prob.domain == "countdown"
        assert prob.difficulty in ({1.0}, {2.0, 3.0}, {3.0, 4.0, 5.0})[d - 1]  # the numbers the shortest way needs, less one, + 1 for five
        right = [prob.answer, *prob.alternatives]
        assert len(set(right)) == len(right) >= min(4, task.metadata["solutions"])
        for answer in right:
            for tidy in (True, False):
                assert env.verify(task, prob.render(answer, tidy)), (task.prompt, answer)
                assert prob.extract(prob.render(answer, tidy)) == answer == env.canonical(prob.render(answer, tidy))
        assert env.verify(task, prob.render(task.answer, True))  # copying the reference works
        assert len(prob.mistakes) >= 2
        for m in prob.mistakes:
            for tidy in (True, False):
                assert not env.verify(task, prob.render(m, tidy)), (task.prompt, m)
    assert solve("Compute the value of: 1 + 2").domain != "countdown"


def test_sim_favourite_slip_is_the_precedence_slip_when_parentheses_matter() -> None:
    seen = 0
    for env, task in tasks(2):
        prob = solve(task.prompt)
        dropped = {re.sub(r"[()]", "", env.canonical(e)) for e in brute(task.prompt)} - {env.canonical(e) for e in brute(task.prompt)}
        if dropped:  # some correct expression needs parentheses
            assert prob.mistakes[0] in dropped and not env.verify(task, "Answer: " + prob.mistakes[0])
            seen += 1
    assert seen >= 5


def test_sim_writes_many_different_correct_expressions() -> None:
    assert_sim_writes_many_correct_answers(CountdownEnv)


def test_runner_completes_and_reference_feedback_lifts_the_pass_rate(tmp_path: Path) -> None:
    assert_runs_and_reference_helps(tmp_path, "envs.countdown:CountdownEnv", "countdown")
