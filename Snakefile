# Meta-analysis of single-arm studies: clean -> pool (frequentist) -> outputs.
# The methods live in workflow/rules/, the statistics in src/singlearm/.

configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/clean.smk"
include: "workflow/rules/pool.smk"


rule all:
    input:
        all_outputs(),
    default_target: True
