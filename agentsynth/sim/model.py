"""``sim``: a simulated chat model for offline use, tests and demos. It is not a real model.

It reads only the messages it is sent. A per-domain solver (an environment's ``sim_solver``, found
by :mod:`agentsynth.sim.solvers`) reads the task from the first user message; the sim then answers
correctly with a probability set by its skill in that domain and the task's difficulty, otherwise
with a plausible mistake (off by one, the precedence slip, the wrong format, prose around the
answer). On a prompt no solver reads it is a weak guesser (:mod:`agentsynth.sim.guess`). After feedback it retries,
and how much the feedback helps is a parameter per kind of feedback, recognised from the text of
agentsynth's standard channels. Asked to review its own answer, it compares the answer with its
own belief about the task and is miscalibrated: it calls wrong answers correct too often.

Everything is deterministic given the messages, the request ``seed``, the ``temperature`` and
:class:`SimParams`; at temperature 0 every sample of a prompt is the same.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from random import Random
from typing import Any

from ..answers import final_answer
from ..channels import (
    HINT_PREFIX, INCORRECT_MESSAGE, JUDGE_HEADER, JUDGE_PREFIX, NONE_MESSAGE, REFERENCE_PREFIX, SAME_JUDGE_PREFIX,
    SELF_PREFIX, SELF_REQUEST,
    parse_verdict,
)
from ..criteria import RUBRIC_PREFIX, WRONG_ANSWER
from ..models.base import Completion
from .guess import guess
from .solvers import Problem, solve

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_OPEN = re.compile(r"(<{3,})\n")
def _unquote(text: str, at: int) -> tuple[str, int] | None:
    """The text quoted at ``at`` (:func:`agentsynth.channels.quoted`: a line of n ``<``, the text, a line
    of n ``>``) and the index after its closing line, or None."""
    m = _OPEN.match(text, at)
    if m is None:
        return None
    end = re.compile(rf"\n>{{{len(m.group(1))}}}(?:\n|$)").search(text, m.end())
    return None if end is None else (text[m.end():end.start()], end.end())


HEDGE = "I am not sure about this one; I might be wrong, so please double-check the steps before relying on it.\n"


@dataclass
class SimParams:
    """The sim's documented parameters (all probabilities in [0, 1]).

    skill: P(correct on the first try) per domain for a task of difficulty 1; ``default_skill``
        for domains not listed. Harder tasks: skill ** difficulty.
    task_spread: how much tasks differ for the model (log-odds s.d.); > 0 makes some tasks ones
        it reliably knows and others it reliably gets wrong, so samples of a task agree.
    favourite_mistake: P(a wrong answer is this task's usual mistake) rather than another one.
    use_reference / use_hint / use_binary / use_rubric / use_judge / use_self / use_none: after
        that kind of feedback says the answer is wrong, the fraction of the remaining error the
        retry removes: P(correct) = p + (1 - p) * use. ``use_reference`` is the chance it copies
        the shown answer. A judge that is the same model (its feedback says so) counts as self.
    format_ok: P(a reply ends with the requested 'Answer: ...' line); otherwise prose around it.
    wrong_format: P(a wrong answer is the right idea in an unparseable form, e.g. in words).
    hedge: P(a wrong reply opens with a long hedging preamble): a surface feature correlated with
        correctness by construction, for auditing length and hedging checks (default 0).
    variety: P(a correct answer is another of the task's correct answers the solver knows, drawn
        at random, rather than its favourite one) on tasks with many correct answers; the greedy
        (temperature-0) answer is always the favourite.
    judge_agree: P(it calls an answer correct | the answer matches its own belief).
    judge_disagree: P(it calls an answer correct | it does not) — miscalibration: > 0.
        Both apply to reviewing its own answer and to judging another model's (the judge channel).
    seed: the model's own seed (which tasks it "knows").
    """

    skill: dict[str, float] = field(default_factory=lambda: {
        "algebra": 0.6, "arithmetic": 0.6, "code": 0.55, "extraction": 0.65, "logic": 0.65, "sql": 0.55,
        "strings": 0.6, "tools": 0.75, "units": 0.55, "pairs": 0.65, "countdown": 0.5, "lists": 0.6,
    })
    default_skill: float = 0.3
    task_spread: float = 1.5
    favourite_mistake: float = 0.6
    use_reference: float = 0.9
    use_hint: float = 0.5
    use_binary: float = 0.25
    use_rubric: float = 0.35
    use_judge: float = 0.25
    use_self: float = 0.0
    use_none: float = 0.0
    format_ok: float = 0.8
    wrong_format: float = 0.1
    variety: float = 0.7
    hedge: float = 0.0
    judge_agree: float = 0.9
    judge_disagree: float = 0.45
    seed: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in ("seed", "task_spread"):
                continue
            vals = v.values() if isinstance(v, Mapping) else [v]
            for x in vals:
                if not isinstance(x, (int, float)) or not 0.0 <= float(x) <= 1.0:
                    raise ValueError(f"sim parameter {f.name}: {x!r} is not a probability in [0, 1]")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "SimParams":
        """Build from a spec's ``[sim]`` table; unknown keys are an error."""
        d = dict(d or {})
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown sim parameter(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(names))}")
        if "skill" in d:
            d["skill"] = {**cls().skill, **d["skill"]}
        return cls(**d)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (recorded in the run spec)."""
        return asdict(self)


def _h(*parts: Any) -> int:
    return int.from_bytes(hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest(), "big")


def _u(*parts: Any) -> float:
    return _h(*parts) / 2**64


def _text(m: Mapping[str, Any]) -> str:
    c = m.get("content")
    if isinstance(c, str):
        return c
    if isinstance(c, list):  # content parts
        return "".join(p.get("text", "") for p in c if isinstance(p, Mapping))
    return ""


def _tokens(s: str) -> int:
    """The sim's token count: ~4 characters a token."""
    return len(s) // 4 + 1


