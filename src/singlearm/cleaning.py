"""Turn the validated extraction sheet into analysis rows, with a log line for every raw row.

What this module decides, in order, for each raw row (the reasons land in the cleaning log):

1. rows with an ``exclude_reason``, within-study subsets and descriptive fields are not pooled;
2. a median needs a numeric value; with a lower 95% limit (the upper one may be "not reached",
   blank) it can be pooled, without one it is described, not pooled;
3. a survival rate (a Kaplan-Meier landmark estimate) is kept as the printed rate and its CI,
   never rebuilt as a count; without a CI its SE is approximated from the cohort's n (flagged);
4. a proportion needs a count: a missing denominator is replaced by the cohort's enrolled n
   (flagged), a missing count is rebuilt from a rounded percentage when exactly one integer
   fits (flagged), otherwise the row is excluded with the reason.

Medians and survival rates carry the cohort's n (reported, else the enrolled n, flagged).

Inconsistent data (a count above its total, a percentage that disagrees with its count, a CI
that misses its estimate, DCR below ORR, CR + PR differing from ORR) stop with a DataError.
"""

from dataclasses import dataclass
from decimal import Decimal

import pandas as pd

from . import checks, effects
from . import outcomes as oc
from .errors import DataError
from .sheets import ROW_COLUMN, check_unique

KEPT, DERIVED, EXCLUDED = "kept", "derived", "excluded"

ANALYSIS_COLUMNS = [
    "cohort_id", "study_id", "group", "subgroup", "design", "outcome", "kind", "events", "total",
    "estimate", "ci_low", "ci_high", "has_ci", "se_source", "unit", "derivation", "events_source",
    "total_source", "denominator", "source_row", "source_url", "location",
]
ENROLLED_N = "enrolled_n"  # total_source of a denominator taken from the cohort's enrolled n
LOG_COLUMNS = ["source_row", "study_id", "group", "outcome", "cohort_id", "status", "reason"]
COVERAGE_COLUMNS = ["outcome", "kind", "studies_in_review", "studies_listing_endpoint", "studies_with_data",
                    "cohorts_with_data", "studies_listing_endpoint_without_data"]


@dataclass(frozen=True)
class CleanResult:
    """Analysis rows, the per-raw-row log, and per-outcome coverage of the review's studies."""

    analysis: pd.DataFrame
    log: pd.DataFrame
    coverage: pd.DataFrame


def cohort_id(study_id, group):
    """``study`` for a whole study, ``study_group`` for one cohort of a study split by histology."""
    return study_id if group == "all" else f"{study_id}_{group}"


def _decimals(text):
    """Number of decimals printed in a cell ('25.0' -> 1, '13' -> 0)."""
    return max(0, -Decimal(text).as_tuple().exponent)


def _percent_fits(events, total, printed):
    """Whether 100 * events / total rounds to the printed percentage at its printed precision."""
    half = Decimal(5) / Decimal(10) ** (_decimals(printed) + 1)
    return abs(Decimal(100 * events) / Decimal(total) - Decimal(printed)) <= half


def _present(value):
    return value is not None and not pd.isna(value)


def _check_row(row, path):
    """Per-row consistency: counts, percentages and confidence limits agree."""
    r = int(row[ROW_COLUMN])
    events, total, est = row["events"], row["total"], row["estimate"]
    if _present(events) and _present(total) and events > total:
        raise DataError(path, r, "events", row["events__text"], f"a count <= total ({int(total)})")
    if row["unit"] == "percent":
        for col in ("estimate", "ci_low", "ci_high"):
            if _present(row[col]) and row[col] > 100:
                raise DataError(path, r, col, row[f"{col}__text"], "a percentage between 0 and 100")
        if _present(events) and _present(total) and _present(est) and not _percent_fits(events, total, row["estimate__text"]):
            raise DataError(path, r, "estimate", row["estimate__text"],
                            f"{int(events)}/{int(total)} = {100 * events / total:.4g}% rounded to the printed precision")
    lo, hi = row["ci_low"], row["ci_high"]
    if _present(hi) and not _present(lo):
        raise DataError(path, r, "ci_low", "", f"a lower confidence limit beside ci_high ({row['ci_high__text']}); "
                        "only the upper limit may be blank ('not reached')")
    if _present(lo) and _present(hi) and lo > hi:
        raise DataError(path, r, "ci_low", row["ci_low__text"], f"a lower limit <= ci_high ({row['ci_high__text']})")
    if _present(est) and ((_present(lo) and est < lo) or (_present(hi) and est > hi)):
        bad = "ci_low" if _present(lo) and est < lo else "ci_high"
        raise DataError(path, r, bad, row[f"{bad}__text"],
                        f"a confidence interval that contains the estimate {row['estimate__text']}")


