"""Code: write a small Python function from a specification; hidden unit tests run it in a sandbox.

Tasks come from 16 families (sum of the squares of the even numbers, count vowels, Fibonacci
mod m, reverse each word, running maximum, palindrome, ... merge intervals, balanced brackets),
with parameters, the function's name and two examples drawn from the rng. Difficulty 1, 2, 3+
picks the easy, middle or hard families and adds hidden tests (3 + 3·d random inputs plus the
family's edge cases: empty input, boundaries, ...), whose expected values the reference solution
computes at generate time (``metadata["tests"]`` / ``["expected"]``).

Accepted: any reply whose code defines the named function and returns the expected value on every
hidden test, whatever the implementation. The code is read within what the last answer mark
introduces (``Answer:``, ``\\boxed{}``, ...: :func:`agentsynth.answers.answer_region`) if that
defines a function, else within the whole reply: the last ```python (or ```py, or unlabelled)
block that defines the function, else the last such block, else all of it (bare code, an
unterminated fence); CRLF line ends and a block indented as a whole are fine, and code
under ``if __name__ == "__main__":`` does not run. Outputs compare as values: a tuple for a list
and an integral float for an int are accepted, 1 for True is not. The code runs in
:mod:`agentsynth.sandbox` (3 s wall clock, 2 s CPU, 256 MB, no network); expected values never
enter the sandbox, so no printed trick can fake a pass. Looking them up elsewhere is prevented only
under bubblewrap, where the code sees neither the project, the store (``tasks.metadata`` holds the
tests and expected values) nor other processes; without it (``isolation().bwrap`` is None, and a
warning says so) a program can read a world-readable store and pass every task it finds there
(README, "The code sandbox"). The hint names the first failing input and what the function
returned or raised ("your function returned X for input Y; that is not correct"), or that it
timed out, never the expected value. ``format`` (a score, not task relevant) checks for a
```python block defining the function.
"""

from __future__ import annotations

import json
import re

import numpy as np

from agentsynth import ProbeReplies, Task, TextEnv, grader
from rubrics.unit_tests import _FENCE, extract_code  # noqa: F401 - extract_code re-exported
from rubrics.unit_tests import check as _check

from ._keys import answer_key

PROMPT = """Write a Python function `{name}({args})` that {spec}.

Examples:
{examples}

Your function will be run on {n} hidden tests. Reply with the complete function in a ```python code block (standard library only)."""
_LET = "abcdefghijklmnopqrstuvwxyz"


def _ints(rng, n, lo, hi) -> list[int]:
    return [int(x) for x in rng.integers(lo, hi + 1, size=int(n))]


def _word(rng, k, alphabet=_LET) -> str:
    return "".join(alphabet[i] for i in rng.integers(0, len(alphabet), size=int(k)))


def _fam_power_sum(rng):
    even, power = bool(rng.integers(2)), int(rng.integers(2, 4))
    parity, pw = ("even" if even else "odd"), ("square" if power == 2 else "cube")
    body = f"    return sum(x ** {power} for x in nums if x % 2 == {0 if even else 1})"
    return ([f"sum_{parity}_{pw}s", f"{parity}_{pw}_total"], "nums",
            f"returns the sum of the {pw}s of the {parity} numbers in the list of integers `nums` (0 if there are none)",
            body, lambda r: [_ints(r, r.integers(0, 9), -9, 12)], [[[]], [[-6, 1, 2, 3, 4, -5]], [[1, 2, 3, 4, -5, -6]], [[0]]])


def _fam_count_letters(rng):
    consonants = "bcdfghjklmnpqrstvwxyz"
    letters = "aeiou" if rng.integers(2) else "".join(sorted(consonants[i] for i in rng.choice(21, 3, replace=False)))
    names = ["count_vowels", "vowel_count"] if letters == "aeiou" else ["count_letters", "letter_count"]
    listed = ", ".join(f"'{c}'" for c in letters)
    pool = letters + letters.upper() + "xyzBK "
    edge = f"{letters[0].upper()}b{letters[1]}{letters[-1].upper()}"
    return (names, "s", f"returns how many characters of the string `s` are one of the letters {listed} (upper or lower case)",
            f"    return sum(1 for c in s.lower() if c in {letters!r})",
            lambda r: [_word(r, r.integers(0, 16), pool)], [[""], [edge], ["Hello World"]])


