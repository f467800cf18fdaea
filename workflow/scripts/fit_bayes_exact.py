"""Adapter for rule fit_bayes_exact: every fit's exact posterior, prior sensitivity and k = 1 / k = 2 flags."""

import sys

import _src_path  # noqa: F401  (src/ importable in any environment, e.g. --sdm conda)

import pandas as pd

from singlearm import comparison, provenance
from singlearm.bayes import stage

sys.stderr = open(snakemake.log[0], "w")
p = snakemake.params
analysis = pd.read_csv(snakemake.input.analysis)
data = comparison.bayes_data(analysis, p.levels, median_scale=p.median_scale)
progress = stage.progress_printer("fit_bayes_exact", sys.stderr)


result = stage.run_exact(stage.fits_from_frame(data, p.median_scale), stage.main_priors(p.priors), level=p.level,
                         thresholds=dict(p.thresholds), progress=progress, exact_max_k=p.exact_max_k)
inputs = dict(snakemake.input.items())
config = {"priors": dict(p.priors), "median_scale": p.median_scale, "level": p.level,
          "thresholds": dict(p.thresholds), "exact_max_k": p.exact_max_k}
for key, table in (("summary", result.summary), ("sensitivity", result.sensitivity),
                   ("probabilities", result.probabilities)):
    provenance.write_csv(table, snakemake.output[key])
    provenance.write_sidecar(snakemake.output[key], rule=snakemake.rule, inputs=inputs, config=config,
                             rows=provenance.records(data))
