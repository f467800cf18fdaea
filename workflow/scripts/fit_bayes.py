"""Adapter for rule fit_bayes: one joint PyMC model, gated (the prior sensitivity is exact: fit_bayes_exact)."""

import sys
import time
from pathlib import Path

import _src_path  # noqa: F401  (src/ importable in any environment, e.g. --sdm conda)

import pandas as pd

from singlearm import bayes, comparison, provenance

sys.stderr = open(snakemake.log[0], "w")
p = snakemake.params
analysis = pd.read_csv(snakemake.input.analysis)
data = comparison.bayes_data(analysis, p.levels, median_scale=p.median_scale, min_k=p.min_k)
settings = {**p.sampler, **p.gate, "seed": p.seed, "cores": min(snakemake.threads, p.sampler.get("chains", 4))}
scale = comparison.bayes_scale(p.median_scale)
cuts = sorted({t for ts in p.thresholds.values() for t in ts})
start = time.perf_counter()
if p.run == "main":
    try:
        gated = bayes.fit_with_gate(data, dict(p.priors), settings, scale=scale, source=snakemake.input.analysis)
    except bayes.ConvergenceError as err:  # stop the workflow, naming outcome|subgroup and the diagnostic
        sys.exit(f"Bayesian main run stopped: the convergence gate failed (fit ids are 'outcome|subgroup').\n{err}")
    summary = bayes.summarise(gated.idata, level=p.level, thresholds=cuts, diagnostics=gated.diagnostics)
else:  # prior sensitivity: failing pairs are retried, then reported (not fatal)
    to_fit, reused = comparison.split_sensitivity_priors(p.main_priors, p.priors, scale)
    gated = bayes.fit_prior_sensitivity(data, to_fit, settings, scale=scale, source=snakemake.input.analysis)
    summary = gated.summarise(level=p.level, thresholds=cuts)
seconds = time.perf_counter() - start
diagnostics = comparison.diagnostics_table(gated.diagnostics, gated.attempts, "PyMC NUTS", seconds,
                                          getattr(gated, "retried_pairs", frozenset()))

inputs = dict(snakemake.input.items())
config = {"priors": dict(p.priors), "settings": settings, "median_scale": p.median_scale, "min_k": p.min_k,
          "level": p.level, "thresholds": dict(p.thresholds)}
attempts = [{k: v for k, v in a.items() if "seconds" not in k} for a in gated.attempts]  # no timings: same bytes
used = provenance.records(data)
outputs = {"summary": summary.table, "diagnostics": diagnostics}
if p.run == "main":
    outputs["estimates"] = comparison.pooled_rows(summary.table, data, "main")
    outputs["probabilities"] = comparison.probability_table(summary, dict(p.thresholds), "main")
    for fit, name in p.posterior_files.items():
        path = f"results/bayes/posterior/{name}.nc"
        bayes.fit_posterior(gated.idata, fit).to_netcdf(path)
        provenance.write_sidecar(path, rule=snakemake.rule, inputs=inputs, config=config, seed=p.seed,
                                 rows=[r for r in used if r["fit"] == fit])
else:
    main = pd.read_csv(snakemake.input.main_summary)
    outputs["table"] = comparison.prior_sensitivity_table(summary.table, main, "main", reused)
    folder = Path(snakemake.output.posteriors)
    folder.mkdir(parents=True, exist_ok=True)
    for name, idata in zip(("first_run", "retry_of_failing_fits"), gated.runs):
        path = folder / f"{name}.nc"
        bayes.without_run_attributes(idata).to_netcdf(path)
        provenance.write_sidecar(path, rule=snakemake.rule, inputs=inputs, config=config, seed=p.seed, rows=used,
                                 extra={"attempts": attempts})
for key, table in outputs.items():
    provenance.write_csv(table, snakemake.output[key])
    provenance.write_sidecar(snakemake.output[key], rule=snakemake.rule, inputs=inputs, config=config, seed=p.seed,
                             rows=used, extra={"attempts": attempts})
