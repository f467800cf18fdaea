"""The review's tables, rebuilt from our sheets and results, and the reproduction of its published numbers.

Every function here takes DataFrames and returns a DataFrame laid out for people to read
(one ``estimate_ci`` string per estimate, percentages for proportions, months for medians);
the numbers behind them stay in ``results/tables/pooled_estimates.csv``. :func:`to_markdown`
renders any of them as a GitHub-flavoured Markdown table with a provenance stamp.

Tables 1-5 follow the review (Li et al., Front Oncol 2025): study characteristics, MINORS and
JBI quality, adverse events, and histology subgroups. :func:`reproduction` sets each estimate
the review published beside ours by the same method and says in words why they differ; it
never fills a gap with a number we did not estimate.

Where a function takes ``method``, it is either one method id (``"PFT-DL"``) applied to every
outcome, or a mapping from outcome kind to method id (``{"proportion": "PFT-DL", "median":
"MEDIAN-DL"}``), because the review pooled proportions and medians with different models.
"""

import math
import re
from collections.abc import Mapping
from decimal import Decimal

import numpy as np
import pandas as pd

from . import outcomes as oc
from .cleaning import sort_key
from .pool import poolable
from .errors import DataError
from .sheets import ROW_COLUMN

OVERALL = "overall"

# How far ours may lie from the published estimate and still "match": the review prints
# proportions to 0.1 percentage point and pooled medians to 0.01-0.1 month, so half a
# percentage point and a tenth of a month are differences a reader would not act on.
DEFAULT_TOLERANCE = {oc.PROPORTION: 0.005, oc.SURVIVAL_RATE: 0.005, oc.MEDIAN: 0.1}

TABLE1_COLUMNS = ["study_id", "study", "design", "registration", "period", "follow_up", "n_male_female",
                  "age", "histology", "line", "endpoints"]
TABLE4_COLUMNS = ["ae", "k_all", "incidence_all", "i2_all", "p_all", "k_g34", "incidence_g34", "i2_g34", "p_g34"]
TABLE5_COLUMNS = ["outcome", "label", "subgroup", "method", "unit", "k", "k_pooled_of_reporting", "n", "estimate_ci",
                  "i2", "q_between", "df_between", "p_between", "note"]
MAIN_COLUMNS = ["outcome", "label", "method", "unit", "k", "k_pooled_of_reporting", "n", "estimate_ci", "pi", "tau2",
                "i2", "q", "q_df", "q_p", "note"]
REPRODUCTION_COLUMNS = [
    "outcome", "grade", "subgroup", "label", "kind", "unit", "scale", "published_estimate", "published_ci_low",
    "published_ci_high", "published_i2", "published_p", "method", "our_estimate", "our_ci_low", "our_ci_high",
    "our_i2", "our_p", "difference", "k_ours", "k_review", "k_review_basis", "source", "reason",
]
REPRODUCTION_SUMMARY_COLUMNS = ["outcome", "label", "subgroup", "method", "published", "ours", "difference",
                                "k_ours", "k_review", "reason"]

# Display headers used by to_markdown for the column ids above (columns not listed keep their id).
HEADERS = {
    "study_id": "Study id", "study": "Author, year (ref)", "design": "Design", "registration": "Registration",
    "period": "Study period", "follow_up": "Median follow-up (months)", "n_male_female": "Male/female",
    "age": "Median age (years)", "histology": "Histology", "line": "Line of therapy", "endpoints": "Endpoints",
    "total": "Total", "n_yes": "Items met (Y)",
    "ae": "Adverse event", "k_all": "k", "incidence_all": "All grades, % (95% CI)", "i2_all": "I² (%)",
    "p_all": "p", "k_g34": "k", "incidence_g34": "Grade ≥ 3, % (95% CI)", "i2_g34": "I² (%)", "p_g34": "p",
    "outcome": "Outcome id", "label": "Outcome", "subgroup": "Subgroup", "method": "Method", "unit": "Unit",
    "k": "k", "n": "n", "estimate_ci": "Estimate (95% CI)", "pi": "95% prediction interval", "tau2": "τ²",
    "i2": "I² (%)", "q": "Q", "q_df": "df", "q_p": "p (Q)", "q_between": "Q between", "df_between": "df",
    "p_between": "p between", "published": "Published (95% CI)", "ours": "Ours (95% CI)",
    "difference": "Ours − published", "k_ours": "k ours", "k_review": "k review", "reason": "Why they differ",
}

