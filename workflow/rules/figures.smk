# Figures, each as vector PDF and 300-dpi PNG in one style (singlearm.plots), stamped with the
# workflow version and a hash of the raw inputs and config, each with its provenance sidecar.
# One job draws every frequentist figure family: a Python and Matplotlib start-up per family cost
# more CPU than drawing the small families (issue 13). The comparison with the Bayesian fits is its
# own job, so that no frequentist figure waits on MCMC or reruns with a Bayesian setting.

# The tables each family is drawn from; its figures' sidecars list these, not the whole job's inputs.
FIGURE_INPUTS = {
    "forest": {
        "analysis": "data/processed/analysis_data.csv",
        "studies": "results/tables/study_estimates.csv",
        "estimates": "results/tables/pooled_estimates.csv",
        "details": "results/tables/pooled_details.csv",
        "subgroup_tests": "results/tables/subgroup_tests.csv",
    },
    "robustness": {
        "analysis": "data/processed/analysis_data.csv",
        "estimates": "results/tables/pooled_estimates.csv",
        "leave_one_out": "results/tables/leave_one_out.csv",
        "influence": "results/tables/influence.csv",
        "funnel": "results/tables/funnel_data.csv",
        "publication_bias": "results/tables/publication_bias.csv",
    },
    "bubble": {
        "analysis": "data/processed/analysis_data.csv",
        "meta_regression": "results/tables/meta_regression.csv",
        "meta_regression_points": "results/tables/meta_regression_points.csv",
    },
    "ae": {"analysis": "data/processed/analysis_data.csv", "estimates": "results/tables/pooled_estimates.csv"},
    "prisma": optional_inputs("prisma"),
    "quality": optional_inputs("quality_minors", "quality_jbi"),
}
FIGURES = figure_families()


rule plot_figures:
    input:
        **{name: path for family in FIGURE_INPUTS.values() for name, path in family.items()},
    output:
        forest=report(figure_files(FIGURES["forest"]), caption="../report/forest.rst", category="Forest plots"),
        robustness=report(
            figure_files(FIGURES["robustness"]), caption="../report/robustness.rst", category="Sensitivity and bias"
        ),
        bubble=report(
            figure_files(FIGURES["bubble"]), caption="../report/meta_regression.rst", category="Meta-regression"
        ),
        ae=report(figure_files(FIGURES["ae"]), caption="../report/ae_overview.rst", category="Adverse events"),
        prisma=report(figure_files(FIGURES["prisma"]), caption="../report/prisma.rst", category="Study selection"),
        quality=report(figure_files(FIGURES["quality"]), caption="../report/quality.rst", category="Study quality"),
    log:
        "results/logs/plot_figures.log",
    conda:
        "../../envs/figures.yaml"
    params:
        uses={family: list(tables) for family, tables in FIGURE_INPUTS.items()},
        forest={o: f"forest_{oc.slug(o)}" for o in OUTCOMES},
        robustness={o: oc.slug(o) for o in ROBUST},
        bubble={o: oc.slug(o) for o in META_OUTCOMES},
        methods={o: primary_method(o) for o in OUTCOMES},
        moderators=CONTINUOUS_MODERATORS,
        ae_method=config["primary_method"],
        subgroup_labels=SUBGROUP_LABELS,
        stamp=STAMP,
    script:
        "../scripts/plot_figures.py"


rule plot_method_comparison:
    input:
        analysis="data/processed/analysis_data.csv",
        comparison="results/tables/frequentist_vs_bayesian.csv",
    output:
        comparison=report(
            figure_files(FIGURES["comparison"]),
            caption="../report/comparison.rst",
            category="Frequentist vs Bayesian",
        ),
    log:
        "results/logs/plot_method_comparison.log",
    conda:
        "../../envs/figures.yaml"
    params:
        uses={"comparison": ["analysis", "comparison"]},
        subgroup_labels=SUBGROUP_LABELS,
        stamp=STAMP_WITH_BAYES,
    script:
        "../scripts/plot_figures.py"
