"""Reading the answer out of a reply: the shared, model-free text rules.

:func:`final_answer` is what graders and the store call "the answer" of an assistant message;
:func:`normalize` is the comparison key used to tell answers apart (self-consistency, the audit's
acceptance classes, export de-duplication).
"""

from __future__ import annotations

import re

_ANSWER_MARK = re.compile(r"answer[ \t]*[:=]", re.I)
_SPACE = re.compile(r"\s+")


def final_answer(text: str) -> str:
    """The answer part of a reply: the rest of the last ``Answer:`` line (or, when that line is
    empty, the block after it, code fences removed); else the last non-empty line."""
    text = text or ""
    marks = list(_ANSWER_MARK.finditer(text))
    if marks:
        line, _, after = text[marks[-1].end():].partition("\n")
        if line.strip():
            return line.strip().strip("*`").strip()
        block = after.strip()
        if block.startswith("```"):
            block = block.split("\n", 1)[1] if "\n" in block else ""
            block = block.rsplit("```", 1)[0]
        if block.strip():
            return block.strip()
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def normalize(answer: str) -> str:
    """Comparison key of an (already extracted) answer: case-folded, whitespace collapsed, a
    trailing full stop dropped."""
    return _SPACE.sub(" ", (answer or "").strip().strip(".").casefold())
