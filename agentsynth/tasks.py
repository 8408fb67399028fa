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

    @property
    def task_id(self) -> str:
        """Stable id: ``t-`` + 16 hex digits of a hash of (env id, prompt, answer)."""
        h = hashlib.blake2b(digest_size=8)
        h.update(f"{self.env_id}\x00{self.prompt}\x00{self.answer}".encode())
        return "t-" + h.hexdigest()

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
