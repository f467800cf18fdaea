"""A synthetic large review in the project's input format: the "large reviews" target of issue 12.

Writes ``<out>/data/raw/study_characteristics.csv``, ``<out>/data/raw/extraction.csv`` (the two
required sheets, laid out like ``.test/``) and ``<out>/config/config.yaml`` for ``--cores``-limited
runs in a scratch directory:

    .venv/bin/python benchmarks/make_large_review.py /tmp/large --cohorts 5000
    PYTHONPATH=src .venv/bin/snakemake --cores 4 --configfile /tmp/large/config/config.yaml \\
        --directory /tmp/large results/tables/bayes_exact_summary.csv

Each cohort reports three outcomes: ORR and DCR as counts (binomial around logit-normal true
rates, ORR mean 20%, DCR = ORR + stable disease, about 65%; between-cohort SD 0.5 on the logit) and
median PFS in months with its 95% CI (log-normal around 6 months, between-cohort SD 0.3 on the log
scale; CI from the cohort's size). Cohorts fall into three histology subgroups, so the Bayesian stage has 3 outcomes
x (overall + 3 subgroups) = 12 fits with k = n/3 .. n. Same seed, same bytes.
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

STUDY_COLUMNS = ["study_id", "author", "year", "ref", "design", "registration", "period_start", "period_end",
                 "median_followup_months", "followup_is_mean", "group", "n_male", "n_female", "median_age",
                 "age_is_mean", "histology", "line_of_therapy", "endpoints"]
EXTRACTION_COLUMNS = ["study_id", "group", "outcome", "events", "total", "estimate", "ci_low", "ci_high", "unit",
                      "derivation", "exclude_reason", "source_url", "location", "note"]
SOURCE = "https://example.org/synthetic-large-review"
CONFIG = """\
# Synthetic large review (benchmarks/make_large_review.py, {cohorts} cohorts, seed {seed}).
data:
  studies: ../data/raw/study_characteristics.csv
  extraction: ../data/raw/extraction.csv
subgroup_column: histology
"""


def expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def make_review(cohorts, seed=12):
    """The two sheets of a synthetic review of ``cohorts`` cohorts, as data frames."""
    rng = np.random.default_rng(seed)
    ids = [f"c{i:05d}" for i in range(cohorts)]
    n = rng.integers(20, 150, size=cohorts)
    histology = rng.choice(["sts", "bone", "mixed"], size=cohorts, p=[0.5, 0.3, 0.2])
    studies = pd.DataFrame({"study_id": ids, "author": "Synthetic", "year": 2000 + rng.integers(0, 25, cohorts),
                            "design": rng.choice(["prospective", "retrospective"], size=cohorts),
                            "followup_is_mean": "no", "age_is_mean": "no", "group": "all",
                            "histology": histology, "endpoints": "ORR;DCR;PFS"}).reindex(columns=STUDY_COLUMNS)
    orr = rng.binomial(n, expit(np.log(0.2 / 0.8) + 0.5 * rng.standard_normal(cohorts)))
    # disease control = response + stable disease, so DCR >= ORR as the cleaning checks
    dcr = orr + rng.binomial(n - orr, expit(np.log(0.56 / 0.44) + 0.5 * rng.standard_normal(cohorts)))
    log_med = np.log(6.0) + 0.3 * rng.standard_normal(cohorts)
    se = 1.2 / np.sqrt(n)  # log-median SE of an exponential-like PFS with ~n events (about 1/sqrt(events))
    est = np.exp(log_med + se * rng.standard_normal(cohorts))
    base = {"group": "all", "exclude_reason": "", "source_url": SOURCE, "location": "synthetic", "note": ""}
    rows = []
    for outcome, events in (("orr", orr), ("dcr", dcr)):
        rows.append(pd.DataFrame({"study_id": ids, "outcome": outcome, "events": events, "total": n, "unit": "count",
                                  "derivation": "reported", **base}))
    rows.append(pd.DataFrame({"study_id": ids, "outcome": "median_pfs", "total": n, "estimate": est.round(2),
                              "ci_low": (est * np.exp(-1.96 * se)).round(2),
                              "ci_high": (est * np.exp(1.96 * se)).round(2),
                              "unit": "months", "derivation": "reported", **base}))
    extraction = pd.concat(rows, ignore_index=True).reindex(columns=EXTRACTION_COLUMNS)
    extraction["events"] = extraction["events"].astype("Int64")
    return studies, extraction


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="directory to write data/raw/ and config/ into")
    parser.add_argument("--cohorts", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()
    studies, extraction = make_review(args.cohorts, args.seed)
    raw, config = args.out / "data" / "raw", args.out / "config"
    raw.mkdir(parents=True, exist_ok=True)
    config.mkdir(parents=True, exist_ok=True)
    studies.to_csv(raw / "study_characteristics.csv", index=False)
    extraction.to_csv(raw / "extraction.csv", index=False)
    (config / "config.yaml").write_text(CONFIG.format(cohorts=args.cohorts, seed=args.seed))
    print(f"{args.out}: {len(studies)} cohorts, {len(extraction)} extraction rows")


if __name__ == "__main__":
    main()