def _fam_reverse_words(rng):
    each = bool(rng.integers(2))
    spec = ("returns the string `s` with every word reversed, keeping the words in their original order" if each
            else "returns the words of the string `s` in reverse order") + " (words are separated by single spaces)"
    body = '    return " ".join(w[::-1] for w in s.split(" "))' if each else '    return " ".join(s.split(" ")[::-1])'
    names = ["reverse_each_word", "flip_words"] if each else ["reverse_word_order", "words_backwards"]
    return (names, "s", spec, body,
            lambda r: [" ".join(_word(r, r.integers(1, 7)) for _ in range(int(r.integers(1, 6))))], [[""], ["ab"], ["ab cde fg"]])


def _palindrome_input(r):
    half = _word(r, r.integers(1, 6), "abcab")
    s = half + half[::-1][int(r.integers(2)):]
    if r.integers(3) == 0:
        s = s[:-1] + "xy"
    chars = [c.upper() if u else c for c, u in zip(s, r.integers(0, 2, size=len(s)))]
    return ["".join(c + (" " if sp == 0 else "") for c, sp in zip(chars, r.integers(0, 4, size=len(chars)))).strip()]


def _fam_palindrome(rng):
    return (["is_palindrome", "reads_same_backwards"], "s",
            "returns True if the string `s` reads the same forwards and backwards when upper/lower case and spaces are ignored, otherwise False",
            '    t = s.replace(" ", "").lower()\n    return t == t[::-1]', _palindrome_input, [[""], ["Ab a"], ["ab"], ["Top spot"]])


def _fam_running(rng):
    op = ["maximum", "minimum", "sum"][int(rng.integers(3))]
    comb = {"maximum": "max(out[-1], x)", "minimum": "min(out[-1], x)", "sum": "out[-1] + x"}[op]
    short = op[:3]
    return ([f"running_{short}", f"prefix_{short}s"], "nums",
            f"returns the running {op} of the list of integers `nums`: a list whose i-th element is the {op} of nums[0], ..., nums[i]",
            f"    out = []\n    for x in nums:\n        out.append({comb} if out else x)\n    return out",
            lambda r: [_ints(r, r.integers(1, 9), -20, 20)], [[[]], [[5]], [[3, 1, 4, 1, 5, -9, 2, 6]]])


def _fam_fib_mod(rng):
    m = [10, 97, 100, 1000, 1_000_000_007][int(rng.integers(5))]
    return (["fib_mod", "fibonacci_mod"], "n",
            f"returns the n-th Fibonacci number modulo {m}, where F(0) = 0, F(1) = 1 and F(k) = F(k-1) + F(k-2) (0 <= n <= 500)",
            f"    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, (a + b) % {m}\n    return a",
            lambda r: [int(r.integers(0, 501))], [[0], [1], [2], [7], [90]])


def _fam_multiples(rng):
    k = int(rng.integers(2, 10))
    return ([f"sum_multiples_of_{k}", f"multiples_of_{k}_total"], "n",
            f"returns the sum of all multiples of {k} between 1 and `n` inclusive (n >= 0)",
            f"    return sum(range({k}, n + 1, {k}))", lambda r: [int(r.integers(0, 201))], [[0], [k - 1], [k], [10 * k]])


def _fam_threshold(rng):
    t, i = int(rng.integers(-5, 21)), int(rng.integers(4))
    rel, op, names = [("strictly greater than", ">", "count_greater"), ("at least", ">=", "count_at_least"),
                      ("strictly less than", "<", "count_less"), ("at most", "<=", "count_at_most")][i]
    return ([names, names.replace("count_", "how_many_")], "nums",
            f"returns how many elements of the list of integers `nums` are {rel} {t}", f"    return sum(1 for x in nums if x {op} {t})",
            lambda r: [_ints(r, r.integers(0, 11), t - 4, t + 4)], [[[]], [[t]], [[t - 1, t, t + 1, t]]])


def _fam_second_largest(rng):
    return (["second_largest", "runner_up"], "nums",
            "returns the second largest distinct value in the list of integers `nums`, or None if it has fewer than two distinct values",
            "    vals = sorted(set(nums))\n    return vals[-2] if len(vals) >= 2 else None",
            lambda r: [_ints(r, r.integers(0, 9), 0, 9)], [[[]], [[5]], [[5, 5]], [[3, 7, 7]]])


