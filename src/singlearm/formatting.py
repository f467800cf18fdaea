"""How numbers and names read, in the tables and the figures alike: one module, so they agree.

p-values, estimates with their intervals, percentages, counts, outcome and adverse-event names,
and the display labels of the subgroup levels. Pure functions of their arguments; nothing here
knows which review it formats (subgroup labels come from the config or the study table).

Two interval styles coexist on purpose: tables print ``10.8 (7.9–14.1)``, as the review does,
and the text columns of the figures print ``10.8 [7.9, 14.1]``, as forest plots do (an en dash
beside a minus sign on an axis of log values is misread). Both use the same rounding.
"""

import math
import re

import numpy as np
import pandas as pd

from . import outcomes as oc

OVERALL = "overall"
DASH = "\u2013"
PERCENT_KINDS = {oc.PROPORTION, oc.SURVIVAL_RATE}   # reported in percent; medians in months

_NAMES = {
    "orr": "Objective response rate", "dcr": "Disease control rate", "cr": "Complete response",
    "pr": "Partial response", "sd": "Stable disease", "pd": "Progressive disease",
    "median_pfs": "Median progression-free survival", "median_os": "Median overall survival",
}
AE_OUTCOME = re.compile(r"^ae_(all|g34):(.+)$")


# --------------------------------------------------------------------------------------------
# Missing values and plain numbers
# --------------------------------------------------------------------------------------------

def missing(x):
    """Whether a cell is empty: None, NaN, ``pd.NA`` or ``pd.NaT``."""
    return x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA or x is pd.NaT


def finite(x):
    """Whether ``x`` reads as a finite number (False for None, text, NaN and infinities)."""
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def fixed(x, decimals):
    """Fixed-point text that never prints a negative zero (``-0.0`` reads as a real sign)."""
    x = round(float(x), decimals)
    return f"{x + 0.0:.{decimals}f}"


def number(x, digits=1):
    """``x`` to ``digits`` decimals, ``NA`` when it is not a finite number."""
    return fixed(x, digits) if finite(x) else "NA"


def count(x):
    """A whole number with thousands separators (``1,234``), ``NA`` when not finite."""
    return f"{int(round(float(x))):,}" if finite(x) else "NA"


def percent(x, digits=1):
    """``10.8%`` for a value already in percent (I², weights), ``NA`` when not finite."""
    return f"{number(x, digits)}%" if finite(x) else "NA"


def cell_text(x, spec=None):
    """A sheet cell as text, trimmed; NaN when blank. ``spec="g"`` prints a number shortest (``2018``, ``40.5``)."""
    if missing(x) or (isinstance(x, str) and not x.strip()):
        return np.nan
    if spec == "g":
        return f"{float(x):g}"
    return str(x).strip()


def to_bool(x):
    """A CSV cell as a bool: ``true``/``1``/``yes`` (any case) or a true value; NaN is False."""
    if isinstance(x, str):
        return x.strip().lower() in ("true", "1", "yes")
    return bool(x) if not (isinstance(x, float) and math.isnan(x)) else False


# --------------------------------------------------------------------------------------------
# p-values
# --------------------------------------------------------------------------------------------

def format_p(p):
    """A p-value to 3 decimals, ``"<0.001"`` below that; text (``"<0.01"``) passes through; NaN stays NaN.

    R equivalent: ``format.pval(round(p, 3), eps = 0.001, nsmall = 3)``.
    """
    if missing(p):
        return np.nan
    if isinstance(p, str):
        return p
    return "<0.001" if p < 0.001 else fixed(p, 3)


def p_text(p):
    """A p-value in running text: ``p = 0.500``, ``p < 0.001`` or ``p = NA`` (same rounding as :func:`format_p`)."""
    if not finite(p):
        return "p = NA"
    value = format_p(float(p))
    return f"p < {value[1:]}" if value.startswith("<") else f"p = {value}"


# --------------------------------------------------------------------------------------------
# Estimates and intervals
# --------------------------------------------------------------------------------------------

def reporting_decimals(kind):
    """Decimals of a reported estimate: percent to 0.1, months to 0.01, as the review prints them."""
    return 1 if kind in PERCENT_KINDS else 2


def reporting_scale(kind):
    """Factor from the analysis's reporting scale to what is printed: 100 for rates, 1 for months."""
    return 100.0 if kind in PERCENT_KINDS else 1.0


