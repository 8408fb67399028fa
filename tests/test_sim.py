"""The sim model behaves like a model: skill, plausible mistakes, feedback use, a miscalibrated judge."""

from __future__ import annotations

import asyncio
from pathlib import Path

import duckdb
import pytest

import agentsynth
from agentsynth import registry
from agentsynth.channels import SELF_REQUEST
from agentsynth.sim import SimModel, SimParams


def prompt(seed: int, difficulty: int = 2) -> str:
    env = registry.make("arithmetic", difficulty=difficulty)
    return env.reset(seed=seed)[0]


def test_deterministic_and_greedy_at_temperature_zero() -> None:
    m = SimModel()
    msgs = [{"role": "user", "content": prompt(1)}]
    assert m.reply(msgs, seed=5) == m.reply(msgs, seed=5)
    assert len({m.reply(msgs, temperature=0, seed=s) for s in range(20)}) == 1
    assert len({m.reply(msgs, temperature=1, seed=s) for s in range(40)}) > 1


def test_skill_sets_the_pass_rate_and_mistakes_are_plausible() -> None:
    env = registry.make("arithmetic", difficulty=1)
    for skill, lo, hi in ((0.9, 0.65, 1.0), (0.2, 0.0, 0.35)):
        m = SimModel(SimParams(skill={"arithmetic": skill}))
        passed, wrong = 0, []
        for seed in range(300):
            env.reset(seed=seed)
            text = m.reply([{"role": "user", "content": env.task.prompt}], seed=seed)
            ok = env.verify(env.task, text)
            passed += ok
            if not ok:
                wrong.append((text, env.task.answer))
        assert lo <= passed / 300 <= hi, (skill, passed)
    # wrong answers stay near the truth or are format errors, not random noise
    near = sum(1 for t, a in wrong if (n := _num(t)) is None or abs(n - int(a)) <= max(10, abs(int(a))))
    assert near / len(wrong) > 0.8


def _num(text: str) -> int | None:
    import re

    found = re.findall(r"-?\d+", text.split("Answer:")[-1])
    return int(found[-1]) if found else None


def test_unknown_domains_get_a_guess_not_an_error() -> None:
    reply = SimModel().reply([{"role": "user", "content": "What is the capital of Mars?"}], seed=1)
    assert reply.startswith("I am not sure")


def test_max_tokens_truncates_like_a_model() -> None:
    m = SimModel()
    c = m.choices([{"role": "user", "content": prompt(0)}], max_tokens=2)[0]
    assert c["finish_reason"] == "length" and c["tokens"] <= 2


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("sweep") / "s.duckdb"
    spec = agentsynth.RunSpec(
        name="sweep", store=str(store), samples=4, concurrency=32,
        envs=[agentsynth.EnvSpec(id="arithmetic", tasks=150, difficulty=2, max_turns=3,
                                 feedback=["none", "binary", "hint", "reference", "self"])],
    )
    assert agentsynth.Runner(spec).run().ok == 150 * 4 * 5
    return store


def gains(store: Path) -> dict[str, float]:
    con = duckdb.connect(str(store), read_only=True)
    try:
        return dict(con.execute("SELECT feedback, avg(passed_last::INT) - avg(passed_first::INT) FROM episodes GROUP BY 1").fetchall())
    finally:
        con.close()


def test_open_feedback_helps_in_order_of_information_and_closed_does_little(sweep: Path) -> None:
    g = gains(sweep)
    assert g["reference"] > g["hint"] > g["binary"] > 0.15
    assert abs(g["none"]) < 0.06
    assert g["self"] < g["binary"] / 2


def test_self_review_follows_its_own_belief_and_is_miscalibrated(sweep: Path) -> None:
    """It judges by comparing with what it believes: 'correct' with judge_agree (0.9) when the
    answer matches its belief, judge_disagree (0.45) when not, whatever the truth."""
    from agentsynth.sim.solvers import solve

    m = SimModel()
    agree, disagree = [], []
    for seed in range(200):
        p = prompt(seed)
        prob = solve(p)
        belief = m.belief(prob)
        for answer, bucket in ((belief, agree), (prob.mistakes[-1] if prob.mistakes[-1] != belief else "0", disagree)):
            msgs = [{"role": "user", "content": p}, {"role": "assistant", "content": f"Answer: {answer}"},
                    {"role": "user", "content": SELF_REQUEST}]
            bucket.append("VERDICT: correct" in m.reply(msgs, seed=seed))
    assert abs(sum(agree) / 200 - 0.9) < 0.07 and abs(sum(disagree) / 200 - 0.45) < 0.1
    con = duckdb.connect(str(sweep), read_only=True)
    (says_ok_when_wrong,) = con.execute("""
        SELECT avg(s.passed::INT) FILTER (NOT t.passed)
        FROM signals s JOIN signals t ON t.episode_id = s.episode_id AND t.turn = s.turn AND t.role = 'truth'
        WHERE s.name = 'self' AND s.role = 'feedback'""").fetchone()
    con.close()
    assert says_ok_when_wrong > 0.3


