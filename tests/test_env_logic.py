"""The logic (knights and knaves) environment: seeding, the verifier (any consistent
assignment, liberal answer forms), the hint, the sim solver, and a short run through the runner."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from agentsynth.signals import GradeContext
from agentsynth.sim.solvers import solve
from envs.logic import LogicEnv, consistent

from conftest import assert_runs_and_reference_helps, assert_seeded

SEEDS = range(20)


def tasks(difficulty: int, seeds=SEEDS):
    env = LogicEnv(feedback="hint", difficulty=difficulty)
    for seed in seeds:
        env.reset(seed=seed)
        yield env, env.task


def solutions(task) -> list[dict[str, bool]]:
    people = task.metadata["people"]
    every = (dict(zip(people, v)) for v in itertools.product((True, False), repeat=len(people)))
    return [a for a in every if not consistent(task.metadata["statements"], a)]


def kind(v: bool) -> str:
    return "knight" if v else "knave"


def canon(a: dict[str, bool]) -> str:
    return ", ".join(f"{p}={kind(v)}" for p, v in a.items())



def test_same_seed_same_task_and_seeds_differ() -> None:
    assert_seeded(LogicEnv, (1, 2, 3), SEEDS, 15)  # two people: ~60 distinct puzzles


@pytest.mark.parametrize("difficulty", [1, 2, 3])
def test_puzzles_have_the_right_size_and_the_hidden_assignment_is_consistent(difficulty: int) -> None:
    for _, task in tasks(difficulty):
        people = task.metadata["people"]
        assert people == [chr(65 + i) for i in range(difficulty + 1)]
        assert [s for s, _, _ in task.metadata["statements"]] == people
        sols = solutions(task)
        assert task.answer in [canon(a) for a in sols] and len(sols) == task.metadata["solutions"]


def forms(a: dict[str, bool]) -> list[str]:
    """Equivalent ways of writing assignment ``a``."""
    p = list(a)
    knights, knaves = [x for x in p if a[x]], [x for x in p if not a[x]]
    groups = [f"{' and '.join(g)} {'is a' if len(g) == 1 else 'are'} {w}{'s' * (len(g) > 1)}"
              for g, w in ((knights, "knight"), (knaves, "knave")) if g]
    return [
        "Answer: " + ", ".join(f"{x}={kind(a[x])}" for x in p),
        "answer: " + " ; ".join(f"{x.lower()} = {kind(a[x]).upper()}" for x in reversed(p)),
        "Answer: " + ", ".join(f"{x}: {kind(a[x]).capitalize()}" for x in p),
        "Answer: " + ", ".join(f"{x} is a {kind(a[x])}" for x in p),
        "Answer: " + " and ".join(f"{x} is {'not ' if a[x] else ''}a knave" for x in p),
        "Answer: " + "; ".join(groups) + ".",
        "Answer: " + " ".join(f"{w}: {', '.join(g)}." for g, w in ((knights, "Knights"), (knaves, "Knaves")) if g),
        "Answer: " + ", ".join(f"{x} - {'truth-teller' if a[x] else 'liar'}" for x in p),
        "Answer:\n" + "\n".join(f"- **{x}**: {kind(a[x])}" for x in p) + "\n\nEvery statement checks out.",
        "Reasoning about A being a knave first...\nSo " + ", ".join(f"{x} is a {kind(a[x])}" for x in p) + ".",
    ]


@pytest.mark.parametrize("difficulty", [1, 2, 3])
def test_verifier_accepts_every_solution_in_every_form(difficulty: int) -> None:
    for env, task in tasks(difficulty):
        assert env.verify(task, "Answer: " + task.answer)
        for a in solutions(task):
            for good in forms(a):
                assert env.verify(task, good), (task.prompt, good)


def test_a_different_consistent_assignment_than_the_reference_is_accepted() -> None:
    found = 0
    for d in (1, 2, 3):
        for env, task in tasks(d, range(60)):
            others = [a for a in solutions(task) if canon(a) != task.answer]
            for a in others:
                assert env.verify(task, "Answer: " + canon(a)), (task.prompt, canon(a))
                found += 1
    assert found >= 10
    # and one by hand: "A says: B is a knight. B says: A is a knight." fits both all-knights and all-knaves
    env = LogicEnv()
    env.reset(seed=0)
    task = env.make_task("hand-made", "A=knight, B=knight", people=["A", "B"],
                         statements=[["A", "knight", ["B"]], ["B", "knight", ["A"]]])
    assert env.verify(task, "Answer: A=knave, B=knave") and env.verify(task, "Answer: A=knight, B=knight")
    assert not env.verify(task, "Answer: A=knight, B=knave")


@pytest.mark.parametrize("difficulty", [1, 2, 3])
def test_verifier_rejects_wrong_and_malformed_answers_and_the_hint_never_shows_the_answer(difficulty: int) -> None:
    for env, task in tasks(difficulty):
        people = task.metadata["people"]
        good = {canon(a) for a in solutions(task)}
        wrong = [canon(dict(zip(people, v))) for v in itertools.product((True, False), repeat=len(people))]
        wrong = [w for w in wrong if w not in good]
        assert wrong and len(wrong) + len(good) == 2 ** len(people)
        answer = dict(zip(people, (s.endswith("knight") for s in task.answer.split(", "))))
        malformed = [
            "", "Answer:", "Answer: " + task.answer.rsplit(", ", 1)[0],  # a person missing
            "Answer: " + task.answer + f", {people[0]}={kind(not answer[people[0]])}",  # a person twice
            "Answer: " + ", ".join(f"{p}=<knight|knave>" for p in people),  # the template
            "Answer: " + ", ".join(f"{p}=knight/knave" for p in people),
            "Answer: unknown", "\u2603" * 40,
        ]
        for b in ["Answer: " + w for w in wrong] + malformed:
            assert not env.verify(task, b), (task.prompt, b)
            hint = env.hint(task, b)
            assert isinstance(hint, str) and hint and task.answer not in hint
            assert not any(canon(a) in hint for a in solutions(task))
        for w in wrong:
            bad = consistent(task.metadata["statements"], dict(zip(people, (s.endswith("knight") for s in w.split(", ")))))
            assert env.hint(task, "Answer: " + w).startswith(f"{bad[0]}'s statement does not fit your assignment")


def test_verify_and_hint_survive_garbage() -> None:
    env = LogicEnv(feedback="hint", difficulty=3)
    env.reset(seed=1)
    for junk in ("", " ", "x" * 100_000, "knight " * 10_000, "A " * 50_000, "Answer: " + "A=knight " * 10_000,
                 "\u2603\x00", '{"A": ["knight"]}', "Answer: Z=knight, Q=knave"):
        assert env.verify(env.task, junk) is False
        assert isinstance(env.hint(env.task, junk), str)
    assert env.verify(env.task, None) is False  # type: ignore[arg-type]
    assert env.hint(env.task, None)  # type: ignore[arg-type]


def test_format_score_wants_every_person_exactly_once() -> None:
    env = LogicEnv(difficulty=2)
    env.reset(seed=3)
    task = env.task
    fmt = env.graders["format"]
    assert (fmt.signal_type.source, fmt.signal_type.openness, fmt.signal_type.meta_level, fmt.signal_type.task_relevant) == (
        "rubric", "open", 0, False)
    for reply, ok in (("Answer: A=knave, B=knave, C=knave", True), ("Answer: C is a knight; A: knave, b = knight", True),
                      ("Answer: A=knave, B=knave", False), ("Answer: A=knave, B=knave, C=knave, A=knave", False),
                      ("A=knave, B=knave, C=knave", False), ("", False)):
        assert fmt.grade(GradeContext(task, reply, (), 1)).passed is ok, reply


@pytest.mark.parametrize("difficulty", [1, 2, 3])
def test_sim_solver_solves_from_the_prompt_and_its_mistakes_fail(difficulty: int) -> None:
    for env, task in tasks(difficulty):
        prob = solve(task.prompt)
        assert prob is not None and prob.domain == "logic" and prob.difficulty == difficulty
        for tidy in (True, False):
            assert env.verify(task, prob.render(prob.answer, tidy))
            assert prob.extract(prob.render(prob.answer, tidy)) == prob.answer
        assert env.verify(task, prob.render(task.answer, True))  # copying the reference works
        people = task.metadata["people"]
        assert len(prob.mistakes) >= min(3, 2 ** len(people) - task.metadata["solutions"])
        for m in prob.mistakes:
            assert not env.verify(task, prob.render(m, True)) and not env.verify(task, prob.render(m, False))
        first = [s.endswith("knight") for s in prob.mistakes[0].split(", ")]
        sol = [s.endswith("knight") for s in prob.answer.split(", ")]
        assert sum(a != b for a, b in zip(first, sol)) == 1 or task.metadata["solutions"] > 1  # one person flipped
    assert solve("Compute the value of: 1 + 2").domain != "logic"


def test_runner_completes_and_reference_feedback_lifts_the_pass_rate(tmp_path: Path) -> None:
    assert_runs_and_reference_helps(tmp_path, "envs.logic:LogicEnv", "logic")
