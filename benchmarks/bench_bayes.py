"""Benchmark: the Bayesian stage (all fits in one PyMC model) on ~60 fits; target <= 30 s on 2 cores.

Times, for each data set: the import, building the model, the whole gated stage
(``fit_with_gate``: PyMC's compile, NUTS sampling, diagnostics, and the retry if one is
needed), the summary, time per fit, and peak memory of this process and of the sampler's
worker processes. Data sets:

* ``real``: the review's fits (every outcome x overall and each subgroup) from
  data/processed/analysis_data.csv, when the workflow has written it, built by
  ``singlearm.comparison.bayes_data`` exactly as the workflow does.
* ``simulated``: 54 proportion fits with k = 1..16 (20 with k = 1) and 6 median fits,
  with (mu, tau) and study sizes in the review's range: heavier than the real set.

Run from the repository root:

    .venv/bin/python benchmarks/bench_bayes.py [--data real simulated] [--sensitivity] [--cold]

``--cold`` points PyTensor at an empty compile cache, so the C compilation a fresh machine
pays once is included. ``--sensitivity`` also times the three tau priors of
``sensitivity_priors`` in one model. If R and brms are installed, the binomial-normal model
is also fitted with brms, one fit after another (one compile, then ``update``), for a ratio.
"""

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

T_START = time.perf_counter()
ROOT = Path(__file__).resolve().parents[1]
ANALYSIS = ROOT / "data" / "processed" / "analysis_data.csv"

R_SCRIPT = r"""
suppressPackageStartupMessages(library(brms))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], stringsAsFactors = FALSE); out <- args[2]
pri <- c(prior(normal(0, 2.5), class = Intercept), prior(normal(0, 1), class = sd))
fits <- unique(d$fit)
t0 <- proc.time()[["elapsed"]]
first <- brm(events | trials(total) ~ 1 + (1 | study), data = d[d$fit == fits[1], ], family = binomial(),
             prior = pri, chains = 4, iter = 2200, warmup = 700, seed = 1, refresh = 0, cores = 2)
t_compile <- proc.time()[["elapsed"]] - t0
for (f in fits[-1]) invisible(update(first, newdata = d[d$fit == f, ], recompile = FALSE, refresh = 0,
                                     chains = 4, iter = 2200, warmup = 700, seed = 1, cores = 2))
write.csv(data.frame(total = proc.time()[["elapsed"]] - t0, compile = t_compile), out, row.names = FALSE)
"""


def real_fits():
    """The review's fits (every outcome x overall and each subgroup) as the workflow builds them."""
    if not ANALYSIS.exists():
        return None
    from singlearm import comparison

    d = pd.read_csv(ANALYSIS)
    return comparison.bayes_data(d, list(dict.fromkeys(d["subgroup"])))


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


def peak_mb(who):
    return resource.getrusage(who).ru_maxrss / 1024  # kB on Linux


def run_stage(bayes, data, priors, settings):
    t0 = time.perf_counter()
    model = bayes.build_model(data, priors)
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    try:
        fitted = bayes.fit_with_gate(data, priors, settings)
        idata, diag, attempts, passed = fitted.idata, fitted.diagnostics, fitted.attempts, True
    except bayes.ConvergenceError as err:
        idata, diag, attempts, passed = err.idata, bayes.diagnose(err.idata), err.attempts, False
    t_stage = time.perf_counter() - t0
    t0 = time.perf_counter()
    bayes.summarise(idata, thresholds={"proportion": [0.1, 0.3], "median": [6.0]}, diagnostics=diag)
    t_summary = time.perf_counter() - t0
    sampling = sum(a["sampling_seconds"] for a in attempts)
    return {"fits": len(model.fits), "prior_sets": len(model.priors), "studies": len(model.studies),
            "proportion": int((model.fits["kind"] == "proportion").sum()),
            "median": int((model.fits["kind"] == "median").sum()),
            "attempts": len(attempts), "gate": "passed" if passed else "FAILED",
            "ess_min": float(min(diag["ess_bulk_min"].min(), diag["ess_tail_min"].min())),
            "rhat_max": float(diag["rhat_max"].max()), "divergences": int(diag["divergences_total"].iloc[0]),
            "build_s": t_build, "sampling_s": sampling, "compile_init_diag_s": t_stage - sampling,
            "stage_s": t_stage, "summary_s": t_summary}


