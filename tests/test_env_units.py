"""The units environment: conversions within 0.1% relative, with or without the unit, and its sim solver."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

import agentsynth
from agentsynth.sim.solvers import solve
from envs.units import UNITS, UnitConversionEnv, convert, unit_key

from conftest import assert_runs_and_reference_helps, assert_seeded

DIFFICULTIES = (1, 2, 3)
SEEDS = range(20)
NAMES = {  # spelled-out forms of some units, as a reply might write them
    "m": "metres", "km": "kilometers", "cm": "centimetres", "mm": "millimeters", "ft": "feet", "in": "inches",
    "kg": "kilograms", "g": "grams", "lb": "pounds", "L": "liters", "mL": "millilitres", "m³": "cubic meters",
    "s": "seconds", "min": "minutes", "h": "hours", "d": "days", "°C": "degrees Celsius", "°F": "degrees Fahrenheit",
    "K": "kelvin", "km/h": "kilometres per hour", "m/s": "meters per second", "mi/h": "mph",
}


def tasks(difficulty: int):
    env = UnitConversionEnv(difficulty=difficulty, feedback="hint")
    for seed in SEEDS:
        env.reset(seed=seed)
        yield env, env.task, env.task.metadata["expected"], env.task.metadata["dst"]


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-3)


def equivalent(e: float, dst: str) -> list[str]:
    """Other correct forms: no unit, unit glued or spelled out, more digits, scientific notation,
    thousands separators, a conversion chain, a parenthetical remark, a slightly rounded value."""
    g = f"{e:.6g}"
    forms = [
        f"Answer: {g}", f"Answer: {g} {dst}", f"Answer: {g}{dst}", f"{g} {dst}", f"Answer: **{g} {dst}**",
        f"Answer: {e:.4e} {dst}", f"Answer: {e:.5E}", f"Answer: {e * (1 + 4e-4):.8g} {dst}",
        f"Answer: ≈ {g} {dst}", f"Answer: {g} {dst} (rounded)", f"Answer: {g} {dst}.", f"Work.\nAnswer: {g} {dst}",
        f"Answer: {g} {dst}".replace("-", "−"), f"The result is {g} {dst}.",
    ]
    if e:
        mant, exp = f"{e:.5e}".split("e")
        forms += [f"Answer: {mant} × 10^{int(exp)} {dst}", f"Answer: {mant} \\times 10^{{{int(exp)}}} {dst}"]
    if dst in NAMES:
        forms.append(f"Answer: {g} {NAMES[dst]}")
    if abs(e) >= 1000:
        forms += [f"Answer: {e:,.2f} {dst}", f"Answer: {e:,.1f}", f"Answer: {e:_.2f}".replace("_", "\u202f")]
    return forms


def wrong(e: float, src: str, dst: str) -> list[str]:
    off = e * 1.003 if e else 0.01
    forms = [f"Answer: {off:.6g} {dst}", f"Answer: {e * 10:.6g} {dst}", f"Answer: {e / 1000 if e else 1:.6g} {dst}",
             f"Answer: {e:.6g} {src}", "", "Answer:", "Answer: about ten", "Answer: 1/0"]
    if e:
        forms.append(f"Answer: {-e:.6g} {dst}")
    return forms



def test_same_seed_same_task_and_seeds_differ() -> None:
    assert_seeded(UnitConversionEnv, DIFFICULTIES, SEEDS, 18)


@pytest.mark.parametrize("d", DIFFICULTIES)
def test_reference_is_the_rounded_exact_value_and_difficulty_shapes_the_units(d: int) -> None:
    kinds = set()
    for _, task, e, dst in tasks(d):
        src, value = task.metadata["src"], task.metadata["value"]
        num, unit = task.answer.rsplit(" ", 1)
        assert unit == dst and close(float(num), e) and len(num.lstrip("-0.").replace(".", "").rstrip("0")) <= 4
        assert "0.1%" in task.prompt and f"Answer: <number> {dst}" in task.prompt
        kinds.add("temperature" if src in ("°C", "°F", "K") else "compound" if "/" in src else UNITS[src][0])
        if d == 1:
            assert src in UNITS and UNITS[src][0] != "temperature" and not {src, dst} & {"in", "ft", "yd", "mi", "oz", "lb"}
        if {src, dst} == {"°C", "°F"}:
            assert close(e, (value - 32) * 5 / 9 if src == "°F" else value * 9 / 5 + 32) or abs(e) < 1e-9
    assert {1: "temperature" not in kinds, 2: "temperature" in kinds, 3: "compound" in kinds}[d]
    for src, dst, value, expect in (("km/h", "m/s", 72, 20), ("°F", "°C", -40, -40), ("°C", "K", 0, 273.15), ("mi", "km", 1, 1.609344)):
        assert close(convert(value, src, dst), expect), (src, dst)


@pytest.mark.parametrize("d", DIFFICULTIES)
def test_verifier_accepts_every_equal_form_and_rejects_wrong_ones(d: int) -> None:
    for env, task, e, dst in tasks(d):
        assert env.verify(task, task.answer) and env.verify(task, f"Answer: {task.answer}")
        for good in equivalent(e, dst):
            assert env.verify(task, good), (task.answer, good)
        for bad in wrong(e, task.metadata["src"], dst):
            assert not env.verify(task, bad), (task.answer, bad)


def test_the_fixed_examples_of_the_brief() -> None:
    env = UnitConversionEnv()
    cases = (
        (12.5, "m", ["12.5", "12.5 m", "Answer: 12.50 meters", "1.25e1", "1.25 × 10¹ m", "Answer: 1250 cm = 12.5 m",
                     "12.51 m", "Answer: 12.5 m (that is 1250 cm)"], ["12.5 km", "12.6 m", "125 m", "12.5 min", "12,5 m",
                     # several values, the right one first (found by agentsynth probe, candidates_right_first)
                     "Answer: 12.5 m or 13.1 m", "12.5 m, 125 m", "12.5 or 13", "Answer: 12.5 m; maybe 12.6 m"]),
        (12500, "m", ["12,500 m", "12 500 m", "1.25e4", "Answer: 12,500.0 meters"], ["12.5 km", "12,5 m", "1,25 m"]),
        (20, "m/s", ["20 m/s", "20 metres per second", "20 m/sec", "20 m s^-1"], ["20 km/h", "72 km/h", "20 mph"]),
        (-40, "°F", ["-40 °F", "−40 °F", "-40 F", "-40°F", "-40 degrees Fahrenheit"], ["-40 °C", "40 °F", "-40 K"]),
        (2.5, "m³", ["2.5 m³", "2.5 m^3", "2.5 m3", "2.5 cubic metres"], ["2.5 L", "2500 m³"]),
        (3.2e-5, "km", ["3.2e-5 km", "0.000032 km", "3.2·10⁻⁵ km", "3.2 \\times 10^{-5} km"], ["3.2 km", "0.00032 km"]),
    )
    for e, dst, good, bad in cases:
        task = agentsynth.Task("units", "units", 0, "p", f"{e} {dst}", {"expected": e, "dst": dst, "src": "x"})
        assert all(env.verify(task, g) for g in good), [g for g in good if not env.verify(task, g)]
        assert not any(env.verify(task, b) for b in bad), [b for b in bad if env.verify(task, b)]
    assert unit_key("kilometres per hour") == "km/h" and unit_key("mph") == "mi/h" and unit_key("furlongs") is None


@pytest.mark.parametrize("d", DIFFICULTIES)
def test_hint_says_factor_direction_or_unit_but_never_the_value(d: int) -> None:
    for env, task, e, dst in tasks(d):
        src = task.metadata["src"]
        replies = [*wrong(e, src, dst)[:4], *(f"Answer: {m}" for m in solve(task.prompt).mistakes)]
        for bad in replies:
            hint = env.hint(task, bad)
            assert hint, bad
            assert not any(close(float(n.replace(",", "")), e) for n in re.findall(r"-?\d[\d,]*(?:\.\d+)?", hint)), (task.answer, hint)
            assert task.answer.split()[0] not in re.findall(r"-?\d+(?:\.\d+)?", hint)
        assert "unit looks wrong" in env.hint(task, f"Answer: {e} {src}")
        assert "no number" in env.hint(task, "no idea")
        if src not in ("°C", "°F", "K") and e:
            assert "too large by about a factor of 1000" in env.hint(task, f"Answer: {e * 1000:.6g}")
            assert "too small by about a factor of 10." in env.hint(task, f"Answer: {e / 10:.6g} {dst}")
        elif e:
            assert env.hint(task, f"Answer: {e + 5}") == "your value is too large."


def test_garbage_never_raises() -> None:
    env = UnitConversionEnv(feedback="hint", max_turns=50, difficulty=2)
    env.reset(seed=3)
    garbage = ["", "\x00\x01", "Answer: " + "9" * 5000, "Answer: 1/0", "Answer: 1e999", "Answer: 1e99999999 m",
               "Answer: 1 × 10^99999999", "Answer: " + "(" * 3000, "é" * 10000, "Answer: 0", "Answer: -0.0 m",
               "Answer: 5e-324", {"content": None}, {"content": "x", "tool_calls": []}]
    for action in garbage:
        env.step(action)
        text = action if isinstance(action, str) else ""
        assert env.verify(env.task, text) in (True, False)
        assert isinstance(env.hint(env.task, text), str)


def test_format_score_needs_an_answer_line_with_a_number() -> None:
    env = UnitConversionEnv(feedback="binary", max_turns=4)
    env.reset(seed=1)
    for reply, ok in ((f"Answer: {env.task.answer}", True), ("Answer: 3", True), ("Answer: 1,250.5 m/s", True),
                      (f"it is {env.task.answer}", False), ("Answer: about 3 m", False)):
        info = env.step(reply)[4]
        assert next(s for s in info["signals"] if s["name"] == "format")["passed"] is ok, reply


@pytest.mark.parametrize("d", DIFFICULTIES)
def test_sim_solver_converts_renders_and_its_mistakes_fail(d: int) -> None:
    for env, task, e, dst in tasks(d):
        prob = solve(task.prompt)
        assert prob is not None and prob.domain == "units" and prob.answer == task.answer
        assert 0.9 <= prob.difficulty <= 3.0
        for tidy in (True, False):
            for ref in (prob.answer, task.answer):
                assert env.verify(task, prob.render(ref, tidy))
                assert prob.extract(prob.render(ref, tidy)) == prob.answer
            for m in prob.mistakes:
                assert not env.verify(task, prob.render(m, tidy)), (task.answer, m)
        assert len(prob.mistakes) >= 3 and len(set(prob.mistakes)) == len(prob.mistakes)
        src, value = task.metadata["src"], task.metadata["value"]
        slip = float(prob.mistakes[0].split()[0])
        if src not in ("°C", "°F", "K"):  # multiplied instead of divided: off by the factor squared
            assert math.isclose(slip * e, value * value, rel_tol=2e-3)


def test_sim_solver_ignores_other_prompts() -> None:
    from envs.units_sim import units

    for prompt in ("Compute the value of: 3 + 4", "Convert 3 furlongs to m.", "Convert 3 km to °C.", "Solve for x: 2x = 1"):
        assert units(prompt) is None


def test_runner_completes_and_reference_feedback_lifts_the_pass_rate(tmp_path: Path) -> None:
    assert_runs_and_reference_helps(tmp_path, "envs.units:UnitConversionEnv", "units")
