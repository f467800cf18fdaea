# Frequentist pooling: every outcome overall and per subgroup, all methods, in ONE job (a Python
# start-up costs more than a whole outcome's arithmetic: 24 one-outcome jobs took 24 start-ups for
# about 10 s of pooling); one file set per outcome, then gathered into the result tables.


rule pool_outcome:
    input:
        analysis="data/processed/analysis_data.csv",
    output:
        estimates=expand("results/pooled/{outcome}/estimates.csv", outcome=SLUGS),
        details=expand("results/pooled/{outcome}/details.csv", outcome=SLUGS),
        subgroup_tests=expand("results/pooled/{outcome}/subgroup_tests.csv", outcome=SLUGS),
        studies=expand("results/pooled/{outcome}/studies.csv", outcome=SLUGS),
        median_summary=expand("results/pooled/{outcome}/median_summary.csv", outcome=SLUGS),
    log:
        "results/logs/pool_outcome.log",
    conda:
        "../../envs/pool.yaml"
    params:
        outcome=SLUGS,
        primary={o: primary_method(o) for o in OUTCOMES},
        levels=SUBGROUP_LEVELS,
        settings=config["frequentist"],
    script:
        "../scripts/pool_outcome.py"


rule gather_pooled:
    input:
        # frequentist only: the Bayesian rows live in bayes_estimates.csv (a frequentist output never waits on them)
        estimates=expand("results/pooled/{outcome}/estimates.csv", outcome=SLUGS),
        details=expand("results/pooled/{outcome}/details.csv", outcome=SLUGS),
        subgroup_tests=expand("results/pooled/{outcome}/subgroup_tests.csv", outcome=SLUGS),
        studies=expand("results/pooled/{outcome}/studies.csv", outcome=SLUGS),
        median_summary=expand("results/pooled/{outcome}/median_summary.csv", outcome=SLUGS),
    output:
        estimates="results/tables/pooled_estimates.csv",
        details="results/tables/pooled_details.csv",
        subgroup_tests="results/tables/subgroup_tests.csv",
        studies="results/tables/study_estimates.csv",
        median_summary="results/tables/median_summary.csv",
    log:
        "results/logs/gather_pooled.log",
    conda:
        "../../envs/pool.yaml"
    script:
        "../scripts/gather_tables.py"
