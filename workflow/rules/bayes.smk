# Bayesian random-effects counterpart: exact posteriors of every fit by quadrature (with the prior
# sensitivity), every fit sampled on its own by PyMC and certified against its exact posterior,
# and the frequentist-vs-Bayesian comparison. Nothing here feeds a frequentist table.


rule fit_bayes:
    # One job, the whole stage: exact posteriors by quadrature (the prior sensitivity of every fit
    # with k >= 2, k = 1 reported as "single study", P(pooled value > t | data); binomial-normal
    # fits above bayes.exact_max_k by the Laplace approximation), computed while the sampler
    # compiles; then every fit's PyMC model sampled on its own and certified against its exact
    # posterior.
    input:
        analysis="data/processed/analysis_data.csv",
    output:
        summary="results/tables/bayes_exact_summary.csv",
        sensitivity="results/tables/prior_sensitivity.csv",
        probabilities="results/tables/posterior_probabilities.csv",
        estimates="results/tables/bayes_estimates.csv",
        diagnostics="results/tables/bayes_diagnostics.csv",
        posteriors=[f"results/bayes/posterior/{name}.nc" for name in BAYES_FITS.values()],
    log:
        "results/logs/fit_bayes.log",
    conda:
        "../../envs/bayes.yaml"
    threads: 4
    resources:
        mem_mb=3000,
    params:
        **BAYES_PARAMS,
        priors=config["bayes"]["priors"],
        exact_max_k=config["bayes"]["exact_max_k"],
        sampler=config["bayes"]["sampler"],
        gate=config["bayes"]["gate"],
        max_k=config["bayes"]["max_k"],
        posterior_files=BAYES_FITS,
    script:
        "../scripts/fit_bayes.py"


rule compare_methods:
    input:
        estimates="results/tables/pooled_estimates.csv",
        bayes="results/tables/bayes_estimates.csv",
        details="results/tables/pooled_details.csv",
        analysis="data/processed/analysis_data.csv",
    output:
        table="results/tables/frequentist_vs_bayesian.csv",
        markdown="results/tables/frequentist_vs_bayesian.md",
    log:
        "results/logs/compare_methods.log",
    conda:
        "../../envs/pool.yaml"
    params:
        level=config["frequentist"]["level"],
        median_scale=config["bayes"]["median_scale"],
        stamp=STAMP_WITH_BAYES,
        caption=(
            "Pooled estimate (95% interval), percent for rates and months for medians. DL: DerSimonian-Laird "
            "(proportions: Freeman-Tukey; medians: months; survival rates: log(-log S)); REML-HKSJ: REML with "
            "the Hartung-Knapp-Sidik-Jonkman CI; GLMM: binomial-normal GLMM (ML); Bayesian: binomial-normal "
            "(medians, survival rates: normal-normal) PyMC model certified against the exact posterior, "
            "posterior median and 95% equal-tailed credible interval; Exact: the same posterior by quadrature "
            "('single study': one study's own posterior under tau = 0, not a pooled value)."
        ),
        margins={key: config["bayes"][key] for key in ("estimate_margin", "median_margin", "width_ratio")},
    script:
        "../scripts/compare_methods.py"
