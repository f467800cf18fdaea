"""Adapter for rule compare_methods: frequentist and Bayesian estimates side by side, flagged."""

import sys

import _src_path  # noqa: F401  (src/ importable in any environment, e.g. --sdm conda)

import pandas as pd

from singlearm import comparison, provenance, tables

sys.stderr = open(snakemake.log[0], "w")
p = snakemake.params
stamp = provenance.code_stamp(p.stamp, p.code)  # version, code that made this, inputs
estimates = pd.read_csv(snakemake.input.estimates)
details = pd.read_csv(snakemake.input.details, keep_default_na=False, na_values=[""])
analysis = pd.read_csv(snakemake.input.analysis)
bayes = pd.read_csv(snakemake.input.bayes, keep_default_na=False, na_values=[""])
table = comparison.frequentist_vs_bayesian(estimates, details, analysis, bayes=bayes, level=p.level,
                                           median_scale=p.median_scale, **p.margins)
inputs = dict(snakemake.input.items())
provenance.write_csv(table, snakemake.output.table)
provenance.write_text(snakemake.output.markdown, tables.to_markdown(
    comparison.comparison_view(table), "Frequentist and Bayesian pooled estimates side by side",
    stamp, caption=p.caption,
    headers={**tables.HEADERS, "dl": "DL", "reml_hksj": "REML-HKSJ", "glmm": "GLMM", "bayes": "Bayesian",
             "exact": "Exact", "flags": "Where they disagree"}))
for path in (snakemake.output.table, snakemake.output.markdown):
    provenance.write_sidecar(path, rule=snakemake.rule, inputs=inputs,
                             config={"level": p.level, "median_scale": p.median_scale, **p.margins},
                             rows=provenance.analysis_rows(analysis))
