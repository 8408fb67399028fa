"""Logic: knights-and-knaves puzzles (knights always tell the truth, knaves always lie).

Difficulty d has min(d + 1, 8) people, A, B, ...; each makes one statement ("B is a knave", "C and
I are the same kind", "Exactly one of A and B is a knight", "At least one of us is a knave",
"B and I are both knights", ...). The generator draws a hidden assignment and words each statement
so that it is true iff its speaker is a knight, so the hidden assignment is always consistent; of
three such drafts it keeps the one with the fewest consistent assignments. Several may remain.

Accepted: ANY assignment under which every statement is true iff its speaker is a knight (checked
by brute force over the parsed answer, not against the reference). The answer is read as
:func:`agentsynth.answers.answer_block` reads it (the paragraph the last ``Answer:`` introduces,
``\\boxed{...}``, ``The answer is ...``, else the last line: every form of the README's "Answer
forms" table) and parsed liberally: any case, any separators and order ("A=knight, B=knave",
"a: Knave; b: KNIGHT", "A is a knight, B is not a knight", "B and C are knaves, A is a knight",
"Knights: A, C. Knaves: B"; "truth-teller"/"liar" also work). Every person needs a kind; a person
given both kinds is rejected. The hint names the first speaker whose statement the given
assignment makes inconsistent (and how many others), or what is missing from the answer; never the
assignment. ``format`` (a score) checks that the reply has an answer mark and its answer assigns
every person exactly once.
"""

from __future__ import annotations

import itertools
import re

import numpy as np

from agentsynth import ProbeReplies, Task, TextEnv, grader
from agentsynth.answers import answer_block, answer_region

from ._keys import answer_key

FAMILIES = (("knight", "knave"), ("same", "diff"), ("same", "diff1"), ("any_knave", "all_knights"),
            ("any_knight", "all_knaves"))
PEOPLE = [chr(65 + i) for i in range(8)]  # the most a puzzle has (difficulty 7+)
KIND = {True: "knight", False: "knave"}
_ROLE = r"(?:knights?|knaves?|truth[- ]?tellers?|liars?)"
_TOKEN = re.compile(rf"(?P<either>\b{_ROLE}\s*(?:\||/|\bor\b)\s*{_ROLE})|(?P<not>\bnot\s+(?:an?\s+)?)?(?P<role>\b{_ROLE})\b"
                    r"|\b(?P<name>[A-Za-z])\b(?P<eq>\s*[=:])?", re.I)


def holds(kind: str, who: list[str], a: dict[str, bool]) -> bool:
    v = [a[x] for x in who]
    return {"knight": v[0], "knave": not v[0], "same": v[0] == v[-1], "diff": v[0] != v[-1],
            "diff1": v[0] != v[-1], "any_knave": not all(v), "all_knights": all(v),
            "any_knight": any(v), "all_knaves": not any(v)}[kind]


def consistent(statements, a: dict[str, bool]) -> list[str]:
    """The speakers whose statements do not fit assignment ``a`` (empty: consistent)."""
    return [s for s, kind, who in statements if holds(kind, who, a) != a[s]]


def words(speaker: str, kind: str, who: list[str], n: int) -> str:
    if kind.startswith(("any", "all")) and len(who) == n:
        return {"any_knave": "At least one of us is a knave.", "all_knights": "All of us are knights.",
                "any_knight": "At least one of us is a knight.", "all_knaves": "All of us are knaves."}[kind]
    if kind in ("knight", "knave"):
        return f"{who[0]} is a {kind}."
    x, y = sorted(who, key=lambda p: p == speaker)  # the speaker last, as I / me
    subj, obj = f"{x} and {'I' if y == speaker else y}", f"{x} and {'me' if y == speaker else y}"
    return {"same": f"{subj} are the same kind.", "diff": f"{subj} are different kinds.",
            "diff1": f"Exactly one of {obj} is a knight.", "any_knave": f"At least one of {obj} is a knave.",
            "all_knights": f"{subj} are both knights.", "any_knight": f"At least one of {obj} is a knight.",
            "all_knaves": f"{subj} are both knaves."}[kind]


def parse(text: str, people: list[str]) -> dict[str, list[bool]]:
    """Every kind the text gives each person (a person given twice has two entries)."""
    got: dict[str, list[bool]] = {p: [] for p in people}
    pending: list[str] = []
    role: bool | None = None
    prefix = None
    for m in _TOKEN.finditer(text):
        if m.group("role") or m.group("either"):  # "knight|knave" (a template) gives both kinds
            r = m.group("role") and m.group("role").lower().startswith(("knight", "truth")) != bool(m.group("not"))
            prefix = True if prefix is None else prefix
            for p in pending:
                got[p] += [True, False] if m.group("either") else [r]
            role, pending = (None if m.group("either") else r), []
        else:
            p = m.group("name")
            if not (p in people or p.upper() in people and m.group("eq")):
                continue
            prefix = False if prefix is None else prefix
            if prefix and role is not None:
                got[p.upper()].append(role)
            else:
                pending.append(p.upper())
    return got


def answer_part(reply: object) -> str:
    """The answer as :func:`agentsynth.answers.answer_block` reads it: the paragraph the last answer
    mark introduces (from its line on), ``\\boxed{}``'s content, else the last non-empty line."""
    return answer_block(reply) if isinstance(reply, str) else ""


