"""The reproduction of the review's published numbers: each published estimate beside ours by the
same method, and in words why they differ.

It never fills a gap with a number we did not estimate: where we have no estimate, ours is blank
and the reason says why (no study in the sheet, a median without a CI, a study the review had
and the abstracts did not).
"""

from decimal import Decimal

import numpy as np
import pandas as pd

from . import formatting as fmt
from . import outcomes as oc
from .errors import DataError
from .tables import OVERALL, index_fits, sheet_row

# How far ours may lie from the published estimate and still "match": the review prints
# proportions to 0.1 percentage point and pooled medians to 0.01-0.1 month, so half a
# percentage point and a tenth of a month are differences a reader would not act on.
DEFAULT_TOLERANCE = {oc.PROPORTION: 0.005, oc.SURVIVAL_RATE: 0.005, oc.MEDIAN: 0.1}

REPRODUCTION_COLUMNS = [
    "outcome", "grade", "subgroup", "label", "kind", "unit", "scale", "published_estimate", "published_ci_low",
    "published_ci_high", "published_i2", "published_p", "method", "our_estimate", "our_ci_low", "our_ci_high",
    "our_i2", "our_p", "difference", "k_ours", "k_review", "k_review_basis", "source", "reason",
]
REPRODUCTION_SUMMARY_COLUMNS = ["outcome", "label", "subgroup", "method", "published", "ours", "difference",
                                "k_ours", "k_review", "reason"]


def published_outcome(name, grade):
    """Our outcome id for a row of the published sheet: (``hypertension``, ``g34``) -> ``ae_g34:hypertension``.

    Parameters
    ----------
    name : str
        The sheet's ``outcome`` cell (an outcome id, or an adverse-event name).
    grade : str or None
        ``all`` or ``g34`` for adverse events, blank otherwise.

    Returns
    -------
    str
        The outcome id (not yet checked against the vocabulary; :func:`singlearm.outcomes.kind` does).

    Notes
    -----
    R equivalent: ``ifelse(grade == "", outcome, paste0("ae_", grade, ":", outcome))``.
    """
    grade = "" if fmt.missing(grade) else str(grade).strip()
    return f"ae_{grade}:{name}" if grade else str(name)


def review_studies(studies, outcome, subgroup=OVERALL, subgroup_column="histology"):
    """The review's studies whose Table 1 ``endpoints`` list the outcome's endpoint, in sheet order.

    Parameters
    ----------
    studies : pandas.DataFrame
        The study sheet, one row per study cohort.
    outcome : str
        Outcome id.
    subgroup : str
        ``"overall"`` for all studies, else a level of ``subgroup_column``: only studies with a
        cohort in that subgroup count.
    subgroup_column : str
        Study-sheet column holding each cohort's subgroup (the review's histology).

    Returns
    -------
    list of str
        Study ids, each once.

    Notes
    -----
    The same test as the cleaning step's coverage table (:func:`singlearm.outcomes.lists_endpoint`),
    so ``k_review`` overall equals ``studies_listing_endpoint`` there. R equivalent: none.
    """
    rows = studies if subgroup == OVERALL else studies[studies[subgroup_column] == subgroup]
    ids = [s for s, e in zip(rows["study_id"], rows["endpoints"])
           if oc.lists_endpoint("" if fmt.missing(e) else str(e), outcome)]
    return list(dict.fromkeys(ids))


def _float(value, path, row, column):
    if fmt.missing(value) or (isinstance(value, str) and not value.strip()):
        return np.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DataError(path, row, column, value, "a number or a blank cell") from None


def _comparison(difference, kind, tol):
    if kind in fmt.PERCENT_KINDS:
        size, unit, limit = abs(difference) * 100, "percentage points", f"{tol * 100:g} percentage points"
        shown = fmt.fixed(size, 1)
    else:
        size, unit, limit = abs(difference), "months", f"{tol:g} months"
        shown = fmt.fixed(size, 2)
    if abs(difference) <= tol + 1e-12:
        return f"matches within {limit}"
    return f"ours is {shown} {unit} {'higher' if difference > 0 else 'lower'}"


def _coverage_gap(outcome, subgroup, review_ids, without):
    """The sentence naming the review's studies (listing the endpoint) that the sheet has no data for."""
    if not without:
        return None
    where = "" if subgroup == OVERALL else f"{subgroup} "
    name = fmt.endpoint_name(outcome)
    count = f"all {len(review_ids)}" if len(without) == len(review_ids) else f"{len(without)} of the {len(review_ids)}"
    if outcome.startswith("ae_"):
        head = (f"{count} {where}studies listing AEs (an upper bound on the review's k: it pooled only studies "
                f"reporting this event)")
    else:
        head = f"{count} {where}studies listing {oc.endpoint(outcome)}"
    return f"{head} have no {name} data in the extraction sheet (abstracts only): {', '.join(without)}"


