"""Adapter for rule fit_bayes_exact: every fit's exact posterior, prior sensitivity and k = 1 / k = 2 flags."""

import sys
import time

import _src_path  # noqa: F401  (src/ importable in any environment, e.g. --sdm conda)

import pandas as pd

from singlearm import comparison, provenance
from singlearm.bayes import stage

sys.stderr = open(snakemake.log[0], "w")
p = snakemake.params
analysis = pd.read_csv(snakemake.input.analysis)
data = comparison.bayes_data(analysis, p.levels, median_scale=p.median_scale)
start = time.perf_counter()


def progress(i, n, fit):  # to the log and the terminal: the stage is visibly working
    line = f"[fit_bayes_exact] fit {i + 1} of {n}: {fit.outcome} / {fit.subgroup} (k = {fit.k}), " \
           f"{time.perf_counter() - start:.1f} s elapsed"
    print(line, file=sys.stderr, flush=True)
    print(line, file=sys.__stderr__, flush=True)


result = stage.run_exact(stage.fits_from_frame(data, p.median_scale), stage.main_priors(p.priors), level=p.level,
                         thresholds=dict(p.thresholds), progress=progress)
inputs = dict(snakemake.input.items())
config = {"priors": dict(p.priors), "median_scale": p.median_scale, "level": p.level,
          "thresholds": dict(p.thresholds)}
for key, table in (("summary", result.summary), ("sensitivity", result.sensitivity),
                   ("probabilities", result.probabilities)):
    provenance.write_csv(table, snakemake.output[key])
    provenance.write_sidecar(snakemake.output[key], rule=snakemake.rule, inputs=inputs, config=config,
                             rows=provenance.records(data))
