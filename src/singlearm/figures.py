"""Which figures the workflow draws, from which rows of its tables.

Each function takes the workflow's tables, picks the rows one figure needs and calls the
drawing function of :mod:`singlearm.plots`. It returns ``(stem, figure, outcomes)`` triples:
the file stem under ``results/figures/``, the figure, and the outcomes whose analysis rows
the figure shows (for its provenance sidecar; ``None`` for figures drawn from other sheets).
"""

import pandas as pd

from . import bias, plots
from . import formatting as fmt
from . import outcomes as oc


VALUE_HEADER = {oc.PROPORTION: "Proportion, % (95% CI)", oc.SURVIVAL_RATE: "Kaplan-Meier rate, % (95% CI)",
                oc.MEDIAN: "Median, months (95% CI)"}


def _footnotes(details, outcome, method):
    """The overall fit's flags (Freeman-Tukey safety net, approximations) as forest-plot footnotes."""
    d = details[(details["outcome"] == outcome) & (details["method"] == method) & (details["subgroup"] == "overall")]
    flags = d["flags"].fillna("").astype(str).iloc[0] if len(d) else ""
    shown = [f for f in flags.split("; ") if f and not f.startswith(("single study", "exact Clopper", "reported CI"))]
    notes = [f"{'Freeman-Tukey: ' if method.startswith('PFT') else 'Note: '}{f}." for f in shown]
    # the prediction interval's convention (config frequentist.prediction_df), where one is drawn
    conventions = d["conventions"].fillna("").astype(str).iloc[0] if len(d) and "conventions" in d else ""
    pi = [c[len("PI: "):] for c in conventions.split("; ") if c.startswith("PI: ")]
    return notes + [f"Prediction interval: {pi[0]}."] if pi else notes


def forest_figures(studies, estimates, subgroup_tests, details, stems, methods, subgroup_labels=None):
    """One forest plot per outcome, by its primary method (``stems``: outcome -> file stem), subgroups
    headed by ``subgroup_labels`` (:func:`singlearm.formatting.subgroup_labels`)."""
    out = []
    for outcome, stem in stems.items():
        method, kind = methods[outcome], oc.kind(outcome)
        fig = plots.forest_plot(studies[studies["outcome"] == outcome],
                                estimates[(estimates["outcome"] == outcome) & (estimates["method"] == method)],
                                subgroup_tests[subgroup_tests["outcome"] == outcome], outcome=outcome,
                                method=method, label=fmt.outcome_label(outcome), proportion=kind != oc.MEDIAN,
                                value_header=VALUE_HEADER[kind], footnotes=_footnotes(details, outcome, method),
                                subgroup_labels=subgroup_labels)
        out.append((stem, fig, [outcome]))
    return out


def robustness_figures(estimates, leave_one_out, influence, funnel, slugs, methods):
    """Funnel, leave-one-out and Baujat plots of each outcome (overall), on its primary method's scale."""
    out = []
    for outcome, slug in slugs.items():
        method, label = methods[outcome], fmt.outcome_label(outcome)
        proportion = oc.kind(outcome) != oc.MEDIAN

        def overall(table, o=outcome):
            return table[(table["outcome"] == o) & (table["subgroup"] == "overall")]

        f = overall(funnel)
        seen, filled = f[~f["imputed"].astype(bool)], f[f["imputed"].astype(bool)]
        scale = SCALE_LABELS[f["scale"].iloc[0]]
        benchmark = "contours" in f and str(f["contours"].iloc[0]).startswith("p0")
        out.append((f"funnel_{slug}", plots.funnel_plot(seen["yi"], seen["sei"], float(f["pooled_b"].iloc[0]),
                                                        filled_yi=filled["yi"], filled_sei=filled["sei"],
                                                        label=label, scale_label=scale,
                                                        note=bias.underpowered_note(len(seen)),
                                                        refline=float(f["refline"].iloc[0]) if benchmark else None,
                                                        refline_label=str(f["contours"].iloc[0]) if benchmark else None),
                    [outcome]))
        full = overall(estimates)
        full = full[full["method"] == method].iloc[0]
        out.append((f"leave_one_out_{slug}", plots.leave_one_out_plot(overall(leave_one_out), full, label=label,
                                                                      proportion=proportion), [outcome]))
        out.append((f"baujat_{slug}", plots.baujat_plot(overall(influence), label=label), [outcome]))
    return out


