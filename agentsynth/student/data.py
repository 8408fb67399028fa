"""The student's training data: (prompt messages, reply) pairs, where they come from, and how
they become token batches.

Sources: the environments' own tasks with their reference replies (:func:`reference_examples`,
the base student's "pretraining"), self-review conversations (:func:`review_examples`), an SFT export (:func:`read_sft`: agentsynth's ``messages``
JSONL, the last message the assistant reply), or any list of :class:`Example`.

:class:`Batches` cuts encoded examples into batches of similar length (less padding), in an
order fixed by a seed: each pass shuffles the examples, groups windows of 64 batches by length
bucket (:data:`BUCKET` tokens wide; random order inside a bucket), and shuffles the batches.
Importable without torch (batches are lists of ids).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..tasks import Task
from .errors import StudentError
from .template import ROLES

WINDOW = 64
"""Batches per length-sorting window: larger windows pad less and mix lengths less."""
BUCKET = 32
"""Lengths are grouped in buckets of this many tokens, not sorted exactly: batches of exactly equal
length hold tasks of one shape (e.g. every ``a * b - c`` with two-digit operands), and such
one-kind batches stalled learning (measured: README, "The student")."""


@dataclass(frozen=True)
class Example:
    """One training pair: the prompt (chat messages) and the assistant reply to learn."""

    messages: list[dict[str, Any]]
    reply: str
    task_id: str | None = field(default=None, compare=False)


EnvKwargs = Mapping[str, Mapping[str, Any]]
"""Constructor arguments per environment reference (a task set's column mapping), as a run spec's
``[[envs]] kwargs`` give them."""


def review_tasks(tasks: int, review: float) -> int:
    """Self-review tasks per environment beside ``tasks`` reference tasks, for a ``review`` share."""
    return round(tasks * review / (1 - review))


def _drawn(envs: Sequence[str], difficulty: int, tasks: int, seed_start: int,
           env_kwargs: EnvKwargs | None = None) -> Iterator[tuple[Any, list[Task]]]:
    """Each environment of ``envs`` (built at ``difficulty``, one turn, with its ``env_kwargs``;
    closed once the caller moves on) with its tasks of seeds ``seed_start..seed_start + tasks - 1``,
    which must lie in the synthesis range (and, for a task set, in its train part)."""
    from ..registry import UnknownEnvironment, resolve
    from ..spec import EVAL_SEED_START

    if seed_start + tasks > EVAL_SEED_START:
        raise StudentError(f"seeds {seed_start:,}..{seed_start + tasks - 1:,} reach the held-out range "
                           f"(from {EVAL_SEED_START:,}); train on synthesis seeds only")
    for ref in envs:
        try:
            cls = resolve(ref).cls
        except UnknownEnvironment as exc:
            raise StudentError(str(exc)) from None
        try:
            env = cls(**{"difficulty": difficulty, "max_turns": 1, **(env_kwargs or {}).get(ref, {})})
        except ValueError as exc:
            raise StudentError(f"{ref}: {exc}") from None
        try:
            try:
                env.check_seeds(range(seed_start, seed_start + tasks))
            except ValueError as exc:
                raise StudentError(f"{ref}: {exc}") from None
            drawn = []
            for seed in range(seed_start, seed_start + tasks):
                env.reset(seed=seed)
                assert env.task is not None
                drawn.append(env.task)
            yield env, drawn
        finally:
            env.close()


def reference_examples(envs: Sequence[str], *, difficulty: int = 1, tasks: int = 1000, seed_start: int = 0,
                       env_kwargs: EnvKwargs | None = None) -> list[Example]:
    """``tasks`` tasks of each environment (seeds ``seed_start..``, in the synthesis range) with
    the environment's reference reply (:meth:`~agentsynth.env.TextEnv.reference_reply`): the
    prompt as a single user message, as a run sends it without a system prompt. ``env_kwargs``:
    constructor arguments per environment (a task set's column mapping)."""
    out: list[Example] = []
    for env, drawn in _drawn(envs, difficulty, tasks, seed_start, env_kwargs):
        out += [Example([{"role": "user", "content": t.prompt}], env.reference_reply(t), t.task_id) for t in drawn]
    return out


def review_examples(envs: Sequence[str], *, difficulty: int = 1, tasks: int = 1000, seed_start: int = 0,
                    seed: int = 0, env_kwargs: EnvKwargs | None = None) -> list[Example]:
    """Self-review examples: the conversation the ``self`` channel sends (the task, an answer, the
    review request) with the verdict a careful reviewer gives, ``VERDICT: correct`` or
    ``VERDICT: incorrect`` as the environment's own verifier decides. The answer under review is
    the reference reply (half the time), or it with one digit changed, or another task's reference
    reply (a quarter each). A base trained on these can judge its own answers as well as it can
    solve the tasks, which is what the loop's ``self-judge`` arm needs to be a fair closed arm.
    Seeds must lie in the synthesis range, and ``env_kwargs`` are, as for :func:`reference_examples`."""
    from ..channels import SELF_REQUEST

    rng = np.random.default_rng(seed)
    out: list[Example] = []
    for env, drawn in _drawn(envs, difficulty, tasks, seed_start, env_kwargs):
        refs = [env.reference_reply(t) for t in drawn]
        for i, task in enumerate(drawn):
            kind = rng.random()
            answer = refs[i]
            if kind >= 0.75 and len(drawn) > 1:
                answer = refs[(i + 1 + int(rng.integers(len(drawn) - 1))) % len(drawn)]
            elif kind >= 0.5:
                digits = [k for k, ch in enumerate(answer) if "0" <= ch <= "9"]
                if digits:
                    k = digits[int(rng.integers(len(digits)))]
                    new = str((int(answer[k]) + 1 + int(rng.integers(9))) % 10)
                    answer = answer[:k] + new + answer[k + 1:]
            verdict = "correct" if env.verify(task, answer) else "incorrect"
            out.append(Example([{"role": "user", "content": task.prompt}, {"role": "assistant", "content": answer},
                                {"role": "user", "content": SELF_REQUEST}], f"VERDICT: {verdict}", task.task_id))
    return out


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes (how exports record their files)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_sft(path: str | Path) -> list[Example]:
    """The examples of an SFT JSONL file (``{"messages": [...]}`` per line, as ``agentsynth
    export --format sft`` writes): the prompt is every message before the last, the reply the last
    (an assistant message). Raises :class:`StudentError` naming the first bad line."""
    p = Path(path)
    out: list[Example] = []
    try:
        f = open(p, encoding="utf-8")
    except OSError as exc:
        raise StudentError(f"cannot read SFT file {p}: {exc.strerror or exc}") from None
    with f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                raise StudentError(f"{p}:{i}: not a JSON line") from None
            msgs = row.get("messages") if isinstance(row, dict) else None
            if not isinstance(msgs, list) or len(msgs) < 2 or not all(isinstance(m, Mapping) for m in msgs):
                raise StudentError(f"{p}:{i}: expected {{\"messages\": [...]}} with a prompt and a reply")
            last = msgs[-1]
            if last.get("role") != "assistant" or not isinstance(last.get("content"), str):
                raise StudentError(f"{p}:{i}: the last message must be an assistant message with text content")
            bad = [m.get("role") for m in msgs if m.get("role") not in ROLES]
            if bad:
                raise StudentError(f"{p}:{i}: unknown role {bad[0]!r}")
            out.append(Example([dict(m) for m in msgs[:-1]], last["content"]))
    if not out:
        raise StudentError(f"{p}: no examples")
    return out


@dataclass(frozen=True)
class Encoded:
    """An example as token ids: ``ids`` = prompt + reply + ``<|end|>``; the first ``prompt_len``
    ids are the prompt (no loss)."""

    ids: list[int]
    prompt_len: int


def encode_examples(tokenizer: Any, examples: Sequence[Example], context: int) -> tuple[list[Encoded], int]:
    """Encode examples; ones longer than ``context`` are left out. Returns (encoded, skipped)."""
    out, skipped = [], 0
    for ex in examples:
        prompt = tokenizer.encode_prompt(ex.messages)
        ids = prompt + tokenizer.encode_reply(ex.reply)
        if len(ids) > context + 1:  # inputs are ids[:-1]
            skipped += 1
            continue
        out.append(Encoded(ids, len(prompt)))
    return out, skipped


def pad_batch(batch: Sequence[Encoded], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets) int64 arrays (batch, longest - 1); targets are -1 outside the reply."""
    width = max(len(e.ids) for e in batch) - 1
    x = np.full((len(batch), width), pad_id, dtype=np.int64)
    y = np.full((len(batch), width), -1, dtype=np.int64)
    for i, e in enumerate(batch):
        ids = np.asarray(e.ids, dtype=np.int64)
        n = len(ids) - 1
        x[i, :n] = ids[:-1]
        y[i, e.prompt_len - 1:n] = ids[e.prompt_len:]
    return x, y


class Batches:
    """An endless, seeded stream of length-grouped batches of ``size`` examples (see the module
    docstring); each example is used once per pass."""

    def __init__(self, data: Sequence[Encoded], size: int, seed: int):
        if not data:
            raise StudentError("no training examples (all longer than the context?)")
        self.data = data
        self.size = max(1, min(size, len(data)))
        self.rng = np.random.default_rng(seed)
        self._it = self._stream()

    def _stream(self) -> Iterator[list[Encoded]]:
        lengths = np.array([len(e.ids) for e in self.data])
        while True:
            order = self.rng.permutation(len(self.data))
            batches = []
            span = self.size * WINDOW
            for s in range(0, len(order), span):
                win = order[s:s + span]
                win = win[np.argsort(lengths[win] // BUCKET, kind="stable")]  # random order within a bucket
                batches += [win[i:i + self.size] for i in range(0, len(win), self.size)]
            for j in self.rng.permutation(len(batches)):
                yield [self.data[k] for k in batches[j]]

    def next(self) -> list[Encoded]:
        """The next batch."""
        return next(self._it)
