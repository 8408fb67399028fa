"""The strings environment: seeding, the verifier's accepted forms and near misses, the
hint, the sim solver, and a short run through the real runner."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentsynth.signals import GradeContext
from agentsynth.sim.solvers import solve
from envs.strings import WORDS, StringTransformEnv, apply, run

from conftest import assert_runs_and_reference_helps, assert_seeded

SEEDS = range(20)


def tasks(difficulty: int):
    env = StringTransformEnv(feedback="hint", difficulty=difficulty)
    for seed in SEEDS:
        env.reset(seed=seed)
        yield env, env.task



def test_same_seed_same_task_and_seeds_differ() -> None:
    assert_seeded(StringTransformEnv, (1, 2, 3), SEEDS, 18)


def test_difficulty_is_the_chain_length_and_every_step_matters() -> None:
    for d in (1, 2, 3):
        for _, task in tasks(d):
            steps = [tuple(s) for s in task.metadata["steps"]]
            assert len(steps) == d and len({op for op, _ in steps}) == d
            assert run(task.metadata["text"], steps) == task.answer
            for i in range(d):  # skipping any step changes the output
                assert run(task.metadata["text"], steps[:i] + steps[i + 1:]) != task.answer


def test_word_pool_keeps_every_step_unambiguous() -> None:
    skeletons = {"".join(c for c in w if c not in "aeiou") for w in WORDS}
    assert len(skeletons) == len(set(WORDS)) == len(WORDS)
    assert all(w != w[::-1] and w.isalpha() and w.islower() for w in WORDS)


def equivalent_forms(x: str) -> list[str]:
    """Every form the verifier accepts for the output ``x``."""
    return [
        f"Answer: {x}", f"Answer:{x}", f"answer = {x}", f"  Answer:   {x}   \n", f"Answer: \"{x}\"",
        f"Answer: '{x}'", f"Answer: `{x}`", f"Answer: **{x}**", f"Answer: {x}.", f"Answer: \u201c{x}\u201d",
        f"Answer:\n{x}", f"Answer:\n```\n{x}\n```", f"Answer: ```text\n{x}\n```",
        f"Working...\n```\n{x}\n```", f"The result is:\n\"{x}\"", f"{x}",
        f"Answer: wrong guess\nLet me redo it.\nAnswer: {x}",
    ]


@pytest.mark.parametrize("difficulty", [1, 2, 3])
def test_verifier_accepts_the_reference_in_every_form(difficulty: int) -> None:
    for env, task in tasks(difficulty):
        for good in equivalent_forms(task.answer):
            assert env.verify(task, good), (task.prompt, good)


@pytest.mark.parametrize("difficulty", [1, 2, 3])
def test_verifier_rejects_near_misses_and_the_hint_never_shows_the_output(difficulty: int) -> None:
    for env, task in tasks(difficulty):
        x = task.answer
        flipped = x[:-1] + x[-1].swapcase()
        bad = [x.lower(), x.upper(), x.swapcase(), flipped, x + " x", x.replace(" ", "  ", 1), x.replace(" ", ""),
               x[:-1], task.metadata["text"], " ".join(x.split(" ")[::-1]), "", "Answer:", "Answer: ```"]
        bad += solve(task.prompt).mistakes
        for b in bad:
            if b == x:
                continue
            for reply in (f"Answer: {b}", b):
                assert not env.verify(task, reply), (task.prompt, reply)
                hint = env.hint(task, reply)
                assert isinstance(hint, str) and hint and x not in hint, (x, hint)


def test_case_always_matters() -> None:
    """Every step keeps each letter's case except swap-case, so the expected case is determined."""
    seen = 0
    for d in (1, 2, 3):
        for env, task in tasks(d):
            if any(op == "swapcase" for op, _ in task.metadata["steps"]):
                seen += 1
                assert not env.verify(task, "Answer: " + task.answer.swapcase())
                assert "case is wrong" in env.hint(task, "Answer: " + task.answer.swapcase())
    assert seen >= 5


