"""The rubric and judge channels: labels by configuration, critiques, and what they inject."""

from __future__ import annotations

from pathlib import Path


import agentsynth
from agentsynth import registry
from agentsynth.criteria import RUBRIC_PREFIX

from conftest import q


def run(tmp_path: Path, name: str, judge: dict | None = None, channels=("rubric", "judge")) -> Path:
    store = tmp_path / f"{name}.duckdb"
    spec = agentsynth.RunSpec(
        name=name, store=str(store), samples=2, judge=judge,
        envs=[agentsynth.EnvSpec(id="arithmetic", tasks=120, difficulty=2, feedback=list(channels))],
    )
    assert agentsynth.Runner(spec).run().ok == 120 * 2 * len(channels)
    return store



def test_rubric_channel_critiques_criteria_without_the_answer() -> None:
    env = registry.make("arithmetic", feedback="rubric")
    env.reset(seed=4)
    obs, _, terminated, _, _ = env.step("Answer: 99999")
    assert obs.startswith(RUBRIC_PREFIX) and "NOT met: the final answer is correct" in obs
    assert env.task.answer not in obs and not terminated
    obs, *_ = env.step(f"Working it out.\nAnswer: {env.task.answer}")
    assert "NOT met" not in obs


def test_judge_is_closed_when_the_policy_judges_itself(tmp_path: Path) -> None:
    store = run(tmp_path, "selfjudge")
    labels = dict((n, (s, o, m)) for n, s, o, m in q(store, "SELECT name, source, openness, meta_level FROM signal_types"))
    assert labels["judge_same_model"] == ("judge", "closed", 2)
    assert labels["rubric"] == ("rubric", "open", 3)
    assert "judge" not in labels
    assert q(store, "SELECT sum(judge_tokens) > 0 FROM episodes WHERE feedback = 'judge'") == [(True,)]


def test_a_stronger_judge_model_is_open_and_agrees_more_with_truth(tmp_path: Path) -> None:
    same = run(tmp_path, "same", channels=("judge",))
    strong = {"skill": {"arithmetic": 0.97}, "judge_disagree": 0.1, "seed": 7}  # knows more, less miscalibrated
    other = run(tmp_path, "other", judge={"model": "sim", "sim": strong}, channels=("judge",))
    agree = """SELECT avg((j.passed = t.passed)::INT) FROM signals j
               JOIN signals t ON t.episode_id = j.episode_id AND t.turn = j.turn AND t.role = 'truth'
               WHERE j.role = 'feedback'"""
    (a_same,), = q(same, agree)
    (a_other,), = q(other, agree)
    assert q(other, "SELECT openness FROM signal_types WHERE name = 'judge'") == [("open",)]
    assert a_other > a_same + 0.1, (a_same, a_other)


def test_the_same_model_judging_itself_buys_nothing_a_bare_verdict_does(tmp_path: Path) -> None:
    store = run(tmp_path, "gains", channels=("binary", "judge", "none"))
    gains = dict(q(store, "SELECT feedback, avg(passed_last::INT) - avg(passed_first::INT) FROM episodes GROUP BY 1"))
    assert gains["binary"] > 0.2 and abs(gains["judge"] - gains["none"]) < 0.06, gains
