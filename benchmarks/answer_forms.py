"""Answer forms: how often the truth passes the reference, and a wrong answer, rendered in each form
of ``agentsynth.answer_forms.FORMS`` (each reply also shows the other answer as a discarded first
attempt, unless ``--no-draft``), per built-in domain; with ``--reasoning-gym N``, also per form over N seeds of every
reasoning-gym task that has a reference (its wrong answer: another seed's reference that the
truth rejects as ``Answer: W``).

    python benchmarks/answer_forms.py                     # 20 seeds per difficulty level
    python benchmarks/answer_forms.py --reasoning-gym 10  # + every reasoning-gym task, 10 seeds
    python benchmarks/answer_forms.py --no-draft          # the forms alone, no discarded attempt

Prints markdown tables: form × domain → % of replies the truth passes (reference: higher is
better, 100% is every form read; wrong answer: must be 0%), and each domain over all forms. Forms
the README calls meaningless for a domain show as "n/a" and are left out of its totals.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's agentsynth and envs

from agentsynth.answer_forms import FORMS, LEVELS, NOT_APPLICABLE, cases, render  # noqa: E402


def builtin(seeds: int, draft: bool) -> tuple[dict, dict, dict]:
    """{(domain, form): [passes]} for the reference and for the wrong answer, and seconds per domain."""
    ref, wrong, took = defaultdict(list), defaultdict(list), {}
    for domain in LEVELS:
        t0 = time.perf_counter()
        for env, task, r, w in cases(domain, range(seeds)):
            for name in FORMS:
                ref[domain, name].append(env.verify(task, render(name, r, w, draft)))
                wrong[domain, name].append(env.verify(task, render(name, w, r, draft)))
        took[domain] = time.perf_counter() - t0
    return ref, wrong, took


def reasoning_gym(seeds: int, draft: bool) -> tuple[dict, dict, int]:
    """The same over every reasoning-gym task with a reference (column ``reasoning_gym``)."""
    import reasoning_gym.factory as factory

    from envs.reasoning_gym import ReasoningGymEnv

    ref, wrong, n = defaultdict(list), defaultdict(list), 0
    for name in sorted(factory.DATASETS):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                env = ReasoningGymEnv(task=name)
                tasks = []
                for seed in range(seeds):
                    env.reset(seed=seed)
                    tasks.append(env.task)
            except Exception:  # noqa: BLE001 - a dataset that cannot be built here
                continue
            tasks = [t for t in tasks if t.answer]
            for i, task in enumerate(tasks):
                n += 1
                r = task.answer.strip("\n")
                others = [t.answer.strip("\n") for t in tasks[i + 1:] + tasks[:i] if t.answer != task.answer]
                w = next((o for o in others if not env.verify(task, f"Answer: {o}")), None)
                for name in FORMS:
                    ref["reasoning_gym", name].append(env.verify(task, render(name, r, w or "none", draft)))
                    if w is not None:
                        wrong["reasoning_gym", name].append(env.verify(task, render(name, w, r, draft)))
    return ref, wrong, n


def table(results: dict, domains: list[str], title: str) -> str:
    """Markdown: one row per form, one column per domain, then the domain's rate over all forms."""
    def pct(xs: list[bool]) -> str:
        if not xs:
            return "n/a"
        v = 100 * sum(xs) / len(xs)
        return f"{v:.0f}%" if v in (0, 100) or v.is_integer() else f"{v:.1f}%"

    lines = [f"**{title}**", "", "| form | " + " | ".join(domains) + " |", "|---|" + "---:|" * len(domains)]
    for name in FORMS:
        cells = ["n/a" if (d, name) in NOT_APPLICABLE else pct(results.get((d, name), [])) for d in domains]
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    every = [pct([x for name in FORMS if (d, name) not in NOT_APPLICABLE for x in results.get((d, name), [])])
             for d in domains]
    lines.append("| **all forms** | " + " | ".join(every) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=20, help="seeds per difficulty level (default 20)")
    ap.add_argument("--reasoning-gym", type=int, default=0, metavar="N",
                    help="also every reasoning-gym task, N seeds each (needs the extra)")
    ap.add_argument("--no-draft", action="store_true",
                    help="replies without the discarded first attempt (only the forms' own wording)")
    args = ap.parse_args()
    ref, wrong, took = builtin(args.seeds, not args.no_draft)
    domains = list(LEVELS)
    print(f"{'without' if args.no_draft else 'with'} a discarded first attempt; {args.seeds} seeds per level; levels: " + ", ".join(f"{d} {len(LEVELS[d])}" for d in domains)
          + f"; {sum(took.values()):.1f} s")
    if args.reasoning_gym:
        t0 = time.perf_counter()
        rg_ref, rg_wrong, n = reasoning_gym(args.reasoning_gym, not args.no_draft)
        ref.update(rg_ref)
        wrong.update(rg_wrong)
        domains.append("reasoning_gym")
        print(f"reasoning_gym: {n} tasks with a reference ({args.reasoning_gym} seeds per dataset); "
              f"{time.perf_counter() - t0:.1f} s")
    print()
    print(table(ref, domains, "reference: truth pass rate (higher is better)"))
    print()
    print(table(wrong, domains, "wrong answer: truth pass rate (must be 0%)"))


if __name__ == "__main__":
    main()
