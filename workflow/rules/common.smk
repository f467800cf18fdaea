# Everything the rules share: config validation, input sheets validated at parse time (so bad
# data stop the run before any job writes a file), the outcome list, and path helpers.

import os
import shlex
import sys
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")

ROOT = Path(workflow.basedir)
# Parse time uses the package beside this workflow (rule scripts do the same via _src_path.py).
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("SINGLEARM_COMMAND", shlex.join(["snakemake", *sys.argv[1:]]))

from singlearm import (  # noqa: E402
    checks,
    cleaning,
    codehash,
    comparison,
    configcheck,
    formatting,
    moderation,
    pool,
    provenance,
    runguard,
    sheets,
)
from singlearm import outcomes as oc  # noqa: E402

# One run per directory: a second Snakemake here would delete this run's locks (see runguard).
# Jobs spawned as Snakemake subprocesses re-read this file and belong to the run that holds it.
if workflow.is_main_process:
    try:
        for stale in runguard.hold_run_directory(Path.cwd()):
            print(f"singlearm: removed {stale}, left by an interrupted run", file=sys.stderr)
    except runguard.RunDirectoryBusy as err:
        sys.exit(f"singlearm: {err}")

# One line per config problem (file, key, closest valid key), values jobs would reject included;
# then Snakemake's validate fills in the schema's defaults.
CONFIG_FILES = [Path(f).resolve() for f in workflow.configfiles]
try:
    configcheck.check_config(
        config,
        sheets.load_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml"),
        CONFIG_FILES,
        cleaning.ANALYSIS_COLUMNS,
    )
except configcheck.ConfigError as err:
    sys.exit(f"singlearm: {err}")
validate(config, "../schemas/config.schema.yaml")
# Sheet paths: relative ones are taken from the directory of the config file naming them.
SHEET_PATHS = configcheck.data_paths(config, CONFIG_FILES, ROOT)


def data_path(key):
    """Path of an input sheet, relative to the run directory when it lies inside it."""
    path = SHEET_PATHS.get(key)
    if path is None:
        return None
    path = Path(os.path.normpath(path))  # config/../data/raw/x.csv as data/raw/x.csv, in sidecars too
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def sheet_schema(name):
    return sheets.load_schema(ROOT / "workflow" / "schemas" / f"{name}.schema.yaml")


SHEETS = {
    "studies": "studies",
    "extraction": "extraction",
    "quality_minors": "quality_minors",
    "quality_jbi": "quality_jbi",
    "prisma": "prisma",
    "published": "published",
}
INPUTS = {key: data_path(key) for key in SHEETS}
TABLES = {key: sheets.read_sheet(path, sheet_schema(SHEETS[key])) for key, path in INPUTS.items() if path}
# Moderators are study-table columns: a missing, constant or unknown-reference one stops here; so
# does a subgroup_levels that does not list exactly the study table's subgroup values.
try:
    configcheck.check_moderators(config, TABLES["studies"], CONFIG_FILES, INPUTS["studies"])
    configcheck.check_subgroup_levels(config, TABLES["studies"], CONFIG_FILES, INPUTS["studies"])
except configcheck.ConfigError as err:
    sys.exit(f"singlearm: {err}")
CLEAN = cleaning.clean(
    TABLES["extraction"], TABLES["studies"], config["subgroup_column"], INPUTS["extraction"], INPUTS["studies"]
)
# The stamp on every figure and Markdown table: package version and a digest of the raw sheets and
# config (the adapters add the rule's code hash). No git commit: a docs-only commit would redraw every
# figure; the commit stays in the sidecars. Frequentist outputs leave the Bayesian settings out, so
# changing them redraws no frequentist figure; the comparison joining both stages keeps them.
STAMP = provenance.stamp(
    {key: path for key, path in INPUTS.items() if path}, {key: value for key, value in config.items() if key != "bayes"}
)
STAMP_WITH_BAYES = provenance.stamp({key: path for key, path in INPUTS.items() if path}, config)
OUTCOMES = cleaning.analysed_outcomes(CLEAN.analysis, config["outcomes"])
# Listed at the end of the run, where a user looks, not only in cleaning_log.csv.
EXCLUSIONS = checks.pooling_exclusions(CLEAN.log)