def _fam_chunks(rng):
    k = int(rng.integers(2, 5))
    return (["chunk_sums", "block_totals"], "nums",
            f"splits the list of integers `nums` into consecutive chunks of {k} elements (the last chunk may be shorter) and returns the list of the chunks' sums",
            f"    return [sum(nums[i:i + {k}]) for i in range(0, len(nums), {k})]",
            lambda r: [_ints(r, r.integers(0, 12), -9, 9)], [[[]], [list(range(1, k + 1))], [list(range(1, k + 2))]])


def _fam_digital_root(rng):
    return (["digital_root", "repeated_digit_sum"], "n",
            "repeatedly replaces the non-negative integer `n` by the sum of its decimal digits until a single digit remains, and returns that digit",
            "    while n >= 10:\n        n = sum(int(d) for d in str(n))\n    return n",
            lambda r: [int(r.integers(0, 10**9))], [[0], [9], [10], [99], [987654321]])


def _fam_rotate(rng):
    return (["rotate_left", "shift_left"], "nums, k",
            "returns the list `nums` rotated left by `k` positions: the first k elements move to the end (k >= 0 may exceed the length)",
            "    if not nums:\n        return []\n    k %= len(nums)\n    return nums[k:] + nums[:k]",
            lambda r: [_ints(r, r.integers(1, 8), 0, 9), int(r.integers(0, 12))], [[[], 3], [[1, 2, 3], 0], [[1, 2, 3], 4], [[1, 2, 3, 4, 5], 2]])


def _fam_longest_run(rng):
    return (["longest_run", "max_streak"], "nums",
            "returns the length of the longest run of consecutive equal elements in the list `nums` (0 for an empty list)",
            "    best = cur = 0\n    for i, x in enumerate(nums):\n        cur = cur + 1 if i and x == nums[i - 1] else 1\n        best = max(best, cur)\n    return best",
            lambda r: [_ints(r, r.integers(0, 13), 0, 2)], [[[]], [[4]], [[1, 1, 2, 2, 2]], [[3, 3, 3, 1]]])


def _fam_rle(rng):
    return (["run_length_encode", "rle_encode"], "s",
            "returns the run-length encoding of the string `s`: each maximal run of a character c repeated L times becomes str(L) + c, so 'aaab' becomes '3a1b'",
            "    out, i = [], 0\n    while i < len(s):\n        j = i\n        while j < len(s) and s[j] == s[i]:\n            j += 1\n"
            "        out.append(f\"{j - i}{s[i]}\")\n        i = j\n    return \"\".join(out)",
            lambda r: [_word(r, r.integers(0, 13), "aabbc")], [[""], ["a"], ["aab"], ["abbb"]])


def _intervals(r):
    starts = _ints(r, r.integers(0, 7), 0, 20)
    return [[[s, s + int(d)] for s, d in zip(starts, r.integers(0, 6, size=len(starts)))]]


def _fam_merge(rng):
    return (["merge_intervals", "merge_ranges"], "intervals",
            "takes a list of [start, end] integer pairs (start <= end) and returns the merged intervals as a list of [start, end] pairs sorted by start, where overlapping or touching intervals (like [1, 3] and [3, 5]) are merged into one",
            "    out = []\n    for a, b in sorted(intervals):\n        if out and a <= out[-1][1]:\n            out[-1][1] = max(out[-1][1], b)\n"
            "        else:\n            out.append([a, b])\n    return out",
            _intervals, [[[]], [[[1, 3], [3, 5]]], [[[5, 6], [1, 2]]], [[[1, 10], [2, 3]]]])


def _brackets(r):
    s, stack = "", []
    for _ in range(int(r.integers(0, 12))):
        if stack and r.integers(2):
            s += {"(": ")", "[": "]", "{": "}"}[stack.pop()]
        else:
            stack.append("([{"[int(r.integers(3))])
            s += stack[-1]
    s += "".join({"(": ")", "[": "]", "{": "}"}[c] for c in reversed(stack))
    if s and r.integers(2):
        i = int(r.integers(len(s)))
        s = s[:i] + ")]}x"[int(r.integers(4))] + s[i + 1:]
    return [s]


