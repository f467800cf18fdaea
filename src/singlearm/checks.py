"""Checks for typing slips that pass a row's schema but would silently change what is pooled.

A label typed in another case (``STS`` beside ``sts``) would make a new subgroup or an unknown
within-study subset; a fraction typed in a percent column (0.086 for 8.6%) would exclude the row.
Each becomes a :class:`~singlearm.errors.DataError` naming file, row, column, value and expectation.
"""

from decimal import Decimal

from .errors import DataError
from .sheets import ROW_COLUMN


def _key(label):
    return str(label).strip().casefold()


def check_label_variants(df, column, path, known=None):
    """Refuse two spellings of one label in ``column`` (compared case-insensitively, trimmed).

    Parameters
    ----------
    df : pandas.DataFrame
        A sheet as read by :func:`singlearm.sheets.read_sheet`.
    column : str
        The label column (e.g. the configured subgroup column).
    path : str
        The sheet's file name, for the message.
    known : iterable of (str, int), optional
        (label, spreadsheet row) pairs of a reference sheet (e.g. the study table's groups): a value
        of ``column`` that differs from a known label only in case is an error too.

    Raises
    ------
    DataError
        At the first row whose label is a variant of an earlier (or known) one.
    """
    first = {}
    for label, row in known or ():
        first.setdefault(_key(label), (label, int(row), "the study table"))
    for label, row in zip(df[column], df[ROW_COLUMN]):
        if label is None or label != label:  # blank cells are the schema's business
            continue
        seen = first.setdefault(_key(label), (label, int(row), None))
        if seen[0] != label:
            where = f"row {seen[1]}" + (f" of {seen[2]}" if seen[2] else "")
            raise DataError(path, int(row), column, label,
                            f"one spelling per label: '{label}' and '{seen[0]}' ({where}) differ only in "
                            "case or spaces, so they would count as two labels")


def check_percent_not_fraction(row, total, path):
    """Refuse a percentage below 1 that no whole count out of ``total`` rounds to.

    0.086 printed for 8.6% (a fraction typed in a percent column) fits no count of 58 patients,
    and the row would be excluded silently; the smallest non-zero percentage of 58 is 1.72%.

    Parameters
    ----------
    row : dict
        A validated extraction row with ``unit`` percent and a blank ``events``.
    total : int
        The denominator the count is rebuilt against.
    path : str
        The sheet's file name, for the message.
    """
    text = row["estimate__text"]
    value = Decimal(text)
    if not 0 < value < 1:
        return
    decimals = max(0, -value.as_tuple().exponent)
    half = Decimal(5) / Decimal(10) ** (decimals + 1)
    if any(abs(Decimal(100 * k) / Decimal(total) - value) <= half for k in range(int(total) + 1)):
        return
    meant = f"{float(value * 100):g}"
    raise DataError(path, int(row[ROW_COLUMN]), "estimate", text,
                    f"a percentage (0-100) that some count out of {int(total)} rounds to; the smallest non-zero "
                    f"one is {100 / total:.3g}%, so {text} looks like a fraction: write {meant} for {meant}%")


def pooling_exclusions(log):
    """Rows of the cleaning log whose exclusion changes what is pooled, for the end-of-run summary.

    Rows excluded on purpose (an ``exclude_reason``, a within-study subset, a descriptive field)
    are left out: the sheet already says so. What remains are data the workflow could not use
    (no count to rebuild, no denominator, a median not reached), which a user should see.

    Parameters
    ----------
    log : pandas.DataFrame
        The cleaning log (:attr:`singlearm.cleaning.CleanResult.log`).

    Returns
    -------
    list of str
        ``outcome | cohort | reason (extraction row N)``, in sheet order.
    """
    from . import outcomes as oc  # here, not at the top: cleaning imports this module

    rows = log[(log["status"] == "excluded") & (log["cohort_id"] != "")
               & ~log["reason"].str.startswith("exclude_reason:")
               & (log["outcome"].map(oc.kind) != oc.DESCRIPTIVE)]
    return [f"{r.outcome} | {r.cohort_id} | {r.reason} (extraction row {r.source_row})" for r in rows.itertuples()]