def assignment(task: Task, reply: object) -> tuple[dict[str, bool] | None, str]:
    """The assignment a reply gives, or None and what is wrong with it."""
    got = parse(answer_part(reply), task.metadata["people"])
    if not any(got.values()):
        return None, "no assignment found: end with a line 'Answer: A=<knight|knave>, B=<knight|knave>, ...'."
    missing = [p for p, v in got.items() if not v]
    if missing:
        return None, f"no kind given for {', '.join(missing)}."
    both = [p for p, v in got.items() if len(set(v)) > 1]
    if both:
        return None, f"{', '.join(both)} given both kinds: say each person's kind once."
    return {p: v[0] for p, v in got.items()}, ""


@grader("format", source="rubric", meta_level=0, task_relevant=False,
        description="the Answer line assigns every person a kind exactly once")
def assigned_once(ctx) -> bool:
    if not isinstance(ctx.answer, str) or answer_region(ctx.answer) is None:
        return False
    return all(len(v) == 1 for v in parse(answer_part(ctx.answer), ctx.task.metadata["people"]).values())


class LogicEnv(TextEnv):
    """Knights and knaves: say who is which."""

    name = "logic"
    domain = "logic"
    sim_solver = "envs.logic_sim:logic"  # how the sim model reads these prompts

    def generate(self, rng: np.random.Generator) -> Task:
        n = min(max(self.difficulty, 1) + 1, 8)
        people = [chr(65 + i) for i in range(n)]
        hidden = dict(zip(people, (bool(x) for x in rng.random(n) < 0.5)))
        best = None
        for _ in range(3):
            stmts = []
            for s in people:
                fam = FAMILIES[int(rng.integers(len(FAMILIES)))]
                others = [p for p in people if p != s]
                if fam[0] == "knight":
                    who = [others[int(rng.integers(len(others)))]]
                elif fam[0].startswith("any") and rng.random() < 0.5:
                    who = list(people)
                else:
                    who = sorted(people[i] for i in rng.choice(n, size=2, replace=False))
                kind = fam[0] if holds(fam[0], who, hidden) == hidden[s] else fam[1]
                stmts.append([s, kind, who])
            count = sum(not consistent(stmts, dict(zip(people, v))) for v in itertools.product((True, False), repeat=n))
            if best is None or count < best[0]:
                best = (count, stmts)
        stmts = best[1]
        lines = "\n".join(f'{s} says: "{words(s, k, w, n)}"' for s, k, w in stmts)
        form = ", ".join(f"{p}=<knight|knave>" for p in people)
        prompt = (f"On an island every inhabitant is either a knight, who always tells the truth, or a knave, "
                  f"who always lies. You meet {', '.join(people[:-1])} and {people[-1]} (\"us\" means {'both' if n == 2 else f'all {n}'} of them).\n"
                  f"{lines}\nWho is a knight and who is a knave? If more than one assignment fits, give any one. "
                  f"End with a line 'Answer: {form}'.")
        answer = ", ".join(f"{p}={'knight' if hidden[p] else 'knave'}" for p in people)
        return self.make_task(prompt, answer, people=people, statements=stmts, solutions=best[0])

    def verify(self, task: Task, answer: str) -> bool:
        a, _ = assignment(task, answer)
        return a is not None and not consistent(task.metadata["statements"], a)

    def hint(self, task: Task, answer: str) -> str | None:
        a, why = assignment(task, answer)
        if a is None:
            return why
        bad = consistent(task.metadata["statements"], a)
        if not bad:
            return None
        s = bad[0]
        role, lie = ("a knight", "false") if a[s] else ("a knave", "true")
        more = f" ({len(bad) - 1} other statement{'s' * (len(bad) > 2)} also fail{'s' * (len(bad) == 2)})" if len(bad) > 1 else ""
        return f"{s}'s statement does not fit your assignment: you make {s} {role}, but then the statement is {lie}{more}."

    @answer_key
    def canonical(self, text: str) -> str | None:
        """The assignment as verify reads it (:func:`answer_part`, :func:`parse`), sorted by person:
        ``A=knight,B=knave,C=knave``; a person given both kinds is ``A=knave|knight``. The people
        are the current task's (as its prompt names them), else anyone from A to H."""
        people = self.task.metadata.get("people", PEOPLE) if self.task is not None else PEOPLE
        got = parse(answer_part(text), list(people))
        return ",".join(f"{p}={'|'.join(sorted({KIND[k] for k in v}))}" for p, v in sorted(got.items()) if v)

    def scores(self):
        return [assigned_once]

    def probe_replies(self, task: Task) -> ProbeReplies:
        """Assignments with one person's kind flipped (or everyone's) that make some statement
        inconsistent are wrong (another consistent assignment would be right, so those are left
        out); the kinds in other cases, words and layouts are the same answer."""
        people, stmts = task.metadata["people"], task.metadata["statements"]
        ref = {p: k == "knight" for p, k in (x.split("=") for x in task.answer.split(", "))}
        flips = [{**ref, p: not ref[p]} for p in people] + [{p: not v for p, v in ref.items()}]
        kind = {True: "knight", False: "knave"}
        wrong = [", ".join(f"{p}={kind[a[p]]}" for p in people) for a in flips if consistent(stmts, a)]
        knights = [p for p in people if ref[p]]
        knaves = [p for p in people if not ref[p]]
        same = ["; ".join(f"{p.lower()}: {kind[ref[p]].upper()}" for p in people),
                " ".join(f"{p} is a {kind[ref[p]]}." for p in people)]
        listed = "Knights: " + (", ".join(knights) or "none") + ". Knaves: " + (", ".join(knaves) or "none") + "."
        return ProbeReplies(wrong=tuple(dict.fromkeys(wrong)), equivalent=(*same, listed), fold_case=True)
