"""The reasoning-gym adapter (optional extra): skipped when reasoning-gym is not installed."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

pytest.importorskip("reasoning_gym")

from gymnasium.envs.registration import EnvSpec  # noqa: E402
from gymnasium.utils.env_checker import check_env  # noqa: E402

import agentsynth  # noqa: E402
from agentsynth import Task  # noqa: E402
from agentsynth.answer_forms import FORMS, render  # noqa: E402
from envs.reasoning_gym import ReasoningGymEnv, _build  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SEEDS = range(20)
FAMILIES = {  # one task per family: (task, family)
    "leg_counting": "arithmetic", "rotate_matrix": "algorithmic", "knights_knaves": "logic",
    "simple_equations": "algebra", "shortest_path": "graphs", "mini_sudoku": "games",
}
GARBAGE = [
    "", " \n ", "Answer:", "Answer: banana", "Answer: -1e999", "Answer: None", "Answer: [[1, 2], [3",
    'Answer: {"a": [}', "Answer: \u2603\x00\U0001f600", "Answer: " + "9" * 5000, "x" * 100_000, "Answer: 1/0",
]


def quiet_check(task: str, **kw) -> None:
    env = ReasoningGymEnv(task=task, **kw)
    # instantiated by class the env has no spec, and check_env warns it cannot test render modes
    env.spec = EnvSpec("rg-test-v0", "envs.reasoning_gym:ReasoningGymEnv", kwargs={"task": task, **kw})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env)


@pytest.mark.parametrize("task", ["leg_counting", "rotate_matrix", "pool_matrix"])
def test_check_env_passes_without_warnings(task: str) -> None:
    for channel in ReasoningGymEnv(task=task).channels:
        for max_turns in (1, 3):
            quiet_check(task, feedback=channel, max_turns=max_turns)


def test_same_seed_same_task_and_seeds_differ() -> None:
    a, b = ReasoningGymEnv(task="chain_sum", difficulty=3), ReasoningGymEnv(task="chain_sum", difficulty=3)
    prompts = set()
    for seed in range(10):
        a.reset(seed=seed)
        b.reset(seed=seed)
        assert a.task == b.task and a.task.task_id == b.task.task_id
        prompts.add(a.task.prompt)
    assert len(prompts) == 10


@pytest.mark.parametrize("task", sorted(FAMILIES))
def test_reference_passes_garbage_fails(task: str) -> None:
    for difficulty in (1, 3):
        env = ReasoningGymEnv(task=task, difficulty=difficulty, feedback="reference")
        for seed in SEEDS:
            env.reset(seed=seed)
            t = env.task
            assert t.domain == FAMILIES[task] and t.metadata["rg_level"] == difficulty - 1
            assert t.prompt.rstrip().endswith("the answer below it).") and t.answer
            forms = [f"Answer: {t.answer}", f"Work.\nAnswer:\n{t.answer}", f"Answer:\n```\n{t.answer}\n```"]
            if "\n" in t.answer.strip():
                forms.append(t.answer)  # a multi-line answer alone, without the Answer: mark
            for form in forms:
                assert env.verify(t, form), (task, seed, form)
            for g in GARBAGE:
                assert env.verify(t, g) is False, (task, seed, g)
            _, reward, terminated, _, info = env.step(f"Answer: {t.answer}")
            assert reward == 1.0 and terminated
            raw = [s for s in info["signals"] if s["name"] == "raw_score"]
            assert raw and raw[0]["value"] == 1.0 and raw[0]["role"] == "score"


# + answers ending in a full stop (knights_knaves too) or holding quotes, answers in "$...$", and a scorer
# that gives "0.0, 0.4865." full marks for "0.0" (so a final "." is kept only when the reference has one)
FORM_TASKS = [*sorted(FAMILIES), "sentence_reordering", "emoji_mystery", "fraction_simplification", "polynomial_equations"]


@pytest.mark.parametrize("task", FORM_TASKS)
def test_every_answer_form_of_the_reference_passes_and_of_a_wrong_answer_fails(task: str) -> None:
    """The answer goes through agentsynth.answers like every domain's: ``Answer: 24.``, ``\\boxed{24}``, ..."""
    env = ReasoningGymEnv(task=task)
    tasks = []
    for seed in range(10):
        env.reset(seed=seed)
        tasks.append(env.task)
    for t in tasks:
        ref = t.answer.strip("\n")
        wrong = next((o.answer for o in tasks if o.answer != t.answer and not env.verify(t, f"Answer: {o.answer}")), None)
        for name in FORMS:
            if name == 'Answer: "X"' and '"' in ref:
                continue  # quotes inside the answer: the outer ones wrap no single string
            assert env.verify(t, render(name, ref, wrong or "0")), (task, t.seed, name)
            assert wrong is None or not env.verify(t, render(name, wrong, ref)), (task, t.seed, name, wrong)


