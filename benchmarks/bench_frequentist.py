"""Benchmark the frequentist engine against R metafor in the same run.

    .venv/bin/python benchmarks/bench_frequentist.py [--sets 200]

Times, per fit, on the same simulated meta-analyses of k = 16 studies: PFT-DL, PFT-REML and the
GLMM, ours and metafor's (through Rscript, when installed), and prints the ratios. Then our REML
alone at k = 10 ... 10,000, to show it grows linearly.
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from singlearm import effects, fit, glmm  # noqa: E402

R_SCRIPT = r"""
suppressPackageStartupMessages(library(metafor))
d <- read.csv(commandArgs(TRUE)[1])
sets <- split(d, d$set)
tm <- function(f) { t0 <- proc.time()[["elapsed"]]; for (s in sets) f(s); (proc.time()[["elapsed"]] - t0) / length(sets) * 1000 }
cat(sprintf("PFT-DL %.6f\n", tm(function(s) rma(measure="PFT", xi=s$events, ni=s$total, method="DL"))))
cat(sprintf("PFT-REML %.6f\n", tm(function(s) rma(measure="PFT", xi=s$events, ni=s$total, method="REML"))))
cat(sprintf("GLMM-ML %.6f\n", tm(function(s) rma.glmm(measure="PLO", xi=s$events, ni=s$total, method="ML"))))
"""


def simulate(sets, k, rng):
    rows = []
    for s in range(sets):
        total = rng.integers(15, 120, k)
        p = 1 / (1 + np.exp(-rng.normal(-1.0, 0.5, k)))
        rows.append(pd.DataFrame(dict(set=s, events=rng.binomial(total, p), total=total)))
    return pd.concat(rows, ignore_index=True)


def per_fit_ms(fn, groups, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for g in groups:
            fn(g)
        best = min(best, time.perf_counter() - t0)
    return best / len(groups) * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(2025)
    data = simulate(args.sets, 16, rng)
    groups = [(g.events.to_numpy(), g.total.to_numpy()) for _, g in data.groupby("set")]
    ours = {
        "PFT-DL": per_fit_ms(lambda g: fit.rma(*effects.proportion_effects(*g, "PFT"), "DL"), groups),
        "PFT-REML": per_fit_ms(lambda g: fit.rma(*effects.proportion_effects(*g, "PFT"), "REML"), groups),
        "GLMM-ML": per_fit_ms(lambda g: glmm.glmm_ml(*g), groups, repeat=1),
    }
    theirs = {}
    if shutil.which("Rscript"):
        with tempfile.TemporaryDirectory() as tmp:
            data.to_csv(Path(tmp) / "sets.csv", index=False)
            (Path(tmp) / "bench.R").write_text(R_SCRIPT)
            out = subprocess.run(["Rscript", str(Path(tmp) / "bench.R"), str(Path(tmp) / "sets.csv")],
                                 capture_output=True, text=True)
            if out.returncode == 0:
                theirs = {line.split()[0]: float(line.split()[1]) for line in out.stdout.splitlines() if line.strip()}
            else:
                print("metafor benchmark failed:", out.stderr.strip().splitlines()[-1:])
    print(f"{args.sets} simulated meta-analyses of k = 16 (ms per fit)")
    print(f"{'method':<10} {'singlearm':>10} {'metafor':>10} {'ratio':>8}")
    for method, ms in ours.items():
        r = theirs.get(method)
        print(f"{method:<10} {ms:>10.3f} {r if r is not None else float('nan'):>10.3f} "
              f"{(r / ms) if r else float('nan'):>7.1f}x")
    if not theirs:
        print("(Rscript with metafor not found: install r-base-core r-cran-metafor r-cran-lme4 for the ratio)")
    print("\nREML alone, growing k (ms per fit)")
    for k in (10, 100, 1_000, 10_000):
        vi = rng.uniform(0.005, 0.05, k)
        yi = rng.normal(0.5, np.sqrt(vi + 0.02))
        print(f"k = {k:>6}: {per_fit_ms(lambda _: fit.rma(yi, vi, 'REML'), [None] * 20):8.3f}")


if __name__ == "__main__":
    main()