def reproduction(published, estimates, coverage, studies, method_for, subgroup_column="histology",
                 tolerance=None, published_path="published_estimates.csv"):
    """Every estimate the review published beside ours by the same method, with the reason for any gap.

    Parameters
    ----------
    published : pandas.DataFrame
        The published sheet: ``outcome, grade, subgroup, estimate, ci_low, ci_high, i2,
        p_heterogeneity, unit, source``; ``unit`` is ``percent`` or ``months``; adverse events
        are named by event (``hypertension``) with ``grade`` ``all`` or ``g34``.
    estimates : pandas.DataFrame
        Our pooled estimates (fractions for proportions, months for medians).
    coverage : pandas.DataFrame
        Per-outcome coverage from the cleaning step (``outcome_coverage.csv``).
    studies : pandas.DataFrame
        The study sheet (its ``endpoints`` and ``subgroup_column`` give the review's k).
    method_for : mapping
        Outcome kind -> method id the review used, e.g. ``{"proportion": "PFT-DL", "median":
        "MEDIAN-DL"}`` (Freeman-Tukey with DerSimonian-Laird; inverse-variance DL on months).
    subgroup_column : str
        Study-sheet column whose levels are the published subgroups.
    tolerance : mapping, optional
        Kind -> largest |ours − published| called a match (default :data:`DEFAULT_TOLERANCE`:
        0.005 as a fraction, i.e. 0.5 percentage points; 0.1 months).
    published_path : str
        File name used in error messages.

    Returns
    -------
    pandas.DataFrame
        One row per published row, in sheet order, columns :data:`REPRODUCTION_COLUMNS`:

        - ``unit`` is the published sheet's unit; ``scale`` says what the numbers are on
          (``fraction`` for percent rows, ``months``): published and our estimates share it;
        - ``published_p`` is the printed text (``"<0.01"``); ``our_p`` is the p-value of our Q;
        - ``difference`` = ``our_estimate − published_estimate`` on that scale;
        - ``k_ours``: cohorts in our pooled estimate, blank when we have none;
        - ``k_review``: the review's studies whose Table 1 endpoints list the endpoint (within
          the subgroup for subgroup rows). For adverse events that is the number listing AEs,
          an upper bound on the studies the review pooled for one event; ``k_review_basis``
          says which count it is;
        - ``reason``: in words, whether the estimates match and why they may not.

        Where we have no estimate, our cells and the difference are NaN: nothing is imputed.

    Raises
    ------
    DataError
        For an outcome outside the vocabulary, a unit that does not fit the outcome, or a
        non-numeric estimate in the published sheet.

    Notes
    -----
    R equivalent: ``metafor::rma(measure="PFT", xi, ni, method="DL")`` per published row
    (proportions); ``metafor::rma(yi = median, sei = (ucl - lcl) / (2 * 1.96), method="DL")``
    (medians); the comparison itself is a subtraction.
    """
    tol = {**DEFAULT_TOLERANCE, **(tolerance or {})}
    fits = index_fits(estimates)
    cov = {r["outcome"]: r for r in coverage.to_dict("records")}
    rows = []
    for i, p in enumerate(published.to_dict("records")):
        r = sheet_row(p, i)
        outcome = published_outcome(p["outcome"], p.get("grade"))
        try:
            kind = oc.kind(outcome)
        except ValueError:
            raise DataError(published_path, r, "outcome", p["outcome"],
                            "an outcome id (orr, dcr, median_pfs, ...) or, with grade all/g34, an adverse-event "
                            "name") from None
        unit = str(p["unit"]).strip()
        if unit != ("percent" if kind in fmt.PERCENT_KINDS else "months"):
            raise DataError(published_path, r, "unit", p["unit"],
                            f"{'percent' if kind in fmt.PERCENT_KINDS else 'months'} for {outcome}")
        subgroup = str(p["subgroup"]).strip()
        pub = {c: _float(p.get(c), published_path, r, c) for c in ("estimate", "ci_low", "ci_high")}
        if unit == "percent":
            # via Decimal, so a printed 8.8% becomes 0.088 and not 0.08800000000000001
            pub = {c: v if fmt.missing(v) else float(Decimal(repr(v)) / 100) for c, v in pub.items()}
        method = method_for.get(kind)
        fit = fits.get((outcome, subgroup, method))

        review_ids = review_studies(studies, outcome, subgroup, subgroup_column)
        c = cov.get(outcome)
        missing = set() if c is None or fmt.missing(c["studies_listing_endpoint_without_data"]) else \
            set(str(c["studies_listing_endpoint_without_data"]).split(";"))
        without = review_ids if c is None else [s for s in review_ids if s in missing]
        # Cohorts of the subgroup holding data: exact from coverage overall; within a subgroup,
        # the subgroup's cohorts whose study lists the endpoint and is not among those without data.
        if c is None:
            with_data = 0
        elif subgroup == OVERALL:
            with_data = int(c["cohorts_with_data"])
        else:
            in_sub = studies[studies[subgroup_column] == subgroup]
            with_data = sum(1 for s in in_sub["study_id"] if s in review_ids and s not in missing)

        where = "" if subgroup == OVERALL else f" ({subgroup})"
        reasons = []
        ours = dict(our_estimate=np.nan, our_ci_low=np.nan, our_ci_high=np.nan, our_i2=np.nan, our_p=np.nan,
                    difference=np.nan, k_ours=pd.NA)
        if fit is None:
            if with_data == 0:
                reasons.append(f"not estimable: no study in the sheet reports this outcome{where}")
            elif kind == oc.MEDIAN:
                who = "the one study" if with_data == 1 else f"none of the {with_data} studies"
                verb = "prints no" if with_data == 1 else "prints a"
                reasons.append(f"not estimable: {who} in the sheet reporting this median{where} {verb} 95% CI "
                               f"(medians are pooled only with one)")
            else:
                reasons.append(f"not estimable: no {method} estimate{where} in the pooled results")
        else:
            k = int(fit["k"])
            ours = dict(our_estimate=fit["estimate"], our_ci_low=fit["ci_low"], our_ci_high=fit["ci_high"],
                        our_i2=fit["i2"], our_p=fit["q_p"], difference=fit["estimate"] - pub["estimate"], k_ours=k)
            if fmt.missing(pub["estimate"]):
                reasons.append("no published estimate to compare")
            else:
                reasons.append(_comparison(ours["difference"], kind, tol[kind]))
            if k == 1:
                reasons.append("k = 1: a single study, not a pooled estimate")
            if kind == oc.MEDIAN and k < with_data:
                reasons.append(f"medians pooled only from studies printing a 95% CI ({k} of {with_data} in the sheet)")
        if kind == oc.SURVIVAL_RATE:
            reasons.append("the review pooled the Kaplan-Meier percentages as proportions (Freeman-Tukey); ours pools "
                           "them on the complementary log-log scale with SEs from their CIs (or n), since censoring "
                           "makes a KM rate something other than x/n")
        gap = _coverage_gap(outcome, subgroup, review_ids, without)
        if gap:
            reasons.append(gap)

        rows.append(dict(
            outcome=outcome, grade="" if fmt.missing(p.get("grade")) else str(p["grade"]).strip(), subgroup=subgroup,
            label=fmt.outcome_label(outcome), kind=kind, unit=unit, scale="fraction" if unit == "percent" else "months",
            published_estimate=pub["estimate"], published_ci_low=pub["ci_low"], published_ci_high=pub["ci_high"],
            published_i2=_float(p.get("i2"), published_path, r, "i2"),
            published_p=np.nan if fmt.missing(p.get("p_heterogeneity")) else str(p["p_heterogeneity"]).strip(),
            method=method, **ours, k_review=len(review_ids),
            k_review_basis=("studies listing AEs (upper bound: the review pooled only studies reporting this event)"
                            if outcome.startswith("ae_") else f"studies listing {oc.endpoint(outcome)}"),
            source=fmt.cell_text(p.get("source")), reason="; ".join(reasons)))
    table = pd.DataFrame(rows, columns=REPRODUCTION_COLUMNS)
    table["k_ours"] = table["k_ours"].astype("Int64")
    table["k_review"] = table["k_review"].astype("Int64")
    return table