def _proportion(row):
    """The row's proportion as a fraction, from counts or a percentage, or None."""
    if _present(row["events"]) and _present(row["total"]):
        return row["events"] / row["total"]
    if row["unit"] == "percent" and _present(row["estimate"]):
        return row["estimate"] / 100
    return None


def _check_response_arithmetic(extraction, path):
    """Across rows of one cohort: DCR >= ORR, and CR + PR = ORR where all three have counts."""
    for (_study, _group), rows in extraction.groupby(["study_id", "group"], sort=False):
        by = {o: r for o, r in zip(rows["outcome"], rows.to_dict("records"))}
        orr, dcr = by.get("orr"), by.get("dcr")
        if orr and dcr:
            p_orr, p_dcr = _proportion(orr), _proportion(dcr)
            if p_orr is not None and p_dcr is not None and p_dcr < p_orr:
                col = "events" if _present(dcr["events"]) else "estimate"
                raise DataError(path, int(dcr[ROW_COLUMN]), col, dcr[f"{col}__text"],
                                f"a disease control rate >= the objective response rate of row {int(orr[ROW_COLUMN])} "
                                f"({100 * p_orr:.4g}%)")
        parts = [by.get("cr"), by.get("pr")]
        if orr and all(parts) and all(_present(x["events"]) for x in [orr, *parts]):
            if parts[0]["events"] + parts[1]["events"] != orr["events"]:
                raise DataError(path, int(orr[ROW_COLUMN]), "events", orr["events__text"],
                                f"CR + PR = {int(parts[0]['events'])} + {int(parts[1]['events'])} = "
                                f"{int(parts[0]['events'] + parts[1]['events'])} (rows {int(parts[0][ROW_COLUMN])} "
                                f"and {int(parts[1][ROW_COLUMN])})")


def _enrolled_n(extraction, studies_by_key, study, group):
    """The cohort's enrolled n and where it came from: the sheet's n_enrolled row, else the study table."""
    hit = extraction[(extraction["study_id"] == study) & (extraction["group"] == group)
                     & (extraction["outcome"] == "n_enrolled") & extraction["exclude_reason"].isna()]
    if len(hit) and _present(hit.iloc[0]["estimate"]):
        return int(hit.iloc[0]["estimate"]), f"row {int(hit.iloc[0][ROW_COLUMN])}"
    s = studies_by_key.get((study, group))
    if s is not None and _present(s.get("n_male")) and _present(s.get("n_female")):
        return int(s["n_male"] + s["n_female"]), "study table n_male + n_female"
    return None, None


def _cohort_n(row, extraction, studies_by_key):
    """(n, total_source, log text) of a median or survival-rate row: reported, else the enrolled n."""
    if _present(row["total"]):
        return int(row["total"]), "reported", ""
    n, where = _enrolled_n(extraction, studies_by_key, row["study_id"], row["group"])
    if n is None:
        return None, "", ""
    return n, ENROLLED_N, f"n = cohort's enrolled n ({where})"


