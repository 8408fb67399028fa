"""Units: convert a quantity between units.

Difficulty 1: metric length, mass, volume and time; 2: adds imperial units and temperature (°C, °F,
K: affine); 3: compound units (km/h → m/s, L/min → m³/h, g/mL → kg/m³) or °F ↔ K. Accepted: the
first number after the last ``=`` in the final answer, within 0.1% relative of the exact value,
with or without a unit after it (``12.5``, ``12.5 m``, ``Answer: 12.50 metres``, ``1.25e1``,
``1.25 × 10^1``, ``12,500``, ``12 500``); a recognised unit other than the requested one fails. The hint says
"the unit looks wrong", or "too large/too small by about a factor of N" (temperatures: only the
direction); ``format`` (a score) checks the ``Answer: <number> [unit]`` line.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

import numpy as np

from agentsynth import ProbeReplies, Task, TextEnv, final_answer
from rubrics import answer_line

from ._keys import answer_key

PROMPT = (
    "Convert {value} {src} to {dst}. Answers within 0.1% (relative) of the exact value are accepted. "
    "End with a line 'Answer: <number> {dst}'."
)
# symbol: (kind, factor to the SI-ish base, names); names "singular/plural" (plural default: +s)
UNITS = {
    "mm": ("length", 1e-3, "millimetre,millimeter"), "cm": ("length", 1e-2, "centimetre,centimeter"),
    "m": ("length", 1.0, "metre,meter"), "km": ("length", 1e3, "kilometre,kilometer"),
    "in": ("length", 0.0254, "inch/inches"), "ft": ("length", 0.3048, "foot/feet"),
    "yd": ("length", 0.9144, "yard"), "mi": ("length", 1609.344, "mile"),
    "mg": ("mass", 1e-6, "milligram"), "g": ("mass", 1e-3, "gram"), "kg": ("mass", 1.0, "kilogram,kilo"),
    "t": ("mass", 1e3, "tonne,metric ton"), "oz": ("mass", 0.028349523125, "ounce"),
    "lb": ("mass", 0.45359237, "pound,lbs/lbs"),
    "mL": ("volume", 1e-3, "millilitre,milliliter"), "L": ("volume", 1.0, "litre,liter"),
    "cm³": ("volume", 1e-3, "cubic centimetre,cubic centimeter,cc"), "m³": ("volume", 1e3, "cubic metre,cubic meter"),
    "ms": ("time", 1e-3, "millisecond"), "s": ("time", 1.0, "second,sec"), "min": ("time", 60.0, "minute,mins/mins"),
    "h": ("time", 3600.0, "hour,hr"), "d": ("time", 86400.0, "day"),
    "°C": ("temperature", 1.0, "celsius/celsius"), "°F": ("temperature", 5 / 9, "fahrenheit/fahrenheit"),
    "K": ("temperature", 1.0, "kelvin"),
}
METRIC = ["mm", "cm", "m", "km", "mg", "g", "kg", "t", "mL", "L", "m³", "ms", "s", "min", "h", "d"]
LINEAR = [u for u, (k, _, _) in UNITS.items() if k != "temperature"]
COMPOUND = [("length", "time"), ("volume", "time"), ("mass", "time"), ("mass", "volume")]
FREEZE = {"°C": 0.0, "°F": 32.0, "K": 273.15}  # the reading at 0 °C (temperature factors: degree size)


def _norm(text: str) -> str:
    text = re.sub(r"\b(degrees?|deg)\b\.?|[°º˚]", "", text.lower().replace("^", ""))
    return re.sub(r"\s+", " ", re.sub(r"([a-z])\s*3\b", r"\1³", text)).strip()


ALIAS = {"mph": "mi/h", "kph": "km/h", "kmh": "km/h"}
for _sym, (_k, _f, _names) in UNITS.items():
    ALIAS[_norm(_sym)] = _sym
    for _name in _names.split(","):
        _one, _many = _name.split("/") if "/" in _name else (_name, _name + "s")
        ALIAS[_norm(_one)] = ALIAS[_norm(_many)] = _sym


def unit_key(text: str) -> str | None:
    """The unit a text names (``m/s``, ``kilometres per hour`` → ``km/h``), or None."""
    s = _norm(text)
    if s in ALIAS:
        return ALIAS[s]
    for sep in ("/", " per "):
        a, _, b = s.partition(sep)
        if b and a.strip() in ALIAS and b.strip() in ALIAS:
            return f"{ALIAS[a.strip()]}/{ALIAS[b.strip()]}"
    return None


def convert(value: float, src: str, dst: str) -> float:
    """``value`` in ``src`` expressed in ``dst`` (simple, compound ``a/b`` or temperature)."""
    if src in FREEZE:  # (value - its reading at 0 °C) in degrees of dst, plus dst's reading at 0 °C
        return (value - FREEZE[src]) * UNITS[src][1] / UNITS[dst][1] + FREEZE[dst]
    f = lambda u: UNITS[u][1] if "/" not in u else UNITS[u.split("/")[0]][1] / UNITS[u.split("/")[1]][1]
    return value * f(src) / f(dst)


def sig(x: float, digits: int = 4) -> str:
    """``x`` to ``digits`` significant digits as plain decimal text (``0.0002778``, ``123500``)."""
    if x == 0 or not math.isfinite(x):
        return "0" if x == 0 else str(x)
    d = Decimal(repr(x)).quantize(Decimal(1).scaleb(math.floor(math.log10(abs(x))) - digits + 1))
    return format(d.normalize(), "f")


_NUM = re.compile(
    r"([-+]?(?:\d{1,3}(?:[, \u2009\u202f]\d{3})+(?![\d,])|\d+)(?:\.\d+)?|[-+]?\.\d+)"
    r"(?:[eE]([-+]?\d+)|\s*(?:[x×*·]|\\times|\\cdot)\s*10\s*(?:\^|\*\*)\s*\{?([-+]?\d+)\}?)?"
)
_SUP = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")


_ANOTHER = re.compile(r"(?<![\^\w.])(?<!\^[-+])\d")  # a number after the stated one (not an exponent: m^3, s^-1)


def parse(text: str) -> tuple[float | None, str]:
    """The stated number and the text after it (the unit, if any); None when the final answer (after
    its last ``=``, outside parentheses) states another number after it."""
    part = final_answer(text)[:300].replace("−", "-")
    part = re.sub(r"[⁻⁺]?[⁰¹²³⁴⁵⁶⁷⁸⁹]+", lambda m: "^" + m.group().translate(_SUP), part)
    part = re.split(r"=|≈", re.sub(r"\([^()]*\)", "", part))[-1]
    m = _NUM.search(part)
    if not m:
        return None, ""
    exp = m.group(2) or m.group(3) or "0"
    if len(exp) > 4:
        return None, ""
    if _ANOTHER.search(part[m.end():]):
        return None, ""  # several values ("12.5 km or 13 km"): no one stated value
    value = float(re.sub(r"[, \u2009\u202f]", "", m.group(1)) + "e" + exp)
    rest = re.split(r"[(,;]", part[m.end():])[0].strip(" .!*`$")
    return (value if math.isfinite(value) else None), rest


class UnitConversionEnv(TextEnv):
    """Convert a quantity between units."""

    name = "units"
    domain = "units"
    sim_solver = "envs.units_sim:units"  # how the sim model reads these prompts

    def generate(self, rng: np.random.Generator) -> Task:
        d = min(self.difficulty, 3)
        mantissa, dec, roll = (int(v) for v in rng.integers(0, 1000, size=3))
        if d == 2 and roll % 3 == 0 or d == 3 and roll % 4 == 0:
            pair = ["°F", "K"] if d == 3 else [["°C", "°F"], ["°C", "K"]][mantissa % 2]
            src, dst = pair[::-1] if dec % 2 else pair
            low = {"°C": -40, "°F": -40, "K": 200}[src]
            value = Decimal(low * 2 + mantissa % 500) / 2
        else:
            while True:
                if d < 3:
                    src, dst = (str(u) for u in rng.choice(METRIC if d == 1 else LINEAR, size=2, replace=False))
                else:
                    kinds = COMPOUND[int(rng.integers(0, len(COMPOUND)))]
                    units = [[u for u in LINEAR if UNITS[u][0] == k and u != "ms"] for k in kinds]
                    (a1, a2), (b1, b2) = (rng.choice(us, size=2, replace=False) for us in units)
                    src, dst = f"{a1}/{b1}", f"{a2}/{b2}"
                f = convert(1.0, src, dst)
                if UNITS.get(src, UNITS["m"])[0] == UNITS.get(dst, UNITS["m"])[0] and 1e-4 <= f <= 1e4 and abs(f - 1) > 1e-9:
                    break
            value = Decimal(mantissa % 999 + 1).scaleb(max(0, math.floor(-math.log10(f)) - 2) - dec % 3)
        expected = convert(float(value), src, dst)
        prompt = PROMPT.format(value=format(value.normalize(), "f"), src=src, dst=dst)
        return self.make_task(prompt, f"{sig(expected)} {dst}", value=float(value), src=src, dst=dst, expected=expected)

    def verify(self, task: Task, answer: str) -> bool:
        try:
            got, rest = parse(answer)
            unit = unit_key(rest) if rest else None
            ok_unit = unit is None or unit == task.metadata["dst"]
            return got is not None and ok_unit and math.isclose(got, task.metadata["expected"], rel_tol=1e-3)
        except Exception:  # noqa: BLE001 - the verifier never raises on garbage
            return False

    def hint(self, task: Task, answer: str) -> str | None:
        got, rest = parse(answer)
        dst, exp = task.metadata["dst"], task.metadata["expected"]
        if got is None:
            return f"no number found in your final answer; end with 'Answer: <number> {dst}'."
        if rest and unit_key(rest) not in (None, dst):
            return f"the unit looks wrong: the answer should be in {dst}."
        size = "too large" if got > exp else "too small"
        if UNITS.get(dst, ("",))[0] == "temperature" or got == 0 or exp == 0:
            return f"your value is {size}."
        if got * exp < 0:
            return f"your value is {size}; check its sign."
        ratio = max(got / exp, exp / got)
        factor = sig(ratio, 2) if ratio < 1e9 else "more than a billion"
        if ratio < 1.5 or factor[0].isdigit() and math.isclose(float(factor), abs(exp), rel_tol=2e-3):
            return f"your value is {size}{', but only slightly' if ratio < 1.5 else ''}."
        return f"your value is {size} by about a factor of {factor}."

    @answer_key
    def canonical(self, text: str) -> str | None:
        """``<number> <unit>`` as verify reads the final answer: the number to 4 significant digits
        (the reference's precision), the unit as its symbol (``12.50 metres`` → ``12.5 m``); a
        missing or unknown unit is read as the one the current task asks for, as verify does."""
        got, rest = parse(text)
        if got is None:
            return None
        asked = self.task.metadata.get("dst") if self.task is not None else None
        unit = (unit_key(rest) if rest else None) or asked
        return f"{sig(got)} {unit}" if unit else sig(got)

    def scores(self):
        return [answer_line(r"[-+]?(?:\d[\d,]*(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?(?:\s*[^\d\s].*)?")]

    def probe_replies(self, task: Task) -> ProbeReplies:
        """5% more and ten times the value are wrong (the tolerance is 0.1%); the number without its
        unit and the value to 7 significant digits are the same answer."""
        v, dst = float(task.metadata["expected"]), task.metadata["dst"]
        wrong = (f"{sig(v * 1.05)} {dst}", f"{sig(v * 10)} {dst}") if v else (f"1 {dst}", f"10 {dst}")
        return ProbeReplies(wrong=wrong, equivalent=(sig(v), f"{sig(v, 7)} {dst}"), single_answer=True)