def reproduction_summary(reproduction_table):
    """The reproduction table for reading: published and our estimate as ``"8.8 (6.2–11.7)"`` text.

    Parameters
    ----------
    reproduction_table : pandas.DataFrame
        As returned by :func:`reproduction`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`REPRODUCTION_SUMMARY_COLUMNS`; ``difference`` as ``"+2.0 pp"`` or
        ``"+0.71 months"``; blank (NaN) where there is nothing to show.

    Notes
    -----
    R equivalent: none (formatting only).
    """
    rows = []
    for r in reproduction_table.to_dict("records"):
        kind = r["kind"]
        diff = r["difference"]
        if fmt.missing(diff):
            shown = np.nan
        elif kind in fmt.PERCENT_KINDS:
            shown = f"{'+' if round(diff * 100, 1) > 0 else ''}{fmt.fixed(diff * 100, 1)} pp"
        else:
            shown = f"{'+' if round(diff, 2) > 0 else ''}{fmt.fixed(diff, 2)} months"
        rows.append(dict(outcome=r["outcome"], label=r["label"], subgroup=r["subgroup"], method=r["method"],
                         published=fmt.format_estimate(r["published_estimate"], r["published_ci_low"],
                                                   r["published_ci_high"], kind),
                         ours=fmt.format_estimate(r["our_estimate"], r["our_ci_low"], r["our_ci_high"], kind),
                         difference=shown, k_ours=r["k_ours"], k_review=r["k_review"], reason=r["reason"]))
    table = pd.DataFrame(rows, columns=REPRODUCTION_SUMMARY_COLUMNS)
    table["k_ours"] = table["k_ours"].astype("Int64")
    table["k_review"] = table["k_review"].astype("Int64")
    return table
