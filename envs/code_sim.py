"""The sim's coding competence: read a "Write a Python function `name(args)` that ..." prompt,
recognise the task family from the specification's wording and write a working function. Its
favourite slip is an off-by-one or boundary error (``range(len(xs) - 1)``, ``>`` for ``>=``, the
last run or chunk dropped); the other mistakes are not handling the empty input and a wrong
function name (camelCase). Replies are a ```python block (tidy) or prose before it (sloppy)."""

from __future__ import annotations

import re

from agentsynth.sim import Problem

_HEAD = re.compile(r"Write a Python function `(\w+)\(([^)]*)\)` that (.+?)\.\n\nExamples:", re.S)
_BLOCK = re.compile(r"```[ \t]*(?:python|py)?[^\n]*\n(.*?)```", re.S)
_OPS = {"strictly greater than": (">", ">="), "at least": (">=", ">"), "strictly less than": ("<", "<="), "at most": ("<=", "<")}


def _power_sum(m):
    p, r = (2 if m[1] == "square" else 3), (0 if m[2] == "even" else 1)
    loop = f"        if x % 2 == {r}:\n            total += x ** {p}\n    return total"
    return 1, [
        f"    total = 0\n    for x in nums:\n{loop}",
        f"    total = 0\n    for i in range(len(nums) - 1):\n        x = nums[i]\n{loop}",
        f"    from functools import reduce\n    return reduce(lambda a, b: a + b, [x ** {p} for x in nums if x % 2 == {r}])",
        f"    total = 0\n    for x in nums:\n        if x % 2 == {1 - r}:\n            total += x ** {p}\n    return total",
    ]


def _count_letters(m):
    letters = "".join(re.findall(r"'(\w)'", m[1]))
    return 1, [
        f"    return len([c for c in s if c.lower() in {letters!r}])",
        f"    count = 0\n    for i in range(len(s) - 1):\n        if s[i].lower() in {letters!r}:\n            count += 1\n    return count",
        f"    count = 1 if s[0].lower() in {letters!r} else 0\n    for c in s[1:]:\n        if c.lower() in {letters!r}:\n            count += 1\n    return count",
        f"    return sum(1 for c in s if c in {letters!r})",
    ]


def _reverse_each(m):
    return 1, [
        '    words = s.split(" ")\n    return " ".join(word[::-1] for word in words)',
        '    words = s.split(" ")\n    return " ".join(words[i][::-1] for i in range(len(words) - 1))',
        "    return s[::-1]",
        '    return "".join(word[::-1] for word in s.split(" "))',
    ]


def _reverse_order(m):
    return 1, [
        '    words = s.split(" ")\n    words.reverse()\n    return " ".join(words)',
        '    words = s.split(" ")\n    return " ".join(words[i] for i in range(len(words) - 1, 0, -1))',
        "    return s[::-1]",
    ]


def _palindrome(m):
    return 1, [
        '    cleaned = "".join(c.lower() for c in s if c != " ")\n    return cleaned == cleaned[::-1]',
        '    t = s.replace(" ", "").lower()\n    return all(t[i] == t[-i] for i in range(len(t) // 2))',
        "    t = s.lower()\n    return t == t[::-1]",
        '    t = s.replace(" ", "")\n    return t == t[::-1]',
    ]


def _running(m):
    op = {"maximum": "max", "minimum": "min", "sum": "sum"}[m[1]]
    step = "acc + x" if op == "sum" else f"{op}(acc, x)"
    return 1, [
        f"    result, acc = [], None\n    for x in nums:\n        acc = x if acc is None else {step}\n        result.append(acc)\n    return result",
        f"    return [{op}(nums[:i]) for i in range(1, len(nums))]",
        f"    acc = nums[0]\n    result = [acc]\n    for x in nums[1:]:\n        acc = {step}\n        result.append(acc)\n    return result",
    ]