_HISTOLOGY = {"sts": "Soft tissue sarcoma", "bone": "Bone sarcoma", "mixed": "Bone and soft tissue sarcoma"}
_DASH = "\u2013"


# --------------------------------------------------------------------------------------------
# Number formatting
# --------------------------------------------------------------------------------------------

def _missing(x):
    return x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA or x is pd.NaT


def _fixed(x, decimals):
    """Fixed-point text that never prints a negative zero (``-0.0`` reads as a real sign)."""
    x = round(float(x), decimals)
    return f"{x + 0.0:.{decimals}f}"


PERCENT_KINDS = {oc.PROPORTION, oc.SURVIVAL_RATE}   # reported in percent; medians in months


def _decimals(kind):
    # Proportions and survival rates are shown in percent to 0.1; medians in months to 0.01, as the review prints them.
    return 1 if kind in PERCENT_KINDS else 2


def _scale(kind):
    return 100.0 if kind in PERCENT_KINDS else 1.0


def format_interval(low, high, kind):
    """``"7.9–14.1"`` (percent) or ``"5.28–9.50"`` (months); NaN when a bound is missing.

    Parameters
    ----------
    low, high : float
        Bounds on the analysis's reporting scale: fractions for proportions, months for medians.
    kind : {"proportion", "median"}
        Outcome kind, as :func:`singlearm.outcomes.kind` returns it.

    Returns
    -------
    str or float
        The interval, joined by an en dash, or by ``" to "`` when a bound is negative (an en dash
        next to a minus sign is misread); NaN if either bound is missing.

    Notes
    -----
    R equivalent: ``sprintf("%.1f\u2013%.1f", 100 * ci.lb, 100 * ci.ub)``.
    """
    if _missing(low) or _missing(high):
        return np.nan
    d, s = _decimals(kind), _scale(kind)
    sep = " to " if low < 0 or high < 0 else _DASH
    return f"{_fixed(low * s, d)}{sep}{_fixed(high * s, d)}"


def format_estimate(estimate, low, high, kind):
    """``"10.9 (7.9–14.1)"`` for a proportion, ``"7.39 (5.28–9.50)"`` for a median in months.

    Parameters
    ----------
    estimate, low, high : float
        Estimate and 95% CI on the reporting scale (fractions for proportions, months for medians).
    kind : {"proportion", "median"}

    Returns
    -------
    str or float
        The estimate with its interval in brackets, the estimate alone when the interval is
        missing, or NaN when there is no estimate.

    Notes
    -----
    R equivalent: ``sprintf("%.1f (%.1f\u2013%.1f)", 100 * pred, 100 * ci.lb, 100 * ci.ub)``.
    """
    if _missing(estimate):
        return np.nan
    text = _fixed(estimate * _scale(kind), _decimals(kind))
    ci = format_interval(low, high, kind)
    return text if _missing(ci) else f"{text} ({ci})"


def format_p(p):
    """A p-value to 3 decimals, ``"<0.001"`` below that; text (``"<0.01"``) passes through; NaN stays NaN.

    R equivalent: ``format.pval(round(p, 3), eps = 0.001, nsmall = 3)``.
    """
    if _missing(p):
        return np.nan
    if isinstance(p, str):
        return p
    return "<0.001" if p < 0.001 else _fixed(p, 3)


# --------------------------------------------------------------------------------------------
# Helpers on the pooled-estimates table
# --------------------------------------------------------------------------------------------

def _method_of(outcome, method):
    """The method id for an outcome: ``method`` itself, or ``method[kind(outcome)]`` for a mapping."""
    if isinstance(method, Mapping):
        return method.get(oc.kind(outcome))
    return method


def _fits(estimates):
    """Pooled-estimate rows keyed by (outcome, subgroup, method); a repeated key is an error."""
    keys = ["outcome", "subgroup", "method"]
    dup = estimates.duplicated(subset=keys)
    if dup.any():
        row = estimates[dup].iloc[0]
        raise ValueError("pooled estimates: more than one row for outcome/subgroup/method "
                         f"{row['outcome']}/{row['subgroup']}/{row['method']}")
    return {(r["outcome"], r["subgroup"], r["method"]): r for r in estimates.to_dict("records")}


