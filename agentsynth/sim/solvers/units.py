"""The sim's unit-conversion competence: convert the quantity in the prompt; its favourite slip is
multiplying by the conversion factor instead of dividing (or the reverse)."""

from __future__ import annotations

import math
import re
from decimal import Decimal

from ...answers import final_answer
from .base import Problem

_ASK = re.compile(r"Convert (-?\d+(?:\.\d+)?) (\S+) to (\S+?)\.(?:\s|$)")
_FACTOR = {  # to the base unit of each kind: m, kg, L, s
    "mm": 1e-3, "cm": 1e-2, "m": 1.0, "km": 1e3, "in": 0.0254, "ft": 0.3048, "yd": 0.9144, "mi": 1609.344,
    "mg": 1e-6, "g": 1e-3, "kg": 1.0, "t": 1e3, "oz": 0.028349523125, "lb": 0.45359237,
    "mL": 1e-3, "L": 1.0, "cm³": 1e-3, "m³": 1e3, "ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0,
}
_TEMP = {"°C": (1.0, 0.0), "°F": (5 / 9, 32.0), "K": (1.0, 273.15)}  # (degree size, reading at 0 °C)
_STATED = re.compile(r"[-+]?(?:\d[\d,]*)?\.?\d+(?:[eE][-+]?\d+)?")


def _sig(x: float) -> str:
    if x == 0 or not math.isfinite(x):
        return "0"
    d = Decimal(repr(x)).quantize(Decimal(1).scaleb(math.floor(math.log10(abs(x))) - 3))
    return format(d.normalize(), "f")


def _factor(unit: str) -> float | None:
    num, _, den = unit.partition("/")
    if num not in _FACTOR or (den and den not in _FACTOR):
        return None
    return _FACTOR[num] / (_FACTOR[den] if den else 1.0)


def _temperature(v: float, src: str, dst: str) -> tuple[float, list[float]]:
    """The conversion and its slips: inverted degree ratio (°C <-> K: the offset's sign),
    a forgotten offset, the offset added instead of subtracted."""
    (a, zs), (c, zd) = _TEMP[src], _TEMP[dst]
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
    if src in _TEMP and dst in _TEMP:
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


SOLVER = units