def _clean_proportion(row, extraction, studies_by_key, path):
    """Events and total of one proportion row, or the reason it cannot be used."""
    events, total = row["events"], row["total"]
    total_source, events_source, status = "reported", row["derivation"], KEPT
    if not _present(total):
        total, where = _enrolled_n(extraction, studies_by_key, row["study_id"], row["group"])
        if total is None:
            return None, "no denominator, and no enrolled n for the cohort"
        total_source, status = ENROLLED_N, DERIVED
        if _present(events) and events > total:
            return None, f"count {int(events)} exceeds the cohort's enrolled n {total}"
        if _present(events) and row["unit"] == "percent" and _present(row["estimate"]) and \
                not _percent_fits(events, total, row["estimate__text"]):
            return None, f"{int(events)}/{total} (enrolled n) does not round to the printed {row['estimate__text']}%"
    if not _present(events):
        if row["unit"] != "percent" or not _present(row["estimate"]):
            return None, "neither a count nor a percentage to rebuild it from"
        fits = [k for k in range(int(total) + 1) if _percent_fits(k, total, row["estimate__text"])]
        if not fits:
            checks.check_percent_not_fraction(row, total, path)
        if len(fits) != 1:
            shown = ", ".join(str(k) for k in fits) or "none"
            return None, (f"no unique count fits {row['estimate__text']}% of {int(total)} "
                          f"(integers that round to it: {shown})")
        events, events_source, status = fits[0], "rebuilt_from_percent", DERIVED
    reason = "counts as reported" if status == KEPT else (
        "count rebuilt from the printed percentage" if events_source == "rebuilt_from_percent" else "")
    if total_source != "reported":
        reason = "; ".join(x for x in [reason, f"denominator = cohort's enrolled n ({where})"] if x)
    return dict(events=int(events), total=int(total), estimate=events / total,
                events_source=events_source, total_source=total_source, status=status, reason=reason), None


def _clean_survival_rate(row, extraction, studies_by_key, path):
    """A Kaplan-Meier landmark rate as printed (a fraction, its CI and the cohort's n), or the reason it is unusable.

    The rate is never rebuilt as a count: censoring makes a KM estimate something other than
    x/n. Its SE comes from the CI, or without one from the binomial approximation with the
    cohort's n (:func:`singlearm.effects.survival_effects`).
    """
    if row["unit"] != "percent":
        raise DataError(path, int(row[ROW_COLUMN]), "unit", row["unit"],
                        "percent for a Kaplan-Meier survival rate (the printed rate, not a count)")
    if not _present(row["estimate"]):
        return None, "Kaplan-Meier estimate: no rate printed"
    rate = row["estimate"] / 100
    lo, hi = (row[c] / 100 if _present(row[c]) else float("nan") for c in ("ci_low", "ci_high"))
    if rate in (0.0, 1.0):
        return None, (f"Kaplan-Meier estimate of {row['estimate__text']}%: the complementary log-log scale is "
                      "infinite at 0% and 100%, so it cannot be pooled")
    n, total_source, n_note = _cohort_n(row, extraction, studies_by_key)
    _, _, source = effects.survival_effects([rate], [lo], [hi], [float("nan") if n is None else n])
    source = str(source[0])
    if not source:
        return None, "Kaplan-Meier estimate without a 95% CI and without the cohort's n: no standard error"
    how = {effects.REPORTED_CI: "SE from the reported 95% CI",
           effects.ONE_SIDED_CI: "SE from one side of the reported 95% CI",
           effects.BINOMIAL_APPROXIMATION: "no CI: SE by the binomial approximation from n "
                                           "(a lower bound under censoring)"}[source]
    got = dict(events=None, total=n, estimate=rate, ci_low=None if lo != lo else lo,
               ci_high=None if hi != hi else hi, has_ci=_present(row["ci_low"]), se_source=source,
               events_source="", total_source=total_source)
    return got, "; ".join(x for x in ["Kaplan-Meier estimate", how, n_note] if x)


