"""Reference values of tests/reference/make_reference_engine.R (metafor 3.8-1), keyed like reference_data."""

import csv
import math

import pandas as pd

from reference_data import REF


def load_engine_reference():
    """{(dataset, outcome, subgroup, fit, quantity, study): value}; R's NA (empty field) is kept as NaN."""
    out = {}
    with open(REF / "metafor_engine_values.csv", newline="") as f:
        for r in csv.DictReader(f):
            out[(r["dataset"], r["outcome"], r["subgroup"], r["fit"], r["quantity"], r["study"])] = (
                float(r["value"]) if r["value"] != "" else math.nan)
    return out


def coefficients(ref, dataset, outcome, subgroup, fit, quantity):
    """Per-coefficient values of a model in metafor's coefficient order, as (names, values)."""
    rows = [(k[5], v) for k, v in ref.items() if k[:5] == (dataset, outcome, subgroup, fit, quantity)]
    return [r[0] for r in rows], [r[1] for r in rows]


def debruin2009():
    return pd.read_csv(REF / "inputs" / "debruin2009.csv")


def bcg():
    return pd.read_csv(REF / "inputs" / "bcg.csv")
