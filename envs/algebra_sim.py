"""The sim's algebra competence: solve the linear equation in the prompt exactly; its favourite slip
is a sign error when moving a term across the equals sign."""

from __future__ import annotations

import re
from fractions import Fraction

from agentsynth.answers import final_answer
from agentsynth.sim import Problem

_EQ = re.compile(r"Solve for x:\s*(.+?)\s*$", re.MULTILINE)
_TOKENS = re.compile(r"\d+|[-+*/()x]")
_STATED = re.compile(r"([-+]?)\s*(\d+\.?\d*|\.\d+)(?:\s*/\s*(\d+))?")
Lin = tuple[Fraction, Fraction]  # a*x + b


class _Parser:
    """Linear expressions over Fractions; ``sloppy`` distributes a factor only onto the x term."""

    def __init__(self, text: str, sloppy: bool = False):
        if re.sub(r"[\d\s+\-*/()x]", "", text):
            raise ValueError("not a linear expression")
        self.toks, self.i, self.sloppy = _TOKENS.findall(text), 0, sloppy

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> str:
        self.i += 1
        return self.toks[self.i - 1]

    def parse(self) -> Lin:
        out = self.expr()
        if self.peek() is not None:
            raise ValueError("trailing tokens")
        return out

    def expr(self) -> Lin:
        a, b = self.term()[0]
        while self.peek() in ("+", "-"):
            sign = 1 if self.take() == "+" else -1
            (c, d), _ = self.term()
            a, b = a + sign * c, b + sign * d
        return a, b

    def term(self) -> tuple[Lin, bool]:
        (a, b), paren = self.factor()
        while self.peek() is not None and self.peek() not in ("+", "-", ")"):
            op = self.take() if self.peek() in ("*", "/") else "*"
            (c, d), p2 = self.factor()
            if op == "/":
                if c or not d:
                    raise ValueError("non-linear")
                a, b = a / d, b / d
            elif a and c:
                raise ValueError("non-linear")
            elif a:
                a, b = a * d, b if self.sloppy and paren else b * d
            else:
                a, b = c * b, d if self.sloppy and p2 else d * b
            paren = False
        return (a, b), paren

    def factor(self) -> tuple[Lin, bool]:
        t = self.take()
        if t == "-":
            (a, b), p = self.factor()
            return (-a, -b), p
        if t == "x":
            return (Fraction(1), Fraction(0)), False
        if t == "(":
            inner = self.expr()
            if self.take() != ")":
                raise ValueError("unbalanced")
            return inner, True
        if t.isdigit():
            return (Fraction(0), Fraction(int(t))), False
        raise ValueError(f"unexpected {t!r}")


def _sides(eq: str, sloppy: bool = False) -> tuple[Lin, Lin]:
    left, right = eq.split("=")
    return _Parser(left, sloppy).parse(), _Parser(right, sloppy).parse()


def _render(answer: str, tidy: bool) -> str:
    if tidy:
        return f"Moving the x terms to one side and the constants to the other:\nAnswer: x = {answer}"
    v = Fraction(answer)
    den = v.denominator
    for prime in (2, 5):
        while den % prime == 0:
            den //= prime
    shown = answer if v.denominator == 1 else repr(float(v)) if den == 1 else f"{float(v):.6g}"
    return f"Collecting terms and dividing, I get x = {shown}"


def _extract(reply: str) -> str | None:
    found = _STATED.findall(final_answer(reply))
    if not found:
        return None
    sign, num, den = found[-1]
    v = Fraction(num) / (int(den) if den and int(den) else 1)
    if "." in num and abs(v.limit_denominator(100) - v) <= abs(v) * 1e-5:
        v = v.limit_denominator(100)
    return str(-v if sign == "-" else v)


_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]


def _words(answer: str) -> str:
    v = Fraction(answer)
    name = lambda n: _WORDS[n] if n < len(_WORDS) else "many"
    body = name(abs(v.numerator)) + ("" if v.denominator == 1 else f" over {name(v.denominator)}")
    return ("minus " if v < 0 else "") + body


def algebra(prompt: str) -> Problem | None:
    """Algebra prompts: 'Solve for x: <linear equation>'."""
    m = _EQ.search(prompt)
    if not m or m.group(1).count("=") != 1:
        return None
    eq = m.group(1)
    try:
        (p, q), (r, s) = _sides(eq)
        x = (s - q) / (p - r)
    except (ValueError, IndexError, ZeroDivisionError):
        return None
    candidates = []
    for num, den in ((s + q, p - r), (s - q, 1), (p - r, s - q), (s - q, p + r), (-(s - q), p - r)):
        if den:
            candidates.append(Fraction(num) / den)
    if "(" in eq:
        (sp, sq), (sr, ss) = _sides(eq, sloppy=True)
        if sp != sr:
            candidates.insert(1, (ss - sq) / (sp - sr))
    candidates += [x + 1, x - 1]
    mistakes: list[str] = []
    for c in candidates:
        if abs(c - x) > abs(x) / 200 and str(c) not in mistakes:
            mistakes.append(str(c))
    difficulty = 1.0 + 0.6 * (eq.count("x") > 1) + 0.6 * bool(re.search(r"[(/]", eq))
    return Problem("algebra", str(x), difficulty, mistakes, answer_words=_words, render=_render, extract=_extract)