def brms_ratio(data, stage_seconds):
    if shutil.which("Rscript") is None:
        return "R is absent: no brms comparison"
    if subprocess.run(["Rscript", "-e", "library(brms)"], capture_output=True).returncode != 0:
        return "brms is absent (Rscript -e 'library(brms)' failed): no brms comparison"
    prop = data[data["events"].notna()] if "events" in data else data.iloc[0:0]
    with tempfile.TemporaryDirectory() as tmp:
        csv, out, script = Path(tmp) / "data.csv", Path(tmp) / "out.csv", Path(tmp) / "bench.R"
        prop[["fit", "study", "events", "total"]].to_csv(csv, index=False)
        script.write_text(R_SCRIPT)
        done = subprocess.run(["Rscript", str(script), str(csv), str(out)], capture_output=True, text=True)
        if done.returncode != 0:
            return f"brms run failed: {done.stderr[-500:]}"
        r = pd.read_csv(out).iloc[0]
    return (f"brms, {prop['fit'].nunique()} proportion fits one after another: {r['total']:.1f} s "
            f"(first fit incl. Stan compile {r['compile']:.1f} s); singlearm stage {stage_seconds:.1f} s; "
            f"ratio brms / singlearm = {r['total'] / stage_seconds:.1f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["real", "simulated"], choices=["real", "simulated"])
    parser.add_argument("--sensitivity", action="store_true", help="also time the three tau priors in one model")
    parser.add_argument("--cold", action="store_true", help="empty PyTensor compile cache (a fresh machine)")
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    cold_dir = None
    if args.cold:  # before PyTensor is imported
        cold_dir = tempfile.mkdtemp(prefix="pytensor_cold_")
        os.environ["PYTENSOR_FLAGS"] = f"base_compiledir={cold_dir}"
    t0 = time.perf_counter()
    from singlearm import bayes
    t_import = time.perf_counter() - t0

    settings = {"cores": args.cores}
    rows, notes = [], []
    for name in args.data:
        data = real_fits() if name == "real" else simulated_fits()
        if data is None:
            notes.append(f"real: {ANALYSIS.relative_to(ROOT)} not found (run the workflow first); skipped")
            continue
        runs = [("default", None)] + ([("sensitivity", bayes.sensitivity_priors())] if args.sensitivity else [])
        for label, priors in runs:
            row = {"data": name, "priors": label, **run_stage(bayes, data, priors, settings)}
            rows.append(row)
            if label == "default":
                notes.append(f"{name}: {brms_ratio(data, row['stage_s'])}")
    table = pd.DataFrame(rows)
    table["per_fit_ms"] = 1000 * table["stage_s"] / (table["fits"] * table["prior_sets"])
    table["stage_incl_import_s"] = table["stage_s"] + t_import
    pd.set_option("display.width", 200)
    print(f"import singlearm.bayes (PyMC, PyTensor, ArviZ): {t_import:.1f} s"
          f"{'  [cold PyTensor cache: ' + cold_dir + ']' if cold_dir else ''}")
    print(table.round(2).to_string(index=False))
    for note in notes:
        print(note)
    print(f"peak memory: this process {peak_mb(resource.RUSAGE_SELF):.0f} MB, "
          f"largest sampler worker {peak_mb(resource.RUSAGE_CHILDREN):.0f} MB; "
          f"wall since start {time.perf_counter() - T_START:.1f} s")
    print("target: stage incl. compilation <= 30 s on 2 cores, gate passed")
    if cold_dir:
        shutil.rmtree(cold_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
