"""Strings: apply a chain of string transformations to a short phrase.

Operations: reverse the word order, reverse the letters of each word, a Caesar shift (forward or
backward by 1..12), sort the words ignoring case, remove the vowels (a e i o u), swap case.
Difficulty d chains min(d, 6) distinct operations (1: one, 2: two, 3: three) over 3..3+min(d, 3)
words. Inputs are drawn so every step is unambiguous (no empty or case-insensitively equal words).

Accepted: the exact output as :func:`agentsynth.final_answer` reads it (every form of the README's
"Answer forms" table: ``Answer: X``, ``**Answer:**`` then X, ``\\boxed{X}``, ``The answer is X.``,
...; quotes, backticks, ``$``, ``*`` and one trailing full stop around it removed). Case always
matters: every step keeps each letter's case except swap-case, so the expected case is fully
determined and a case slip (e.g. a forgotten swap-case) is a wrong answer. Internal spacing must be
exact (single spaces). The hint names the kind of slip when the answer matches one (wrong shift
direction, shift off by one, letters reversed instead of words, a skipped step, the steps in the
wrong order, a case-sensitive sort), then how many leading characters are right and whether the
length differs; it never shows the output. ``format`` (a score) checks the ``Answer: <text>`` line.
"""

from __future__ import annotations

import numpy as np

from agentsynth import ProbeReplies, Task, TextEnv, final_answer
from rubrics import answer_line

from ._keys import answer_key

WORDS = ("planet garden silver rocket window forest marble candle bridge pocket tiger river lemon "
         "copper basket meadow hammer jacket orange pencil castle dragon falcon violin kitten mirror "
         "saddle winter autumn thunder cabin harbor island ladder magnet nectar parrot quartz ribbon "
         "salmon tunnel velvet walnut zipper").split()
OPS = ("reverse_words", "reverse_letters", "caesar", "sort", "vowels", "swapcase")


def describe(op: str, k: int) -> str:
    if op == "caesar":
        way, wrap = ("forward", "z wraps around to a") if k > 0 else ("backward", "a wraps around to z")
        return f"Shift every letter {abs(k)} place{'s' * (abs(k) > 1)} {way} in the alphabet (Caesar cipher: {wrap}; each letter keeps its case)."
    return {"reverse_words": "Reverse the order of the words.",
            "reverse_letters": "Reverse the letters within each word (keep the word order).",
            "sort": "Sort the words alphabetically, ignoring case.",
            "vowels": "Remove every vowel (a, e, i, o, u, in either case).",
            "swapcase": "Swap the case of every letter (upper case becomes lower case and vice versa)."}[op]


def _shift(c: str, k: int) -> str:
    if not (c.isascii() and c.isalpha()):
        return c
    base = 65 if c.isupper() else 97
    return chr((ord(c) - base + k) % 26 + base)


def apply(text: str, op: str, k: int = 0) -> str:
    """One step of :data:`OPS`, or a slip: ``reverse_all`` and ``sort_strict`` (slips the hint
    recognises), ``vowels_lower`` (only lower-case vowels removed) and ``upper`` (upper-casing
    instead of swapping case), which the sim makes too (:mod:`envs.strings_sim`)."""
    w = text.split(" ")
    return {"reverse_words": lambda: " ".join(w[::-1]), "reverse_letters": lambda: " ".join(x[::-1] for x in w),
            "caesar": lambda: "".join(_shift(c, k) for c in text), "sort": lambda: " ".join(sorted(w, key=str.lower)),
            "vowels": lambda: "".join(c for c in text if c.lower() not in "aeiou"), "swapcase": text.swapcase,
            "reverse_all": lambda: text[::-1], "sort_strict": lambda: " ".join(sorted(w)),
            "vowels_lower": lambda: "".join(c for c in text if c not in "aeiou"), "upper": text.upper}[op]()


def run(text: str, steps) -> str:
    """``text`` after each (operation, shift) step in turn."""
    for op, k in steps:
        text = apply(text, op, k)
    return text


def extract(reply: object) -> str | None:
    """The text a reply gives as its answer (:func:`agentsynth.final_answer`; None: nothing found)."""
    return (final_answer(reply) or None) if isinstance(reply, str) else None


