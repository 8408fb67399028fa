"""Tasks: one instance drawn from an environment."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Task:
    """One task: the prompt the agent sees and the hidden answer it does not.

    ``answer`` is the reference answer as text (graders may accept other forms); ``metadata``
    holds generator parameters such as difficulty and anything a grader needs (JSON-serialisable).
    ``task_id`` is content-addressed (environment, prompt, answer), so the same seed gives the
    same id in every run and every store.
    """

    env_id: str
    domain: str
    seed: int
    prompt: str
    answer: str
    metadata: dict[str, Any] = field(default_factory=dict)
    task_id: str = field(init=False, compare=False)
    """Stable id: ``t-`` + 16 hex digits of a hash of (env id, prompt, answer)."""

    def __post_init__(self) -> None:
        h = hashlib.blake2b(f"{self.env_id}\x00{self.prompt}\x00{self.answer}".encode(), digest_size=8)
        object.__setattr__(self, "task_id", "t-" + h.hexdigest())

    def as_row(self) -> dict[str, Any]:
        """The task as a row of the store's ``tasks`` table."""
        return {
            "task_id": self.task_id,
            "env_id": self.env_id,
            "domain": self.domain,
            "seed": self.seed,
            "prompt": self.prompt,
            "answer": self.answer,
            "metadata": json.dumps(self.metadata, sort_keys=True, default=str),
        }
