"""Adapter for the plot_* rules: draw each figure family the rule outputs, save every figure with provenance."""

import sys

import _src_path  # noqa: F401  (src/ importable in any environment, e.g. --sdm conda)

import pandas as pd

from singlearm import figures, plots, provenance

sys.stderr = open(snakemake.log[0], "w")
p = snakemake.params
stamp = provenance.code_stamp(p.stamp, p.code)  # version, code that made this, inputs
inputs = dict(snakemake.input.items())
version = provenance.workflow_version()  # one git state for every sidecar of the job
t = {key: pd.read_csv(path, keep_default_na=False, na_values=[""]) for key, path in inputs.items()}
analysis = t["analysis"]
DRAW = {
    "forest": lambda: figures.forest_figures(t["studies"], t["estimates"], t["subgroup_tests"], t["details"],
                                             p.forest, p.methods, p.subgroup_labels),
    "robustness": lambda: figures.robustness_figures(t["estimates"], t["leave_one_out"], t["influence"], t["funnel"],
                                                     p.robustness, p.methods),
    "bubble": lambda: figures.bubble_figures(t["meta_regression"], t["meta_regression_points"], p.bubble,
                                             p.moderators),
    "comparison": lambda: figures.comparison_figures(t["comparison"], p.subgroup_labels),
    "ae": lambda: figures.ae_figures(t["estimates"], p.ae_method),
    "prisma": lambda: figures.prisma_figures(t["prisma"]),
    "quality": lambda: figures.quality_figures(t.get("quality_minors"), t.get("quality_jbi")),
}
for family in snakemake.output.keys():
    if not snakemake.output[family]:
        continue  # a family this review has no data for (no AE outcome, no PRISMA sheet, ...)
    used = {key: inputs[key] for key in p.uses[family]}
    drawn = DRAW[family]()
    while drawn:  # a figure is let go once saved: its 300-dpi canvas holds some 20 MB
        stem, fig, outcomes = drawn.pop(0)
        rows = None if outcomes is None else provenance.analysis_rows(analysis[analysis["outcome"].isin(outcomes)])
        for path in plots.save_figure(fig, f"results/figures/{stem}", stamp):
            provenance.write_sidecar(path, rule=snakemake.rule, inputs=used, config={"stamp": stamp}, rows=rows,
                                     workflow=version)
