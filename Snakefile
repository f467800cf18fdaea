# Meta-analysis of single-arm studies: clean -> pool (frequentist, Bayesian) -> sensitivity and bias
# -> figures and tables.
# The methods live in workflow/rules/, the statistics in src/singlearm/.

# The default analysis's config, beside this file (so --directory works). Another review's
# --configfile replaces it rather than being merged into it, so no sarcoma sheet leaks in.
if not workflow.overwrite_configfiles:

    # Snakemake's own message for a YAML slip names neither file nor line; this one does.
    include: "workflow/rules/config_syntax.smk"

    configfile: f"{workflow.basedir}/config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/clean.smk"
include: "workflow/rules/pool.smk"
include: "workflow/rules/bayes.smk"
include: "workflow/rules/sensitivity.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        all_outputs(),
        "results/MANIFEST.csv",


# Last, once every rule exists: reruns follow the package code each rule's script imports, and each
# job's time and memory are recorded.
follow_code(workflow.rules)
benchmark_each(workflow.rules)
