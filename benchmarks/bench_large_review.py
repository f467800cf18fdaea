"""Benchmark: the Bayesian stage on a large synthetic review (issue 12: 5,000 cohorts x 3 outcomes <= 10 min).

    PYTHONPATH=src .venv/bin/python benchmarks/bench_large_review.py [--cohorts 5000] [--cores 2]

Writes the review of :mod:`make_large_review` into a scratch directory, builds the cleaned
analysis rows there (not timed), then builds the Bayesian stage's outputs (rule fit_bayes:
bayes_estimates.csv) and reports the rule's wall and CPU time from the
``benchmark:`` files Snakemake writes, the methods the fits were computed by, and the machine's
load average (the machine is shared). Binomial-normal fits above ``bayes.exact_max_k`` use the
Laplace approximation; fits above ``bayes.max_k`` skip NUTS.
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
sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_large_review import CONFIG, make_review

TARGET_S = 600.0


def snakemake(run, cores, target):
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--cores", str(cores),
               "--configfile", str(run / "config" / "config.yaml"), "--directory", str(run), target]
    t0 = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - t0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohorts", type=int, default=5000)
    parser.add_argument("--cores", default="2")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp)
        studies, extraction = make_review(args.cohorts)
        (run / "data" / "raw").mkdir(parents=True)
        (run / "config").mkdir()
        studies.to_csv(run / "data" / "raw" / "study_characteristics.csv", index=False)
        extraction.to_csv(run / "data" / "raw" / "extraction.csv", index=False)
        (run / "config" / "config.yaml").write_text(CONFIG.format(cohorts=args.cohorts, seed=12))
        clean = snakemake(run, args.cores, "data/processed/analysis_data.csv")
        print(f"cleaning (not part of the stage): {clean:.1f} s", flush=True)
        print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
        wall = snakemake(run, args.cores, "results/tables/bayes_estimates.csv")
        rows = []
        for rule in ("fit_bayes",):
            b = pd.read_csv(run / "results" / "logs" / "benchmarks" / f"{rule}.tsv", sep="\t")
            rows.append({"rule": rule, "wall_s": float(b["s"].iloc[0]), "cpu_s": float(b["cpu_time"].iloc[0]),
                         "max_rss_mb": float(b["max_rss"].iloc[0])})
        summary = pd.read_csv(run / "results" / "tables" / "bayes_exact_summary.csv")
        main_rows = summary[summary["prior"] == "main"]
    print(pd.DataFrame(rows).to_string(index=False, float_format="%.1f"))
    print(main_rows[["outcome", "subgroup", "k", "method"]].to_string(index=False))
    stage = sum(r["wall_s"] for r in rows)
    print(f"Bayesian stage {stage:.1f} s (snakemake {wall:.1f} s incl. DAG) for {args.cohorts} cohorts x 3 outcomes; "
          f"target <= {TARGET_S:g} s: {'ok' if stage <= TARGET_S else 'OVER'}")
    print(f"load average after: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
