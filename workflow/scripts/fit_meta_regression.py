"""Adapter for rule fit_meta_regression: every outcome's meta-regression on the moderators, with provenance."""

import sys

import _src_path  # noqa: F401  (src/ importable in any environment, e.g. --sdm conda)

import pandas as pd

from singlearm import moderation, provenance, sheets

sys.stderr = open(snakemake.log[0], "w")
p = snakemake.params
analysis = pd.read_csv(snakemake.input.analysis)
studies = sheets.read_sheet(snakemake.input.studies, sheets.load_schema(p.studies_schema))
result = moderation.meta_regressions(analysis, studies, list(p.outcomes), dict(p.primary), list(p.moderators),
                                     dict(p.reference), p.min_k, p.level)
config = {"moderators": list(p.moderators), "reference": dict(p.reference), "min_k": p.min_k, "level": p.level}
rows = provenance.analysis_rows(analysis[analysis["outcome"].isin(list(p.outcomes))])
for key in ("table", "points"):
    provenance.write_csv(getattr(result, key), snakemake.output[key])
    provenance.write_sidecar(snakemake.output[key], rule=snakemake.rule, inputs=dict(snakemake.input.items()),
                             config=config, rows=rows)
