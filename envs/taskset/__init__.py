"""Task sets as environments: bring your own questions (README, "Your own questions").

``id = "tasks:PATH"`` in a spec resolves here through the ``agentsynth.env_schemes`` entry point
(``tasks = "envs.taskset:task_set"``); :class:`TaskSetEnv` is the environment. It lives in the
plugin layer, beside the built-in environments, because it names graders from the rubric library.
"""

from .env import DEFAULT_HELD_OUT, TaskSetEnv, part_of, task_set
from .source import TaskSetError

__all__ = ["DEFAULT_HELD_OUT", "TaskSetEnv", "TaskSetError", "part_of", "task_set"]
