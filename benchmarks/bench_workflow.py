"""Wall time and peak memory of the whole workflow, as a new user meets it (issue 13 targets).

    .venv/bin/python benchmarks/bench_workflow.py              # cold full rebuild, then a no-op rerun
    .venv/bin/python benchmarks/bench_workflow.py --first-run  # also: `make run` on a fresh clone
    .venv/bin/python benchmarks/bench_workflow.py --configfile .test/config/config.yaml  # the test review

- cold full rebuild: `snakemake --cores 4` in a fresh directory with a fresh, empty HOME (so no
  PyTensor, Matplotlib or pip cache helps); target <= 90 s.
- no-op rerun: the same command again; target <= 2 s.
- first `make run`: `git clone` of this checkout into a fresh directory, then `make run` with a
  fresh HOME: venv creation from envs/requirements.lock included; target <= 4 min.
- peak memory: the largest sum of resident memory over snakemake and all its job processes,
  sampled every 0.2 s from /proc (target <= 4 GiB for --cores 4).
- the slowest rules and the figure stage's CPU time, from the benchmark file Snakemake writes for
  every job (results/logs/benchmarks/, see benchmark_each in workflow/rules/common.smk).

The checkout's own results/ are left alone. The workflow's --directory runs use the code of this
checkout; the clone is of its committed HEAD.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"cold": 90.0, "noop": 2.0, "first": 240.0}


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


def timed(command, cwd, home):
    """Run a command with HOME=home; wall seconds and peak tree memory (MB). Exits on failure."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("MPLCONFIGDIR", "PYTENSOR_FLAGS", "XDG_CACHE_HOME", "PIP_CACHE_DIR")}
    env["HOME"] = str(home)
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:  # a file, not a pipe: snakemake's log would fill a pipe
        proc = subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, text=True, env=env)
        peak = 0.0
        while proc.poll() is None:
            peak = max(peak, tree_rss_mb(proc.pid))
            time.sleep(0.2)
        if proc.returncode != 0:
            log.seek(0)
            sys.exit(f"{' '.join(map(str, command))} failed:\n{log.read()[-3000:]}")
    return time.perf_counter() - t0, peak


def rule_times(run):
    """One row per job: rule, wall seconds, CPU seconds, peak RSS (MB), from Snakemake's benchmark files."""
    rows = []
    for path in sorted((Path(run) / "results" / "logs" / "benchmarks").glob("*.tsv")):
        b = pd.read_csv(path, sep="\t")
        rows.append({"job": path.stem, "wall_s": float(b["s"].iloc[0]), "cpu_s": float(b["cpu_time"].iloc[0]),
                     "max_rss_mb": float(b["max_rss"].iloc[0])})
    return pd.DataFrame(rows, columns=["job", "wall_s", "cpu_s", "max_rss_mb"])


def report(name, seconds, note=""):
    target = TARGETS[name]
    verdict = "ok" if seconds <= target else "OVER"
    print(f"{name:>6}: {seconds:7.1f} s  (target <= {target:g} s: {verdict}){note}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--first-run", action="store_true", help="also time `make run` on a fresh clone")
    parser.add_argument("--cores", default="4")
    parser.add_argument("--configfile", help="another review's config (default: the sarcoma review's)")
    args = parser.parse_args()
    snakemake = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--cores", args.cores]
    if args.configfile:
        snakemake += ["--configfile", str(Path(args.configfile).resolve())]
    with tempfile.TemporaryDirectory() as tmp:
        run, home = Path(tmp) / "run", Path(tmp) / "home"
        run.mkdir()
        home.mkdir()
        cold, peak = timed([*snakemake, "--directory", str(run)], ROOT, home)
        noop, _ = timed([*snakemake, "--directory", str(run)], ROOT, home)
        jobs = rule_times(run)
        if args.first_run:
            clone, home2 = Path(tmp) / "clone", Path(tmp) / "home2"
            home2.mkdir()
            subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
            first, first_peak = timed(["make", "run", f"CORES={args.cores}"], clone, home2)
    report("cold", cold, f", peak memory {peak / 1024:.2f} GiB (target <= 4 GiB)")
    report("noop", noop)
    if args.first_run:
        report("first", first, f", peak memory {first_peak / 1024:.2f} GiB, venv creation included")
    figures = jobs[jobs["job"].str.startswith("plot_")]
    print(f"figure stage: {figures['cpu_s'].sum():.1f} s CPU, {figures['wall_s'].sum():.1f} s wall over "
          f"{len(figures)} jobs (target <= 30 s CPU)")
    bayes = jobs["job"].str.contains("bayes")
    print(f"Bayesian stage: {jobs.loc[bayes, 'wall_s'].sum():.1f} s wall; everything else: "
          f"{jobs.loc[~bayes, 'wall_s'].sum():.1f} s wall, {jobs.loc[~bayes, 'cpu_s'].sum():.1f} s CPU")
    print("slowest jobs:")
    print(jobs.sort_values("wall_s", ascending=False).head(8).to_string(index=False, float_format="%.1f"))


if __name__ == "__main__":
    main()
