"""Benchmark: the Bayesian stage (exact posteriors + per-fit PyMC sampling), cold and warm, per back end.

Each measurement runs the stage (``singlearm.bayes.stage.run_stage``, what rule fit_bayes runs:
exact posteriors on a side thread while the sampler compiles, then sampling and certification on
two threads) in a fresh Python process: ``cold`` with a fresh ``HOME`` (empty PyTensor and XLA
compile caches: a fresh machine), then ``warm`` with the caches the cold run left. Reported: wall
and CPU time of the process, the import part, fits sampled, certified, retried. Data: ``real`` (the review's fits from
data/processed/analysis_data.csv, as the workflow builds them) or ``simulated`` (54 proportion
fits, k = 1..16, and 6 median fits). If R and brms are installed, the binomial-normal fits are
also run with brms (one compile, then ``update``; the same priors and draws) in the same run, for the
ratio of wall times (whole, and sampling only). Every timing is printed with the machine's load
average (the machine is shared).

    .venv/bin/python benchmarks/bench_bayes.py [--data simulated] [--backend blackjax pymc]

Target (issue 12): whole stage <= 30 s cold, <= 15 s warm on our 2-core machine.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
ANALYSIS = ROOT / "data" / "processed" / "analysis_data.csv"

# brms fits the same binomial-normal model as our stage, with the same priors and the same number of
# draws as config/config.yaml's sampler (4 chains x (1000 warm-up + 1000 draws)): the first fit
# compiles the Stan model, the others reuse it through update(recompile = FALSE), as our stage
# compiles once and samples many. Each fit's wall time is written; the first includes the compile.
R_SCRIPT = r"""
suppressPackageStartupMessages(library(brms))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], stringsAsFactors = FALSE); out <- args[2]
pri <- c(prior(normal(0, 2.5), class = Intercept), prior(normal(0, 1), class = sd))
fits <- unique(d$fit)
times <- numeric(length(fits))
t0 <- proc.time()[["elapsed"]]
first <- brm(events | trials(total) ~ 1 + (1 | study), data = d[d$fit == fits[1], ], family = binomial(),
             prior = pri, chains = 4, iter = 2000, seed = 1, refresh = 0, cores = 2)
times[1] <- proc.time()[["elapsed"]] - t0
for (i in seq_along(fits)[-1]) {
  t1 <- proc.time()[["elapsed"]]
  invisible(update(first, newdata = d[d$fit == fits[i], ], recompile = FALSE, refresh = 0, chains = 4,
                   iter = 2000, seed = 1, cores = 2))
  times[i] <- proc.time()[["elapsed"]] - t1
}
write.csv(data.frame(fit = fits, seconds = times), out, row.names = FALSE)
"""


def simulated_fits(seed=1):
    """54 proportion fits (k = 1..16) and 6 median fits, from a fixed seed."""
    rng = np.random.default_rng(seed)
    rows = []
    ks = [1] * 20 + [2] * 8 + [3] * 6 + [4] * 5 + [5] * 4 + [6] * 3 + [7] * 2 + [8] * 2 + [9, 10, 12, 16]
    for f, k in enumerate(ks):
        mu, tau = rng.normal(-1.0, 1.2), abs(rng.normal(0.0, 0.6))
        for s in range(k):
            n = int(rng.integers(15, 200))
            events = rng.binomial(n, 1 / (1 + np.exp(-(mu + tau * rng.normal()))))
            rows.append({"fit": f"prop{f:02d}", "study": f"s{s}", "events": events, "total": n})
    for f, k in enumerate([1, 1, 2, 4, 5, 9]):
        mu, tau = rng.uniform(4, 15), abs(rng.normal(0.0, 2.0))
        for s in range(k):
            se = rng.uniform(0.6, 2.5)
            yi = mu + tau * rng.normal() + se * rng.normal()
            rows.append({"fit": f"med{f}", "study": f"s{s}", "yi": yi, "sei": se})
    return pd.DataFrame(rows)




def stage_data(name):
    """A bayes_data-like frame (outcome, subgroup, kind, study, events, total, yi, sei)."""
    if name == "real":
        if not ANALYSIS.exists():
            return None
        from singlearm import comparison

        d = pd.read_csv(ANALYSIS)
        return comparison.bayes_data(d, list(dict.fromkeys(d["subgroup"])))
    d = simulated_fits()
    d["outcome"], d["subgroup"] = d["fit"], "overall"
    d["kind"] = np.where(d["events"].notna(), "proportion", "median")
    return d


CHILD = """
import json, sys, time
t0 = time.perf_counter()
import pandas as pd
from singlearm.bayes import sampling, stage
d = pd.read_csv(sys.argv[1]); backend = sys.argv[2]
pri = {"proportion": {"mu": {"dist": "normal", "mu": 0.0, "sigma": 2.5}, "tau": {"dist": "halfnormal", "sigma": 1.0}},
       "median": {"mu": {"dist": "normal", "mu": 0.0, "sigma": 100.0}, "tau": {"dist": "halfnormal", "sigma": 5.0}}}
