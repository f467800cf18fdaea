"""Adapter for rule analyse_robustness: every robustness analysis of every outcome, with provenance."""

import sys

import _src_path  # noqa: F401  (src/ importable in any environment, e.g. --sdm conda)

import pandas as pd

from singlearm import pool, provenance, robustness

sys.stderr = open(snakemake.log[0], "w")
p = snakemake.params
analysis = pd.read_csv(snakemake.input.analysis)
KEYS = ("leave_one_out", "influence", "publication_bias", "funnel", "scenarios")
conventions = pool.Conventions.from_settings(p.settings)
# params.outcome (slug -> outcome) is in the order of the rule's expand()ed inputs and outputs
for i, (slug, outcome) in enumerate(p.outcome.items()):
    rows = analysis[analysis["outcome"] == outcome]
    main = pd.read_csv(snakemake.input.estimates[i])
    result = robustness.robustness(rows, outcome, list(p.levels), method=p.method[outcome], main=main,
                                   scenarios=list(p.scenarios), level=p.settings["level"], i2_margin=p.i2_change,
                                   min_k=p.bias_min_k, p0=p.p0.get(outcome), conventions=conventions)
    config = {"outcome": outcome, "method": p.method[outcome], "scenarios": list(p.scenarios),
              "i2_change": p.i2_change, "bias_min_k": p.bias_min_k, "p0": p.p0.get(outcome), **p.settings}
    inputs = {"analysis": snakemake.input.analysis, "estimates": snakemake.input.estimates[i]}
    for key in KEYS:
        path = snakemake.output[key][i]
        assert f"/{slug}/" in path and f"/{slug}/" in inputs["estimates"], (slug, path)
        provenance.write_csv(getattr(result, key), path)
        provenance.write_sidecar(path, rule=snakemake.rule, inputs=inputs, config=config,
                                 rows=provenance.analysis_rows(rows))
