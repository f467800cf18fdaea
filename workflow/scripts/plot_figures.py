"""Adapter for the plot_* rules: read the tables, draw the rule's figures, save them with provenance."""

import sys

import _src_path  # noqa: F401  (src/ importable in any environment, e.g. --sdm conda)

import pandas as pd

from singlearm import figures, plots, provenance

sys.stderr = open(snakemake.log[0], "w")
p = snakemake.params
stamp = provenance.code_stamp(p.stamp, p.code)  # version, code that made this, inputs
inputs = dict(snakemake.input.items())
t = {key: pd.read_csv(path, keep_default_na=False, na_values=[""]) for key, path in inputs.items()}
DRAW = {
    "plot_forest": lambda: figures.forest_figures(t["studies"], t["estimates"], t["subgroup_tests"], t["details"],
                                                  p.outcomes, p.methods, p.subgroup_labels),
    "plot_robustness": lambda: figures.robustness_figures(t["estimates"], t["leave_one_out"], t["influence"],
                                                          t["funnel"], p.outcomes, p.methods),
    "plot_bubble": lambda: figures.bubble_figures(t["table"], t["points"], p.outcomes, p.moderators),
    "plot_method_comparison": lambda: figures.comparison_figures(t["comparison"], p.subgroup_labels),
    "plot_ae_overview": lambda: figures.ae_figures(t["estimates"], p.method),
    "plot_prisma": lambda: figures.prisma_figures(t["prisma"]),
    "plot_quality": lambda: figures.quality_figures(t.get("quality_minors"), t.get("quality_jbi")),
}
for stem, fig, outcomes in DRAW[snakemake.rule]():
    rows = None
    if outcomes is not None:
        rows = provenance.analysis_rows(t["analysis"][t["analysis"]["outcome"].isin(outcomes)])
    for path in plots.save_figure(fig, f"results/figures/{stem}", stamp):
        provenance.write_sidecar(path, rule=snakemake.rule, inputs=inputs, config={"stamp": stamp}, rows=rows)
