"""The loop's parts that need no training: arms, spec validation, the report's interval and the
student's self-review examples."""

from __future__ import annotations

import numpy as np
import pytest

from agentsynth.loop import ARMS, LoopSpecError, find_arm, parse_loop_spec
from agentsynth.loop.report import two_way_bootstrap
from agentsynth.registry import resolve
from agentsynth.student.data import review_examples


def test_built_in_arms_cover_open_closed_and_task_irrelevant_selection() -> None:
    assert set(ARMS) >= {"verifier", "reference", "feedback", "keep-all", "majority", "self-judge", "spurious"}
    assert find_arm("majority").regrade == "self_consistency"
    assert find_arm("reference").trajectory == "reference"
    with pytest.raises(KeyError, match="unknown arm 'nope'; arms: feedback, keep-all"):
        find_arm("nope")


def test_loop_spec_errors_name_the_field() -> None:
    good = {"name": "x", "arms": ["verifier"], "base": {"steps": 1}, "loop_envs": [{"id": "countdown"}]}
    assert parse_loop_spec(good).generations == 2
    for bad, msg in [({**good, "arms": ["verifier", "verifier"]}, "an arm is listed twice"),
                     ({**good, "held_out": [{"id": "countdown"}]}, "a domain is listed twice"),
                     ({**good, "trainer": "command"}, "needs a [command] table"),
                     ({**good, "samples": 0}, "samples: Input should be greater than or equal to 1"),
                     ({**good, "colour": "red"}, "colour: Extra inputs are not permitted")]:
        with pytest.raises(LoopSpecError, match=msg.replace("[", r"\[")):
            parse_loop_spec(bad)


def test_two_way_bootstrap_interval() -> None:
    assert two_way_bootstrap(np.ones((3, 50))) == (1.0, 1.0)
    rng = np.random.default_rng(1)
    m = (rng.random((1, 400)) < 0.3).astype(float)
    low, high = two_way_bootstrap(m)
    half = 1.96 * np.sqrt(0.3 * 0.7 / 400)  # with one seed: close to the normal interval over tasks
    assert low < m.mean() < high and abs((high - low) / 2 - half) < 0.01
    # seeds that disagree widen the interval beyond the tasks-only one
    seeds = np.stack([(rng.random(400) < p).astype(float) for p in (0.1, 0.3, 0.5)])
    lo2, hi2 = two_way_bootstrap(seeds)
    assert hi2 - lo2 > 2 * (high - low)


@pytest.mark.parametrize("env_id", ["units", "countdown", "pairs", "arithmetic"])
def test_review_examples_carry_the_verifiers_verdict(env_id: str) -> None:
    ex = review_examples([env_id], tasks=60, seed_start=5000, seed=3)
    env = resolve(env_id).cls()
    verdicts = set()
    for e in ex:
        user, answer, request = e.messages
        assert user["role"] == "user" and answer["role"] == "assistant" and "VERDICT" in request["content"]
        env.reset(seed=5000 + ex.index(e))
        assert env.task is not None and env.task.prompt == user["content"]
        ok = env.verify(env.task, answer["content"])
        assert e.reply == f"VERDICT: {'correct' if ok else 'incorrect'}"
        verdicts.add(ok)
    assert verdicts == {True, False}
