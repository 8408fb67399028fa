"""The sim's unit-conversion competence: convert the quantity in the prompt with the environment's
unit table (:data:`envs.units.UNITS`); its favourite slip is multiplying by the conversion factor
instead of dividing (or the reverse)."""

from __future__ import annotations

import math
import re

from agentsynth.answers import final_answer
from agentsynth.sim import Problem

from .units import FREEZE, UNITS, sig

_ASK = re.compile(r"Convert (-?\d+(?:\.\d+)?) (\S+) to (\S+?)\.(?:\s|$)")
_STATED = re.compile(r"[-+]?(?:\d[\d,]*)?\.?\d+(?:[eE][-+]?\d+)?")


def _sig(x: float) -> str:
    """4 significant digits (:func:`envs.units.sig`); "0" for a non-finite value."""
    return sig(x) if math.isfinite(x) else "0"


def _factor(unit: str) -> float | None:
    """A linear or compound unit's factor to its base unit (m, kg, L, s); None for others."""
    num, _, den = unit.partition("/")
    if not _linear(num) or (den and not _linear(den)):
        return None
    return UNITS[num][1] / (UNITS[den][1] if den else 1.0)


def _linear(unit: str) -> bool:
    return unit in UNITS and UNITS[unit][0] != "temperature"


def _temperature(v: float, src: str, dst: str) -> tuple[float, list[float]]:
    """The conversion and its slips: inverted degree ratio (°C <-> K: the offset's sign),
    a forgotten offset, the offset added instead of subtracted."""
    (a, zs), (c, zd) = (UNITS[src][1], FREEZE[src]), (UNITS[dst][1], FREEZE[dst])  # degree size, reading at 0 °C
    ratio = a / c
    right = (v - zs) * ratio + zd
    slip = (v - zs) / ratio + zd if ratio != 1 else v + zs - zd
    forgot = (v - zs) * ratio if zd else v * ratio
    added = (v + zs) * ratio + zd if zs else v * ratio - zd
    return right, [slip, forgot, added, right + 10, right - 10]


def _render_for(unit: str):
    def render(answer: str, tidy: bool) -> str:
        num = answer.split()[0] if answer.strip() else answer
        if tidy:
            return f"Applying the conversion factor:\nAnswer: {num} {unit}"
        return f"Converting step by step, that comes to about {num} {unit}"

    def extract(reply: str) -> str | None:
        found = _STATED.findall(re.split(r"=|≈", final_answer(reply))[-1])
        try:
            return f"{_sig(float(found[0].replace(',', '')))} {unit}" if found else None
        except ValueError:
            return None

    return render, extract


def units(prompt: str) -> Problem | None:
    """Unit-conversion prompts: 'Convert <value> <unit> to <unit>.'"""
    m = _ASK.search(prompt)
    if not m:
        return None
    v, src, dst = float(m.group(1)), m.group(2), m.group(3)
    if src in FREEZE and dst in FREEZE:
        right, candidates = _temperature(v, src, dst)
        difficulty = 2.0 if "K" not in (src, dst) or "°C" in (src, dst) else 2.6
    else:
        fs, fd = _factor(src), _factor(dst)
        if fs is None or fd is None:
            return None
        right = v * fs / fd
        candidates = [v * fd / fs, right * 1000, right / 10, right / 1000, right * 10]
        metric = all(u not in ("in", "ft", "yd", "mi", "oz", "lb") for u in re.split("/", src + "/" + dst))
        difficulty = 2.5 if "/" in src else 1.0 if metric else 1.5
    answer = _sig(right)
    mistakes: list[str] = []
    for c in candidates:
        text = _sig(c)
        if not math.isclose(float(text), right, rel_tol=5e-3, abs_tol=1e-9) and f"{text} {dst}" not in mistakes:
            mistakes.append(f"{text} {dst}")
    render, extract = _render_for(dst)
    return Problem("units", f"{answer} {dst}", difficulty, mistakes, render=render, extract=extract)
