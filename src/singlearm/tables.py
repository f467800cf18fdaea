"""The review's tables, rebuilt from our sheets and results, and their Markdown rendering.

Every function here takes DataFrames and returns a DataFrame laid out for people to read
(one ``estimate_ci`` string per estimate, percentages for proportions, months for medians);
the numbers behind them stay in ``results/tables/pooled_estimates.csv``. :func:`to_markdown`
renders any of them as a GitHub-flavoured Markdown table with a provenance stamp. Numbers and
names are written by :mod:`singlearm.formatting`, as in the figures; the comparison with the
review's published numbers is :mod:`singlearm.reproduction`.

Tables 1-5 follow the review (Li et al., Front Oncol 2025): study characteristics, MINORS and
JBI quality, adverse events, and histology subgroups.

Where a function takes ``method``, it is either one method id (``"PFT-DL"``) applied to every
outcome, or a mapping from outcome kind to method id (``{"proportion": "PFT-DL", "median":
"MEDIAN-DL"}``), because the review pooled proportions and medians with different models.
"""

import math
import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

from . import formatting as fmt
from . import outcomes as oc
from .cleaning import sort_key
from .errors import DataError
from .pool import poolable
from .sheets import ROW_COLUMN

OVERALL = fmt.OVERALL

TABLE1_COLUMNS = ["study_id", "study", "design", "registration", "period", "follow_up", "n_male_female",
                  "age", "histology", "line", "endpoints"]
TABLE4_COLUMNS = ["ae", "k_all", "incidence_all", "i2_all", "p_all", "k_g34", "incidence_g34", "i2_g34", "p_g34"]
TABLE5_COLUMNS = ["outcome", "label", "subgroup", "method", "unit", "k", "k_pooled_of_reporting", "n", "estimate_ci",
                  "i2", "q_between", "df_between", "p_between", "note"]
MAIN_COLUMNS = ["outcome", "label", "method", "unit", "k", "k_pooled_of_reporting", "n", "estimate_ci", "pi", "tau2",
                "i2", "q", "q_df", "q_p", "note"]

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


# --------------------------------------------------------------------------------------------
# Helpers on the pooled-estimates table
# --------------------------------------------------------------------------------------------

def method_of(outcome, method):
    """The method id for an outcome: ``method`` itself, or ``method[kind(outcome)]`` for a mapping."""
    if isinstance(method, Mapping):
        return method.get(oc.kind(outcome))
    return method


def index_fits(estimates):
    """Pooled-estimate rows keyed by (outcome, subgroup, method); a repeated key is an error."""
    keys = ["outcome", "subgroup", "method"]
    dup = estimates.duplicated(subset=keys)
    if dup.any():
        row = estimates[dup].iloc[0]
        raise ValueError("pooled estimates: more than one row for outcome/subgroup/method "
                         f"{row['outcome']}/{row['subgroup']}/{row['method']}")
    return {(r["outcome"], r["subgroup"], r["method"]): r for r in estimates.to_dict("records")}


def _int_or_nan(x):
    return pd.NA if fmt.missing(x) else int(round(float(x)))


# --------------------------------------------------------------------------------------------
# Tables 1-3: the study sheet and the quality sheets
# --------------------------------------------------------------------------------------------

def _flag_mean(value, is_mean):
    """The sheet's number, marked ``(mean)`` where the source printed a mean instead of a median."""
    text = fmt.cell_text(value, "g")
    if fmt.missing(text):
        return text
    return f"{text} (mean)" if str(is_mean).strip().lower() in {"yes", "true", "1"} else text


def _endpoints(cell):
    if fmt.missing(cell):
        return np.nan
    return ", ".join(e.strip().replace(">=", " ≥ ") for e in str(cell).split(";") if e.strip())


