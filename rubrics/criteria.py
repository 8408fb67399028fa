"""Weighted criteria rubrics (criterion level). The mechanism lives in :mod:`agentsynth.criteria`
because every environment's ``rubric`` feedback channel uses it; it is re-exported here."""

from agentsynth.criteria import RUBRIC_PREFIX, Criterion, criteria_rubric

__all__ = ["RUBRIC_PREFIX", "Criterion", "criteria_rubric"]