onsuccess:
    if EXCLUSIONS:
        print(
            f"\nNot pooled: {len(EXCLUSIONS)} extraction row(s) the workflow could not use "
            "(outcome | cohort | reason; all in data/processed/cleaning_log.csv):",
            file=sys.stderr,
        )
        print("\n".join(f"  {line}" for line in EXCLUSIONS), file=sys.stderr)


SLUGS = {oc.slug(o): o for o in OUTCOMES}
# Subgroup levels in the study table's order (sts, bone, mixed for the sarcoma review).
SUBGROUP_LEVELS = list(dict.fromkeys(TABLES["studies"][config["subgroup_column"]]))
# Their display labels, "overall" first: the review's names come from config, never from the package.
SUBGROUP_LABELS = formatting.subgroup_labels(SUBGROUP_LEVELS, config.get("subgroup_levels"))


wildcard_constraints:
    outcome="|".join(sorted(SLUGS)),


def has(key):
    """Whether an optional input sheet is configured."""
    return INPUTS.get(key) is not None


def all_outputs():
    """Every final output of the workflow."""
    return [
        "data/processed/analysis_data.csv",
        "data/processed/cleaning_log.csv",
        "data/processed/outcome_coverage.csv",
        "results/tables/pooled_estimates.csv",
        "results/tables/pooled_details.csv",
        "results/tables/subgroup_tests.csv",
        "results/tables/study_estimates.csv",
        "results/tables/median_summary.csv",
        "results/tables/bayes_diagnostics.csv",
        "results/tables/prior_sensitivity.csv",
        "results/tables/bayes_exact_summary.csv",
        "results/tables/bayes_estimates.csv",
        "results/tables/posterior_probabilities.csv",
        "results/tables/frequentist_vs_bayesian.csv",
        "results/tables/frequentist_vs_bayesian.md",
        "results/tables/leave_one_out.csv",
        "results/tables/influence.csv",
        "results/tables/publication_bias.csv",
        "results/tables/funnel_data.csv",
        "results/tables/sensitivity_summary.csv",
        "results/tables/meta_regression.csv",
        "results/tables/meta_regression_points.csv",
        *[f"results/tables/{name}.{ext}" for name in table_names() for ext in ("csv", "md")],
        *figure_files(figure_stems()),
        *[f"results/bayes/posterior/{name}.nc" for name in BAYES_FITS.values()],
    ]


def primary_method(outcome):
    """The method id of an outcome's main analyses (config primary_method, primary_median_method or
    primary_survival_method, by the outcome's kind)."""
    return pool.primary_for(
        oc.kind(outcome), config["primary_method"], config["primary_median_method"], config["primary_survival_method"]
    )


PRIMARY_BY_KIND = {
    oc.PROPORTION: config["primary_method"],
    oc.MEDIAN: config["primary_median_method"],
    oc.SURVIVAL_RATE: config["primary_survival_method"],
}


def pooled_k(outcome):
    """Cohorts pooled for an outcome over all subgroups (medians: those with a 95% CI)."""
    return len(pool.poolable(CLEAN.analysis[CLEAN.analysis["outcome"] == outcome]))


# The fits PyMC samples (k >= 2, k <= bayes.max_k) and the NetCDF file of each fit's posterior.
_BAYES_K = comparison.bayes_data(CLEAN.analysis, SUBGROUP_LEVELS).groupby(["outcome", "subgroup"], sort=False).size()
BAYES_FITS = {(o, s): f"{oc.slug(o)}_{s}" for (o, s), k in _BAYES_K.items() if 2 <= k <= config["bayes"]["max_k"]}
BAYES_PARAMS = dict(
    levels=SUBGROUP_LEVELS,
    median_scale=config["bayes"]["median_scale"],
    seed=config["seed"],
    level=config["frequentist"]["level"],
    thresholds=config["bayes"]["thresholds"],
)