def _int_or_nan(x):
    return pd.NA if _missing(x) else int(round(float(x)))


def _unit_label(kind):
    return "%" if kind in PERCENT_KINDS else "months"


# --------------------------------------------------------------------------------------------
# Tables 1-3: the study sheet and the quality sheets
# --------------------------------------------------------------------------------------------

def _text(x, fmt=None):
    if _missing(x) or (isinstance(x, str) and not x.strip()):
        return np.nan
    if fmt == "g":
        return f"{float(x):g}"
    return str(x).strip()


def _flag_mean(value, is_mean):
    """The sheet's number, marked ``(mean)`` where the source printed a mean instead of a median."""
    text = _text(value, "g")
    if _missing(text):
        return text
    return f"{text} (mean)" if str(is_mean).strip().lower() in {"yes", "true", "1"} else text


def _endpoints(cell):
    if _missing(cell):
        return np.nan
    return ", ".join(e.strip().replace(">=", " ≥ ") for e in str(cell).split(";") if e.strip())


def table1_characteristics(studies):
    """The review's Table 1: characteristics of the included studies, in sheet order.

    A study with several groups (e.g. bone and soft-tissue cohorts reported separately) gets one
    row per group, as in the review: the first carries the study-level cells, the following rows
    only the cells that differ between the study's groups (sample size, age, histology, ...).

    Parameters
    ----------
    studies : pandas.DataFrame
        The study sheet (``study_characteristics.csv``): ``study_id, author, year, ref, design,
        registration, period_start, period_end, median_followup_months, followup_is_mean, group,
        n_male, n_female, median_age, age_is_mean, histology, line_of_therapy, endpoints``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`TABLE1_COLUMNS`: ``study`` is ``"Chi, 2018 (14)"``; ``period`` is
        ``"2013-05 to 2015-05"``; ``follow_up`` and ``age`` carry ``" (mean)"`` where the sheet
        flags a mean; ``n_male_female`` is ``"100/66"``; missing cells are NaN.

    Notes
    -----
    R equivalent: none (a layout of the sheet, no statistics).
    """
    rows = []
    for s in studies.to_dict("records"):
        ref = _text(s.get("ref"), "g")
        study = f"{s['author']}, {_text(s['year'], 'g')}" + ("" if _missing(ref) else f" ({ref})")
        start, end = _text(s.get("period_start")), _text(s.get("period_end"))
        period = np.nan if _missing(start) and _missing(end) else \
            f"{'NA' if _missing(start) else start} to {'NA' if _missing(end) else end}"
        male, female = _text(s.get("n_male"), "g"), _text(s.get("n_female"), "g")
        histology = _text(s.get("histology"))
        line = _text(s.get("line_of_therapy"))
        rows.append(dict(
            study_id=s["study_id"], study=study, design=_text(s.get("design")),
            registration=_text(s.get("registration")), period=period,
            follow_up=_flag_mean(s.get("median_followup_months"), s.get("followup_is_mean")),
            n_male_female=np.nan if _missing(male) and _missing(female) else
            f"{'NA' if _missing(male) else male}/{'NA' if _missing(female) else female}",
            age=_flag_mean(s.get("median_age"), s.get("age_is_mean")),
            histology=_HISTOLOGY.get(histology, histology),
            line=line if _missing(line) else f"{line[0].upper()}{line[1:]} line",
            endpoints=_endpoints(s.get("endpoints"))))
    # object dtype: an all-blank column (e.g. no registrations) must still take text cells
    table = pd.DataFrame(rows, columns=TABLE1_COLUMNS, dtype=object)
    # Later rows of a multi-group study repeat the study's cells; the review leaves them blank so
    # the eye sees one study with several cohorts, not several studies.
    first = table.groupby("study_id", sort=False).head(1).set_index("study_id")
    for i in table.index[table["study_id"].duplicated()]:
        lead = first.loc[table.at[i, "study_id"]]
        table.at[i, "study"] = ""
        for col in ("design", "registration", "period", "follow_up", "endpoints"):
            if table.at[i, col] == lead[col] or (_missing(table.at[i, col]) and _missing(lead[col])):
                table.at[i, col] = ""
    return table