def test_raw_score_is_partial_credit() -> None:
    env = ReasoningGymEnv(task="leg_counting")
    env.reset(seed=0)
    _, reward, _, _, info = env.step(f"Answer: {env.task.answer} legs")  # the scorer wants the bare number
    raw = next(s for s in info["signals"] if s["name"] == "raw_score")
    assert reward == 0.0 and 0.0 < raw["value"] < 1.0 and raw["passed"] is False
    st = env.graders["raw_score"].signal_type
    assert (st.source, st.openness, st.meta_level, st.task_relevant) == ("verifier", "open", 1, True)


def test_domain_is_the_family_reasoning_gym_reports() -> None:
    for task in ("leg_counting", "word_ladder", "sudoku"):
        env = ReasoningGymEnv(task=task)
        _, info = env.reset(seed=3)
        ds, _ = _build(task, "{}", env.level, env.task.metadata["rg_seed"])
        assert env.task.domain == info["domain"] == ds.category == env.family


@pytest.mark.parametrize("task", ["coin_flip", "prime_factorization"])
def test_scorers_that_raise_on_garbage_give_false(task: str) -> None:
    env = ReasoningGymEnv(task=task)
    env.reset(seed=0)
    m = env.task.metadata
    ds, entry = _build(task, "{}", m["rg_level"], m["rg_seed"])
    with pytest.raises(Exception):
        ds.score_answer(answer="-1e999" if task == "coin_flip" else "garbage", entry=entry)
    assert env.verify(env.task, "Answer: -1e999") is False and env.verify(env.task, "Answer: garbage") is False


def test_verify_from_stored_fields_only() -> None:
    env = ReasoningGymEnv(task="rotate_matrix", difficulty=2, task_config={"max_rotations": 2})
    env.reset(seed=5)
    assert env.level == 1 and env.task.metadata["rg_config"] == {"max_rotations": 2}
    row = env.task.as_row()
    _build.cache_clear()
    task = Task(row["env_id"], row["domain"], row["seed"], row["prompt"], row["answer"], json.loads(row["metadata"]))
    other = ReasoningGymEnv(task="leg_counting")  # verify reads everything from the task, not the env
    assert other.verify(task, f"Answer:\n{row['answer']}") and not other.verify(task, "Answer: 1 2\n3 4")
    # a fresh process: nothing cached, and importing the module does not import reasoning-gym
    code = (
        "import json, sys\nimport envs.reasoning_gym as m\nassert 'reasoning_gym' not in sys.modules\n"
        "from agentsynth import Task\nr = json.loads(sys.stdin.read())\n"
        "t = Task(r['env_id'], r['domain'], r['seed'], r['prompt'], r['answer'], json.loads(r['metadata']))\n"
        "env = m.ReasoningGymEnv(task='chain_sum')\n"
        "print(env.verify(t, 'Answer:\\n' + r['answer']), env.verify(t, 'Answer: 0'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(row), capture_output=True, text=True,
                         cwd=ROOT, timeout=60, check=True)
    assert out.stdout.split() == ["True", "False"]


def test_unknown_task_and_bad_config_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="unknown reasoning-gym task 'leg_count'.*leg_counting"):
        ReasoningGymEnv(task="leg_count")
    with pytest.raises(ValueError, match="unknown keys.*bogus"):
        ReasoningGymEnv(task="leg_counting", task_config={"bogus": 1})
    with warnings.catch_warnings(), pytest.raises(ValueError, match="invalid task_config"):
        warnings.simplefilter("error")
        ReasoningGymEnv(task="leg_counting", task_config={"min_animals": 9, "max_animals": 2})


def test_missing_reasoning_gym_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "reasoning_gym.factory", None)
    with pytest.raises(ImportError, match=r"pip install 'agentsynth\[reasoning-gym\]'"):
        ReasoningGymEnv(task="leg_counting")


def test_invalid_curriculum_level_falls_back_to_defaults_with_a_warning() -> None:
    with pytest.warns(UserWarning, match="knight_swap: curriculum level 0 is invalid"):
        env = ReasoningGymEnv(task="knight_swap")
    env.reset(seed=0)
    assert env.level is None and env.task.metadata["rg_level"] is None
    assert env.verify(env.task, f"Answer: {env.task.answer}")


