# Figures, each as vector PDF and 300-dpi PNG in one style (singlearm.plots), stamped with the
# workflow version and a hash of the raw inputs and config, each with its provenance sidecar.


rule plot_forest:
    input:
        analysis="data/processed/analysis_data.csv",
        studies="results/tables/study_estimates.csv",
        estimates="results/tables/pooled_estimates.csv",
        details="results/tables/pooled_details.csv",
        subgroup_tests="results/tables/subgroup_tests.csv",
    output:
        report(figure_files(FOREST), caption="../report/forest.rst", category="Forest plots"),
    log:
        "results/logs/plot_forest.log",
    conda:
        "../../envs/figures.yaml"
    params:
        outcomes={o: f"forest_{oc.slug(o)}" for o in OUTCOMES},
        methods={o: primary_method(o) for o in OUTCOMES},
        subgroup_labels=SUBGROUP_LABELS,
        stamp=STAMP,
    script:
        "../scripts/plot_figures.py"


rule plot_robustness:
    input:
        analysis="data/processed/analysis_data.csv",
        estimates="results/tables/pooled_estimates.csv",
        leave_one_out="results/tables/leave_one_out.csv",
        influence="results/tables/influence.csv",
        funnel="results/tables/funnel_data.csv",
        publication_bias="results/tables/publication_bias.csv",
    output:
        report(figure_files(ROBUSTNESS_FIGURES), caption="../report/robustness.rst", category="Sensitivity and bias"),
    log:
        "results/logs/plot_robustness.log",
    conda:
        "../../envs/figures.yaml"
    params:
        outcomes={o: oc.slug(o) for o in ROBUST},
        methods={o: primary_method(o) for o in ROBUST},
        stamp=STAMP,
    script:
        "../scripts/plot_figures.py"


rule plot_bubble:
    input:
        analysis="data/processed/analysis_data.csv",
        table="results/tables/meta_regression.csv",
        points="results/tables/meta_regression_points.csv",
    output:
        report(
            figure_files([s for o in META_OUTCOMES for s in BUBBLES[o]]),
            caption="../report/meta_regression.rst",
            category="Meta-regression",
        ),
    log:
        "results/logs/plot_bubble.log",
    conda:
        "../../envs/figures.yaml"
    params:
        outcomes={o: oc.slug(o) for o in META_OUTCOMES},
        moderators=CONTINUOUS_MODERATORS,
        stamp=STAMP,
    script:
        "../scripts/plot_figures.py"


rule plot_method_comparison:
    input:
        analysis="data/processed/analysis_data.csv",
        comparison="results/tables/frequentist_vs_bayesian.csv",
    output:
        report(
            figure_files(["frequentist_vs_bayesian"]),
            caption="../report/comparison.rst",
            category="Frequentist vs Bayesian",
        ),
    log:
        "results/logs/plot_method_comparison.log",
    conda:
        "../../envs/figures.yaml"
    params:
        subgroup_labels=SUBGROUP_LABELS,
        stamp=STAMP_WITH_BAYES,
    script:
        "../scripts/plot_figures.py"


rule plot_ae_overview:
    input:
        analysis="data/processed/analysis_data.csv",
        estimates="results/tables/pooled_estimates.csv",
    output:
        report(figure_files(["ae_overview"]), caption="../report/ae_overview.rst", category="Adverse events"),
    log:
        "results/logs/plot_ae_overview.log",
    conda:
        "../../envs/figures.yaml"
    params:
        method=config["primary_method"],
        stamp=STAMP,
    script:
        "../scripts/plot_figures.py"


rule plot_prisma:
    input:
        prisma=INPUTS["prisma"] or [],
    output:
        report(figure_files(["prisma_flow"]), caption="../report/prisma.rst", category="Study selection"),
    log:
        "results/logs/plot_prisma.log",
    conda:
        "../../envs/figures.yaml"
    params:
        stamp=STAMP,
    script:
        "../scripts/plot_figures.py"


rule plot_quality:
    input:
        unpack(lambda wc: optional_inputs("quality_minors", "quality_jbi")),
    output:
        report(figure_files(["quality"]), caption="../report/quality.rst", category="Study quality"),
    log:
        "results/logs/plot_quality.log",
    conda:
        "../../envs/figures.yaml"
    params:
        stamp=STAMP,
    script:
        "../scripts/plot_figures.py"
