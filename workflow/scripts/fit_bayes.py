"""Adapter for rule fit_bayes: every fit's exact posterior, then its PyMC model sampled and certified."""

import sys

import _src_path  # noqa: F401  (src/ importable in any environment, e.g. --sdm conda)

import pandas as pd

from singlearm import comparison, provenance
from singlearm.bayes import sampling, stage

sys.stderr = open(snakemake.log[0], "w")
p = snakemake.params
data = comparison.bayes_data(pd.read_csv(snakemake.input.analysis), p.levels, median_scale=p.median_scale)
fits = stage.fits_from_frame(data, p.median_scale)
settings = sampling.Settings.from_config(p.sampler, p.gate, p.max_k)


result = stage.run_stage(fits, stage.main_priors(p.priors), settings, seed=p.seed, level=p.level,
                         thresholds=dict(p.thresholds), exact_max_k=p.exact_max_k,
                         progress=stage.progress_printer("fit_bayes", sys.stderr), threads=snakemake.threads)
inputs = dict(snakemake.input.items())
config = {"priors": dict(p.priors), "sampler": dict(p.sampler), "gate": dict(p.gate), "max_k": p.max_k,
          "exact_max_k": p.exact_max_k, "median_scale": p.median_scale, "level": p.level,
          "thresholds": dict(p.thresholds)}
rows = provenance.records(data)
for s in result.sampled:
    path = f"results/bayes/posterior/{p.posterior_files[(s.fit.outcome, s.fit.subgroup)]}.nc"
    sampling.to_inference_data(s, s.diagnostics["backend"]).to_netcdf(path)
    provenance.write_sidecar(path, rule=snakemake.rule, inputs=inputs, config=config, seed=p.seed, rows=rows)
for key, table in (("summary", result.exact.summary), ("sensitivity", result.exact.sensitivity),
                   ("probabilities", result.exact.probabilities), ("estimates", result.estimates),
                   ("diagnostics", result.diagnostics)):
    provenance.write_csv(table, snakemake.output[key])
    provenance.write_sidecar(snakemake.output[key], rule=snakemake.rule, inputs=inputs, config=config, seed=p.seed,
                             rows=rows)
