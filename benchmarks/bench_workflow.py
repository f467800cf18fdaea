"""Wall time and peak memory of the whole workflow: a cold full rebuild and a no-op rerun.

    .venv/bin/python benchmarks/bench_workflow.py

Runs in a scratch directory (--directory), so results/ of the checkout are left alone. Peak memory
is the largest sum of resident memory over snakemake and all its job processes, sampled every
0.2 s from /proc (target <= 4 GiB for --cores 4). Also prints the Bayesian stage's own time,
from the sampling run's diagnostics.
"""

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def tree_rss_mb(root_pid):
    """Resident memory (MB) of a process and all its descendants, from /proc."""
    parent, rss = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            pid = int(stat.parent.name)
            parent[pid], rss[pid] = int(fields[1]), int(fields[21]) * 4096 / 2**20
        except (OSError, IndexError, ValueError):
            continue
    total, stack = 0.0, [root_pid]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0.0)
        stack.extend(child for child, p in parent.items() if p == pid)
    return total


def timed(args):
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:  # a file, not a pipe: snakemake's log would fill a pipe
        proc = subprocess.Popen([sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), *args],
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log, text=True)
        peak = 0.0
        while proc.poll() is None:
            peak = max(peak, tree_rss_mb(proc.pid))
            time.sleep(0.2)
        if proc.returncode != 0:
            log.seek(0)
            sys.exit(log.read()[-2000:])
    return time.perf_counter() - t0, peak


with tempfile.TemporaryDirectory() as run:
    cold, cold_peak = timed(["--cores", "4", "--directory", run])
    noop, _ = timed(["--cores", "4", "--directory", run])
    stages = {name: pd.read_csv(Path(run) / "results" / "bayes" / name / "diagnostics.csv")
              for name in ("main", "sensitivity")}
print(f"cold full rebuild: {cold:6.1f} s, peak memory {cold_peak / 1024:.2f} GiB (target <= 4 GiB)")
print(f"no-op rerun:       {noop:6.1f} s  (target <= 3 s)")
for name, d in stages.items():
    print(f"Bayesian {name} run: {d['seconds'].sum():.1f} s for {len(d)} fit x prior pairs "
          f"(compile + sampling + diagnostics{', target <= 30 s' if name == 'main' else ''})")