def _stated(answer_text: str) -> str | None:
    """The last number of the reply's final answer (:func:`agentsynth.answers.final_answer`)."""
    nums = _NUMBER.findall(final_answer(answer_text))
    return nums[-1] if nums else None


class SimModel:
    """The simulated model, in process. ``await complete(...)`` mirrors one chat completion."""

    def __init__(self, params: SimParams | None = None, name: str = "sim"):
        self.params = params or SimParams()
        self.name = name
        self.base_url: str | None = None

    # ---- the model's beliefs ---------------------------------------------------------
    def p_task(self, prob: Problem) -> float:
        """P(correct) on a first try for this task: skill ** difficulty, shifted per task."""
        base = self.params.skill.get(prob.domain, self.params.default_skill) ** prob.difficulty
        base = min(max(base, 1e-4), 1 - 1e-4)
        z = _gauss(self.params.seed, "task", prob.key or prob.answer)
        return 1 / (1 + math.exp(-(math.log(base / (1 - base)) + self.params.task_spread * z)))

    def belief(self, prob: Problem) -> str:
        """The answer it holds to be right: the most likely of its first answers (so also its
        greedy answer, and what the plurality of its samples converges to)."""
        p = self.p_task(prob)
        if not prob.mistakes:
            return prob.answer
        fav = self.params.favourite_mistake
        p_mistake = (1 - p) * (fav + (1 - fav) / len(prob.mistakes))
        return prob.answer if p >= p_mistake else prob.mistakes[0]

    # ---- one reply -----------------------------------------------------------------------
    def reply(self, messages: Sequence[Mapping[str, Any]], *, temperature: float = 1.0, seed: int | None = None,
              index: int = 0, tools: list[dict[str, Any]] | None = None) -> str | dict[str, Any]:
        """One reply to ``messages``: its text, or an assistant message with ``tool_calls`` when
        ``tools`` are offered and the task needs a tool result it does not have yet."""
        users = [_text(m) for m in messages if m.get("role") == "user"]
        if not users:
            return "I need a question to answer."
        greedy = temperature <= 0
        key = (self.params.seed, "greedy" if greedy else seed, "" if greedy else index, "\x1e".join(_text(m) for m in messages))
        rng = Random(_h(*key))
        if users[-1].startswith(JUDGE_HEADER):
            return self._judge(users[-1], rng)
        prob = solve(users[0])
        if prob is not None and prob.resolve is not None:
            got = prob.resolve([dict(m) for m in messages])
            if isinstance(got, list):
                if not tools:
                    return "I would need tools to look that up.\nAnswer: 0"
                return _tool_calls(got, len([m for m in messages if m.get("role") == "assistant"]))
            prob = got
        if users[-1].strip() == SELF_REQUEST:
            return self._review(messages, prob, rng)
        previous = [_text(m) for m in messages if m.get("role") == "assistant" and not m.get("tool_calls")]
        if prob is None:
            return guess(users, previous, rng, greedy=greedy, use_reference=self.params.use_reference)
        p = self.p_task(prob)
        if not previous:
            correct = prob.answer == self.belief(prob) if greedy else rng.random() < p
        else:
            fb = users[-1]
            last = previous[-1]
            if fb.startswith("Correct"):
                return last
            if fb.startswith(REFERENCE_PREFIX) and rng.random() < self.params.use_reference:
                ref = fb[len(REFERENCE_PREFIX):].strip()
                return prob.render(ref, True) if prob.render else "Answer: " + ref
            if fb.startswith((SELF_PREFIX, JUDGE_PREFIX, SAME_JUDGE_PREFIX)) and parse_verdict(fb) is True:
                return last
            if fb.startswith(RUBRIC_PREFIX) and WRONG_ANSWER not in fb:
                return last
            use = (
                self.params.use_hint if fb.startswith(HINT_PREFIX)
                else self.params.use_rubric if fb.startswith(RUBRIC_PREFIX)
                else self.params.use_judge if fb.startswith(JUDGE_PREFIX)
                else self.params.use_binary if fb.startswith(INCORRECT_MESSAGE) or fb.startswith(REFERENCE_PREFIX)
                else self.params.use_self if fb.startswith((SELF_PREFIX, SAME_JUDGE_PREFIX))
                else self.params.use_none if fb.startswith(NONE_MESSAGE)
                else 0.0
            )
            correct = rng.random() < p + (1 - p) * use
        return self._render(prob, correct, rng, greedy)

    def _render(self, prob: Problem, correct: bool, rng: Random, greedy: bool = False) -> str:
        if correct:
            ans = prob.answer
            if prob.alternatives and not greedy and rng.random() < self.params.variety:
                ans = rng.choice(prob.alternatives)
        elif prob.answer_words and rng.random() < self.params.wrong_format:
            return f"Answer: {prob.answer_words(prob.answer)}"
        elif prob.mistakes and rng.random() < self.params.favourite_mistake:
            ans = prob.mistakes[0]
        else:
            ans = rng.choice(prob.mistakes) if prob.mistakes else "0"
        tidy = rng.random() < self.params.format_ok
        if prob.render is not None:
            text = prob.render(ans, tidy)
        elif tidy:
            text = f"Let me work through it step by step.\nAnswer: {ans}"
        else:
            text = f"I think the result is {ans}."
        if self.params.hedge and not correct and rng.random() < self.params.hedge:
            text = HEDGE + text
        return text

    def _review(self, messages: Sequence[Mapping[str, Any]], prob: Problem | None, rng: Random) -> str:
        answers = [_text(m) for m in messages if m.get("role") == "assistant"]
        return self._verdict(prob, answers[-1] if answers else "", rng)

    def _judge(self, request: str, rng: Random) -> str:
        """Judge another model's answer: solve the task itself, compare, state a verdict."""
        at = request.find("Task:\n")
        task = _unquote(request, at + 6) if at >= 0 else None
        answer = _unquote(request, task[1] + 17) if task and request.startswith("Answer to grade:\n", task[1]) else None
        if task is None or answer is None:
            return "I cannot find the task and the answer to grade.\nVERDICT: incorrect"
        return self._verdict(solve(task[0]), answer[0], rng)

    def _verdict(self, prob: Problem | None, answer: str, rng: Random) -> str:
        extract = prob.extract if prob is not None and prob.extract is not None else _stated
        stated = extract(answer) if answer else None
        agrees = prob is not None and stated is not None and stated == self.belief(prob)
        yes = rng.random() < (self.params.judge_agree if agrees else self.params.judge_disagree)
        if yes:
            return "I re-checked the steps and they look right.\nVERDICT: correct"
        return "One of the steps may be wrong.\nVERDICT: incorrect"

    async def complete(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        temperature: float = 1.0,
        seed: int | None = None,
        max_tokens: int | None = None,
        tools: list[dict[str, Any]] | None = None,
    ) -> Completion:
        """One completion (the :class:`~agentsynth.models.base.ChatModel` protocol)."""
        choice = self.choices(messages, n=1, temperature=temperature, seed=seed, max_tokens=max_tokens, tools=tools)[0]
        message: dict[str, Any] = {"role": "assistant", "content": choice["content"]}
        if choice.get("tool_calls"):
            message["tool_calls"] = choice["tool_calls"]
        return Completion(
            message=message,
            finish_reason=choice["finish_reason"],
            prompt_tokens=self.prompt_tokens(messages),
            completion_tokens=choice["tokens"],
        )

    def choices(self, messages: Sequence[Mapping[str, Any]], *, n: int = 1, temperature: float = 1.0, seed: int | None = None,
                max_tokens: int | None = None, tools: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """``n`` replies as ``{"content", "finish_reason", "tokens"[, "tool_calls"]}`` (the HTTP server uses it too)."""
        out = []
        for i in range(n):
            text = self.reply(messages, temperature=temperature, seed=seed, index=i, tools=tools)
            if isinstance(text, dict):
                calls = text["tool_calls"]
                out.append({"content": "", "finish_reason": "tool_calls", "tool_calls": calls,
                            "tokens": _tokens(json.dumps(calls))})
                continue
            reason = "stop"
            if max_tokens is not None and _tokens(text) > max_tokens:
                text, reason = text[: max(0, max_tokens * 4 - 1)], "length"
            out.append({"content": text, "finish_reason": reason, "tokens": _tokens(text)})
        return out

    @staticmethod
    def prompt_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
        """The sim's prompt-token count for ``messages``."""
        return sum(_tokens(_text(m)) + 3 for m in messages)

    async def aclose(self) -> None:
        """Nothing to release."""


def _tool_calls(calls: list[tuple[str, dict[str, Any]]], step: int) -> dict[str, Any]:
    return {"role": "assistant", "content": "", "tool_calls": [
        {"id": f"call_{step}_{i}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
        for i, (name, args) in enumerate(calls)
    ]}


def _gauss(*parts: Any) -> float:
    """A standard normal draw fixed by ``parts`` (Box–Muller on two hashed uniforms)."""
    u1 = max(_u(*parts, 1), 1e-12)
    u2 = _u(*parts, 2)
    return math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)