def table1_characteristics(studies, subgroup_labels=None, subgroup_column="histology"):
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
    subgroup_labels : mapping, optional
        Subgroup value -> display label (:func:`singlearm.formatting.subgroup_labels`), the names
        the figures print; applied to ``histology`` when it is the ``subgroup_column``. A value
        it does not list prints as the sheet has it.
    subgroup_column : str
        The study-sheet column holding each cohort's subgroup (config ``subgroup_column``).

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
    labels = dict(subgroup_labels or {}) if subgroup_column == "histology" else {}
    rows = []
    for s in studies.to_dict("records"):
        ref = fmt.cell_text(s.get("ref"), "g")
        study = f"{s['author']}, {fmt.cell_text(s['year'], 'g')}" + ("" if fmt.missing(ref) else f" ({ref})")
        start, end = fmt.cell_text(s.get("period_start")), fmt.cell_text(s.get("period_end"))
        period = np.nan if fmt.missing(start) and fmt.missing(end) else \
            f"{'NA' if fmt.missing(start) else start} to {'NA' if fmt.missing(end) else end}"
        male, female = fmt.cell_text(s.get("n_male"), "g"), fmt.cell_text(s.get("n_female"), "g")
        histology = fmt.cell_text(s.get("histology"))
        line = fmt.cell_text(s.get("line_of_therapy"))
        rows.append(dict(
            study_id=s["study_id"], study=study, design=fmt.cell_text(s.get("design")),
            registration=fmt.cell_text(s.get("registration")), period=period,
            follow_up=_flag_mean(s.get("median_followup_months"), s.get("followup_is_mean")),
            n_male_female=np.nan if fmt.missing(male) and fmt.missing(female) else
            f"{'NA' if fmt.missing(male) else male}/{'NA' if fmt.missing(female) else female}",
            age=_flag_mean(s.get("median_age"), s.get("age_is_mean")),
            histology=histology if fmt.missing(histology) else labels.get(histology, histology),
            line=line if fmt.missing(line) else f"{line[0].upper()}{line[1:]} line",
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
            if table.at[i, col] == lead[col] or (fmt.missing(table.at[i, col]) and fmt.missing(lead[col])):
                table.at[i, col] = ""
    return table


def _item_columns(df, skip):
    """Quality-item columns in sheet order: everything but ids, totals, notes and reader bookkeeping."""
    return [c for c in df.columns if c not in skip and c != ROW_COLUMN and not c.endswith("__text")]


def sheet_row(record, position):
    return int(record[ROW_COLUMN]) if ROW_COLUMN in record and not fmt.missing(record[ROW_COLUMN]) else position + 2


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
                raise DataError(path, sheet_row(r, i), c, v, "a MINORS score of 0, 1 or 2")
            scores[c] = int(v)
        total = sum(scores.values())
        if "total" in r and not fmt.missing(r["total"]) and int(r["total"]) != total:
            raise DataError(path, sheet_row(r, i), "total", r["total"],
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
            v = "" if fmt.missing(r[c]) else str(r[c]).strip().upper()
            if v not in {"Y", "N", "U", "NA"}:
                raise DataError(path, sheet_row(r, i), c, r[c], "Y, N, U (unclear) or NA (not applicable)")
            answers[c] = v
        rows.append(dict(study_id=r["study_id"], **answers, n_yes=sum(v == "Y" for v in answers.values())))
    return pd.DataFrame(rows, columns=["study_id", *items, "n_yes"])


# --------------------------------------------------------------------------------------------
# Tables 4-5 and the main results: pooled estimates
# --------------------------------------------------------------------------------------------
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
    fits = index_fits(estimates)
    names = sorted({o.split(":", 1)[1] for o, s, m in fits
                    if o.startswith(("ae_all:", "ae_g34:")) and s == OVERALL and m == method_of(o, method)})
    rows = []
    for name in names:
        row = dict(ae=fmt.ae_name(name))
        for grade in ("all", "g34"):
            outcome = f"ae_{grade}:{name}"
            f = fits.get((outcome, OVERALL, method_of(outcome, method)))
            row |= {f"k_{grade}": pd.NA, f"incidence_{grade}": np.nan, f"i2_{grade}": np.nan, f"p_{grade}": np.nan,
                    f"_est_{grade}": -np.inf}
            if f is not None:
                row |= {f"k_{grade}": int(f["k"]),
                        f"incidence_{grade}": fmt.format_estimate(f["estimate"], f["ci_low"], f["ci_high"],
                                                                  oc.PROPORTION),
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
    if tests_row is not None and not fmt.missing(tests_row.get("levels")):
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
    The test is computed in the pooling stage (:func:`singlearm.pool.subgroup_difference`); with
    separate tau² it is Q_between = Σ_j w_j (θ_j − θ̄)², w_j = 1 / SE_j², on j − 1 df (Borenstein
    et al. 2009, ch. 19).
    R equivalent: ``rma(yi = b_g, sei = se_g, method = "EE")$QE`` over the per-subgroup fits.
    """
    fits = index_fits(estimates)
    tests = {(r["outcome"], r["method"]): r for r in subgroup_tests.to_dict("records")}
    outcomes = sorted({o for o, s, m in fits if s != OVERALL and m == method_of(o, method)}, key=sort_key)
    rows = []
    for outcome in outcomes:
        m = method_of(outcome, method)
        kind = oc.kind(outcome)
        test = tests.get((outcome, m))
        present = {s for o, s, mm in fits if o == outcome and mm == m and s != OVERALL}
        for j, sub in enumerate(_levels(test, present)):
            f = fits[(outcome, sub, m)]
            k_text, note = _pooling_note(outcome, sub, f, analysis)
            row = dict(outcome=outcome, label=fmt.outcome_label(outcome), subgroup=sub, method=m,
                       unit=fmt.unit_label(kind),
                       k=int(f["k"]), k_pooled_of_reporting=k_text, n=_int_or_nan(f["n"]),
                       estimate_ci=fmt.format_estimate(f["estimate"], f["ci_low"], f["ci_high"], kind), i2=f["i2"],
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
    fits = index_fits(estimates)
    outcomes = sorted({o for o, s, m in fits if s == OVERALL and not o.startswith("ae_")
                       and m == method_of(o, method)}, key=sort_key)
    rows = []
    for outcome in outcomes:
        m = method_of(outcome, method)
        kind = oc.kind(outcome)
        f = fits[(outcome, OVERALL, m)]
        k_text, note = _pooling_note(outcome, OVERALL, f, analysis)
        rows.append(dict(outcome=outcome, label=fmt.outcome_label(outcome), method=m, unit=fmt.unit_label(kind),
                         k=int(f["k"]),
                         k_pooled_of_reporting=k_text, n=_int_or_nan(f["n"]),
                         estimate_ci=fmt.format_estimate(f["estimate"], f["ci_low"], f["ci_high"], kind),
                         pi=fmt.format_interval(f["pi_low"], f["pi_high"], kind), tau2=f["tau2"], i2=f["i2"],
                         q=f["q"], q_df=_int_or_nan(f["q_df"]), q_p=f["q_p"], note=note))
    table = pd.DataFrame(rows, columns=MAIN_COLUMNS)
    table["n"] = table["n"].astype("Int64")
    table["q_df"] = table["q_df"].astype("Int64")
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
    if fmt.missing(value):
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
        return fmt.format_p(x)
    if column.startswith("i2") or column.endswith("_i2"):
        return fmt.fixed(x, 1)
    if column.startswith("tau2"):
        return fmt.fixed(x, 4)
    if _is_count(column) and x == round(x):
        return str(int(round(x)))
    if column in {"q", "q_between"} or column.startswith("q_"):
        return fmt.fixed(x, 2)
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


# ------------------------------------------------------------------------------------------
# Which table is built from what (rule make_tables)
# ------------------------------------------------------------------------------------------

# name -> (title, the inputs it reads)
TABLES = {
    "table1_characteristics": ("Table 1. Characteristics of the included studies", ["studies"]),
    "table2_minors": ("Table 2. Quality of the prospective studies (MINORS)", ["quality_minors"]),
    "table3_jbi": ("Table 3. Quality of the retrospective studies (JBI case-series checklist)", ["quality_jbi"]),
    "table4_adverse_events": ("Table 4. Pooled incidence of adverse events, any grade and grade \u2265 3",
                              ["estimates", "analysis"]),
    "table5_subgroups": ("Table 5. Subgroup analyses", ["estimates", "subgroup_tests", "analysis"]),
    "main_results": ("Main results (pooled over all cohorts)", ["estimates", "analysis"]),
    "reproduction": ("Reproduction of the review's published estimates",
                     ["published", "estimates", "coverage", "studies", "analysis"]),
}


def build(name, read, paths, *, methods, subgroup_labels=None, subgroup_column="histology"):
    """One table of :data:`TABLES` and the form its Markdown shows.

    Parameters
    ----------
    name : str
        A key of :data:`TABLES`.
    read : dict
        Input name -> DataFrame (the inputs of :data:`TABLES`).
    paths : dict
        Input name -> file path (named in error messages about a sheet's rows).
    methods : dict
        Outcome kind -> primary method id.

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame)
        The table (written as CSV) and its reading form (written as Markdown).
    """
    from . import reproduction  # it builds on this module

    if name == "table1_characteristics":
        table = table1_characteristics(read["studies"], subgroup_labels, subgroup_column)
    elif name == "table2_minors":
        table = table2_minors(read["quality_minors"], paths.get("quality_minors"))
    elif name == "table3_jbi":
        table = table3_jbi(read["quality_jbi"], paths.get("quality_jbi"))
    elif name == "table4_adverse_events":
        table = table4_adverse_events(read["estimates"], methods)
    elif name == "table5_subgroups":
        table = table5_subgroups(read["estimates"], read["subgroup_tests"], methods, read["analysis"])
    elif name == "main_results":
        table = main_results(read["estimates"], methods, read["analysis"])
    elif name == "reproduction":
        table = reproduction.reproduction(read["published"], read["estimates"], read["coverage"], read["studies"],
                                          methods, subgroup_column, published_path=paths.get("published"))
        return table, reproduction.reproduction_summary(table)
    else:
        raise ValueError(f"unknown table {name!r}; expected one of {sorted(TABLES)}")
    return table, table