def _item_columns(df, skip):
    """Quality-item columns in sheet order: everything but ids, totals, notes and reader bookkeeping."""
    return [c for c in df.columns if c not in skip and c != ROW_COLUMN and not c.endswith("__text")]


def _row_number(record, position):
    return int(record[ROW_COLUMN]) if ROW_COLUMN in record and not _missing(record[ROW_COLUMN]) else position + 2


def table2_minors(minors, path="quality_minors.csv"):
    """The review's Table 2: MINORS items (0-2 each) and their total per prospective study.

    Parameters
    ----------
    minors : pandas.DataFrame
        ``study_id``, one column per item (``A`` ... ``H``), optionally ``total`` and ``note``.
    path : str
        File name used in error messages.

    Returns
    -------
    pandas.DataFrame
        ``study_id``, the item columns in sheet order, and ``total`` (the sum of the items).

    Raises
    ------
    DataError
        When an item is not 0, 1 or 2, or a printed ``total`` differs from the sum of the items.

    Notes
    -----
    Slim et al., ANZ J Surg 2003;73:712-6 (items 1-8 apply to non-comparative studies).
    R equivalent: none.
    """
    items = _item_columns(minors, {"study_id", "total", "note"})
    rows = []
    for i, r in enumerate(minors.to_dict("records")):
        scores = {}
        for c in items:
            v = r[c]
            if str(v).strip() not in {"0", "1", "2", "0.0", "1.0", "2.0"}:
                raise DataError(path, _row_number(r, i), c, v, "a MINORS score of 0, 1 or 2")
            scores[c] = int(v)
        total = sum(scores.values())
        if "total" in r and not _missing(r["total"]) and int(r["total"]) != total:
            raise DataError(path, _row_number(r, i), "total", r["total"],
                            f"the sum of items {', '.join(items)} ({total})")
        rows.append(dict(study_id=r["study_id"], **scores, total=total))
    return pd.DataFrame(rows, columns=["study_id", *items, "total"])


def table3_jbi(jbi, path="quality_jbi.csv"):
    """The review's Table 3: JBI case-series checklist answers and the count of items met (``Y``).

    Parameters
    ----------
    jbi : pandas.DataFrame
        ``study_id`` and one column per question (``Q1`` ... ``Q10``) holding ``Y``, ``N``, ``U``
        (unclear) or ``NA`` (not applicable).
    path : str
        File name used in error messages.

    Returns
    -------
    pandas.DataFrame
        ``study_id``, the question columns (answers upper-cased) and ``n_yes``.

    Raises
    ------
    DataError
        For an answer other than Y, N, U or NA.

    Notes
    -----
    Munn et al., JBI Evid Synth 2020;18:2127-33. R equivalent: none.
    """
    items = _item_columns(jbi, {"study_id", "n_yes", "note"})
    rows = []
    for i, r in enumerate(jbi.to_dict("records")):
        answers = {}
        for c in items:
            v = "" if _missing(r[c]) else str(r[c]).strip().upper()
            if v not in {"Y", "N", "U", "NA"}:
                raise DataError(path, _row_number(r, i), c, r[c], "Y, N, U (unclear) or NA (not applicable)")
            answers[c] = v
        rows.append(dict(study_id=r["study_id"], **answers, n_yes=sum(v == "Y" for v in answers.values())))
    return pd.DataFrame(rows, columns=["study_id", *items, "n_yes"])


# --------------------------------------------------------------------------------------------
# Tables 4-5 and the main results: pooled estimates
# --------------------------------------------------------------------------------------------

def _ae_name(outcome):
    """Reader's name of an adverse event without its grade (``ae_g34:hand_foot_syndrome`` -> ``Hand foot syndrome``)."""
    if outcome.split(":", 1)[1] == "any":
        return "Any adverse event"
    return oc.label(outcome).rsplit(" (", 1)[0]