_SLIPS = {"caesar": [(-1, 0, "the Caesar shift looks applied in the wrong direction"),
                    (1, 1, "the Caesar shift looks off by one"), (1, -1, "the Caesar shift looks off by one")],
          "reverse_words": [("reverse_all", "reverse the order of the words, not their letters")],
          "reverse_letters": [("reverse_all", "reverse the letters inside each word but keep the words in place")],
          "sort": [("sort_strict", "sort ignoring case (upper case does not come first)")]}


def _variants(text: str, steps) -> list[tuple[str, str]]:
    """(output, what went wrong) for the typical slips, in the order the hint checks them."""
    out = []
    for i, (op, k) in enumerate(steps):
        for slip in _SLIPS.get(op, []):
            alt = ("caesar", slip[0] * k + slip[1]) if op == "caesar" else (slip[0], 0)
            out.append((run(text, steps[:i] + [alt] + steps[i + 1:]), f"step {i + 1}: {slip[-1]}"))
    out += [(run(text, steps[:i] + steps[i + 1:]), f"step {i + 1} seems to be missing") for i in reversed(range(len(steps)))]
    return out + [(run(text, steps[::-1]), "the steps seem to be applied in the wrong order")]


class StringTransformEnv(TextEnv):
    """Apply a chain of string transformations to a short phrase."""

    name = "strings"
    domain = "strings"
    sim_solver = "envs.strings_sim:strings"  # how the sim model reads these prompts

    def generate(self, rng: np.random.Generator) -> Task:
        d = max(1, self.difficulty)
        while True:
            n = int(rng.integers(3, 4 + min(d, 3)))
            idx, caps = rng.choice(len(WORDS), size=n, replace=False), rng.random(n) < 0.3
            text = " ".join(WORDS[i].capitalize() if c else WORDS[i] for i, c in zip(idx, caps))
            ops = [OPS[i] for i in rng.choice(len(OPS), size=min(d, len(OPS)), replace=False)]
            k = int(rng.integers(1, 13)) * int(rng.choice([-1, 1]))
            steps = [(op, k if op == "caesar" else 0) for op in ops]
            t, ok = text, True
            for op, a in steps:  # every word stays non-empty and distinct ignoring case
                t = apply(t, op, a)
                low = t.lower().split(" ")
                ok = ok and "" not in low and len(set(low)) == len(low)
            if ok and all(run(text, steps[:i] + steps[i + 1:]) != t for i in range(len(steps))):
                break  # and every step matters
        lines = "\n".join(f"{i + 1}. {describe(op, a)}" for i, (op, a) in enumerate(steps))
        prompt = (f"Apply these steps in order to the text below:\n{lines}\nText: \"{text}\"\n"
                  "Words are separated by single spaces and letter case matters. "
                  "End with a line 'Answer: <the transformed text>'.")
        return self.make_task(prompt, t, text=text, steps=[list(s) for s in steps])

    def verify(self, task: Task, answer: str) -> bool:
        return extract(answer) == task.answer

    def hint(self, task: Task, answer: str) -> str | None:
        got, want = extract(answer), task.answer
        if got is None:
            return "no answer found: end with a line 'Answer: <the transformed text>'."
        steps = [tuple(s) for s in task.metadata["steps"]]
        why = next((w for v, w in _variants(task.metadata["text"], steps) if v == got and v != want), None)
        right = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
        parts = [why] if why else []
        if got.lower() == want.lower():
            parts.append(f"the letters are right but the case is wrong from character {right + 1}")
        else:
            parts.append(f"the first {right} characters are right" if right > 1 else
                         "only the first character is right" if right else "the first character is already wrong")
        if len(got) != len(want):
            parts.append(f"the length differs: expected {len(want)} characters, got {len(got)}")
        return "; ".join(parts) + "."

    @answer_key
    def canonical(self, text: str) -> str | None:
        """The transformed text exactly as verify reads it (:func:`extract`); case kept, since case
        matters here."""
        return extract(text)

    def scores(self):
        return [answer_line(r"[\"'`]?[A-Za-z]+(?: [A-Za-z]+)*[\"'`]?")]

    def probe_replies(self, task: Task) -> ProbeReplies:
        """The output with its case swapped, its last character dropped or (several words) its
        words reversed is wrong: case and spacing matter, so no other form is the same answer."""
        a = task.answer
        wrong = [a.swapcase(), a[:-1], " ".join(a.split(" ")[::-1])]
        return ProbeReplies(wrong=tuple(w for w in dict.fromkeys(wrong) if w and w != a), single_answer=True)
