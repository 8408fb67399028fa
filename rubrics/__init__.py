"""Built-in graders (rubrics) for agentsynth environments.

Each grader declares its labels (source, openness, meta-level, task relevance); see
``agentsynth.SignalType``.
"""

from .format import answer_line, max_length
from .numeric import numeric_match, parse_number

__all__ = ["answer_line", "max_length", "numeric_match", "parse_number"]
