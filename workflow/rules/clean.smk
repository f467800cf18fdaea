# Data cleaning: validated extraction sheet -> tidy analysis rows, one log line per raw row.


rule clean_extraction:
    input:
        extraction=INPUTS["extraction"],
        studies=INPUTS["studies"],
    output:
        analysis="data/processed/analysis_data.csv",
        log_table="data/processed/cleaning_log.csv",
        coverage="data/processed/outcome_coverage.csv",
    log:
        "results/logs/clean_extraction.log",
    conda:
        "../../envs/clean.yaml"
    params:
        subgroup_column=config["subgroup_column"],
    script:
        "../scripts/clean_extraction.py"
