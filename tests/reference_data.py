"""Reference values from R metafor (tests/reference/metafor_values.csv) and the inputs they came from."""

import csv
from pathlib import Path

import numpy as np
import pandas as pd

REF = Path(__file__).parent / "reference"


def load_reference():
    """{(dataset, outcome, subgroup, fit, quantity, study): value}; empty values (NA in R) are skipped."""
    out = {}
    with open(REF / "metafor_values.csv", newline="") as f:
        for r in csv.DictReader(f):
            if r["value"] != "":
                out[(r["dataset"], r["outcome"], r["subgroup"], r["fit"], r["quantity"], r["study"])] = float(r["value"])
    return out


def proportion_datasets():
    """[(dataset, outcome, subgroup, studies DataFrame[study, events, total])] as the R script fitted them."""
    sets = []
    miller = pd.read_csv(REF / "inputs" / "miller1978.csv")
    sets.append(("miller1978", "orr", "overall", miller))
    pritz = pd.read_csv(REF / "inputs" / "pritz1997.csv")
    sets.append(("pritz1997", "orr", "overall", pritz[["study", "events", "total"]]))
    edge = pd.read_csv(REF / "inputs" / "edge_cases.csv")
    for name, part in edge.groupby("dataset", sort=False):
        sets.append((name, "orr", "overall", part[["study", "events", "total"]]))
    sarcoma = pd.read_csv(REF / "inputs" / "sarcoma_proportions.csv")
    for outcome, part in sarcoma.groupby("outcome", sort=True):
        sets.append(("sarcoma", outcome, "overall", part))
        for level, sub in part.groupby("subgroup", sort=True):
            sets.append(("sarcoma", outcome, level, sub))
    return sets


def median_datasets():
    """[(outcome, subgroup, rows)] of the sarcoma medians."""
    med = pd.read_csv(REF / "inputs" / "sarcoma_medians.csv")
    sets = []
    for outcome, part in med.groupby("outcome", sort=True):
        sets.append((outcome, "overall", part))
        for level, sub in part.groupby("subgroup", sort=True):
            sets.append((outcome, level, sub))
    return sets


def reference_table():
    """The reference CSV as a DataFrame (ids as text, ``value`` numeric with NaN for R's NA)."""
    ref = pd.read_csv(REF / "metafor_values.csv", dtype=str, keep_default_na=False)
    ref["value"] = pd.to_numeric(ref["value"].replace("", np.nan))
    return ref


def proportion_inputs():
    """{(dataset, outcome, subgroup): DataFrame(study, events, total)} as make_reference.R builds them."""
    return {(d, o, s): rows[["study", "events", "total"]].astype({"study": str}).reset_index(drop=True)
            for d, o, s, rows in proportion_datasets()}


def issue13_reference():
    """tests/reference/metafor_tests13_values.csv (make_reference_tests13.R) as
    {(dataset, subgroup, fit, quantity, study): value}; the outcome is always orr."""
    out = {}
    with open(REF / "metafor_tests13_values.csv", newline="") as f:
        for r in csv.DictReader(f):
            if r["value"] != "":
                out[(r["dataset"], r["subgroup"], r["fit"], r["quantity"], r["study"])] = float(r["value"])
    return out


def issue13_data(dataset, subgroup):
    """The studies a make_reference_tests13.R fit ran on: DataFrame(study, events, total)."""
    ref = issue13_reference()
    studies = [k[4] for k in ref if k[:4] == (dataset, subgroup, "DATA", "xi")]
    return pd.DataFrame({"study": studies,
                         "events": [ref[(dataset, subgroup, "DATA", "xi", s)] for s in studies],
                         "total": [ref[(dataset, subgroup, "DATA", "ni", s)] for s in studies]})
