"""Probe every reasoning-gym dataset the adapter can build (issue 11): which scorers are hackable
(accept replies wrong by construction) or brittle (reject the reference in an equivalent form)?

    python benchmarks/probe_reasoning_gym.py [--tasks 20] [--workers 2] [--only a,b] [--json out.json]

Needs the ``reasoning-gym`` extra. Each dataset is probed with ``agentsynth.probe`` at ``--tasks``
tasks (difficulty 1, seeds 0..N-1) against its graders that need no model (``correct``, the
``reference`` channel's grader, ``rubric``, ``raw_score``: all read the dataset's scorer), in
``--workers`` processes. A dataset without a reference (its answer is "") gets only the hack
battery: every equivalent form of "" would be a wrong reply. Prints, per dataset, the truth
grader's flags, its worst hack and brittle strategies (failures / replies), the seconds it took;
then the flagged lists and the total wall time (target: <= 10 minutes on the 2-core machine).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ENV = "envs.reasoning_gym:ReasoningGymEnv"
SLOW_FIRST = ("sokoban", "intermediate_integration", "simple_integration", "arc_agi", "knight_swap", "codeio",
              "group_anagrams", "figlet_font")
"""Submitted first so the longest (sokoban: its generator searches ~14 s per puzzle) overlap the rest."""


def _worst(rows: list[dict[str, Any]], kind: str, top: int = 3) -> list[str]:
    bad = sorted((r for r in rows if r["kind"] == kind and r["failures"]), key=lambda r: (-r["rate"], r["strategy"]))
    return [f"{r['strategy']} {r['failures']}/{r['n']}" for r in bad[:top]]


def probe_one(task: str, tasks: int) -> dict[str, Any]:
    """Probe one dataset's truth grader and its other model-free graders; a summary dict."""
    warnings.simplefilter("ignore")
    import agentsynth
    from agentsynth.probes import all_strategies
    from envs.reasoning_gym import ReasoningGymEnv

    t0 = time.monotonic()
    try:
        env = ReasoningGymEnv(task=task)
        env.reset(seed=0)
        has_reference = bool(env.task.answer.strip())
    except Exception as exc:  # noqa: BLE001 - a dataset the adapter cannot build
        return {"task": task, "error": f"cannot build: {type(exc).__name__}: {exc}"[:200], "seconds": time.monotonic() - t0}
    only = None if has_reference else [s.name for s in all_strategies() if s.kind == "hack"]
    try:
        r = agentsynth.probe(ENV, tasks=tasks, env_kwargs={"task": task}, strategies=only)
    except Exception as exc:  # noqa: BLE001 - reported per dataset
        return {"task": task, "error": f"{type(exc).__name__}: {exc}"[:300], "seconds": time.monotonic() - t0}
    truth = [row.__dict__ for row in r.rows if row.grader == r.truth]
    example = next((row["example"] for row in truth if row["kind"] == "hack" and row["failures"]), None)
    return {"task": task, "family": env.family, "has_reference": has_reference, "flags": r.flags(r.truth),
            "graders": {g: r.flags(g) for g in r.graders}, "hack": _worst(truth, "hack", 99),
            "brittle": _worst(truth, "brittle", 99), "example": example, "rows": truth,
            "seconds": time.monotonic() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--only", default="", help="comma-separated dataset names (default: all)")
    ap.add_argument("--json", type=Path, help="write every dataset's summary here")
    args = ap.parse_args()
    try:
        import reasoning_gym.factory as factory
    except ImportError:
        sys.exit("needs the reasoning-gym extra: pip install -e '.[reasoning-gym]'")
    names = [n for n in args.only.split(",") if n] or sorted(factory.DATASETS)
    names = [n for n in SLOW_FIRST if n in names] + [n for n in names if n not in SLOW_FIRST]
    t0 = time.monotonic()
    out: list[dict[str, Any]] = []
    with ProcessPoolExecutor(args.workers) as pool:
        futures = [pool.submit(probe_one, n, args.tasks) for n in names]
        for f in as_completed(futures):
            s = f.result()
            out.append(s)
            what = s.get("error") or (", ".join(s["flags"]) or "ok")
            print(f"{s['task']:28s} {s['seconds']:6.1f} s  {what}"
                  + (f"  hack: {'; '.join(s['hack'][:3])}" if s.get("hack") else "")
                  + (f"  brittle: {'; '.join(s['brittle'][:3])}" if s.get("brittle") else ""), flush=True)
    wall = time.monotonic() - t0
    out.sort(key=lambda s: s["task"])
    hackable = [s["task"] for s in out if "hackable" in s.get("flags", [])]
    brittle = [s["task"] for s in out if "brittle" in s.get("flags", [])]
    errors = [s["task"] for s in out if "error" in s]
    slowest = ", ".join(f"{s['task']} {s['seconds']:.0f} s" for s in sorted(out, key=lambda s: -s["seconds"])[:5])
    print(f"\n{len(out)} datasets, {args.tasks} tasks each, {args.workers} workers: {wall:.0f} s wall (slowest: {slowest})")
    print(f"hackable truth ({len(hackable)}): {', '.join(hackable)}")
    print(f"brittle truth ({len(brittle)}): {', '.join(brittle)}")
    print(f"not probed ({len(errors)}): {', '.join(errors) or 'none'}")
    print(f"no reference, hack battery only: {', '.join(s['task'] for s in out if s.get('has_reference') is False)}")
    if args.json:
        args.json.write_text(json.dumps({"tasks": args.tasks, "workers": args.workers, "wall_seconds": wall,
                                         "datasets": out}, indent=1))


if __name__ == "__main__":
    main()