def _fib(m):
    mod = m[1]
    return 1, [
        f"    if n == 0:\n        return 0\n    prev, cur = 0, 1\n    for _ in range(n - 1):\n        prev, cur = cur, (prev + cur) % {mod}\n    return cur",
        f"    a, b = 0, 1\n    for _ in range(n - 1):\n        a, b = b, (a + b) % {mod}\n    return a",
        "    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a",
        f"    a, b = 1, 1\n    for _ in range(n):\n        a, b = b, (a + b) % {mod}\n    return a",
    ]


def _multiples(m):
    k = m[1]
    return 1, [
        f"    total = 0\n    for i in range(1, n + 1):\n        if i % {k} == 0:\n            total += i\n    return total",
        f"    total = 0\n    for i in range(1, n):\n        if i % {k} == 0:\n            total += i\n    return total",
        f"    return len(range({k}, n + 1, {k}))",
    ]


def _threshold(m):
    op, slip = _OPS[m[1]]
    t = m[2]
    return 2, [
        f"    count = 0\n    for x in nums:\n        if x {op} {t}:\n            count += 1\n    return count",
        f"    count = 0\n    for x in nums:\n        if x {slip} {t}:\n            count += 1\n    return count",
        f"    return len([x for x in nums if not x {op} {t}])",
    ]


def _second_largest(m):
    return 2, [
        "    distinct = sorted(set(nums), reverse=True)\n    if len(distinct) < 2:\n        return None\n    return distinct[1]",
        "    ordered = sorted(nums, reverse=True)\n    if len(ordered) < 2:\n        return None\n    return ordered[1]",
        "    return sorted(set(nums))[-2]",
        "    distinct = sorted(set(nums))\n    return distinct[1] if len(distinct) > 1 else None",
    ]


def _chunks(m):
    k = m[1]
    return 2, [
        f"    out = []\n    for start in range(0, len(nums), {k}):\n        out.append(sum(nums[start:start + {k}]))\n    return out",
        f"    out = []\n    for start in range(0, len(nums) - {k} + 1, {k}):\n        out.append(sum(nums[start:start + {k}]))\n    return out",
        f"    out, cur = [], 0\n    for i, x in enumerate(nums):\n        cur += x\n        if (i + 1) % {k} == 0:\n            out.append(cur)\n            cur = 0\n    out.append(cur)\n    return out",
    ]


def _digital_root(m):
    return 2, [
        "    while n > 9:\n        n = sum(map(int, str(n)))\n    return n",
        "    while n > 10:\n        n = sum(map(int, str(n)))\n    return n",
        "    return sum(int(d) for d in str(n))",
        "    return n % 9",
    ]


def _rotate(m):
    return 2, [
        "    if len(nums) == 0:\n        return []\n    shift = k % len(nums)\n    return nums[shift:] + nums[:shift]",
        "    return nums[k:] + nums[:k]",
        "    shift = k % len(nums)\n    return nums[shift:] + nums[:shift]",
        "    if not nums:\n        return []\n    shift = k % len(nums)\n    return nums[-shift:] + nums[:-shift] if shift else list(nums)",
    ]


def _longest_run(m):
    body = ("    best = run = 1\n    for i in range(1, len(nums)):\n        run = run + 1 if nums[i] == nums[i - 1] else 1\n"
            "        best = max(best, run)\n    return best")
    return 3, [
        "    if not nums:\n        return 0\n" + body,
        "    best, run = 0, 1\n    for i in range(1, len(nums)):\n        if nums[i] == nums[i - 1]:\n            run += 1\n"
        "        else:\n            best = max(best, run)\n            run = 1\n    return best",
        body,
    ]


def _rle(m):
    loop = ('    out, count = "", 1\n    for i in range(1, len(s)):\n        if s[i] == s[i - 1]:\n            count += 1\n'
            "        else:\n            out += str(count) + s[i - 1]\n            count = 1\n")
    return 3, [
        '    from itertools import groupby\n    return "".join(f"{len(list(g))}{c}" for c, g in groupby(s))',
        loop + "    return out",
        loop + "    out += str(count) + s[-1]\n    return out",
        '    from itertools import groupby\n    parts = []\n    for c, g in groupby(s):\n        n = len(list(g))\n'
        '        parts.append(f"{n}{c}" if n > 1 else c)\n    return "".join(parts)',
    ]