def unit_label(kind):
    """``%`` for proportions and survival rates, ``months`` for medians."""
    return "%" if kind in PERCENT_KINDS else "months"


def format_interval(low, high, kind):
    """``"7.9–14.1"`` (percent) or ``"5.28–9.50"`` (months); NaN when a bound is missing.

    Parameters
    ----------
    low, high : float
        Bounds on the analysis's reporting scale: fractions for proportions, months for medians.
    kind : {"proportion", "survival_rate", "median"}
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
    if missing(low) or missing(high):
        return np.nan
    d, s = reporting_decimals(kind), reporting_scale(kind)
    sep = " to " if low < 0 or high < 0 else DASH
    return f"{fixed(low * s, d)}{sep}{fixed(high * s, d)}"


def format_estimate(estimate, low, high, kind):
    """``"10.9 (7.9–14.1)"`` for a proportion, ``"7.39 (5.28–9.50)"`` for a median in months.

    Parameters
    ----------
    estimate, low, high : float
        Estimate and 95% CI on the reporting scale (fractions for proportions, months for medians).
    kind : {"proportion", "survival_rate", "median"}

    Returns
    -------
    str or float
        The estimate with its interval in brackets, the estimate alone when the interval is
        missing, or NaN when there is no estimate.

    Notes
    -----
    R equivalent: ``sprintf("%.1f (%.1f\u2013%.1f)", 100 * pred, 100 * ci.lb, 100 * ci.ub)``.
    """
    if missing(estimate):
        return np.nan
    text = fixed(estimate * reporting_scale(kind), reporting_decimals(kind))
    ci = format_interval(low, high, kind)
    return text if missing(ci) else f"{text} ({ci})"


def bracket_interval(estimate, low, high, digits=1):
    """``10.8 [7.9, 14.1]``, the text column of a forest-like figure; a missing bound prints as NA.

    The numbers are printed as given (already in percent or months).
    """
    return f"{number(estimate, digits)} [{number(low, digits)}, {number(high, digits)}]"


# --------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------

def ae_name(name):
    """Reader's name of an adverse event without its grade (``hand_foot_syndrome`` -> ``Hand foot syndrome``)."""
    return "Any adverse event" if name == "any" else name.replace("_", " ").capitalize()


def outcome_label(outcome):
    """A reader's name for an outcome id, e.g. ``ae_g34:hand_foot_syndrome`` -> ``Hand foot syndrome (grade ≥ 3)``."""
    if outcome in _NAMES:
        return _NAMES[outcome]
    m = re.match(r"^(pfs|os)_rate_(\d+)m$", outcome)
    if m:
        return f"{m.group(2)}-month {m.group(1).upper()} rate"
    m = re.match(r"^pfr_(\d+)w$", outcome)
    if m:
        return f"Progression-free rate at {m.group(1)} weeks"
    m = AE_OUTCOME.match(outcome)
    if m:
        grade = "any grade" if m.group(1) == "all" else "grade \u2265 3"
        return f"{m.group(2).replace('_', ' ').capitalize()} ({grade})"
    return outcome


def endpoint_name(outcome):
    """How a sentence names the outcome's data: ``ORR``, ``median overall survival``, ``3-month PFS rate``."""
    if outcome in {"orr", "dcr"}:
        return outcome.upper()
    text = outcome_label(outcome)
    return text[0].lower() + text[1:] if text[:1].isupper() and not text[1:2].isupper() else text


def subgroup_labels(values, levels=None):
    """Display label of every subgroup level, ``overall`` first, in reading order.

    Parameters
    ----------
    values : iterable of str
        The subgroup values as the study table holds them (its ``subgroup_column``), in sheet order.
    levels : mapping, optional
        Config ``subgroup_levels``: value -> display label, in the order to show them
        (``{"sts": "Soft-tissue sarcoma", "bone": "Bone sarcoma"}``). Without it each value is
        its own label, in order of first appearance.

    Returns
    -------
    dict
        ``{"overall": "Overall", <value>: <label>, ...}``; a value the mapping does not list keeps
        its own text, after the listed ones. The mapping may relabel ``overall`` too.
    """
    labels = {OVERALL: "Overall"}
    labels.update({str(k): str(v) for k, v in (levels or {}).items()})
    for value in values:
        labels.setdefault(str(value), str(value))
    return labels