# ---- figures and tables this configuration can build ----------------------------------------


def figure_files(stems):
    return [f"results/figures/{stem}.{ext}" for stem in stems for ext in ("pdf", "png")]


FOREST = [f"forest_{oc.slug(o)}" for o in OUTCOMES]
# Funnel, leave-one-out and Baujat plots need k >= 3 pooled cohorts overall.
ROBUST = [o for o in OUTCOMES if pooled_k(o) >= 3]
ROBUSTNESS_FIGURES = [f"{kind}_{oc.slug(o)}" for o in ROBUST for kind in ("funnel", "leave_one_out", "baujat")]
AE_OUTCOMES = [o for o in OUTCOMES if o.startswith("ae_")]
# Meta-regression (config moderators): a bubble plot per continuous moderator of each outcome
# whose model can run (k >= meta_regression.min_k, moderators not constant among its studies).
MODERATORS, MODERATOR_REFERENCE = configcheck.moderators(config)
META_MIN_K = (config.get("meta_regression") or {}).get("min_k", 10)
CONTINUOUS_MODERATORS = [c for c in MODERATORS if TABLES["studies"][c].to_numpy().dtype.kind in "iuf"]
META_OUTCOMES = [
    o
    for o in OUTCOMES
    if not moderation.why_not_run(CLEAN.analysis, TABLES["studies"], o, MODERATORS, MODERATOR_REFERENCE, META_MIN_K)
]
BUBBLES = {o: [f"bubble_{oc.slug(o)}_{m}" for m in CONTINUOUS_MODERATORS] for o in META_OUTCOMES}


def figure_families():
    """The figures of each family this configuration can draw (optional sheets and AE data switch theirs on)."""
    return {
        "forest": FOREST,
        "robustness": ROBUSTNESS_FIGURES,
        "bubble": [s for o in META_OUTCOMES for s in BUBBLES[o]],
        "ae": ["ae_overview"] if AE_OUTCOMES else [],
        "prisma": ["prisma_flow"] if has("prisma") else [],
        "quality": ["quality"] if has("quality_minors") or has("quality_jbi") else [],
        "comparison": ["frequentist_vs_bayesian"],
    }


def figure_stems():
    """Every figure this configuration can draw."""
    return [stem for stems in figure_families().values() for stem in stems]


def table_names():
    """The tables this configuration can build (optional sheets switch theirs on)."""
    names = ["table1_characteristics", "table4_adverse_events", "table5_subgroups", "main_results"]
    names += ["table2_minors"] if has("quality_minors") else []
    names += ["table3_jbi"] if has("quality_jbi") else []
    names += ["reproduction"] if has("published") else []
    return names


def optional_inputs(*keys):
    return {key: INPUTS[key] for key in keys if has(key)}


def follow_code(rules):
    """A `code` param for each script-running step, the hash of the package modules its script
    imports (singlearm.codehash). Editing src/singlearm/pool.py then reruns the pooling, and a commit
    touching only docs or tests reruns nothing (Snakemake itself watches only the script file)."""
    for r in rules:
        if r.is_script:
            script = Path(r.basedir.get_path_or_uri(secret_free=True)) / r.script
            r.set_params(code=codehash.script_hash(script, ROOT / "src"))


def benchmark_each(rules):
    """Time and memory of every script-running step in results/logs/benchmarks/ (Snakemake's benchmark
    files: wall and CPU seconds, peak RSS), read by benchmarks/bench_workflow.py to name the slowest."""
    for r in rules:
        if r.is_script and not r.benchmark:
            tag = "".join(f"_{{{w}}}" for w in sorted(r.wildcard_names))
            r.benchmark_modifier = r.log_modifier  # paths as the rule's log: relative to the run directory
            r.benchmark = f"results/logs/benchmarks/{r.name}{tag}.tsv"
