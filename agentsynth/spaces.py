"""Gymnasium spaces for text environments.

Gymnasium's ``spaces.Text`` only contains strings over a fixed charset (alphanumerics by default),
so it rejects ordinary prose. These spaces accept any string up to a length; ``sample`` draws
printable text so that ``check_env`` can exercise an environment with garbage actions.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

from gymnasium import spaces

_PRINTABLE = string.ascii_letters + string.digits + string.punctuation + " "


class AnyText(spaces.Text):
    """Any ``str`` of at most ``max_length`` characters (any Unicode, any punctuation)."""

    def __init__(self, max_length: int = 1_000_000, *, seed: Any = None):
        super().__init__(max_length, min_length=0, charset=_PRINTABLE, seed=seed)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and len(x) <= self.max_length

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        if mask is None and probability is None:
            n = int(self.np_random.integers(0, min(self.max_length, 64) + 1))
            idx = self.np_random.integers(0, len(_PRINTABLE), size=n)
            return "".join(_PRINTABLE[i] for i in idx)
        return super().sample(mask=mask, probability=probability)

    def __repr__(self) -> str:
        return f"AnyText(max_length={self.max_length})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AnyText) and other.max_length == self.max_length


class ChatAction(AnyText):
    """The agent's action: its message text, or an assistant message dict.

    A dict action is an OpenAI-style assistant message (``content`` and optional ``tool_calls``),
    which leaves room for environments whose agents call tools. ``sample`` draws text.
    """

    def contains(self, x: Any) -> bool:
        if isinstance(x, str):
            return len(x) <= self.max_length
        if isinstance(x, Mapping):
            content = x.get("content")
            return (content is None or isinstance(content, str)) and set(x) <= {
                "role",
                "content",
                "tool_calls",
                "refusal",
                "reasoning_content",
            }
        return False

    def __repr__(self) -> str:
        return f"ChatAction(max_length={self.max_length})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ChatAction) and other.max_length == self.max_length


def action_text(action: Any) -> str:
    """The text of an action (a string, or an assistant message's content)."""
    if isinstance(action, str):
        return action
    if isinstance(action, Mapping):
        content = action.get("content")
        return content if isinstance(content, str) else ""
    return "" if action is None else str(action)
