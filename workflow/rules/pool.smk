# Frequentist pooling: every outcome (one job each) overall and per subgroup, all methods;
# then the per-outcome results gathered into the result tables.


rule pool_outcome:
    input:
        analysis="data/processed/analysis_data.csv",
    output:
        estimates="results/pooled/{outcome}/estimates.csv",
        details="results/pooled/{outcome}/details.csv",
        subgroup_tests="results/pooled/{outcome}/subgroup_tests.csv",
        studies="results/pooled/{outcome}/studies.csv",
        median_summary="results/pooled/{outcome}/median_summary.csv",
    params:
        outcome=lambda wc: SLUGS[wc.outcome],
        primary=lambda wc: primary_method(SLUGS[wc.outcome]),
        levels=SUBGROUP_LEVELS,
        settings=config["frequentist"],
    log:
        "results/logs/pool_outcome/{outcome}.log",
    conda:
        "../../envs/pool.yaml"
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