def test_hint_names_the_kind_of_slip_and_the_first_wrong_character() -> None:
    env = StringTransformEnv(feedback="hint")
    found = set()
    for seed in range(200):
        env.reset(seed=seed)
        task = env.task
        (op, k), = task.metadata["steps"]
        text = task.metadata["text"]
        if op == "caesar" and "caesar" not in found:
            assert "wrong direction" in env.hint(task, "Answer: " + apply(text, "caesar", -k))
            assert "off by one" in env.hint(task, "Answer: " + apply(text, "caesar", k + 1))
            found.add(op)
        if op == "reverse_words" and op not in found:
            assert "not their letters" in env.hint(task, "Answer: " + text[::-1])
            found.add(op)
    assert found == {"caesar", "reverse_words"}
    env.reset(seed=0)
    x = env.task.answer
    h = env.hint(env.task, "Answer: " + x[:3] + "#" * (len(x) - 2))
    assert "the first 3 characters are right" in h and f"expected {len(x)} characters, got {len(x) + 1}" in h
    assert "no answer found" in env.hint(env.task, "")


def test_verify_and_hint_survive_garbage() -> None:
    env = StringTransformEnv(feedback="hint")
    env.reset(seed=1)
    for junk in ("", "   ", "Answer:", "\u2603" * 50, "```", "``````", "Answer: ```\n", "x" * 1_000_000,
                 "```\n" * 10_000, "Answer: \x00\x01", '{"answer": [1, 2]}'):
        assert env.verify(env.task, junk) is False
        assert isinstance(env.hint(env.task, junk), str)
    assert env.verify(env.task, None) is False  # type: ignore[arg-type]


def test_format_score_checks_the_answer_line() -> None:
    env = StringTransformEnv()
    env.reset(seed=2)
    fmt = env.graders["format"]
    assert (fmt.signal_type.source, fmt.signal_type.openness, fmt.signal_type.meta_level, fmt.signal_type.task_relevant) == (
        "rubric", "open", 0, False)
    for reply, ok in ((f"Steps...\nAnswer: {env.task.answer}", True), ("Answer: abc def", True), (f"'{env.task.answer}'", False),
                      (f"Answer: {env.task.answer}\nDone.", False), ("Answer:", False)):
        assert fmt.grade(GradeContext(env.task, reply, (), 1)).passed is ok, reply


@pytest.mark.parametrize("difficulty", [1, 2, 3])
def test_sim_solver_solves_from_the_prompt_and_its_mistakes_fail(difficulty: int) -> None:
    for env, task in tasks(difficulty):
        prob = solve(task.prompt)
        assert prob is not None and prob.domain == "strings" and prob.answer == task.answer
        assert prob.difficulty == difficulty
        assert env.verify(task, prob.render(prob.answer, True)) and env.verify(task, prob.render(prob.answer, False))
        assert prob.extract(prob.render(prob.answer, False)) == prob.answer
        assert len(prob.mistakes) >= 3 and task.answer not in prob.mistakes
        for m in prob.mistakes:
            assert not env.verify(task, prob.render(m, True)) and not env.verify(task, prob.render(m, False))
        steps = [op for op, _ in task.metadata["steps"]]
        if "caesar" in steps:  # the favourite slip: the shift in the wrong direction
            assert "wrong direction" in env.hint(task, prob.render(prob.mistakes[0], True))
        elif difficulty > 1:  # else: the last step forgotten
            assert prob.mistakes[0] == run(task.metadata["text"], [tuple(s) for s in task.metadata["steps"][:-1]])
    assert solve("Compute the value of: 1 + 2").domain != "strings"


def test_runner_completes_and_reference_feedback_lifts_the_pass_rate(tmp_path: Path) -> None:
    assert_runs_and_reference_helps(tmp_path, "envs.strings:StringTransformEnv", "strings")
