"""Adapter for rule make_tables: build each publication table, write CSV + Markdown + provenance."""

import sys

import _src_path  # noqa: F401  (src/ importable in any environment, e.g. --sdm conda)

import pandas as pd

from singlearm import provenance, reproduction, tables

sys.stderr = open(snakemake.log[0], "w")
p = snakemake.params
stamp = provenance.code_stamp(p.stamp, p.code)  # version, code that made this, inputs
inputs = dict(snakemake.input.items())
read = {key: pd.read_csv(path, keep_default_na=False, na_values=[""]) for key, path in inputs.items()}
methods = dict(p.methods)
TITLES = {
    "table1_characteristics": ("Table 1. Characteristics of the included studies", ["studies"]),
    "table2_minors": ("Table 2. Quality of the prospective studies (MINORS)", ["quality_minors"]),
    "table3_jbi": ("Table 3. Quality of the retrospective studies (JBI case-series checklist)", ["quality_jbi"]),
    "table4_adverse_events": ("Table 4. Pooled incidence of adverse events, any grade and grade \u2265 3",
                              ["estimates", "analysis"]),
    "table5_subgroups": ("Table 5. Subgroup analyses", ["estimates", "subgroup_tests", "analysis"]),
    "main_results": ("Main results (pooled over all cohorts)", ["estimates", "analysis"]),
    "reproduction": ("Reproduction of the review's published estimates",
                     ["published", "estimates", "coverage", "studies", "analysis"]),
}
BUILD = {
    "table1_characteristics": lambda: tables.table1_characteristics(read["studies"], p.subgroup_labels,
                                                                    p.subgroup_column),
    "table2_minors": lambda: tables.table2_minors(read["quality_minors"], inputs.get("quality_minors")),
    "table3_jbi": lambda: tables.table3_jbi(read["quality_jbi"], inputs.get("quality_jbi")),
    "table4_adverse_events": lambda: tables.table4_adverse_events(read["estimates"], methods),
    "table5_subgroups": lambda: tables.table5_subgroups(read["estimates"], read["subgroup_tests"], methods,
                                                        read["analysis"]),
    "main_results": lambda: tables.main_results(read["estimates"], methods, read["analysis"]),
    "reproduction": lambda: reproduction.reproduction(read["published"], read["estimates"], read["coverage"],
                                                      read["studies"], methods, p.subgroup_column,
                                                      published_path=inputs.get("published")),
}
READABLE = {"reproduction": reproduction.reproduction_summary}  # the Markdown of these shows a reading form
CAPTION = (f"Proportions pooled with {methods['proportion']}, Kaplan-Meier rates with {methods['survival_rate']}, "
           f"medians with {methods['median']}; estimates with 95% CI in percent (medians in months). "
           f"{p.conventions}")
for name in p.names:
    title, used = TITLES[name]
    table = BUILD[name]()
    used_inputs = {key: inputs[key] for key in used}
    rows = provenance.analysis_rows(read["analysis"]) if "analysis" in used else None
    for ext, write in (("csv", lambda path: provenance.write_csv(table, path)),
                       ("md", lambda path: provenance.write_text(path, tables.to_markdown(
                           READABLE.get(name, lambda x: x)(table), title, stamp,
                           caption=CAPTION if "estimates" in used else None)))):
        path = f"results/tables/{name}.{ext}"
        write(path)
        provenance.write_sidecar(path, rule=snakemake.rule, inputs=used_inputs,
                                 config={"methods": methods, "subgroup_column": p.subgroup_column}, rows=rows)
