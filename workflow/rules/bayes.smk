# Bayesian random-effects counterpart: every outcome x subgroup in ONE PyMC model (compiled and
# sampled once), a convergence gate with one retry, a tau prior-sensitivity run, and the
# frequentist-vs-Bayesian comparison.


rule fit_bayes:
    input:
        analysis="data/processed/analysis_data.csv",
    output:
        estimates="results/bayes/main/estimates.csv",
        summary="results/bayes/main/summary.csv",
        diagnostics="results/bayes/main/diagnostics.csv",
        probabilities="results/tables/posterior_probabilities.csv",
        posteriors=[f"results/bayes/posterior/{name}.nc" for name in BAYES_FITS.values()],
    params:
        run="main",
        priors={"main": config["bayes"]["priors"]},
        sampler=config["bayes"]["sampler"],
        gate=config["bayes"]["gate"],
        min_k=1,
        posterior_files=BAYES_FITS,
        **BAYES_PARAMS,
    threads: 4
    resources:
        mem_mb=3000,
    log:
        "results/logs/fit_bayes.log",
    conda:
        "../../envs/bayes.yaml"
    script:
        "../scripts/fit_bayes.py"


rule fit_bayes_prior_sensitivity:
    input:
        analysis="data/processed/analysis_data.csv",
        main_summary="results/bayes/main/summary.csv",
    output:
        summary="results/bayes/sensitivity/summary.csv",
        diagnostics="results/bayes/sensitivity/diagnostics.csv",
        table="results/tables/prior_sensitivity.csv",
        posteriors=directory("results/bayes/prior_sensitivity"),
    params:
        run="sensitivity",
        priors=config["bayes"]["sensitivity_priors"],
        main_priors=config["bayes"]["priors"],
        sampler=config["bayes"]["sensitivity_sampler"],
        gate=config["bayes"]["gate"],
        min_k=config["bayes"]["sensitivity_min_k"],
        **BAYES_PARAMS,
    threads: 4
    resources:
        mem_mb=3000,
    log:
        "results/logs/fit_bayes_prior_sensitivity.log",
    conda:
        "../../envs/bayes.yaml"
    script:
        "../scripts/fit_bayes.py"


rule gather_bayes_diagnostics:
    input:
        diagnostics=["results/bayes/main/diagnostics.csv", "results/bayes/sensitivity/diagnostics.csv"],
    output:
        diagnostics="results/tables/bayes_diagnostics.csv",
    log:
        "results/logs/gather_bayes_diagnostics.log",
    conda:
        "../../envs/pool.yaml"
    script:
        "../scripts/gather_tables.py"


rule compare_methods:
    input:
        estimates="results/tables/pooled_estimates.csv",
        details="results/tables/pooled_details.csv",
        analysis="data/processed/analysis_data.csv",
    output:
        table="results/tables/frequentist_vs_bayesian.csv",
        markdown="results/tables/frequentist_vs_bayesian.md",
    params:
        level=config["frequentist"]["level"],
        median_scale=config["bayes"]["median_scale"],
        stamp=STAMP_WITH_BAYES,
        caption=(
            "Pooled estimate (95% interval), percent for proportions and months for medians. DL: "
            "Freeman-Tukey with DerSimonian-Laird (medians: DL on months); REML-HKSJ: REML with the "
            "Hartung-Knapp-Sidik-Jonkman CI; GLMM: binomial-normal GLMM (ML); Bayesian: binomial-normal "
            "(medians: normal-normal) PyMC model, posterior median and 95% equal-tailed credible interval."
        ),
        margins={key: config["bayes"][key] for key in ("estimate_margin", "median_margin", "width_ratio")},
    log:
        "results/logs/compare_methods.log",
    conda:
        "../../envs/pool.yaml"
    script:
        "../scripts/compare_methods.py"
