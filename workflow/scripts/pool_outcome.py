"""Adapter for rule pool_outcome: pool one outcome with every method, write its tables."""

import sys

import _src_path  # noqa: F401  (src/ importable in any environment, e.g. --sdm conda)

import pandas as pd

from singlearm import pool, provenance

sys.stderr = open(snakemake.log[0], "w")
outcome = snakemake.params.outcome
analysis = pd.read_csv(snakemake.input.analysis, keep_default_na=True)
rows = analysis[analysis["outcome"] == outcome]
settings = dict(snakemake.params.settings)
result = pool.pool_outcome(rows, outcome, list(snakemake.params.levels), level=settings["level"],
                           ft_logit_margin=settings["ft_glmm_logit_margin"], primary=snakemake.params.primary)

for key in ("estimates", "details", "subgroup_tests", "studies", "median_summary"):
    provenance.write_csv(getattr(result, key), snakemake.output[key])
    provenance.write_sidecar(snakemake.output[key], rule=snakemake.rule, inputs=dict(snakemake.input.items()),
                             config={"outcome": outcome, "primary": snakemake.params.primary, "levels": list(snakemake.params.levels), **settings},
                             rows=provenance.analysis_rows(rows))