def clean(extraction, studies, subgroup_column="histology", extraction_path="extraction.csv",
          studies_path="study_characteristics.csv"):
    """Clean a validated extraction sheet.

    Parameters
    ----------
    extraction, studies : pandas.DataFrame
        Sheets as returned by :func:`singlearm.sheets.read_sheet`.
    subgroup_column : str
        Study-table column whose value is each cohort's subgroup (default ``histology``).
    extraction_path, studies_path : str
        File names used in error messages.

    Returns
    -------
    CleanResult
    """
    check_unique(studies, ["study_id", "group"], studies_path)
    check_unique(extraction, ["study_id", "group", "outcome"], extraction_path)
    if subgroup_column not in studies.columns:
        raise DataError(studies_path, 1, subgroup_column, None,
                        f"a header column named '{subgroup_column}' (the configured subgroup column)")
    for s in studies.to_dict("records"):
        if not _present(s[subgroup_column]):
            raise DataError(studies_path, int(s[ROW_COLUMN]), subgroup_column, "",
                            "the cohort's subgroup level (the configured subgroup column may not be blank)")
    checks.check_label_variants(studies, subgroup_column, studies_path)
    checks.check_label_variants(extraction, "group", extraction_path, zip(studies["group"], studies[ROW_COLUMN]))
    studies_by_key = {(s["study_id"], s["group"]): s for s in studies.to_dict("records")}
    groups_of = studies.groupby("study_id")["group"].apply(set).to_dict()
    cohort_labels = set(studies["group"]) | set(studies[subgroup_column])

    for row in extraction.to_dict("records"):
        r = int(row[ROW_COLUMN])
        if row["study_id"] not in groups_of:
            raise DataError(extraction_path, r, "study_id", row["study_id"],
                            f"a study id of the study table {studies_path}")
        if row["group"] not in groups_of[row["study_id"]] and row["group"] in cohort_labels:
            raise DataError(extraction_path, r, "group", row["group"],
                            f"a group of {row['study_id']} in the study table "
                            f"({', '.join(sorted(groups_of[row['study_id']]))}) or a within-study subset label")
        _check_row(row, extraction_path)
    _check_response_arithmetic(extraction, extraction_path)

    analysis, log = [], []
    for row in extraction.to_dict("records"):
        study, group, outcome = row["study_id"], row["group"], row["outcome"]
        cid = cohort_id(study, group)
        kind = oc.kind(outcome)
        entry = dict(source_row=int(row[ROW_COLUMN]), study_id=study, group=group, outcome=outcome, cohort_id=cid)
        own_groups = groups_of[study]
        if _present(row["exclude_reason"]):
            log.append(entry | dict(status=EXCLUDED, reason=f"exclude_reason: {row['exclude_reason']}"))
            continue
        if group not in own_groups:
            log.append(entry | dict(cohort_id="", status=EXCLUDED,
                                    reason=f"within-study subset '{group}': the main analysis pools whole cohorts"))
            continue
        if kind == oc.DESCRIPTIVE:
            log.append(entry | dict(status=EXCLUDED, reason=f"descriptive field ({outcome}), not a poolable outcome"))
            continue
        base = dict(cohort_id=cid, study_id=study, group=group,
                    subgroup=studies_by_key[(study, group)][subgroup_column],
                    design=studies_by_key[(study, group)]["design"], outcome=outcome, kind=kind,
                    unit=row["unit"], derivation=row["derivation"], denominator=row.get("denominator") or "",
                    source_row=int(row[ROW_COLUMN]),
                    source_url=row["source_url"], location=row["location"])
        if kind == oc.MEDIAN:
            if row["unit"] != "months":
                raise DataError(extraction_path, int(row[ROW_COLUMN]), "unit", row["unit"],
                                "months for a median survival time")
            if not _present(row["estimate"]):
                log.append(entry | dict(status=EXCLUDED, reason="no numeric median (e.g. not reached)"))
                continue
            n, total_source, n_note = _cohort_n(row, extraction, studies_by_key)
            se_source = (effects.REPORTED_CI if _present(row["ci_high"]) else effects.ONE_SIDED_CI) \
                if _present(row["ci_low"]) else ""
            analysis.append(base | dict(events=None, total=n, estimate=row["estimate"], ci_low=row["ci_low"],
                                        ci_high=row["ci_high"], has_ci=bool(se_source), se_source=se_source,
                                        events_source="", total_source=total_source))
            why = {effects.REPORTED_CI: "median with 95% CI",
                   effects.ONE_SIDED_CI: "median with a one-sided 95% CI (upper limit not reached)",
                   "": "median without a 95% CI: described, not pooled"}[se_source]
            log.append(entry | dict(status=KEPT, reason="; ".join(x for x in [why, n_note] if x)))
            continue
        if kind == oc.SURVIVAL_RATE:
            got, why = _clean_survival_rate(row, extraction, studies_by_key, extraction_path)
            if got is None:
                log.append(entry | dict(status=EXCLUDED, reason=why))
                continue
            analysis.append(base | got)
            log.append(entry | dict(status=KEPT, reason=why))
            continue
        if row["unit"] not in ("percent", "count"):
            raise DataError(extraction_path, int(row[ROW_COLUMN]), "unit", row["unit"],
                            "percent or count for a proportion outcome")
        got, why = _clean_proportion(row, extraction, studies_by_key, extraction_path)
        if got is None:
            log.append(entry | dict(status=EXCLUDED, reason=why))
            continue
        scale = 100 if row["unit"] == "percent" else None
        ci = [row[c] / scale if scale and _present(row[c]) else None for c in ("ci_low", "ci_high")]
        analysis.append(base | dict(events=got["events"], total=got["total"], estimate=got["estimate"],
                                    ci_low=ci[0], ci_high=ci[1], has_ci=all(c is not None for c in ci),
                                    se_source="", events_source=got["events_source"],
                                    total_source=got["total_source"]))
        log.append(entry | dict(status=got["status"], reason=got["reason"]))

    analysis = pd.DataFrame(analysis, columns=ANALYSIS_COLUMNS)
    analysis["events"] = analysis["events"].astype("Int64")
    analysis["total"] = analysis["total"].astype("Int64")
    log = pd.DataFrame(log, columns=LOG_COLUMNS)
    return CleanResult(analysis=analysis, log=log, coverage=_coverage(analysis, studies))


