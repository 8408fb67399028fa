"""Built-in graders (rubrics) for agentsynth environments.

Each grader declares its labels (source, openness, meta-level, task relevance); see
``agentsynth.SignalType``.
"""

from .compose import all_of, weighted_sum
from .criteria import Criterion, criteria_rubric
from .format import answer_line, max_length
from .judges import llm_judge, self_judge
from .match import exact_match, normalize, normalized_match
from .numeric import direction_hint, numeric_match, numeric_tolerance, parse_number
from .partial import partial_credit
from .unit_tests import unit_tests
from .verifier import verifier

__all__ = [
    "Criterion",
    "all_of",
    "answer_line",
    "criteria_rubric",
    "direction_hint",
    "exact_match",
    "llm_judge",
    "max_length",
    "normalize",
    "normalized_match",
    "numeric_match",
    "numeric_tolerance",
    "parse_number",
    "partial_credit",
    "self_judge",
    "unit_tests",
    "verifier",
    "weighted_sum",
]