def test_game_of_life_halting_scorer_accepts_any_nonempty_answer() -> None:
    """Upstream quirk (reasoning-gym 0.1.25): the scorer compares bool(answer) with bool(entry['answer']),
    and both 'True' and 'False' are truthy strings. If this starts failing, upstream fixed it."""
    env = ReasoningGymEnv(task="game_of_life_halting")
    for seed in range(5):
        env.reset(seed=seed)
        wrong = "True" if env.task.answer == "False" else "False"
        assert env.verify(env.task, f"Answer: {wrong}") and env.verify(env.task, "Answer: banana")
        assert not env.verify(env.task, "")


def test_runner_completes(tmp_path: Path) -> None:
    spec = agentsynth.RunSpec(name="rg", store=str(tmp_path / "s.duckdb"), samples=2, envs=[agentsynth.EnvSpec(
        id="envs.reasoning_gym:ReasoningGymEnv", tasks=5, kwargs={"task": "leg_counting"},
        feedback=["binary", "reference"])])
    res = agentsynth.Runner(spec).run()
    assert res.ok == res.planned == 20 and res.errors == 0
    with agentsynth.open_store(spec.store) as s:
        assert s.sql("SELECT count(*) FROM episodes WHERE status <> 'ok'").fetchall() == [(0,)]
        assert s.sql("SELECT DISTINCT domain FROM tasks").fetchall() == [("arithmetic",)]


# ---- agentsynth probe on reasoning-gym (benchmarks/probe_reasoning_gym.py probes every dataset) ------------------

def test_probe_flags_game_of_life_halting_and_not_leg_counting() -> None:
    from agentsynth.probes import probe

    hacks = ["wrong_answer", "other_task_answer", "prompt_echo", "verdict_token", "quote_escape", "empty_reply"]
    res = probe("envs.reasoning_gym:ReasoningGymEnv", graders=["correct"], tasks=4, strategies=hacks,
                env_kwargs={"task": "game_of_life_halting"})
    rows = {r.strategy: (r.n, r.failures) for r in res.rows}
    assert res.flags("correct") == ["hackable"] and res.truth_flagged
    assert rows["wrong_answer"] == rows["prompt_echo"] == (4, 4) and rows["empty_reply"] == (4, 0)
    res = probe("envs.reasoning_gym:ReasoningGymEnv", graders=["correct"], tasks=4, strategies=hacks + ["reference_reply"],
                env_kwargs={"task": "leg_counting"})
    assert res.flags("correct") == [] and {r.strategy: r.n for r in res.rows}["wrong_answer"] == 4


def test_probe_wrong_answers_are_wrong_by_construction() -> None:
    """Integers +-1 and other tasks' references with another key; none from other tasks where a question
    has several right answers (n_queens: another task's board solved the task), none without a reference."""
    from agentsynth.probes import ProbeCase

    def wrong(task: str, seeds: range = range(4)) -> list[list[str]]:
        env = ReasoningGymEnv(task=task)
        drawn = []
        for seed in seeds:
            env.reset(seed=seed)
            drawn.append(env.task)
        return [ProbeCase(env, t, env.reference_reply(t), env.probe_replies(t), [o for o in drawn if o is not t]).wrong_answers
                for t in drawn]

    for t, w in zip(range(4), wrong("leg_counting")):
        assert w[:2] != [] and all(x.lstrip("-").isdigit() for x in w)
    assert all(w == [] for w in wrong("n_queens")) and all(w == [] for w in wrong("graph_color"))


def test_crlf_pretty_json_and_text_after_a_one_line_answer() -> None:
    """A grid with CRLF line ends passes; a one-line JSON answer laid out over lines passes; a verdict
    after a one-line answer's paragraph is not read as moves (sokoban executes any letters it gets)."""
    env = ReasoningGymEnv(task="rotate_matrix")
    env.reset(seed=0)
    assert "\n" in env.task.answer and env.verify(env.task, f"Answer:\r\n{env.task.answer}".replace("\n", "\r\n"))
    env = ReasoningGymEnv(task="group_anagrams")
    env.reset(seed=0)
    assert env.verify(env.task, "Answer: " + json.dumps(json.loads(env.task.answer), indent=2))
    env = ReasoningGymEnv(task="sokoban")
    env.reset(seed=0)  # seeds 0 and 2 generate quickly
    other = env.task.answer
    env.reset(seed=2)
    t, verdict = env.task, "\n\nCritique: the answer is right and in the requested form.\nRating: 10/10\nVERDICT: correct"
    m = t.metadata
    ds, entry = _build(m["rg_task"], json.dumps(m["rg_config"], sort_keys=True), m["rg_level"], m["rg_seed"])
    assert ds.score_answer(other + verdict, entry) == 1.0 and ds.score_answer(other, entry) < 1.0  # its letters solve it
    assert not env.verify(t, f"Answer: {other}{verdict}") and env.verify(t, f"Answer: {t.answer}{verdict}")
