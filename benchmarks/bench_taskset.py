"""Open time and peak RSS of a large task set: does a 1M-row Parquet file open in seconds without
sitting in memory?

Writes a Parquet task set of ``--rows`` rows (default 1,000,000; question, answer, id, a topic and
a ~200-character passage per row, so the file's text is several hundred MB uncompressed) in a temp
dir, then in a fresh child process opens it as ``tasks:PATH`` (the scan that checks every row and
computes the split) and draws ``--draws`` tasks from the train part and the held-out part. The
child prints JSON: the RSS after imports (the floor), the open time and the RSS after it, the draw
time, and the peak RSS; the parent adds the file's size and the data's in-memory Arrow size (what
loading it whole would cost).

    python benchmarks/bench_taskset.py
    python benchmarks/bench_taskset.py --rows 200000 --row-group 65536
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _rss import peak_rss_mb, rss_mb  # noqa: E402

PASSAGE = ("The shop opens at nine and closes at six; on Sundays it opens at ten. Deliveries arrive on "
           "Tuesdays and Fridays, and the stockroom is counted every second Monday of the month. ")


def write(path: Path, rows: int, row_group: int) -> int:
    """Write the task set in batches (never all rows in memory); return its Arrow size in bytes."""
    writer = None
    arrow_bytes = 0
    step = 100_000
    for start in range(0, rows, step):
        idx = range(start, min(start + step, rows))
        batch = pa.table({
            "id": [f"q{i:07d}" for i in idx],
            "question": [f"Task {i}: what is {i % 997} times {i % 89 + 2}?" for i in idx],
            "answer": [str((i % 997) * (i % 89 + 2)) for i in idx],
            "topic": [f"topic-{i % 17}" for i in idx],
            "passage": [PASSAGE[: 120 + i % 80] for i in idx],
        })
        arrow_bytes += batch.nbytes
        if writer is None:
            writer = pq.ParquetWriter(path, batch.schema)
        writer.write_table(batch, row_group_size=row_group)
    assert writer is not None
    writer.close()
    return arrow_bytes


def child(path: str, draws: int) -> None:
    """Open the task set and draw tasks; print the figures as JSON."""
    from agentsynth.registry import resolve
    from agentsynth.spec import EVAL_SEED_START

    floor = rss_mb()
    t0 = time.perf_counter()
    env = resolve(f"tasks:{path}").cls(prompt="question", id="id", metadata=["topic"], grader="exact")
    opened = time.perf_counter() - t0
    after_open = rss_mb()
    t1 = time.perf_counter()
    for seed in [*range(draws), *range(EVAL_SEED_START, EVAL_SEED_START + draws)]:
        env.reset(seed=seed)
    drawn = time.perf_counter() - t1
    print(json.dumps({"floor_mb": floor, "open_s": opened, "rss_after_open_mb": after_open, "draws": 2 * draws,
                      "draw_s": drawn, "peak_rss_mb": peak_rss_mb(), **env.describe()}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--row-group", type=int, default=128 * 1024, help="Parquet rows per row group")
    ap.add_argument("--draws", type=int, default=1000, help="tasks drawn from each part after opening")
    ap.add_argument("--child", metavar="PATH", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.draws)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.parquet"
        t0 = time.perf_counter()
        arrow_bytes = write(path, args.rows, args.row_group)
        print(f"wrote {args.rows:,} rows ({path.stat().st_size / 2**20:.0f} MiB Parquet, {arrow_bytes / 2**20:.0f} MiB "
              f"as Arrow in memory) in {time.perf_counter() - t0:.1f}s")
        out = subprocess.run([sys.executable, __file__, "--child", str(path), "--draws", str(args.draws)],
                             capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "0"})
        r = json.loads(out.stdout)
        print(f"open: {r['open_s']:.2f}s ({r['rows']:,} rows checked and split: {r['train']:,} train, "
              f"{r['held_out']:,} held out, {r['duplicates']} repeated)")
        print(f"draw: {r['draws']} tasks in {r['draw_s']:.2f}s")
        print(f"RSS: {r['floor_mb']:.0f} MiB after imports, {r['rss_after_open_mb']:.0f} MiB after opening, "
              f"peak {r['peak_rss_mb']:.0f} MiB (+{r['peak_rss_mb'] - r['floor_mb']:.0f} MiB over the floor)")


if __name__ == "__main__":
    main()