def table4_adverse_events(estimates, method):
    """The review's Table 4: pooled incidence of every adverse event, any grade and grade ≥ 3 side by side.

    Parameters
    ----------
    estimates : pandas.DataFrame
        Pooled estimates (``results/tables/pooled_estimates.csv``), proportions as fractions.
    method : str or mapping
        Method id (the review's ``"PFT-DL"``) or a kind -> method mapping.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`TABLE4_COLUMNS`, one row per adverse event that has an overall estimate at
        either grade; the cells of a grade without an estimate are blank (NaN). Ordered by
        any-grade incidence, then grade ≥ 3 incidence (both descending), then name, as the
        review orders its table.

    Notes
    -----
    R equivalent: ``metafor::rma(measure="PFT", xi, ni, method="DL")`` per event, back-transformed
    with ``transf.ipft.hm``.
    """
    fits = _fits(estimates)
    names = sorted({o.split(":", 1)[1] for o, s, m in fits
                    if o.startswith(("ae_all:", "ae_g34:")) and s == OVERALL and m == _method_of(o, method)})
    rows = []
    for name in names:
        row = dict(ae=_ae_name(f"ae_all:{name}"))
        for grade in ("all", "g34"):
            outcome = f"ae_{grade}:{name}"
            f = fits.get((outcome, OVERALL, _method_of(outcome, method)))
            row |= {f"k_{grade}": pd.NA, f"incidence_{grade}": np.nan, f"i2_{grade}": np.nan, f"p_{grade}": np.nan,
                    f"_est_{grade}": -np.inf}
            if f is not None:
                row |= {f"k_{grade}": int(f["k"]),
                        f"incidence_{grade}": format_estimate(f["estimate"], f["ci_low"], f["ci_high"], oc.PROPORTION),
                        f"i2_{grade}": f["i2"], f"p_{grade}": f["q_p"], f"_est_{grade}": f["estimate"]}
        rows.append(row)
    rows.sort(key=lambda r: (-r["_est_all"], -r["_est_g34"], r["ae"]))
    table = pd.DataFrame(rows, columns=TABLE4_COLUMNS)
    for c in ("k_all", "k_g34"):
        table[c] = table[c].astype("Int64")
    return table


def _levels(tests_row, present):
    """Subgroup order: as the between-subgroup test lists its levels (``sts:k=6;bone:k=2``), then the rest."""
    order = []
    if tests_row is not None and not _missing(tests_row.get("levels")):
        order = [lv.split(":", 1)[0] for lv in str(tests_row["levels"]).split(";") if lv]
    return [s for s in order if s in present] + sorted(s for s in present if s not in order)


def _pooling_note(outcome, subgroup, fit, analysis):
    """``("3 / 5", note)``: cohorts pooled of those reporting the outcome, and what a reader must know.

    The note says when the row is one study (not pooled), names the cohorts that report the
    outcome but could not be pooled (a median without a 95% CI) and warns when the pooled
    cohorts mix ITT and evaluable denominators.
    """
    k = int(fit["k"])
    notes = ["1 study: not pooled"] if k == 1 else []
    if analysis is None:
        return f"{k} / {int(fit.get('k_reporting', k))}", "; ".join(notes)
    rows = analysis[analysis["outcome"] == outcome]
    rows = rows if subgroup == OVERALL else rows[rows["subgroup"] == subgroup]
    pooled = poolable(rows)
    left = rows.loc[~rows.index.isin(pooled.index), "cohort_id"].tolist()
    if left and k == len(pooled):
        notes.append(f"left out (no 95% CI): {', '.join(left)}")
    kinds = set(pooled.get("denominator", pd.Series(dtype=str)).fillna("").astype(str)) - {""}
    if len(kinds) > 1:
        notes.append(f"mixes denominators ({' and '.join(sorted(kinds))})")
    return f"{k} / {len(rows)}", "; ".join(notes)


