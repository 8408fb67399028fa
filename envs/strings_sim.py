"""The sim's string-transformation competence: read the numbered steps and the quoted text from
the prompt and apply them with the environment's own transforms (:func:`envs.strings.apply`).
Its favourite slips: a Caesar shift in the wrong direction, skipping the last step of a chain, a
shift off by one, reversing letters instead of words."""

from __future__ import annotations

import re

from agentsynth.sim import Problem

from .strings import extract, run

_HEAD = "Apply these steps in order to the text below:"
_TEXT = re.compile(r'^Text: "([^"\n]*)"\s*$', re.M)
_STEP = re.compile(r"^\d+\.\s+(.+?)\s*$", re.M)
_SHIFT = re.compile(r"Shift every letter (\d+) places? (forward|backward)")
_KINDS = (("Reverse the order of the words", "reverse_words"), ("Reverse the letters", "reverse_letters"),
          ("Sort the words", "sort"), ("Remove every vowel", "vowels"), ("Swap the case", "swapcase"))


def _render(answer: str, tidy: bool) -> str:
    if tidy:
        return f"Applying the steps one at a time.\nAnswer: {answer}"
    return f"Here is the transformed text:\n```\n{answer}\n```"


def strings(prompt: str) -> Problem | None:
    """String prompts: 'Apply these steps in order to the text below:' + steps + 'Text: "..."'."""
    m = _TEXT.search(prompt)
    if _HEAD not in prompt or not m:
        return None
    text, steps = m.group(1), []
    for line in _STEP.findall(prompt[prompt.index(_HEAD):m.start()]):
        s = _SHIFT.match(line)
        kind = next((op for start, op in _KINDS if line.startswith(start)), None)
        if s:
            steps.append(("caesar", int(s.group(1)) * (1 if s.group(2) == "forward" else -1)))
        elif kind:
            steps.append((kind, 0))
        else:
            return None
    if not steps:
        return None
    answer = run(text, steps)

    def swap(kinds: dict[str, list[tuple[str, int]]]) -> list[str]:
        """The output with each step of a listed kind done the listed wrong way."""
        return [run(text, steps[:i] + [alt] + steps[i + 1:]) for i, (op, _) in enumerate(steps) for alt in kinds.get(op, [])]

    caesar = next((k for op, k in steps if op == "caesar"), 0)
    slips = swap({"caesar": [("caesar", -caesar)]})  # most typical first: the shift in the wrong direction,
    slips += [run(text, steps[:-1])] if len(steps) > 1 else []  # the last step forgotten,
    slips += swap({"reverse_words": [("reverse_all", 0)], "reverse_letters": [("reverse_all", 0)]})  # letters vs words,
    slips += swap({"caesar": [("caesar", caesar + (1 if caesar > 0 else -1))]})  # the shift off by one, others
    slips += swap({"sort": [("sort_strict", 0)], "vowels": [("vowels_lower", 0)], "swapcase": [("upper", 0)]})
    words = answer.split(" ")
    slips += [" ".join(words[::-1]), answer.swapcase(), " ".join(words[1:2] + words[:1] + words[2:])]
    mistakes = [s for s in dict.fromkeys(slips) if s != answer]
    return Problem("strings", answer, float(len(steps)), mistakes, render=_render, extract=extract)
