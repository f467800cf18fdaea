# Sensitivity and small-study analyses on the primary method's scale: leave-one-out, influence
# and Baujat coordinates, Egger's and Begg's tests and trim-and-fill (each outcome x subgroup
# with k >= 3), and the alternative analyses of config "sensitivity.scenarios"; every outcome in
# one job, as for the pooling.


rule analyse_robustness:
    input:
        analysis="data/processed/analysis_data.csv",
        estimates=expand("results/pooled/{outcome}/estimates.csv", outcome=SLUGS),
    output:
        leave_one_out=expand("results/sensitivity/{outcome}/leave_one_out.csv", outcome=SLUGS),
        influence=expand("results/sensitivity/{outcome}/influence.csv", outcome=SLUGS),
        publication_bias=expand("results/sensitivity/{outcome}/publication_bias.csv", outcome=SLUGS),
        funnel=expand("results/sensitivity/{outcome}/funnel.csv", outcome=SLUGS),
        scenarios=expand("results/sensitivity/{outcome}/scenarios.csv", outcome=SLUGS),
    log:
        "results/logs/analyse_robustness.log",
    conda:
        "../../envs/pool.yaml"
    params:
        outcome=SLUGS,
        method={o: primary_method(o) for o in OUTCOMES},
        levels=SUBGROUP_LEVELS,
        scenarios=config["sensitivity"]["scenarios"],
        i2_change=config["sensitivity"]["i2_change"],
        bias_min_k=config.get("bias", {}).get("min_k", 10),
        p0=config.get("bias", {}).get("p0") or {},
        settings=config["frequentist"],
    script:
        "../scripts/analyse_robustness.py"


rule gather_robustness:
    input:
        leave_one_out=expand("results/sensitivity/{outcome}/leave_one_out.csv", outcome=SLUGS),
        influence=expand("results/sensitivity/{outcome}/influence.csv", outcome=SLUGS),
        publication_bias=expand("results/sensitivity/{outcome}/publication_bias.csv", outcome=SLUGS),
        funnel=expand("results/sensitivity/{outcome}/funnel.csv", outcome=SLUGS),
        scenarios=expand("results/sensitivity/{outcome}/scenarios.csv", outcome=SLUGS),
    output:
        leave_one_out="results/tables/leave_one_out.csv",
        influence="results/tables/influence.csv",
        publication_bias="results/tables/publication_bias.csv",
        funnel="results/tables/funnel_data.csv",
        scenarios="results/tables/sensitivity_summary.csv",
    log:
        "results/logs/gather_robustness.log",
    conda:
        "../../envs/pool.yaml"
    script:
        "../scripts/gather_tables.py"


# Meta-regression of each outcome's primary effect on the study-table moderators (config
# "moderators"; outcomes with k < meta_regression.min_k get a "not run" row).
rule fit_meta_regression:
    input:
        analysis="data/processed/analysis_data.csv",
        studies=INPUTS["studies"],
    output:
        table="results/tables/meta_regression.csv",
        points="results/tables/meta_regression_points.csv",
    log:
        "results/logs/fit_meta_regression.log",
    conda:
        "../../envs/pool.yaml"
    params:
        outcomes=OUTCOMES,
        primary={o: primary_method(o) for o in OUTCOMES},
        moderators=MODERATORS,
        reference=MODERATOR_REFERENCE,
        min_k=META_MIN_K,
        level=config["frequentist"]["level"],
        studies_schema=str(ROOT / "workflow" / "schemas" / "studies.schema.yaml"),
    script:
        "../scripts/fit_meta_regression.py"
