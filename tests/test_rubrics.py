"""The rubric library: each grader's verdicts, labels, and behaviour on garbage."""

from __future__ import annotations

import pytest

import rubrics
from agentsynth import GradeContext, Signal, Task, grader
from agentsynth.signals import run_grader

TASK = Task("t", "demo", 0, "What is 6 * 7? End with 'Answer: <n>'.", "42")


def g(gr, answer: str, task: Task = TASK) -> Signal:
    return run_grader(gr, GradeContext(task, answer, ({"role": "assistant", "content": answer},), 1))


GARBAGE = ["", "\x00", "Answer:", "Answer: " + "9" * 10_000, "Answer: 1e999", "Answer: ∞", "{]"]


def test_exact_and_normalized_match_are_token_level() -> None:
    exact, norm = rubrics.exact_match(), rubrics.normalized_match()
    assert g(exact, "Answer: 42").passed and not g(exact, "Answer: 42.0").passed
    city = Task("t", "demo", 0, "Capital?", "São Paulo")
    assert g(norm, "Answer: sao paulo.", city).passed and not g(exact, "Answer: sao paulo", city).passed
    assert (exact.signal_type.meta_level, exact.signal_type.source) == (0, "reference")


def test_numeric_tolerance_and_verifier_are_outcome_level() -> None:
    num = rubrics.numeric_tolerance(rel_tol=1e-3)
    assert g(num, "Answer: 42.0").passed and g(num, "it is 42.01").passed and not g(num, "Answer: 43").passed
    ver = rubrics.verifier(lambda task, ans: "42" in ans, name="has42")
    assert g(ver, "42!").passed and ver.signal_type.meta_level == 2 and ver.signal_type.source == "verifier"


def test_partial_credit_counts_checks_and_names_the_failed_ones() -> None:
    pc = rubrics.partial_credit([("number", lambda t, a: rubrics.parse_number(a) is not None),
                                 ("correct", lambda t, a: rubrics.numeric_match(a, 42)),
                                 ("short", lambda t, a: len(a) < 20)])
    s = g(pc, "Answer: 41")
    assert s.value == pytest.approx(2 / 3) and s.passed is False and "correct" in s.feedback and "42" not in s.feedback
    assert pc.signal_type.meta_level == 1


def test_criteria_rubric_is_criterion_level_and_critiques_without_the_answer() -> None:
    rub = rubrics.criteria_rubric([
        rubrics.Criterion("correct", "the final answer is correct", lambda t, a: rubrics.numeric_match(a, 42), 3),
        rubrics.Criterion("form", "the answer ends with an 'Answer:' line", lambda t, a: a.strip().splitlines()[-1].startswith("Answer:"), 1),
    ])
    s = g(rub, "I think 41")
    assert s.value == 0 and "NOT met: the final answer is correct" in s.feedback and "42" not in s.feedback
    assert g(rub, "work\nAnswer: 42").passed and g(rub, "42 is it").value == pytest.approx(0.75)
    assert rub.signal_type.meta_level == 3 and rub.signal_type.source == "rubric"


def test_composition_derives_labels_from_parts() -> None:
    correct = rubrics.numeric_tolerance()
    fmt = rubrics.answer_line()
    gate = rubrics.all_of([correct, fmt], name="correct_and_formatted")
    assert g(gate, "Answer: 42").passed and not g(gate, "it is 42").passed
    assert (gate.signal_type.meta_level, gate.signal_type.task_relevant, gate.signal_type.openness) == (0, True, "open")
    mix = rubrics.weighted_sum([(correct, 0.8), (fmt, 0.2)], name="mix", threshold=0.8)
    assert g(mix, "it is 42").value == pytest.approx(0.8) and g(mix, "it is 42").passed
    only_format = rubrics.weighted_sum([(fmt, 1.0), (rubrics.max_length(50), 1.0)], name="surface")
    assert only_format.signal_type.task_relevant is False


def test_format_and_length_checks_are_not_task_relevant() -> None:
    for gr in (rubrics.answer_line(), rubrics.max_length(10)):
        assert gr.signal_type.task_relevant is False


def test_user_grader_in_a_few_lines() -> None:
    @grader("polite", source="rubric", meta_level=3, task_relevant=False)
    def polite(ctx):
        return "please" in ctx.answer.lower()

    assert g(polite, "please: Answer: 42").passed and polite.signal_type.meta_level == 3


@pytest.mark.parametrize("answer", GARBAGE)
def test_no_grader_raises_on_garbage(answer: str) -> None:
    graders = [rubrics.exact_match(), rubrics.normalized_match(), rubrics.numeric_tolerance(), rubrics.answer_line(),
               rubrics.max_length(5), rubrics.partial_credit([("x", lambda t, a: 1 / 0)]),
               rubrics.criteria_rubric([rubrics.Criterion("c", "c", lambda t, a: a[99999] == "x")])]
    for gr in graders:
        s = g(gr, answer)
        assert s.passed in (True, False, None)


def test_model_graders_declare_their_labels_and_need_a_model() -> None:
    judge, same, me = rubrics.llm_judge(), rubrics.llm_judge(same_model=True), rubrics.self_judge()
    assert (judge.name, judge.signal_type.openness) == ("judge", "open")
    assert (same.name, same.signal_type.openness) == ("judge_same_model", "closed")
    assert (me.signal_type.source, me.signal_type.openness) == ("self", "closed")
    assert all(g.uses_model for g in (judge, same, me))
    assert g(judge, "Answer: 42").passed is None  # no model configured: it cannot say


def test_unit_tests_grader_runs_hidden_tests_in_the_sandbox() -> None:
    task = Task("t", "code", 0, "Write add(a, b).", "def add(a, b):\n    return a + b\n",
                {"function": "add", "tests": [[1, 2], [0, 0], [-3, 3]], "expected": [3, 0, 0]})
    ut = rubrics.unit_tests()
    assert g(ut, "```python\ndef add(a, b):\n    return b + a\n```", task).passed is True
    wrong = g(ut, "```python\ndef add(a, b):\n    return a - b\n```", task)
    assert wrong.passed is False and "returned -1 for the call add(1, 2)" in wrong.details["failure"]
    assert g(ut, "Answer: 3", TASK).passed is None  # a task without unit tests: it cannot say
    assert (ut.signal_type.source, ut.signal_type.meta_level) == ("verifier", 2)
