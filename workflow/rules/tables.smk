# Publication tables, each as CSV (machines) and Markdown (people) with the provenance stamp:
# Table 1 study characteristics, Tables 2-3 quality, Table 4 adverse events, Table 5 subgroups,
# the main results, and the reproduction of every estimate the review published.


rule make_tables:
    input:
        unpack(lambda wc: optional_inputs("quality_minors", "quality_jbi", "published")),
        studies=INPUTS["studies"],
        analysis="data/processed/analysis_data.csv",
        coverage="data/processed/outcome_coverage.csv",
        estimates="results/tables/pooled_estimates.csv",
        subgroup_tests="results/tables/subgroup_tests.csv",
    output:
        [f"results/tables/{name}.{ext}" for name in table_names() for ext in ("csv", "md")],
    log:
        "results/logs/make_tables.log",
    conda:
        "../../envs/pool.yaml"
    params:
        names=table_names(),
        methods=PRIMARY_BY_KIND,
        conventions=pool.Conventions.from_settings(config["frequentist"]).caption(),
        subgroup_column=config["subgroup_column"],
        subgroup_labels=SUBGROUP_LABELS,
        stamp=STAMP,
    script:
        "../scripts/make_tables.py"