main = stage.main_priors(pri)
fits = stage.fits_from_frame(d)
t1 = time.perf_counter()
r = stage.run_stage(fits, main, sampling.Settings(backend=backend), seed=1, threads=2)
diag = r.diagnostics
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "stage_s": t2 - t1, "cpu_s": time.process_time(), "fits": len(fits),
                  "sampled": len(diag), "certified": int(diag["certified"].sum()),
                  "retried": int((diag["attempts"] == 2).sum())}))
"""


def run(data_csv, backend, env):
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, str(data_csv), backend], capture_output=True, text=True,
                          env=env)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        return {"error": done.stderr[-400:]}
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "wall_s": wall}


def brms_ratio(data, ours, max_k=200):
    """brms on the binomial-normal fits our stage samples (2 <= k <= max_k), timed in the same run.

    ``ours`` is a cold measurement row of :func:`run` (``wall_s``, ``stage_s``). Returns the
    lines to print, or a line saying why there is no comparison (R or brms absent: optional).
    """
    if shutil.which("Rscript") is None:
        return ["R is absent: no brms comparison"]
    if subprocess.run(["Rscript", "-e", "library(brms)"], capture_output=True).returncode != 0:
        return [("brms is absent (Rscript -e 'library(brms)' failed): no brms comparison "
                 "(apt-get install r-cran-brms; see README.md, Benchmarks, for the Boost link rstan needs)")]
    prop = data[data["events"].notna()].copy()
    prop["fit"] = prop["outcome"] + "/" + prop["subgroup"]  # brms's id of one fit (the R script splits on it)
    size = prop.groupby("fit")["fit"].transform("size")
    prop = prop[(size >= 2) & (size <= max_k)]
    with tempfile.TemporaryDirectory() as tmp:
        csv, out, script = Path(tmp) / "data.csv", Path(tmp) / "out.csv", Path(tmp) / "bench.R"
        prop[["fit", "study", "events", "total"]].to_csv(csv, index=False)
        script.write_text(R_SCRIPT)
        t0 = time.perf_counter()
        done = subprocess.run(["Rscript", str(script), str(csv), str(out)], capture_output=True, text=True,
                              check=False)
        wall = time.perf_counter() - t0
        if done.returncode != 0:
            return [f"brms run failed: {done.stderr[-500:]}"]
        r = pd.read_csv(out)
    n = len(r)
    # the first fit's time is compile + sampling; its sampling is estimated by the others' median
    rest = r["seconds"].iloc[1:]
    per_fit = float(rest.median()) if len(rest) else float("nan")
    compile_s = float(r["seconds"].iloc[0]) - (per_fit if np.isfinite(per_fit) else 0.0)
    sampling_s = float(r["seconds"].sum()) - compile_s
    return [(f"brms {n} binomial-normal fits (2 <= k <= {max_k}), 4 chains x 1000 draws, 2 cores: "
             f"{wall:.1f} s wall (R start and brms load included); Stan compile ~{compile_s:.1f} s, "
             f"sampling {sampling_s:.1f} s ({per_fit:.2f} s per fit)"),
            (f"singlearm cold stage {ours['wall_s']:.1f} s wall (import {ours['import_s']:.1f} s; exact posteriors, "
             f"compile, sampling and certification of {ours['sampled']} fits incl. normal-normal "
             f"{ours['stage_s']:.1f} s)"),
            f"ratio brms / singlearm, whole stage: {wall / ours['wall_s']:.1f}"]


def load():
    """The machine's 1-minute load average, reported beside every timing (the machine is shared)."""
    return f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="real", choices=["real", "simulated"])
    parser.add_argument("--backend", nargs="+", default=["blackjax"], choices=["blackjax", "pymc"])
    args = parser.parse_args()
    data = stage_data(args.data)
    if data is None:
        print(f"{ANALYSIS.relative_to(ROOT)} not found (run the workflow first); use --data simulated")
        return 1
    rows = []
    print(load(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "fits.csv"
        data.to_csv(csv, index=False)
        for backend in args.backend:
            home = Path(tmp) / f"home_{backend}"
            home.mkdir()
            env = {key: value for key, value in os.environ.items() if key != "XDG_CACHE_HOME"}
            env.update(HOME=str(home), PYTENSOR_FLAGS=f"base_compiledir={home / 'pytensor'},blas__ldflags=")
            for label in ("cold", "warm"):
                rows.append({"backend": backend, "run": label, **run(csv, backend, env)})
                print(rows[-1], flush=True)  # a long benchmark shows each measurement as it lands
    table = pd.DataFrame(rows)
    pd.set_option("display.width", 200)
    print(table.round(1).to_string(index=False))
    cold = table[(table["run"] == "cold")]
    if "wall_s" in cold and cold["wall_s"].notna().any():
        print(f"brms, same run ({load()} before):", flush=True)
        for line in brms_ratio(data, cold.loc[cold["wall_s"].idxmin()]):
            print("  " + line)
    print(f"{load()} at the end")
    print("target: whole stage <= 30 s cold, <= 15 s warm on 2 cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
