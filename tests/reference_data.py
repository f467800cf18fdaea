"""Reference values from R metafor (tests/reference/metafor_values.csv) and the inputs they came from."""

import csv
from pathlib import Path

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
