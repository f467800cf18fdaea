"""Adapter for rule fit_bayes: every fit sampled on its own by PyMC, certified against its exact posterior."""

import sys

import _src_path  # noqa: F401  (src/ importable in any environment, e.g. --sdm conda)

import pandas as pd

from singlearm import comparison, provenance
from singlearm.bayes import sampling, stage

sys.stderr = open(snakemake.log[0], "w")
p = snakemake.params
analysis = pd.read_csv(snakemake.input.analysis)
data = comparison.bayes_data(analysis, p.levels, median_scale=p.median_scale)
fits = stage.fits_from_frame(data, p.median_scale)
exact_summary = pd.read_csv(snakemake.input.exact_summary, keep_default_na=False, na_values=[""])
# an unflagged fit's flags are text, not NaN (a fit reported from the exact posterior joins them)
exact_summary["flags"] = exact_summary["flags"].fillna("")
main = exact_summary[exact_summary["prior"] == "main"].set_index(["outcome", "subgroup"])
exact = {key: row for key, row in main.iterrows()}
settings = sampling.Settings.from_config(p.sampler, p.gate, p.max_k)
progress = stage.progress_printer("fit_bayes", sys.stderr)


sampled, diagnostics = sampling.run_sampling(fits, stage.main_priors(p.priors), exact, settings, seed=p.seed,
                                             level=p.level, progress=progress, threads=snakemake.threads)
estimates = sampling.estimates_table(fits, sampled, diagnostics, exact_summary, level=p.level)
inputs = dict(snakemake.input.items())
config = {"priors": dict(p.priors), "sampler": dict(p.sampler), "gate": dict(p.gate), "max_k": p.max_k,
          "median_scale": p.median_scale, "level": p.level}
rows = provenance.records(data)
for s in sampled:
    path = f"results/bayes/posterior/{p.posterior_files[(s.fit.outcome, s.fit.subgroup)]}.nc"
    sampling.to_inference_data(s, s.diagnostics["backend"]).to_netcdf(path)
    provenance.write_sidecar(path, rule=snakemake.rule, inputs=inputs, config=config, seed=p.seed, rows=rows)
for key, table in (("estimates", estimates), ("diagnostics", diagnostics)):
    provenance.write_csv(table, snakemake.output[key])
    provenance.write_sidecar(snakemake.output[key], rule=snakemake.rule, inputs=inputs, config=config, seed=p.seed,
                             rows=rows)