def test_feedback_use_parameters_drive_the_gain(tmp_path: Path) -> None:
    """use_binary scales how much a bare 'incorrect' helps the retry. Even at 0 the binary channel
    gains: the episode stops at the first correct answer, and that stopping rule is itself
    information from the verifier (best-of-3 with an oracle), which the none channel lacks."""
    out = {}
    for use in (0.0, 0.8):
        spec = agentsynth.RunSpec(
            name=f"use{use}", store=str(tmp_path / f"s{use}.duckdb"), samples=4, sim={"use_binary": use},
            envs=[agentsynth.EnvSpec(id="arithmetic", tasks=150, difficulty=2, feedback=["binary", "none"])],
        )
        agentsynth.Runner(spec).run()
        out[use] = gains(Path(spec.store))
    assert out[0.8]["binary"] > out[0.0]["binary"] + 0.1
    assert out[0.0]["binary"] > 0.1
    assert abs(out[0.0]["none"] - out[0.8]["none"]) < 0.05


def test_self_review_request_is_answered_with_a_verdict() -> None:
    m = SimModel()
    msgs = [{"role": "user", "content": prompt(3)}, {"role": "assistant", "content": "Answer: 7"},
            {"role": "user", "content": SELF_REQUEST}]
    assert "VERDICT:" in asyncio.run(m.complete(msgs, seed=1)).message["content"]


def test_sim_parameters_are_validated() -> None:
    with pytest.raises(ValueError, match="not a probability"):
        SimParams(use_hint=1.5)
    with pytest.raises(ValueError, match="unknown sim parameter"):
        SimParams.from_dict({"use_hints": 0.5})


@pytest.mark.parametrize("domain", ["pairs", "countdown", "lists"])
def test_many_answer_domains_vary_the_right_answer_and_review_compares_with_the_favourite(domain: str) -> None:
    """Where many answers are correct, its correct samples spread over them (``variety``; the
    reference is only one of them). Its review stays closed: it compares with its belief, the
    favourite answer, so another right answer gets the 'disagree' rate like a mistake."""
    from agentsynth.sim.solvers import solve

    env, m = registry.make(domain, difficulty=2), SimModel(SimParams(skill={domain: 0.95}))
    right_keys, reference_share = [], []
    verdicts: dict[str, list[bool]] = {"favourite": [], "other right": [], "mistake": []}
    for seed in range(30):
        env.reset(seed=seed)
        msgs = [{"role": "user", "content": env.task.prompt}]
        right = [env.canonical(r) for r in (m.reply(msgs, seed=s) for s in range(20)) if env.verify(env.task, r)]
        right_keys.append(len(set(right)))
        reference_share.append(right.count(env.canonical(env.task.answer)) / max(1, len(right)))
        prob = solve(env.task.prompt)
        if m.belief(prob) != prob.answer:
            continue
        for kind, answer in (("favourite", prob.answer), ("other right", prob.alternatives[-1]), ("mistake", prob.mistakes[0])):
            review = msgs + [{"role": "assistant", "content": f"Answer: {answer}"}, {"role": "user", "content": SELF_REQUEST}]
            verdicts[kind] += ["VERDICT: correct" in m.reply(review, seed=s) for s in range(10)]
    assert sum(right_keys) / 30 > 3 and sum(reference_share) / 30 < 0.5
    rate = {k: sum(v) / len(v) for k, v in verdicts.items()}
    assert len(verdicts["favourite"]) >= 100 and abs(rate["favourite"] - 0.9) < 0.08
    assert abs(rate["other right"] - 0.45) < 0.12 and abs(rate["mistake"] - 0.45) < 0.12