def _fam_brackets(rng):
    return (["is_balanced", "brackets_match"], "s",
            "returns True if the brackets (), [] and {} in the string `s` are balanced (every opening bracket is closed by the matching closing bracket, in the right order), otherwise False; other characters are ignored",
            "    pairs, stack = {')': '(', ']': '[', '}': '{'}, []\n    for c in s:\n        if c in '([{':\n            stack.append(c)\n"
            "        elif c in pairs:\n            if not stack or stack.pop() != pairs[c]:\n                return False\n    return not stack",
            _brackets, [[""], ["([)]"], ["("], [")("], ["a(b)c"]])


LEVELS = {
    1: [_fam_power_sum, _fam_count_letters, _fam_reverse_words, _fam_palindrome, _fam_running, _fam_fib_mod, _fam_multiples],
    2: [_fam_threshold, _fam_second_largest, _fam_chunks, _fam_digital_root, _fam_rotate],
    3: [_fam_longest_run, _fam_rle, _fam_merge, _fam_brackets],
}

@grader("format", source="rubric", meta_level=0, task_relevant=False,
        description="a ```python block defining the requested function")
def code_block(ctx) -> bool:
    name = re.escape(ctx.task.metadata.get("function", ""))
    return any(lang.lower() in ("python", "py") and re.search(rf"\bdef\s+{name}\s*\(", body)
               for lang, body in _FENCE.findall((ctx.answer or "").replace("\r\n", "\n")))


class CodeEnv(TextEnv):
    """Write a Python function from a specification; hidden unit tests decide."""

    name = "code"
    domain = "code"
    sim_solver = "envs.code_sim:code"  # how the sim model reads these prompts

    def generate(self, rng: np.random.Generator) -> Task:
        level = min(max(self.difficulty, 1), 3)
        fams = LEVELS[level]
        fam = fams[int(rng.integers(len(fams)))]
        names, args, spec, body, draw, edges = fam(rng)
        fname = names[int(rng.integers(len(names)))]
        source = f"def {fname}({args}):\n{body}\n"
        ns: dict = {}
        exec(compile(source, "<reference>", "exec"), ns)  # our own reference solution
        ref = ns[fname]
        examples = [draw(rng) for _ in range(2)]
        tests = [draw(rng) for _ in range(3 + 3 * min(self.difficulty, 6))] + edges
        expected = [ref(*json.loads(json.dumps(t))) for t in tests]
        shown = "\n".join(f"    {fname}({', '.join(map(repr, ex))}) == {ref(*json.loads(json.dumps(ex)))!r}" for ex in examples)
        prompt = PROMPT.format(name=fname, args=args, spec=spec, examples=shown, n=len(tests))
        return self.make_task(prompt, source, function=fname, family=fam.__name__.removeprefix("_fam_"), level=level,
                              tests=tests, expected=expected)

    def verify(self, task: Task, answer: str) -> bool:
        return _check(task, answer)[0]

    def hint(self, task: Task, answer: str) -> str | None:
        ok, why = _check(task, answer)
        return None if ok else why

    @answer_key
    def canonical(self, text: str) -> str | None:
        """The code verify would run (:func:`extract_code` for the current task's function, else
        for the last function the reply defines), each line's trailing whitespace stripped."""
        if len(text) > 100_000:  # verify rejects such replies unread
            return None
        name = self.task.metadata.get("function") if self.task is not None else None
        defined = re.findall(r"\bdef\s+(\w+)\s*\(", text)
        code = extract_code(text, name or (defined[-1] if defined else ""))
        return "\n".join(line.rstrip() for line in code.strip("\n").splitlines())

    def scores(self):
        return [code_block]

    def reference_reply(self, task: Task) -> str:
        return f"```python\n{task.answer.rstrip()}\n```"

    def probe_replies(self, task: Task) -> ProbeReplies:
        """The function returning None (or -1 where every expected value is None) fails a hidden
        test, so it is wrong; the code in a ```py block, in an unlabelled block, or followed by a
        main guard that would fail (it must not run) is the same answer."""
        head = task.answer.split("\n", 1)[0]
        value = "None" if any(e is not None for e in task.metadata["expected"]) else "-1"
        code = task.answer.rstrip()
        guard = f"{code}\n\n\nif __name__ == \"__main__\":\n    raise SystemExit(1)"
        return ProbeReplies(wrong=(f"{head}\n    return {value}\n",), must_pass={
            "py fence": f"```py\n{code}\n```", "bare fence": f"```\n{code}\n```",
            "main guard": f"```python\n{guard}\n```"})
