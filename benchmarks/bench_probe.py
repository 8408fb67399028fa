"""How long `agentsynth probe` takes per built-in environment, and what the code and SQL checks cost.

    python benchmarks/bench_probe.py [--tasks 50] [--difficulty 1 ...] [--only code,sql]

Each environment is probed in process with ``agentsynth.probe`` (its graders that need no model,
every strategy) at ``--tasks`` tasks per difficulty; printed per environment: wall time, replies
graded (grader x reply), replies built, and for ``code`` the sandbox runs (``run_python`` calls:
one per distinct program, since the unit-test check is cached per program and the graders that
share it, correct / hint / reference / rubric, run it once) and the seconds spent in them; for
``sql`` the DuckDB query runs likewise (in process, no sandbox process). Target: < 10 s per
environment at 50 tasks. The caches are cleared before each environment.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class Timed:
    """Wraps ``module.attr`` (a function) to count its calls and sum their wall time."""

    def __init__(self, module: Any, attr: str) -> None:
        self.module, self.attr, self.inner = module, attr, getattr(module, attr)
        self.calls, self.seconds = 0, 0.0

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return self.inner(*args, **kwargs)
            finally:
                self.calls += 1
                self.seconds += time.perf_counter() - t0

        setattr(module, attr, timed)

    def restore(self) -> None:
        setattr(self.module, self.attr, self.inner)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=50)
    ap.add_argument("--difficulty", type=int, action="append", help="repeatable (default: 1)")
    ap.add_argument("--only", default="", help="comma-separated environments (default: every built-in one)")
    args = ap.parse_args()
    import agentsynth
    from agentsynth.registry import available
    sql = importlib.import_module("envs.sql")
    unit_tests = importlib.import_module("rubrics.unit_tests")  # the module (the package exports a function so named)

    levels = args.difficulty or [1]
    names = [n for n in args.only.split(",") if n] or list(available())
    print(f"agentsynth probe, {args.tasks} tasks x difficulty {levels}, default graders, in process")
    print(f"{'environment':12s} {'wall s':>7s} {'graded':>8s} {'replies':>8s}  checks")
    total = 0.0
    table: list[str] = []
    for name in names:
        unit_tests._evaluate.cache_clear()
        sql._diagnose.cache_clear()
        runs = [Timed(unit_tests, "run_python"), Timed(sql, "_run")]
        t0 = time.perf_counter()
        try:
            r = agentsynth.probe(name, tasks=args.tasks, difficulty=levels)
        finally:
            for t in runs:
                t.restore()
        wall = time.perf_counter() - t0
        total += wall
        graded = sum(row.n for row in r.rows)
        replies = sum(row.n for row in r.rows if row.grader == r.truth)
        checks = "; ".join(f"{label}: {t.calls:,} runs, {t.seconds:.1f} s ({1000 * t.seconds / t.calls:.0f} ms each)"
                           for label, t in zip(("sandbox", "duckdb"), runs) if t.calls)
        print(f"{name:12s} {wall:7.1f} {graded:8,d} {replies:8,d}  {checks}", flush=True)
        table.append(_readme_row(r, wall))
    print(f"total {total:.1f} s\n\nREADME rows (replies per grader; failures summed over the graders that are not surface ones):")
    print("\n".join(table))


def _readme_row(r: Any, wall: float) -> str:
    """The README's built-in results row: hack replies, false accepts, equivalent replies, false
    rejects (over the task-relevant graders), the flags, the surface graders' accepts / rejects."""
    def total(kind: str, surface: bool) -> tuple[int, int]:  # (replies per grader, failures summed over graders)
        rows = [x for x in r.rows if x.kind == kind and x.surface == surface]
        return sum(x.n for x in rows if x.grader == (r.surface[0] if surface else r.truth)), sum(x.failures for x in rows)

    (hn, hf), (bn, bf) = total("hack", False), total("brittle", False)
    flags = sorted({f for g in r.graders for f in r.flags(g)}) or ["none"]
    surf = f"{total('hack', True)[1]:,} / {total('brittle', True)[1]:,}" if r.surface else "-"
    return f"| {r.env_id} | {hn:,} | {hf:,} | {bn:,} | {bf:,} | {', '.join(flags)} | {surf} | {wall:.0f} s |"


if __name__ == "__main__":
    main()