def table5_subgroups(estimates, subgroup_tests, method, analysis=None):
    """The review's Table 5: each outcome by subgroup, with the test of differences between subgroups.

    Parameters
    ----------
    estimates : pandas.DataFrame
        Pooled estimates, one row per outcome x subgroup x method.
    subgroup_tests : pandas.DataFrame
        ``outcome, method, subgroups, q_between, df, p_value, levels``.
    method : str or mapping
        Method id or a kind -> method mapping (e.g. PFT-DL for proportions, MEDIAN-DL for medians).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`TABLE5_COLUMNS`, one row per outcome x subgroup (overall rows left out);
        the between-subgroup ``q_between, df_between, p_between`` sit on each outcome's first row
        and are empty strings on the others (blank, not "missing"). Outcomes in reading order.

    Notes
    -----
    Q_between = Σ_j w_j (θ_j − θ̄)², w_j = 1 / SE_j², on j − 1 df (Borenstein et al. 2009, ch. 19).
    R equivalent: ``metafor::rma(yi, vi, mods = ~ factor(subgroup), method="FE")`` on the
    subgroup estimates (``QM``).
    """
    fits = _fits(estimates)
    tests = {(r["outcome"], r["method"]): r for r in subgroup_tests.to_dict("records")}
    outcomes = sorted({o for o, s, m in fits if s != OVERALL and m == _method_of(o, method)}, key=sort_key)
    rows = []
    for outcome in outcomes:
        m = _method_of(outcome, method)
        kind = oc.kind(outcome)
        test = tests.get((outcome, m))
        present = {s for o, s, mm in fits if o == outcome and mm == m and s != OVERALL}
        for j, sub in enumerate(_levels(test, present)):
            f = fits[(outcome, sub, m)]
            k_text, note = _pooling_note(outcome, sub, f, analysis)
            row = dict(outcome=outcome, label=oc.label(outcome), subgroup=sub, method=m, unit=_unit_label(kind),
                       k=int(f["k"]), k_pooled_of_reporting=k_text, n=_int_or_nan(f["n"]),
                       estimate_ci=format_estimate(f["estimate"], f["ci_low"], f["ci_high"], kind), i2=f["i2"],
                       q_between="", df_between="", p_between="", note=note)
            if j == 0:
                row |= dict(q_between=np.nan, df_between=pd.NA, p_between=np.nan)
                if test is not None:
                    row |= dict(q_between=test["q_between"], df_between=_int_or_nan(test["df"]),
                                p_between=test["p_value"])
            rows.append(row)
    table = pd.DataFrame(rows, columns=TABLE5_COLUMNS)
    table["n"] = table["n"].astype("Int64")
    return table


def main_results(estimates, method, analysis=None):
    """The main efficacy results: every non-adverse-event outcome, overall.

    Parameters
    ----------
    estimates : pandas.DataFrame
        Pooled estimates (fractions for proportions, months for medians).
    method : str or mapping
        Method id or a kind -> method mapping.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`MAIN_COLUMNS`: ``estimate_ci`` and the prediction interval ``pi`` as text in
        percent (proportions) or months (medians); ``tau2`` on the analysis scale (Freeman-Tukey
        for PFT methods); ``i2`` in percent; ``q_p`` the p-value of Cochran's Q. Outcomes in reading
        order; an outcome without an overall estimate by its method is left out.

    Notes
    -----
    Prediction interval θ̂ ± t_{k−2} √(τ² + SE²) (Higgins et al. 2009), back-transformed.
    R equivalent: ``predict(metafor::rma(measure="PFT", xi, ni, method="DL"), transf=transf.ipft.hm,
    targs=list(ni=ni))``.
    """
    fits = _fits(estimates)
    outcomes = sorted({o for o, s, m in fits if s == OVERALL and not o.startswith("ae_")
                       and m == _method_of(o, method)}, key=sort_key)
    rows = []
    for outcome in outcomes:
        m = _method_of(outcome, method)
        kind = oc.kind(outcome)
        f = fits[(outcome, OVERALL, m)]
        k_text, note = _pooling_note(outcome, OVERALL, f, analysis)
        rows.append(dict(outcome=outcome, label=oc.label(outcome), method=m, unit=_unit_label(kind), k=int(f["k"]),
                         k_pooled_of_reporting=k_text, n=_int_or_nan(f["n"]),
                         estimate_ci=format_estimate(f["estimate"], f["ci_low"], f["ci_high"], kind),
                         pi=format_interval(f["pi_low"], f["pi_high"], kind), tau2=f["tau2"], i2=f["i2"],
                         q=f["q"], q_df=_int_or_nan(f["q_df"]), q_p=f["q_p"], note=note))
    table = pd.DataFrame(rows, columns=MAIN_COLUMNS)
    table["n"] = table["n"].astype("Int64")
    table["q_df"] = table["q_df"].astype("Int64")
    return table


