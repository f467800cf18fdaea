# The manifest of every output (path, sha256, bytes, rule, version): what a reader checks a copy
# of the results against. The HTML report is `make report` (snakemake --report).


rule write_manifest:
    input:
        all_outputs(),
    output:
        "results/MANIFEST.csv",
    log:
        "results/logs/write_manifest.log",
    conda:
        "../../envs/clean.yaml"
    script:
        "../scripts/write_manifest.py"