def _coverage(analysis, studies):
    """Per outcome: how many of the review's studies list the endpoint and how many have usable data."""
    review = studies.drop_duplicates("study_id")
    rows = []
    for outcome in sorted(analysis["outcome"].unique(), key=sort_key):
        got = analysis[analysis["outcome"] == outcome]
        listing = [s for s, e in zip(studies["study_id"], studies["endpoints"]) if oc.lists_endpoint(e, outcome)]
        listing = list(dict.fromkeys(listing))
        with_data = set(got["study_id"])
        rows.append(dict(outcome=outcome, kind=oc.kind(outcome), studies_in_review=len(review),
                         studies_listing_endpoint=len(listing), studies_with_data=len(with_data),
                         cohorts_with_data=got["cohort_id"].nunique(),
                         studies_listing_endpoint_without_data=";".join(s for s in listing if s not in with_data)))
    return pd.DataFrame(rows, columns=COVERAGE_COLUMNS)


def sort_key(outcome):
    """Reading order of outcomes: efficacy first (as the review reports them), then adverse events."""
    order = ["orr", "dcr", "cr", "pr", "sd", "pd", "median_pfs", "median_os"]
    if outcome in order:
        return (0, order.index(outcome), outcome)
    if outcome.startswith(("pfr_", "pfs_rate_", "os_rate_")):
        prefix, _, n = outcome.rpartition("_")
        return (1, prefix, int("".join(ch for ch in n if ch.isdigit()) or 0))
    return (2, outcome, 0)


def analysed_outcomes(analysis, requested=None):
    """Outcomes to analyse: the requested ones (all must have data) or every outcome with data."""
    present = sorted(analysis["outcome"].unique(), key=sort_key)
    if not requested:
        return present
    missing = [o for o in requested if o not in present]
    if missing:
        raise ValueError(f"config 'outcomes' names outcomes with no usable data: {', '.join(missing)} "
                         f"(outcomes with data: {', '.join(present)})")
    return list(requested)