# --------------------------------------------------------------------------------------------
# Reproduction of the published estimates
# --------------------------------------------------------------------------------------------

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
    grade = "" if _missing(grade) else str(grade).strip()
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
           if oc.lists_endpoint("" if _missing(e) else str(e), outcome)]
    return list(dict.fromkeys(ids))


def _float(value, path, row, column):
    if _missing(value) or (isinstance(value, str) and not value.strip()):
        return np.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DataError(path, row, column, value, "a number or a blank cell") from None


def _endpoint_name(outcome):
    """How a sentence names the outcome's data: ``ORR``, ``median overall survival``, ``3-month PFS rate``."""
    if outcome in {"orr", "dcr"}:
        return outcome.upper()
    text = oc.label(outcome)
    return text[0].lower() + text[1:] if text[:1].isupper() and not text[1:2].isupper() else text


def _comparison(difference, kind, tol):
    if kind in PERCENT_KINDS:
        size, unit, limit = abs(difference) * 100, "percentage points", f"{tol * 100:g} percentage points"
        shown = _fixed(size, 1)
    else:
        size, unit, limit = abs(difference), "months", f"{tol:g} months"
        shown = _fixed(size, 2)
    if abs(difference) <= tol + 1e-12:
        return f"matches within {limit}"
    return f"ours is {shown} {unit} {'higher' if difference > 0 else 'lower'}"


def _coverage_gap(outcome, subgroup, review_ids, without):
    """The sentence naming the review's studies (listing the endpoint) that the sheet has no data for."""
    if not without:
        return None
    where = "" if subgroup == OVERALL else f"{subgroup} "
    name = _endpoint_name(outcome)
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
    fits = _fits(estimates)
    cov = {r["outcome"]: r for r in coverage.to_dict("records")}
    rows = []
    for i, p in enumerate(published.to_dict("records")):
        r = _row_number(p, i)
        outcome = published_outcome(p["outcome"], p.get("grade"))
        try:
            kind = oc.kind(outcome)
        except ValueError:
            raise DataError(published_path, r, "outcome", p["outcome"],
                            "an outcome id (orr, dcr, median_pfs, ...) or, with grade all/g34, an adverse-event "
                            "name") from None
        unit = str(p["unit"]).strip()
        if unit != ("percent" if kind in PERCENT_KINDS else "months"):
            raise DataError(published_path, r, "unit", p["unit"],
                            f"{'percent' if kind in PERCENT_KINDS else 'months'} for {outcome}")
        subgroup = str(p["subgroup"]).strip()
        pub = {c: _float(p.get(c), published_path, r, c) for c in ("estimate", "ci_low", "ci_high")}
        if unit == "percent":
            # via Decimal, so a printed 8.8% becomes 0.088 and not 0.08800000000000001
            pub = {c: v if _missing(v) else float(Decimal(repr(v)) / 100) for c, v in pub.items()}
        method = method_for.get(kind)
        fit = fits.get((outcome, subgroup, method))

        review_ids = review_studies(studies, outcome, subgroup, subgroup_column)
        c = cov.get(outcome)
        missing = set() if c is None or _missing(c["studies_listing_endpoint_without_data"]) else \
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
            if _missing(pub["estimate"]):
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
            outcome=outcome, grade="" if _missing(p.get("grade")) else str(p["grade"]).strip(), subgroup=subgroup,
            label=oc.label(outcome), kind=kind, unit=unit, scale="fraction" if unit == "percent" else "months",
            published_estimate=pub["estimate"], published_ci_low=pub["ci_low"], published_ci_high=pub["ci_high"],
            published_i2=_float(p.get("i2"), published_path, r, "i2"),
            published_p=np.nan if _missing(p.get("p_heterogeneity")) else str(p["p_heterogeneity"]).strip(),
            method=method, **ours, k_review=len(review_ids),
            k_review_basis=("studies listing AEs (upper bound: the review pooled only studies reporting this event)"
                            if outcome.startswith("ae_") else f"studies listing {oc.endpoint(outcome)}"),
            source=_text(p.get("source")), reason="; ".join(reasons)))
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
        if _missing(diff):
            shown = np.nan
        elif kind in PERCENT_KINDS:
            shown = f"{'+' if round(diff * 100, 1) > 0 else ''}{_fixed(diff * 100, 1)} pp"
        else:
            shown = f"{'+' if round(diff, 2) > 0 else ''}{_fixed(diff, 2)} months"
        rows.append(dict(outcome=r["outcome"], label=r["label"], subgroup=r["subgroup"], method=r["method"],
                         published=format_estimate(r["published_estimate"], r["published_ci_low"],
                                                   r["published_ci_high"], kind),
                         ours=format_estimate(r["our_estimate"], r["our_ci_low"], r["our_ci_high"], kind),
                         difference=shown, k_ours=r["k_ours"], k_review=r["k_review"], reason=r["reason"]))
    table = pd.DataFrame(rows, columns=REPRODUCTION_SUMMARY_COLUMNS)
    table["k_ours"] = table["k_ours"].astype("Int64")
    table["k_review"] = table["k_review"].astype("Int64")
    return table


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------