SCALE_LABELS = {"pft": "Freeman-Tukey double arcsine", "logit": "logit", "months": "months", "log": "log months",
                "cloglog": "log(-log S)", "raw": "proportion"}


def bubble_stem(slug, moderator):
    """File stem of the bubble plot of an outcome (slug) on a moderator."""
    return f"bubble_{slug}_{moderator}"


def bubble_figures(table, points, slugs, moderators):
    """One bubble plot per outcome (``slugs``: outcome -> slug) and continuous moderator, on the
    primary method's analysis scale; a model that was not run is drawn without a line, saying why."""
    out = []
    for outcome, slug in slugs.items():
        t = table[table["outcome"] == outcome]
        why = str(t["note"].fillna("").iloc[0]) if len(t) else "not run"
        for mod in moderators:
            p = points[(points["outcome"] == outcome) & (points["moderator"] == mod)]
            study, line = p[p["kind"] == "study"], p[p["kind"] == "line"]
            if study.empty:
                raise ValueError(f"no meta-regression points for {outcome} on {mod}: {why}")
            held = str(study["held_at"].fillna("").iloc[0])
            slope = t[t["term"] == mod]
            text = ""
            if len(slope):
                r = slope.iloc[0]
                text = (f"Slope {r['estimate']:.4g} (95% CI {r['ci_lb']:.4g} to {r['ci_ub']:.4g}), "
                        f"{fmt.p_text(r['pval'])}; QM = {r['qm']:.3g} on {int(r['qm_df'])} df, "
                        f"{fmt.p_text(r['qm_p'])}; R\u00b2 = {r['r2']:.0f}%; "
                        f"{r['method']} (tau\u00b2 by {r['estimator']}, test {r['test']}).")
            if held:
                text += f" Line: {held}."
            fig = plots.bubble_plot(study, line, label=fmt.outcome_label(outcome), moderator=mod,
                                    scale_label=SCALE_LABELS.get(str(study["scale"].iloc[0]), ""), note=text.strip())
            out.append((bubble_stem(slug, mod), fig, [outcome]))
    return out


def comparison_figures(comparison, subgroup_labels=None):
    """Every outcome (all cohorts pooled): each method's estimate and interval on one axis.

    ``comparison`` is ``frequentist_vs_bayesian.csv`` (one row per outcome x subgroup, a slot
    per method). Subgroups are left to that table: with them the figure would run to some
    sixty rows and the comparison would be lost in it.
    """
    wide = comparison[comparison["subgroup"] == "overall"]
    long = []
    for slot in ("dl", "reml_hksj", "glmm", "bayes", "exact"):
        if f"{slot}_method" not in wide:
            continue
        part = wide[wide[f"{slot}_method"].notna()]
        long.append(pd.DataFrame({"outcome": part["outcome"], "subgroup": part["subgroup"], "kind": part["kind"],
                                  "label": [fmt.outcome_label(o) for o in part["outcome"]],
                                  "method": part[f"{slot}_method"],
                                  **{f: part[f"{slot}_{f}"] for f in ("estimate", "ci_low", "ci_high")}}))
    order = {o: i for i, o in enumerate(wide["outcome"])}
    table = pd.concat(long).sort_values("outcome", key=lambda c: c.map(order), kind="stable")
    return [("frequentist_vs_bayesian", plots.method_comparison(table, subgroup_labels),
             list(dict.fromkeys(table["outcome"])))]


def ae_figures(estimates, method):
    """Pooled incidence of every adverse event, any grade and grade >= 3 side by side."""
    ae = estimates[estimates["outcome"].str.startswith("ae_") & (estimates["method"] == method)]
    return [("ae_overview", plots.ae_overview(ae), list(dict.fromkeys(ae["outcome"])))]


def prisma_figures(counts):
    """The PRISMA 2020 flow diagram."""
    return [("prisma_flow", plots.prisma_flow(counts), None)]


def quality_figures(minors=None, jbi=None):
    """MINORS and JBI items as a traffic-light grid."""
    return [("quality", plots.quality_grid(minors, jbi), None)]
