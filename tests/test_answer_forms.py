"""Every built-in domain's truth reads the answer in every form models write it
(:data:`agentsynth.answer_forms.FORMS`): the reference rendered in each form passes, and a wrong
answer rendered in each form fails, 20 seeds per difficulty level
(:func:`agentsynth.answer_forms.cases`). Each reply also shows the other answer as a discarded
first attempt, so reading the wrong part of a reply fails either way. Plus the shared reader's own
rules (:mod:`agentsynth.answers`); the reasoning-gym adapter's forms are in
``test_env_reasoning_gym.py``."""

from __future__ import annotations

import pytest

from agentsynth import final_answer, registry
from agentsynth.answer_forms import FORMS, LEVELS, NOT_APPLICABLE, cases, render
from agentsynth.answers import answer_block, answer_readings, answer_region


def test_every_builtin_domain_is_covered_by_twelve_forms_or_more() -> None:
    assert set(LEVELS) == set(registry.available())
    assert all(len([f for f in FORMS if (domain, f) not in NOT_APPLICABLE]) >= 12 for domain in LEVELS)


@pytest.mark.parametrize("domain", sorted(LEVELS))
def test_the_reference_passes_and_a_wrong_answer_fails_in_every_form(domain: str) -> None:
    bad = []
    for env, task, ref, wrong in cases(domain):
        for name in FORMS:
            if (domain, name) in NOT_APPLICABLE:
                continue
            right, other = render(name, ref, wrong), render(name, wrong, ref)
            if not env.verify(task, right):
                bad.append(("reference failed", name, task.metadata["difficulty"], task.seed, right))
            if env.verify(task, other):
                bad.append(("wrong answer passed", name, task.metadata["difficulty"], task.seed, other))
    assert not bad, f"{len(bad)} failures, e.g. {bad[:3]}"


@pytest.mark.parametrize(("reply", "answer"), [
    ("Work.\n**Answer:**\n17", "17"), ("**Answer:** 17", "17"), ("Answer: **17**", "17"), ("**Answer: 17**", "17"),
    ("**Final Answer**: 17", "17"), ("## Answer\n\n17\n\nThat is all.", "17"), ("answer = 17", "17"),
    ("\\boxed{17}", "17"), ("$\\boxed{\\frac{1}{2}}$", "\\frac{1}{2}"), ("\\boxed{x} then \\boxed{\\{1, {2}\\}}", "\\{1, {2}\\}"),
    ("Answer: $17$", "17"), ("Answer: $$17$$", "17"), ("Answer: \\(17\\)", "17"), ("Answer: \\[17\\]", "17"),
    ("Answer: 24.", "24"), ("Answer: 24..", "24."), ('Answer: "Plnt grdn."', "Plnt grdn"), ("Answer: \u201cab\u201d", "ab"),
    ("Answer: `17`", "17"), ("Answer:\n```\nab\ncd\n```\nDone.", "ab\ncd"), ("Answer: ```text\nab\n```", "ab"),
    ("The answer is 17.", "17"), ("So the final answer is: 17", "17"), ("I think 17", "I think 17"),
    ("Answer: 3\nNo, wait.\nAnswer: 4", "4"), ("\\boxed{3}\nAnswer: 4", "4"), ("Answer: 4\n\\boxed{3}", "3"),
    ("Answer: 17\n\nI hope the answer is clear.", "17"),  # "the answer is" counts only without another mark
    ("```python\nanswer = 3 * 4\n```\nSo the result is 12", "So the result is 12"),  # marks in code do not count
    ("Working.\n```\nab cd\n```", "ab cd"), ('The result is:\n"ab"', "ab"),
])
def test_the_reader_reads_each_form(reply: str, answer: str) -> None:
    assert final_answer(reply) == answer


@pytest.mark.parametrize(("reply", "answer"), [
    ('Answer: "a" and "b"', '"a" and "b"'), ("Answer: $5 and $6", "$5 and $6"), ("Answer: `a` or `b`", "`a` or `b`"),
    ("Answer: \\(a\\) or \\(b\\)", "\\(a\\) or \\(b\\)"), ("Answer: 3 or 4 or 5", "3 or 4 or 5"), ("Answer:", ""),
    ("Answer: ```", ""), ("", ""), ("Answer: \\boxed{3}{4}", "3"),
])
def test_only_whole_wrappers_are_removed_and_nothing_is_guessed(reply: str, answer: str) -> None:
    assert final_answer(reply) == answer


def test_block_region_and_readings() -> None:
    reply = "Work.\nAnswer: A=knight,\nB=knave\n\nEvery statement checks out."
    assert final_answer(reply) == "A=knight,"
    assert answer_block(reply) == "A=knight,\nB=knave"
    assert answer_region(reply) == "A=knight,\nB=knave\n\nEvery statement checks out"
    assert answer_region("no mark") is None and answer_region("\\boxed{a {b}}") == "a {b}"
    assert answer_readings("Answer: He left.") == ["He left"]
    assert answer_readings("Answer: He left.", keep_stop=True) == ["He left", "He left."]
    assert answer_readings("1 2\n3 4") == ["3 4", "1 2\n3 4"]
    assert answer_readings(None) == [] and final_answer(None) == ""  # type: ignore[arg-type]


@pytest.mark.timeout(20)
def test_adversarial_replies_cost_linear_time() -> None:
    """Unclosed or deeply nested marks are read in one pass each (20,000 unclosed \\boxed{ took 8 minutes)."""
    assert final_answer("\\boxed{" * 20_000).startswith("\\boxed{")  # no mark: the last line, as it is
    assert final_answer("\\boxed{" * 20_000 + "}") == ""
    assert final_answer("Answer: " + "\\text{" * 16_000 + "x" + "}" * 16_000).startswith("\\text{")
    assert answer_readings("Answer: x\n" * 20_000 + "```" * 10_000, keep_stop=True)
