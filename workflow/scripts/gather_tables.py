"""Adapter for gather rules: stack per-outcome tables into one table per output, with provenance.

Each output's provenance lists the per-outcome inputs and carries over the analysis rows they used.
"""

import json
import sys

import _src_path  # noqa: F401  (src/ importable in any environment, e.g. --sdm conda)

import pandas as pd

from singlearm import provenance

sys.stderr = open(snakemake.log[0], "w")
for key, path in snakemake.output.items():
    parts = [pd.read_csv(p) for p in snakemake.input[key]]
    parts = [p for p in parts if not p.empty] or parts[:1]
    provenance.write_csv(pd.concat(parts, ignore_index=True), path)
    rows = []
    for p in snakemake.input[key]:
        rows.extend(json.loads(provenance.sidecar_path(p).read_text()).get("rows", []))
    provenance.write_sidecar(path, rule=snakemake.rule, inputs={key: list(snakemake.input[key])}, config={},
                             rows=rows)
