"""Benchmark the frequentist engine against R metafor in the same run.

    .venv/bin/python benchmarks/bench_frequentist.py [--sets 200]

Times, per fit, on the same simulated meta-analyses of k = 16 studies with a numeric moderator x
and a two-level moderator g: the inverse-variance fits (DL, REML, HKSJ with the ad hoc rule,
meta-regression, subgroup test with a common tau^2), the GLMMs (random and common effect, t test,
with moderators, and the population-averaged proportion) and Peters' test, ours and metafor's
(through Rscript, when installed), and prints the ratios. Then our REML alone at k = 10 ... 10,000,
to show it grows linearly.
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
from singlearm import bias, effects, fit, glmm, metareg, subgroups  # noqa: E402

R_SCRIPT = r"""
suppressPackageStartupMessages(library(metafor))
d <- read.csv(commandArgs(TRUE)[1])
sets <- split(d, d$set)
tm <- function(f) { t0 <- proc.time()[["elapsed"]]; for (s in sets) f(s); (proc.time()[["elapsed"]] - t0) / length(sets) * 1000 }
cat(sprintf("PFT-DL %.6f\n", tm(function(s) rma(measure="PFT", xi=s$events, ni=s$total, method="DL"))))
cat(sprintf("PFT-REML %.6f\n", tm(function(s) rma(measure="PFT", xi=s$events, ni=s$total, method="REML"))))
cat(sprintf("GLMM-ML %.6f\n", tm(function(s) rma.glmm(measure="PLO", xi=s$events, ni=s$total, method="ML"))))
cat(sprintf("PFT-REML-HKSJ-SE %.6f\n", tm(function(s) rma(measure="PFT", xi=s$events, ni=s$total, method="REML", test="adhoc"))))
cat(sprintf("METAREG-REML %.6f\n", tm(function(s) rma(measure="PLO", xi=s$events, ni=s$total, mods=~x+g, data=s, method="REML"))))
cat(sprintf("SUBGROUP-COMMON %.6f\n", tm(function(s) rma(measure="PFT", xi=s$events, ni=s$total, mods=~g, data=s, method="DL")$QM)))
cat(sprintf("PETERS %.6f\n", tm(function(s) regtest(rma(measure="PLO", xi=s$events, ni=s$total, method="DL"), ni=s$total, model="lm", predictor="ninv"))))
cat(sprintf("GLMM-CE %.6f\n", tm(function(s) rma.glmm(measure="PLO", xi=s$events, ni=s$total, method="EE"))))
cat(sprintf("GLMM-ML-T %.6f\n", tm(function(s) rma.glmm(measure="PLO", xi=s$events, ni=s$total, method="ML", test="t"))))
cat(sprintf("GLMM-ML-MODS %.6f\n", tm(function(s) rma.glmm(measure="PLO", xi=s$events, ni=s$total, mods=~x+g, data=s, method="ML"))))
"""


def simulate(sets, k, rng):
    rows = []
    for s in range(sets):
        total = rng.integers(15, 120, k)
        p = 1 / (1 + np.exp(-rng.normal(-1.0, 0.5, k)))
        rows.append(pd.DataFrame(dict(set=s, events=rng.binomial(total, p), total=total, x=rng.normal(0, 1, k).round(3),
                                      g=np.repeat(["a", "b"], k // 2))))
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
    # the model matrix is built inside the timed call, as metafor builds it from the formula
    frames = [g.reset_index(drop=True) for _, g in data.groupby("set")]

    def mods(f):
        return metareg.design(f, ["x", "g"])

    def pft(f):
        return effects.proportion_effects(f.events, f.total, "PFT")

    def plo(f):
        return effects.proportion_effects(f.events, f.total, "PLO")

    ours = {
        "PFT-DL": per_fit_ms(lambda g: fit.rma(*effects.proportion_effects(*g, "PFT"), "DL"), groups),
        "PFT-REML": per_fit_ms(lambda g: fit.rma(*effects.proportion_effects(*g, "PFT"), "REML"), groups),
        "GLMM-ML": per_fit_ms(lambda g: glmm.glmm_ml(*g), groups, repeat=1),
        "PFT-REML-HKSJ-SE": per_fit_ms(lambda f: fit.rma(*pft(f), "REML", "knha", hksj_adhoc="se"), frames),
        "METAREG-REML": per_fit_ms(lambda f: metareg.meta_regression(*plo(f), mods(f), "REML"), frames),
        "SUBGROUP-COMMON": per_fit_ms(lambda f: subgroups.subgroup_test_common(*pft(f), f.g, "DL"), frames),
        "PETERS": per_fit_ms(lambda f: bias.peters_test(*plo(f), f.total), frames),
        "GLMM-CE": per_fit_ms(lambda f: glmm.glmm(f.events, f.total, method="EE"), frames),
        "GLMM-ML-T": per_fit_ms(lambda f: glmm.glmm(f.events, f.total, test="t"), frames, repeat=1),
        "GLMM-ML-MODS": per_fit_ms(lambda f: glmm.glmm(f.events, f.total, mods=mods(f)), frames, repeat=1),
        "GLMM-ML-MARGINAL": per_fit_ms(lambda f: glmm.marginal_proportion(glmm.glmm(f.events, f.total)), frames,
                                       repeat=1),
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
    # metafor has no marginal proportion: it is set against the ML fit it needs
    theirs.setdefault("GLMM-ML-MARGINAL", theirs.get("GLMM-ML"))
    print(f"{'method':<17} {'singlearm':>10} {'metafor':>10} {'ratio':>8}")
    for method, ms in ours.items():
        r = theirs.get(method)
        print(f"{method:<17} {ms:>10.3f} {r if r is not None else float('nan'):>10.3f} "
              f"{(r / ms) if r else float('nan'):>7.1f}x")
    slow = [m for m, ms in ours.items() if theirs.get(m) and theirs[m] / ms < 5]
    if slow:
        print(f"below the 5x target: {', '.join(slow)}")
    if not theirs:
        print("(Rscript with metafor not found: install r-base-core r-cran-metafor r-cran-lme4 for the ratio)")
    print("\nREML alone, growing k (ms per fit)")
    for k in (10, 100, 1_000, 10_000):
        vi = rng.uniform(0.005, 0.05, k)
        yi = rng.normal(0.5, np.sqrt(vi + 0.02))
        print(f"k = {k:>6}: {per_fit_ms(lambda _: fit.rma(yi, vi, 'REML'), [None] * 20):8.3f}")


if __name__ == "__main__":
    main()
