"""Adapter for rule analyse_robustness: every robustness analysis of one outcome, with provenance."""

import sys

import _src_path  # noqa: F401  (src/ importable in any environment, e.g. --sdm conda)

import pandas as pd

from singlearm import provenance, robustness

sys.stderr = open(snakemake.log[0], "w")
p = snakemake.params
analysis = pd.read_csv(snakemake.input.analysis)
rows = analysis[analysis["outcome"] == p.outcome]
main = pd.read_csv(snakemake.input.estimates)
result = robustness.robustness(rows, p.outcome, list(p.levels), method=p.method, main=main,
                               scenarios=list(p.scenarios), level=p.settings["level"], i2_margin=p.i2_change)
config = {"outcome": p.outcome, "method": p.method, "scenarios": list(p.scenarios), "i2_change": p.i2_change,
          **p.settings}
for key in ("leave_one_out", "influence", "publication_bias", "funnel", "scenarios"):
    provenance.write_csv(getattr(result, key), snakemake.output[key])
    provenance.write_sidecar(snakemake.output[key], rule=snakemake.rule, inputs=dict(snakemake.input.items()),
                             config=config, rows=provenance.analysis_rows(rows))
