"""Adapter for rule make_tables: build each publication table, write CSV + Markdown + provenance."""

import sys

import _src_path  # noqa: F401  (src/ importable in any environment, e.g. --sdm conda)

import pandas as pd

from singlearm import provenance, tables

sys.stderr = open(snakemake.log[0], "w")
p = snakemake.params
stamp = provenance.code_stamp(p.stamp, p.code)  # version, code that made this, inputs
inputs = dict(snakemake.input.items())
read = {key: pd.read_csv(path, keep_default_na=False, na_values=[""]) for key, path in inputs.items()}
methods = dict(p.methods)
caption = (f"Proportions pooled with {methods['proportion']}, Kaplan-Meier rates with {methods['survival_rate']}, "
           f"medians with {methods['median']}; estimates with 95% CI in percent (medians in months). "
           f"{p.conventions}")
for name in p.names:
    title, used = tables.TABLES[name]
    table, shown = tables.build(name, read, inputs, methods=methods, subgroup_labels=p.subgroup_labels,
                                subgroup_column=p.subgroup_column)
    rows = provenance.analysis_rows(read["analysis"]) if "analysis" in used else None
    for path in (f"results/tables/{name}.csv", f"results/tables/{name}.md"):
        if path.endswith(".csv"):
            provenance.write_csv(table, path)
        else:
            provenance.write_text(path, tables.to_markdown(shown, title, stamp,
                                                           caption=caption if "estimates" in used else None))
        provenance.write_sidecar(path, rule=snakemake.rule, inputs={key: inputs[key] for key in used},
                                 config={"methods": methods, "subgroup_column": p.subgroup_column}, rows=rows)
