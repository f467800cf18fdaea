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

from singlearm import cleaning, sheets  # noqa: E402
from singlearm import outcomes as oc  # noqa: E402

validate(config, "../schemas/config.schema.yaml")


def data_path(key):
    """Path of an input sheet from config, relative paths taken from the Snakefile's directory."""
    value = config["data"].get(key)
    if not value:
        return None
    path = Path(value) if Path(value).is_absolute() else ROOT / value
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def sheet_schema(name):
    return sheets.load_schema(ROOT / "workflow" / "schemas" / f"{name}.schema.yaml")


SHEETS = {"studies": "studies", "extraction": "extraction", "quality_minors": "quality_minors",
          "quality_jbi": "quality_jbi", "prisma": "prisma", "published": "published"}
INPUTS = {key: data_path(key) for key in SHEETS}
TABLES = {key: sheets.read_sheet(path, sheet_schema(SHEETS[key])) for key, path in INPUTS.items() if path}
CLEAN = cleaning.clean(TABLES["extraction"], TABLES["studies"], config["subgroup_column"],
                       INPUTS["extraction"], INPUTS["studies"])
OUTCOMES = cleaning.analysed_outcomes(CLEAN.analysis, config["outcomes"])
SLUGS = {oc.slug(o): o for o in OUTCOMES}
# Subgroup levels in the study table's order (sts, bone, mixed for the sarcoma review).
SUBGROUP_LEVELS = list(dict.fromkeys(TABLES["studies"][config["subgroup_column"]]))


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
    ]
