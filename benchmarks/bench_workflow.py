"""Wall time of the whole workflow: a cold full rebuild and a no-op rerun (targets: <= 90 s, <= 3 s).

    .venv/bin/python benchmarks/bench_workflow.py

Runs in a scratch directory (--directory), so results/ of the checkout are left alone.
"""

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(args):
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), *args],
                          cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(done.stderr[-2000:])
    return time.perf_counter() - t0


with tempfile.TemporaryDirectory() as run:
    cold = timed(["--cores", "4", "--directory", run])
    noop = timed(["--cores", "4", "--directory", run])
print(f"cold full rebuild: {cold:6.1f} s  (target <= 90 s)")
print(f"no-op rerun:       {noop:6.1f} s  (target <= 3 s)")
