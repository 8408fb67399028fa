"""The environment base class: a Gymnasium environment over text.

Subclass :class:`TextEnv`, set ``name`` and ``domain``, and implement :meth:`TextEnv.generate`
(draw a task from ``rng``) and :meth:`TextEnv.verify` (the hidden truth: accept every correct
answer). Optionally implement :meth:`TextEnv.hint` (step-level feedback),
:meth:`TextEnv.scores` (extra graders recorded on every turn) and :meth:`TextEnv.reference_reply`
(the reference answer in the reply form the prompt asks for, when not ``Answer: <reference>``)
and :meth:`TextEnv.probe_replies` (wrong answers and equivalent correct forms for ``agentsynth
probe``). That is a whole environment. Optionally set :attr:`TextEnv.sim_solver`: how the ``sim`` model
reads its prompts, so the simulator answers its tasks like a model that knows the domain.

Observation: the environment's message (the prompt after ``reset``, the feedback after ``step``).
Action: the agent's message, as text or an assistant message dict (room for tool calls).
``info`` on every step holds that turn's signals, one per (grader, role).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import gymnasium as gym
import numpy as np

from .answers import final_answer, normalize
from .channels import NONE_MESSAGE, channel_graders
from .criteria import CORRECT_CRITERION, Criterion, criteria_rubric
from .signals import GradeContext, Grader, JudgeFn, Signal, run_grader
from .spaces import AnyText, ChatAction, action_text
from .tasks import Task

if TYPE_CHECKING:
    from .sim.problem import Problem


def _parse_tool_call(call: Any, index: int) -> tuple[str, str, dict[str, Any] | str]:
    """(id, name, arguments) of an OpenAI-style tool call; arguments is an error text if unusable."""
    if not isinstance(call, Mapping):
        return f"call_{index}", "", "the tool call is not an object"
    fn = call.get("function") if isinstance(call.get("function"), Mapping) else {}
    raw = fn.get("arguments", {})
    if isinstance(raw, str):
        try:
            raw = json.loads(raw or "{}")
        except json.JSONDecodeError:
            return str(call.get("id") or f"call_{index}"), str(fn.get("name") or ""), "arguments are not valid JSON"
    if not isinstance(raw, Mapping):
        return str(call.get("id") or f"call_{index}"), str(fn.get("name") or ""), "arguments must be a JSON object"
    return str(call.get("id") or f"call_{index}"), str(fn.get("name") or ""), dict(raw)


@dataclass(frozen=True)
class ProbeReplies:
    """What an environment tells ``agentsynth probe`` about one task (:meth:`TextEnv.probe_replies`).

    ``wrong``: answers that are wrong *by construction* (not because the verifier says so), written
        as the reference answer is (``task.answer``): the probe's strategies put them in the reply
        form of :meth:`TextEnv.reference_reply` (the answer line with a wrong value, a hedge around
        it, several candidates with the right one among them, ...).
    ``equivalent``: other ways to write the reference answer that must pass (``0.5`` for ``1/2``).
    ``must_fail``: whole replies that must be rejected, by label (the domain's own hacks).
    ``must_pass``: whole replies that must be accepted, by label (the domain's own equivalent forms).
    ``single_answer``: the reference is the only correct answer up to equivalent forms, so an answer
        whose :meth:`TextEnv.canonical` key differs (another task's reference, a neighbouring
        integer) is wrong; leave False for many-answer domains.
    ``fold_case``: the answer may change case and stay correct.
    """

    wrong: tuple[str, ...] = ()
    equivalent: tuple[str, ...] = ()
    must_fail: Mapping[str, str] = field(default_factory=dict)
    must_pass: Mapping[str, str] = field(default_factory=dict)
    single_answer: bool = False
    fold_case: bool = False


def _shows_work(task: Task, answer: str) -> bool:
    return sum(1 for line in answer.splitlines() if line.strip()) >= 2


class TextEnv(gym.Env[str, Any]):
    """Base class for agentsynth environments (see the module docstring).

    Keyword arguments (all environments):
        feedback: the feedback channel shown to the agent: one of :attr:`channels` (default
            ``default_feedback``).
        max_turns: the turn limit; 1 makes the environment single-turn.
        truth: the grader used as hidden truth (default ``"correct"``, the verifier).
        reward: the grader whose value ``step`` returns (default: the truth grader).
        difficulty: passed to :meth:`generate` (1 = easiest).
        judge_is_policy: whether the run's judge model is the policy itself (the ``judge``
            channel is then closed and named ``judge_same_model``); the runner sets it.
    """

    name: ClassVar[str] = ""
    domain: ClassVar[str] = ""
    default_feedback: ClassVar[str] = "binary"
    tools: ClassVar[tuple[dict[str, Any], ...]] = ()
    """Tools the agent may call, in the OpenAI tools format; implement :meth:`call_tool`."""
    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"], "render_fps": 1}
    sim_solver: ClassVar[Callable[[str], "Problem | None"] | str | None] = None
    """Optional: how the ``sim`` model reads this environment's prompts, a function ``prompt ->
    agentsynth.sim.Problem`` (its answer and its likely mistakes) returning None for other prompts,
    or its ``"module:function"`` name (imported when the sim first needs it). It reads the prompt
    text only, as a model would. Found by :func:`agentsynth.registry.sim_solvers`; without one the
    sim guesses (README, "The sim model")."""
    subclasses_defined: ClassVar[int] = 0
    """How many subclasses have been defined in this process (the solver registry's cache key)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        TextEnv.subclasses_defined += 1

    def __init__(
        self,
        *,
        feedback: str | None = None,
        max_turns: int = 3,
        truth: str = "correct",
        reward: str | None = None,
        difficulty: int = 1,
        judge_is_policy: bool = True,
        render_mode: str | None = None,
    ) -> None:
        self.observation_space = AnyText()
        self.action_space = ChatAction()
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode {render_mode!r}: only 'ansi' is supported")
        self.render_mode = render_mode
        if int(max_turns) < 1:
            raise ValueError(f"max_turns must be >= 1, got {max_turns}")
        self.max_turns = int(max_turns)
        self.difficulty = int(difficulty)
        has_hint = self.offers_hint()
        self._scores = list(self.scores())
        rubric = criteria_rubric(self.criteria(), name="rubric", description="criteria: correct, requested form, work shown")
        self._channels = channel_graders(self.verify, self.hint if has_hint else None, rubric, judge_is_policy=judge_is_policy)
        self.feedback = feedback or self.default_feedback
        if self.feedback not in self._channels:
            raise ValueError(
                f"{self.env_name}: feedback channel {self.feedback!r} not offered; "
                f"choose from {', '.join(self.channels)}"
            )
        graders: dict[str, Grader] = {}
        for g in [self._channels["binary"], *self._scores]:
            if g is not None:
                graders[g.name] = g
        fb = self._channels[self.feedback]
        if fb is not None:
            graders.setdefault(fb.name, fb)
        if truth not in graders:
            raise ValueError(f"{self.env_name}: truth grader {truth!r} not among {sorted(graders)}")
        reward = reward or truth
        if reward not in graders:
            raise ValueError(f"{self.env_name}: reward grader {reward!r} not among {sorted(graders)}")
        self.graders: dict[str, Grader] = graders
        self.roles: dict[str, str | None] = {
            "feedback": fb.name if fb is not None else None,
            "truth": truth,
            "reward": reward,
        }
        self.policy_model: JudgeFn | None = None  # set by the runner: ask the policy (self-review)
        self.judge_model: JudgeFn | None = None  # set by the runner: ask the run's judge
        self.task: Task | None = None
        self.turn = 0
        self._messages: list[dict[str, Any]] = []

    # ---- what a subclass implements -------------------------------------------------------
    def generate(self, rng: np.random.Generator) -> Task:
        """Draw one task from ``rng`` (use :meth:`make_task` to build it)."""
        raise NotImplementedError

    def verify(self, task: Task, answer: str) -> bool:
        """Hidden truth: is ``answer`` (the agent's whole reply) a correct answer to ``task``?"""
        raise NotImplementedError

    def hint(self, task: Task, answer: str) -> str | None:
        """Optional step-level feedback on a wrong answer; never reveal the answer itself."""
        return None

    def offers_hint(self) -> bool:
        """Whether the ``hint`` channel is offered. Default: the class overrides :meth:`hint`.
        Called once, early in ``__init__``."""
        return type(self).hint is not TextEnv.hint

    def check_seeds(self, seeds: range) -> None:
        """Raise ``ValueError`` (one line) when some seed of ``seeds`` draws no task. The runner
        calls it before anything runs. Default: every seed draws a task (procedural)."""

    def describe(self) -> dict[str, Any]:
        """Facts about the environment's tasks for ``agentsynth envs`` (e.g. a task set's rows and
        split). Default: none."""
        return {}

    def canonical(self, text: str) -> str:
        """The comparison key of a reply's answer: two replies that give the same answer in this
        domain should get the same key (stored as ``messages.answer``; used by self-consistency,
        the audit's acceptance classes and export de-duplication). Default: the final answer,
        case-folded with whitespace collapsed. Never raises."""
        return normalize(final_answer(text))

    def scores(self) -> Sequence[Grader]:
        """Optional extra graders, recorded as ``score`` signals on every turn."""
        return ()

    def reference_reply(self, task: Task) -> str:
        """The reference answer written as the reply the prompt asks for (what a model trained on
        references imitates). Default: ``Answer: <reference>``; override where the prompt asks
        for another form (a fenced block, ``Answer: x = ...``). It must pass :meth:`verify` and
        the environment's form checks (its scores that are not task-relevant)."""
        return f"Answer: {task.answer}"

    def probe_replies(self, task: Task) -> ProbeReplies:
        """Wrong answers and equivalent correct forms of ``task`` for ``agentsynth probe`` (see
        :class:`ProbeReplies`; README, "Can this grader be hacked?"). Default: none, so the
        probe's strategies that need a wrong value of the domain skip this environment."""
        return ProbeReplies()

    def call_tool(self, name: str, arguments: dict[str, Any]) -> str:
        """Run one tool call for the current task and return its result as text. Raise (e.g.
        KeyError for an unknown tool, ValueError for bad arguments): the error becomes the tool's
        reply to the agent, never the episode's end."""
        raise KeyError(f"no tool named {name!r}")

    def criteria(self) -> Sequence[Criterion]:
        """The criteria of the ``rubric`` channel (criterion level). Default: the final answer is
        correct (weight 2); it is in the requested form (the first surface check among
        :meth:`scores`, if any); the work is shown before it."""
        out = [Criterion("correct", CORRECT_CRITERION, self.verify, 2.0)]
        surface = next((g for g in self._scores if not g.signal_type.task_relevant), None)
        if surface is not None:
            def in_form(task: Task, answer: str, g: Grader = surface) -> bool:
                return g.grade(GradeContext(task, answer, (), 0)).passed is True

            out.append(Criterion("form", "the final answer is given in the form the task asks for", in_form))
        out.append(Criterion("work", "the reasoning or work is shown before the final answer", _shows_work))
        return out

    # ---- helpers ------------------------------------------------------------------------
    @property
    def env_name(self) -> str:
        """The environment's short name (class attribute ``name``, else the class name)."""
        return type(self).name or type(self).__name__

    def all_graders(self) -> dict[str, Grader]:
        """Every grader this environment can use: its scores, its truth and every channel."""
        out = dict(self.graders)
        for g in self._channels.values():
            if g is not None:
                out.setdefault(g.name, g)
        return out

    @property
    def channels(self) -> tuple[str, ...]:
        """The feedback channels this environment offers."""
        return tuple(self._channels)

    def make_task(self, prompt: str, answer: Any, **metadata: Any) -> Task:
        """Build a :class:`Task` for the current seed, tagged with this environment."""
        return Task(
            env_id=self.env_name,
            domain=type(self).domain or self.env_name,
            seed=self._seed,
            prompt=prompt,
            answer=str(answer),
            metadata={"difficulty": self.difficulty, **metadata},
        )

    # ---- the Gymnasium API ----------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Draw a task (``seed`` fixes which) and return its prompt."""
        super().reset(seed=seed)
        self._seed = -1 if seed is None else int(seed)
        self.task = self.generate(self.np_random)
        self.turn = 0
        self._messages = [{"role": "user", "content": self.task.prompt}]
        info: dict[str, Any] = {"task_id": self.task.task_id, "domain": self.task.domain, "turn": 0}
        if self.tools:
            info["tools"] = copy.deepcopy(list(self.tools))
        return self.task.prompt, info

    def step(self, action: Any) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Grade the agent's message; return the feedback as the next observation."""
        if self.task is None:
            raise RuntimeError("call reset() before step()")
        self.turn += 1
        calls = action.get("tool_calls") if isinstance(action, Mapping) else None
        if calls:
            return self._tool_step(action, calls)
        answer = action_text(action)
        self._messages.append({"role": "assistant", "content": answer})
        ctx = GradeContext(self.task, answer, tuple(self._messages), self.turn, self.policy_model, self.judge_model)
        results: dict[str, Signal] = {n: run_grader(g, ctx) for n, g in self.graders.items()}
        signals = []
        used = set()
        for role in ("truth", "reward", "feedback"):
            n = self.roles[role]
            if n is not None:
                signals.append({**results[n].as_dict(), "role": role})
                used.add(n)
        for n, s in results.items():
            if n not in used:
                signals.append({**s.as_dict(), "role": "score"})
        fb_name = self.roles["feedback"]
        fb = results[fb_name] if fb_name else None
        single = self.max_turns == 1
        terminated = bool(single or (fb is not None and fb.passed is True))
        truncated = bool(not terminated and self.turn >= self.max_turns)
        obs = fb.feedback if fb is not None and fb.feedback else NONE_MESSAGE
        self._messages.append({"role": "user", "content": obs})
        reward = float(results[self.roles["reward"]].value)  # type: ignore[index]
        info = {"task_id": self.task.task_id, "turn": self.turn, "signals": signals}
        return obs, reward, terminated, truncated, info

    def _tool_step(self, action: Mapping[str, Any], calls: Any) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Run the agent's tool calls; their results are the observation (and ``info["tool_messages"]``,
        ready to append to the chat as ``tool`` messages). No grading on a tool turn."""
        results = []
        for i, call in enumerate(calls if isinstance(calls, list) else [calls]):
            call_id, name, args = _parse_tool_call(call, i)
            try:
                if isinstance(args, str):
                    raise ValueError(args)
                out = str(self.call_tool(name, args))
            except Exception as exc:  # noqa: BLE001 - a bad call is the agent's mistake: tell it
                out = f"error: {type(exc).__name__}: {exc}"
            results.append({"role": "tool", "tool_call_id": call_id, "content": out[:10_000]})
        self._messages.append({"role": "assistant", "content": action_text(action), "tool_calls": copy.deepcopy(calls)})
        self._messages.extend(copy.deepcopy(results))
        obs = json.dumps({"tool_results": [{"tool_call_id": r["tool_call_id"], "content": r["content"]} for r in results]})
        info = {"task_id": self.task.task_id, "turn": self.turn, "signals": [], "tool_messages": results}  # type: ignore[union-attr]
        return obs, 0.0, False, bool(self.turn >= self.max_turns), info

    def render(self) -> str | None:
        """``ansi``: the conversation so far as text."""
        if self.render_mode != "ansi":
            return None
        return "\n".join(f"[{m['role']}] {m['content']}" for m in self._messages)
