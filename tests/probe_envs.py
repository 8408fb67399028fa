"""Planted environments for tests/test_probe.py: one correct verifier and graders with known
defects the probe must find. Not test modules: loaded by path or import."""

from __future__ import annotations

from agentsynth import ProbeReplies, Task, TextEnv, grader
from rubrics import numeric_match


class Sum(TextEnv):
    """Add two numbers; a correct verifier (the number in the final answer, any form)."""

    name = "planted_sum"
    domain = "planted"

    def generate(self, rng):
        a, b = (int(x) for x in rng.integers(1, 50, size=2))
        return self.make_task(f"What is {a} + {b}? End with 'Answer: <number>'.", a + b)

    def verify(self, task: Task, answer: str) -> bool:
        return numeric_match(answer, float(task.answer))

    def probe_replies(self, task: Task) -> ProbeReplies:
        a = int(task.answer)
        return ProbeReplies(wrong=(str(a + 1), str(a - 1)), single_answer=True)


class AnswerAnywhere(Sum):
    """Hackable: passes any reply containing 'Answer:'."""

    name = "planted_hackable"

    def verify(self, task: Task, answer: str) -> bool:
        return "Answer:" in answer


class ExactReference(Sum):
    """Brittle: passes only the reference reply, character for character."""

    name = "planted_brittle"

    def verify(self, task: Task, answer: str) -> bool:
        return answer == self.reference_reply(task)


@grader("fragile", source="rubric", meta_level=0)
def fragile(ctx):
    """A score that raises on an empty reply."""
    if not ctx.answer:
        raise ZeroDivisionError("empty reply")
    return True


class RaisingScore(Sum):
    """Its score grader raises during a probe (on the empty reply)."""

    name = "planted_raising"

    def scores(self):
        return [fragile]


class Quirky(Sum):
    """Correct on every generic strategy; its own replies find its two defects: it accepts the
    reply 'I concede' and rejects an answer followed by a unit word."""

    name = "planted_quirky"

    def verify(self, task: Task, answer: str) -> bool:
        return answer == "I concede" or (numeric_match(answer, float(task.answer)) and "apples" not in answer)

    def probe_replies(self, task: Task) -> ProbeReplies:
        return ProbeReplies(wrong=Sum.probe_replies(self, task).wrong, single_answer=True,
                            must_fail={"concede": "I concede"}, must_pass={"with a unit": f"Answer: {task.answer} apples"})


class MagicWord(Sum):
    """Accepts the reply 'xyzzy' (only a user-registered strategy sends it)."""

    name = "planted_magic"

    def verify(self, task: Task, answer: str) -> bool:
        return answer == "xyzzy" or super().verify(task, answer)
