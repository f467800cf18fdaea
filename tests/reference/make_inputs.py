"""Write the cleaned sarcoma data as inputs for make_reference.R.

Run from the repository root before the R script:
    .venv/bin/python tests/reference/make_inputs.py && Rscript tests/reference/make_reference.R
tests/test_reference_inputs.py checks that the committed files still equal what cleaning gives.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from singlearm import cleaning, sheets  # noqa: E402


def sarcoma_inputs():
    """The cleaned sarcoma data as the two reference input tables (proportions, medians)."""
    schemas = ROOT / "workflow" / "schemas"
    raw = ROOT / "data" / "raw"
    ex = sheets.read_sheet(raw / "extraction.csv", sheets.load_schema(schemas / "extraction.schema.yaml"))
    st = sheets.read_sheet(raw / "study_characteristics.csv", sheets.load_schema(schemas / "studies.schema.yaml"))
    a = cleaning.clean(ex, st).analysis.rename(columns={"cohort_id": "study"})
    props = a[a.kind == "proportion"][["outcome", "subgroup", "study", "events", "total"]]
    medians = a[a.kind == "median"][["outcome", "subgroup", "study", "total", "estimate", "ci_low", "ci_high"]]
    return props, medians


if __name__ == "__main__":
    props, medians = sarcoma_inputs()
    out = ROOT / "tests" / "reference" / "inputs"
    props.to_csv(out / "sarcoma_proportions.csv", index=False, lineterminator="\n")
    medians.to_csv(out / "sarcoma_medians.csv", index=False, lineterminator="\n")