def _is_p(name):
    return name in {"p", "q_p", "p_value"} or name.startswith("p_") or name.endswith("_p")


def _is_count(name):
    return name in {"k", "n", "df"} or name.startswith(("k_", "n_", "df_")) or name.endswith(("_k", "_n", "_df"))


def _positional(x):
    """Three significant digits, never in exponent form (people read 0.000123, not 1.23e-04)."""
    return np.format_float_positional(float(x), precision=3, unique=False, fractional=False, trim="-")


def _cell(value, column, na):
    """Text of one cell, chosen by the column's name: p-values, I², τ², counts, Q, anything else."""
    if _missing(value):
        return na
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    x = float(value)
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if _is_p(column):
        return format_p(x)
    if column.startswith("i2") or column.endswith("_i2"):
        return _fixed(x, 1)
    if column.startswith("tau2"):
        return _fixed(x, 4)
    if _is_count(column) and x == round(x):
        return str(int(round(x)))
    if column in {"q", "q_between"} or column.startswith("q_"):
        return _fixed(x, 2)
    return str(int(x)) if x == round(x) and abs(x) < 1e15 else _positional(x)


def _escape(text):
    # A bare '|' would end the cell; a newline would end the row.
    return re.sub(r"\s*[\r\n]+\s*", " ", str(text)).replace("|", "\\|")


def to_markdown(df, title, stamp, caption=None, headers=None, na="\u2013"):
    """Render a table as GitHub-flavoured Markdown: title, optional caption, table, provenance stamp.

    Parameters
    ----------
    df : pandas.DataFrame
        The table; its index is not printed.
    title : str
        First line, printed in bold (e.g. ``"Table 4. Pooled incidence of adverse events"``).
    stamp : str
        Provenance (``singlearm 0.1.0 · 60a2f4c · inputs 1a2b3c4d5e6f``), printed in italics as
        the last line.
    caption : str, optional
        A paragraph between title and table (abbreviations, method).
    headers : mapping, optional
        Column id -> header text; defaults to :data:`HEADERS`, and a column in neither keeps its id.
    na : str
        Text for a missing cell (default an en dash).

    Returns
    -------
    str
        The Markdown text, ending with ``_<stamp>_`` and a newline. Numbers are formatted by
        column name: p-values (``p``, ``q_p``, ``*_p``, ``p_*``) to 3 decimals or ``<0.001``;
        I² (``i2*``, ``*_i2``) to 1 decimal; τ² to 4 decimals; counts (``k``, ``n``, ``df``,
        ``k_*``...) as integers; Q to 2 decimals; other numbers to 3 significant digits.
        Numeric columns are right-aligned. ``|`` in a cell is escaped, line breaks become spaces.

    Notes
    -----
    Written here rather than with ``tabulate`` (not a declared dependency) so the output is fixed
    by this package alone. R equivalent: ``knitr::kable(df, format = "pipe")``.
    """
    names = HEADERS if headers is None else headers
    columns = [str(c) for c in df.columns]
    head = [_escape(names.get(c, c)) for c in columns]
    align = ["---:" if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) else "---"
             for c in df.columns]
    lines = [f"**{_escape(title)}**", ""]
    if caption:
        lines += [_escape(caption), ""]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("| " + " | ".join(align) + " |")
    for record in df.itertuples(index=False, name=None):
        cells = [_escape(_cell(v, c, na)) for v, c in zip(record, columns)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"_{stamp}_"]
    return "\n".join(lines) + "\n"
