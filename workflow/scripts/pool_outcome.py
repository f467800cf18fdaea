"""Adapter for rule pool_outcome: pool every outcome with every method, write each outcome's tables."""

import sys

import _src_path  # noqa: F401  (src/ importable in any environment, e.g. --sdm conda)

import pandas as pd

from singlearm import pool, provenance

sys.stderr = open(snakemake.log[0], "w")
p = snakemake.params
settings = dict(p.settings)
analysis = pd.read_csv(snakemake.input.analysis, keep_default_na=True)
KEYS = ("estimates", "details", "subgroup_tests", "studies", "median_summary")
conventions = pool.Conventions.from_settings(settings)
# params.outcome (slug -> outcome) is in the order of the rule's expand()ed outputs
for i, (slug, outcome) in enumerate(p.outcome.items()):
    rows = analysis[analysis["outcome"] == outcome]
    result = pool.pool_outcome(rows, outcome, list(p.levels), level=settings["level"],
                               ft_logit_margin=settings["ft_glmm_logit_margin"], primary=p.primary[outcome],
                               conventions=conventions)
    for key in KEYS:
        path = snakemake.output[key][i]
        assert f"/{slug}/" in path, (slug, path)
        provenance.write_csv(getattr(result, key), path)
        provenance.write_sidecar(path, rule=snakemake.rule, inputs=dict(snakemake.input.items()),
                                 config={"outcome": outcome, "primary": p.primary[outcome],
                                         "levels": list(p.levels), **settings},
                                 rows=provenance.analysis_rows(rows))
