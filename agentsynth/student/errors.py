"""The student's one error type (importable without torch)."""

from __future__ import annotations


class StudentError(RuntimeError):
    """A student checkpoint, its training data or its dependencies cannot be used; the message is
    one line that says why (the CLI prints it and exits non-zero)."""


def require_learn_extra() -> None:
    """Raise :class:`StudentError` when torch or tokenizers is missing (the ``learn`` extra)."""
    missing = []
    for module in ("torch", "tokenizers"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise StudentError(
            f"the student needs {' and '.join(missing)}: pip install 'agentsynth[learn]' "
            "(CPU build of torch: see the README, 'The student')")
