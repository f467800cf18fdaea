"""Benchmark: leave-one-out and influence diagnostics, singlearm vs metafor, in one run.

For k = 16, 100 and 1000 simulated studies (DL, PFT-like variances) this times
``sensitivity.leave_one_out`` and ``sensitivity.influence`` in Python and
``leave1out(res)`` and ``influence(res)`` of metafor through ``Rscript`` on the same data,
checks that both give the same numbers, and prints the time ratios.

Run from the repository root:

    .venv/bin/python benchmarks/bench_sensitivity.py [--sizes 16 100 1000]

Needs R with metafor on the PATH. The R timings include no start-up cost: each call is
timed inside R with ``proc.time()``. metafor refits k models of k - 1 studies with dense k x k
algebra, so k = 1000 alone takes about 5 minutes of R time (one timed call each).
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

from singlearm import sensitivity

R_SCRIPT = r"""
suppressPackageStartupMessages(library(metafor))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1]); reps <- as.integer(args[2]); out <- args[3]
res <- rma(d$yi, d$vi, method = "DL", control = list(threshold = 1e-12, tol = 1e-12, maxiter = 1000))
# One untimed warm-up call when repeating; a single timed call where one takes minutes (k = 1000).
tm <- function(f) { val <- if (reps > 1) f(); t0 <- proc.time()[["elapsed"]];
                    for (r in seq_len(reps)) val <- f();
                    list(t = (proc.time()[["elapsed"]] - t0) / reps, val = val) }
a <- tm(function() leave1out(res)); t_loo <- a$t; l <- a$val
a <- tm(function() influence(res)); t_inf <- a$t; inf <- a$val$inf
write.csv(data.frame(b = l$estimate, tau2 = l$tau2, rstudent = inf$rstudent, cook_d = inf$cook.d),
          out, row.names = FALSE)
cat(sprintf("%.9f %.9f\n", t_loo, t_inf))
"""


def simulate(k, seed=20240601):
    """PFT-scale effects: n from 15 to 200, true proportions around 0.3 with heterogeneity."""
    rng = np.random.default_rng(seed + k)
    n = rng.integers(15, 200, k)
    p = np.clip(rng.normal(0.3, 0.08, k), 0.02, 0.98)
    x = rng.binomial(n, p)
    yi = 0.5 * (np.arcsin(np.sqrt(x / (n + 1))) + np.arcsin(np.sqrt((x + 1) / (n + 1))))
    return yi, 1.0 / (4 * n + 2)


def time_python(f, *args, min_time=0.2):
    f(*args)
    reps, elapsed = 0, 0.0
    t0 = time.perf_counter()
    while elapsed < min_time:
        f(*args)
        reps += 1
        elapsed = time.perf_counter() - t0
    return elapsed / reps


def time_r(yi, vi, reps, workdir):
    data = Path(workdir) / "data.csv"
    out = Path(workdir) / "r_out.csv"
    script = Path(workdir) / "bench.R"
    script.write_text(R_SCRIPT)
    pd.DataFrame({"yi": yi, "vi": vi}).to_csv(data, index=False, float_format="%.17g")
    done = subprocess.run(["Rscript", str(script), str(data), str(reps), str(out)], capture_output=True, text=True,
                          check=True)
    t_loo, t_inf = (float(v) for v in done.stdout.split())
    return t_loo, t_inf, pd.read_csv(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 100, 1000])
    args = parser.parse_args(argv)
    if shutil.which("Rscript") is None:
        sys.exit("Rscript not found on PATH: the comparison needs R with metafor")

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in args.sizes:
            yi, vi = simulate(k)
            py_loo = time_python(sensitivity.leave_one_out, yi, vi)
            py_inf = time_python(sensitivity.influence, yi, vi)
            # Enough R repetitions to time small k, a single one where each call takes seconds.
            r_loo, r_inf, r_out = time_r(yi, vi, reps=20 if k <= 50 else 3 if k <= 200 else 1, workdir=tmp)
            loo = sensitivity.leave_one_out(yi, vi)
            inf = sensitivity.influence(yi, vi)
            dev = max(np.max(np.abs(loo[c].to_numpy() - r_out[c])) for c in ("b", "tau2"))
            dev = max(dev, *(np.max(np.abs(inf[c].to_numpy() - r_out[c])) for c in ("rstudent", "cook_d")))
            rows.append({"k": k, "python_loo_ms": py_loo * 1e3, "metafor_loo_ms": r_loo * 1e3,
                         "loo_ratio": r_loo / py_loo, "python_inf_ms": py_inf * 1e3,
                         "metafor_inf_ms": r_inf * 1e3, "inf_ratio": r_inf / py_inf,
                         "both_ratio": (r_loo + r_inf) / (py_loo + py_inf), "max_abs_dev": dev})
            print(f"k = {k:5d}: metafor {1e3 * (r_loo + r_inf):.1f} ms, singlearm {1e3 * (py_loo + py_inf):.3f} ms",
                  file=sys.stderr, flush=True)
    table = pd.DataFrame(rows)
    with pd.option_context("display.float_format", "{:.4g}".format, "display.width", 200):
        print(table.to_string(index=False))
    print("\nratio = metafor time / singlearm time (higher is faster here); max_abs_dev over b, tau2, "
          "rstudent, cook.d")
    return table


if __name__ == "__main__":
    main()