def _merge(m):
    def body(cmp: str = "<=", ordered: str = "sorted(intervals, key=lambda iv: iv[0])") -> str:
        return (f"    result = []\n    for start, end in {ordered}:\n        if result and start {cmp} result[-1][1]:\n"
                "            result[-1] = [result[-1][0], max(result[-1][1], end)]\n        else:\n"
                "            result.append([start, end])\n    return result")
    return 3, [
        body(),
        body("<"),
        "    ordered = sorted(intervals)\n    result = [list(ordered[0])]\n    for start, end in ordered[1:]:\n"
        "        if start <= result[-1][1]:\n            result[-1][1] = max(result[-1][1], end)\n        else:\n"
        "            result.append([start, end])\n    return result",
        body(ordered="intervals"),
    ]


def _brackets(m):
    loop = ('    match = {")": "(", "]": "[", "}": "{"}\n    stack = []\n    for ch in s:\n        if ch in "([{":\n'
            "            stack.append(ch)\n        elif ch in match:\n")
    return 3, [
        loop + "            if not stack or stack[-1] != match[ch]:\n                return False\n            stack.pop()\n    return len(stack) == 0",
        '    return all(s.count(a) == s.count(b) for a, b in ("()", "[]", "{}"))',
        loop + "            if stack.pop() != match[ch]:\n                return False\n    return len(stack) == 0",
        loop + "            if not stack or stack[-1] != match[ch]:\n                return False\n            stack.pop()\n    return True",
    ]


FAMILIES = [
    (r"sum of the (square|cube)s of the (even|odd) numbers", _power_sum),
    (r"how many characters of the string `s` are one of the letters (.+?) \(upper or lower case\)", _count_letters),
    (r"with every word reversed", _reverse_each),
    (r"words of the string `s` in reverse order", _reverse_order),
    (r"reads the same forwards and backwards", _palindrome),
    (r"the running (maximum|minimum|sum)", _running),
    (r"Fibonacci number modulo (\d+)", _fib),
    (r"sum of all multiples of (\d+) between 1 and `n` inclusive", _multiples),
    (r"how many elements of the list of integers `nums` are (strictly greater than|at least|strictly less than|at most) (-?\d+)", _threshold),
    (r"second largest distinct value", _second_largest),
    (r"consecutive chunks of (\d+) elements", _chunks),
    (r"sum of its decimal digits until a single digit", _digital_root),
    (r"rotated left by `k` positions", _rotate),
    (r"longest run of consecutive equal elements", _longest_run),
    (r"run-length encoding", _rle),
    (r"merged intervals", _merge),
    (r"brackets \(\), \[\] and \{\}", _brackets),
]
_DIFFICULTY = {1: 1.0, 2: 1.6, 3: 2.2}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w.capitalize() for w in rest) if rest else name + "_fn"


def render(code: str, tidy: bool) -> str:
    """A reply carrying ``code``: the bare block, or prose before it."""
    block = f"```python\n{code}\n```"
    if tidy:
        return block
    return f"Sure! Here is a straightforward implementation that walks through the input once.\n\n{block}\n"


def extract(reply: str) -> str | None:
    """The code a reply states: its last ```python block."""
    found = _BLOCK.findall(reply or "")
    return found[-1].strip() if found else None


def code(prompt: str) -> Problem | None:
    """Code prompts: 'Write a Python function `name(args)` that <spec>.'"""
    head = _HEAD.search(prompt)
    if not head:
        return None
    name, args, spec = head[1], head[2], " ".join(head[3].split())
    for pattern, build in FAMILIES:
        m = re.search(pattern, spec)
        if m:
            level, bodies = build(m)
            break
    else:
        return None
    fn = [f"def {name}({args}):\n{b}" for b in bodies]
    wrong_name = f"def {_camel(name)}({args}):\n{bodies[0]}"
    mistakes = [fn[1], fn[2], wrong_name, *fn[3:]]
    return Problem("code", fn[0], _DIFFICULTY[level], mistakes, render=render, extract=extract)
