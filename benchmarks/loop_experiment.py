"""The loop experiment, with the figures its README section quotes: wall time, the report (accuracy
per arm x generation x split with intervals, diversity), the student's training tokens/s and
synthesis samples/s, where the time went, and peak RSS.

    python benchmarks/loop_experiment.py                                   # runs/loop-experiment.toml
    python benchmarks/loop_experiment.py --spec runs/loop-smoke.toml --store /tmp/smoke.duckdb
    python benchmarks/loop_experiment.py --figures-only                    # a finished loop's figures

It runs ``agentsynth loop SPEC`` in a child process (resuming it when it is stored), so peak RSS
is that process's; a resumed loop's wall time covers only what ran this time. Needs the learn
extra (and the plot extra for ``--plot``). The machine may be shared: the load average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def figures(store: Path, loop: str) -> None:
    """Throughput and time per phase from the loops table."""
    import duckdb

    con = duckdb.connect(str(store), read_only=True)
    try:
        rows = con.execute("SELECT arm, generation, figures FROM loops WHERE loop = ? AND generation > 0", [loop]).fetchall()
    finally:
        con.close()
    if not rows:
        print(f"no finished steps of {loop} in {store}")
        return
    f = [json.loads(r[2]) for r in rows]
    tok = [x["tokens_per_s"] for x in f if "tokens_per_s" in x]
    sps = [x["samples"] / x["synthesis_s"] for x in f if x.get("synthesis_s")]
    print(f"steps: {len(f)}; training tokens/s median {statistics.median(tok):,.0f} (min {min(tok):,.0f}, "
          f"max {max(tok):,.0f})" if tok else f"steps: {len(f)}")
    if sps:
        print(f"synthesis samples/s (episodes incl. grading and storing) median {statistics.median(sps):,.0f} "
              f"(min {min(sps):,.0f}, max {max(sps):,.0f})")
    for phase in ("synthesis_s", "train_s", "eval_s"):
        vals = [x[phase] for x in f if phase in x]
        if vals:
            print(f"{phase[:-2]:>9}: total {sum(vals) / 60:5.1f} min, median {statistics.median(vals):5.1f} s per step")
    by_arm: dict[str, list[float]] = {}
    for (arm, _g, _), x in zip(rows, f):
        if x.get("synthesis_s"):
            by_arm.setdefault(arm, []).append(x["synthesis_s"])
    print("synthesis seconds per step by arm: " + ", ".join(f"{a} {statistics.median(v):.1f}" for a, v in by_arm.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", default="runs/loop-experiment.toml")
    ap.add_argument("--store", help="store (default: the spec's)")
    ap.add_argument("--plot", help="also write the plot here (.png or .html)")
    ap.add_argument("--figures-only", action="store_true", help="do not run; print the stored loop's figures")
    a = ap.parse_args()
    from agentsynth.loop import load_loop_spec

    spec = load_loop_spec(a.spec, store=a.store)
    print(f"{os.cpu_count()} cores, load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    if not a.figures_only:
        cmd = [sys.executable, "-m", "agentsynth", "loop", a.spec, "-q"] + (["--store", a.store] if a.store else [])
        cmd += ["--plot", a.plot] if a.plot else []
        t0 = time.monotonic()
        r = subprocess.run(cmd, cwd=ROOT)
        wall = time.monotonic() - t0
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"agentsynth loop {a.spec}: exit {r.returncode}, wall {wall / 60:.1f} min, peak RSS {peak:,.0f} MB")
    else:
        subprocess.run([sys.executable, "-m", "agentsynth", "loop", "report", "--store", spec.store, "--loop", spec.name]
                       + (["--plot", a.plot] if a.plot else []), cwd=ROOT)
    figures(Path(spec.store), spec.name)


if __name__ == "__main__":
    main()
