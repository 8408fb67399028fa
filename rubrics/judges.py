"""Model-based graders: an LLM judge, and the policy judging itself. The mechanisms live in
:mod:`agentsynth.channels` (every environment's ``judge`` and ``self`` channels use them); these
factories make them usable as scores too. Self-consistency needs every sample of a task, so it is
computed after the run: ``agentsynth regrade --grader self_consistency``."""

from agentsynth.channels import JudgeGrader, SelfReviewGrader
from agentsynth.signals import Grader


def llm_judge(*, same_model: bool = False) -> Grader:
    """The run's judge model grades the answer against criteria (open; closed and named
    ``judge_same_model`` when the judge is the policy itself). Parses ``VERDICT:`` robustly;
    its token cost is recorded in ``signals.tokens``."""
    return JudgeGrader(same_model=same_model)


def self_judge() -> Grader:
    """The policy reviews its own answer (closed)."""
    return SelfReviewGrader()
