"""Write the example task set: 300 arithmetic word problems (and a few repeated on purpose) as
JSON Lines, with an id, a topic, a level and a hint per question. Deterministic; no downloads.

    python examples/word_problems/make_tasks.py            # writes examples/word_problems/word_problems.jsonl
    python examples/word_problems/make_tasks.py --rows 1000 --out /tmp/wp.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

NAMES = ["Ada", "Ben", "Chloe", "Dev", "Emma", "Farid", "Grace", "Hugo", "Iris", "Jun", "Kofi", "Lena"]


def problem(rng: random.Random) -> dict[str, object]:
    """One word problem: its question, answer, topic, level and a hint that does not give the answer."""
    kind = rng.randrange(6)
    name = rng.choice(NAMES)
    a, b = rng.randint(2, 40), rng.randint(2, 12)
    if kind == 0:
        return {"question": f"A box holds {a} pencils. How many pencils are in {b} boxes?", "answer": a * b,
                "topic": "multiplication", "level": 1, "hint": "Multiply the pencils per box by the number of boxes."}
    if kind == 1:
        return {"question": f"{name} has {a} apples and buys {b} more. How many apples does {name} have now?",
                "answer": a + b, "topic": "addition", "level": 1, "hint": "Add what was bought to what there was."}
    if kind == 2:
        a += b
        return {"question": f"{name} had {a} stickers and gave away {b}. How many stickers are left?",
                "answer": a - b, "topic": "subtraction", "level": 1, "hint": "Take away what was given."}
    if kind == 3:
        return {"question": f"{a * b} cookies are shared equally among {b} children. How many cookies does each "
                            "child get?", "answer": a, "topic": "division", "level": 2,
                "hint": "Divide the cookies by the number of children."}
    if kind == 4:
        speed = rng.randrange(40, 130, 5)
        return {"question": f"A train travels at {speed} km per hour for {b} hours. How far does it travel, in km?",
                "answer": speed * b, "topic": "rates", "level": 2, "hint": "Distance is speed times time."}
    c = rng.randint(2, 9)
    return {"question": f"Tickets cost {a} dollars each. How much do {b} tickets and a {c}-dollar snack cost "
                        "together, in dollars?", "answer": a * b + c, "topic": "multi-step", "level": 3,
            "hint": "Price the tickets first, then add the snack."}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=6, help="questions written twice (duplicates on purpose)")
    ap.add_argument("--out", default=str(Path(__file__).with_name("word_problems.jsonl")))
    args = ap.parse_args()
    rng = random.Random(14)
    rows = [problem(rng) for _ in range(args.rows - args.repeats)]
    rows += [dict(rows[i]) for i in rng.sample(range(len(rows)), args.repeats)]
    with open(args.out, "w", encoding="utf-8") as fh:
        for i, row in enumerate(rows):
            fh.write(json.dumps({"qid": f"wp-{i:04d}", **row}) + "\n")
    print(f"wrote {len(rows)} rows to {args.out}")


if __name__ == "__main__":
    main()
