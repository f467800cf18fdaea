"""Meta-regression of each outcome's primary effect on study-level moderators (config ``moderators``).

The orchestration of :mod:`singlearm.metareg` over the outcomes of the cleaned analysis table: the
moderator values come from the study table (one row per study x group, as cleaning built the
cohorts), the effect sizes from the primary method's analysis scale (:func:`singlearm.pool.analysis_scale`),
the model from the method's tau^2 estimator and test. An outcome with fewer than
``meta_regression.min_k`` pooled studies, or whose studies leave a moderator constant or missing,
gets one row saying why it was not run. For the bubble plots the study points and the fitted line
(with its CI) of every continuous moderator are returned beside the table.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from . import metareg, methods, pool

TABLE_COLUMNS = ["outcome", "method", "term", "estimate", "se", "stat", "pval", "ci_lb", "ci_ub", "k", "estimator",
                 "test", "qm", "qm_df", "qm_p", "qe", "qe_df", "qe_p", "tau2", "tau2_null", "r2", "i2", "h2",
                 "moderators", "reference", "scale", "note"]
POINT_COLUMNS = ["outcome", "method", "scale", "moderator", "kind", "cohort_id", "x", "y", "y_low", "y_high", "weight",
                 "held_at"]


@dataclass(frozen=True)
class MetaRegression:
    """``table``: coefficients with the model's QM, QE, R^2 and tau^2 (with and without moderators)
    on every row; ``points``: per continuous moderator the studies (``kind = study``, weight in
    percent) and the fitted line with its CI (``kind = line``)."""

    table: pd.DataFrame
    points: pd.DataFrame


def moderator_values(rows, studies, columns):
    """The study-table ``columns`` for each analysis row, matched on ``study_id`` and ``group``."""
    keys = ["study_id", "group"]
    table = studies[keys + [c for c in columns if c not in keys]].drop_duplicates(keys)
    merged = rows[keys].merge(table, on=keys, how="left")
    merged.index = rows.index
    return merged[list(columns)]


def why_not_run(rows, studies, outcome, columns, reference=None, min_k=10):
    """Why an outcome's meta-regression cannot run ("" when it can): too few studies, or a
    moderator missing or constant among its studies, or too few studies for the coefficients."""
    part = pool.poolable(rows[rows["outcome"] == outcome])
    k = len(part)
    if not columns:
        return "no moderators configured"
    if k < min_k:
        return f"not run: k < {min_k} (k = {k})"
    try:
        d = metareg.design(moderator_values(part, studies, columns).reset_index(drop=True), columns, reference,
                           what=f"study table for {outcome}")
    except ValueError as err:
        return f"not run: {err}"
    if k <= d.x.shape[1]:
        return f"not run: {d.x.shape[1]} coefficients need at least {d.x.shape[1] + 1} studies (k = {k})"
    return ""


def _not_run(outcome, method, k, columns, why):
    row = dict.fromkeys(TABLE_COLUMNS, np.nan)
    row.update(outcome=outcome, method=method, term="", k=k, moderators=";".join(columns), reference="", note=why)
    return pd.DataFrame([row], columns=TABLE_COLUMNS)


def meta_regression(rows, studies, outcome, method, columns, reference=None, min_k=10, level=0.95, n_grid=60):
    """Meta-regression of one outcome's primary effect on the moderators.

    Parameters
    ----------
    rows : pandas.DataFrame
        Cleaned analysis rows (those of ``outcome`` are used; all subgroups).
    studies : pandas.DataFrame
        The study table (``study_id``, ``group`` and the moderator columns).
    outcome, method : str
        The outcome and its primary inverse-variance method (scale, tau^2 estimator, test).
    columns : list of str
        Moderator columns; numeric ones enter as they are, others as categorical.
    reference : dict, optional
        ``{column: reference level}`` of categorical moderators.
    min_k : int
        ``meta_regression.min_k``: fewer pooled studies give one "not run" row.
    level : float
    n_grid : int
        Points of each fitted line.

    Returns
    -------
    MetaRegression
        The line of a continuous moderator holds the other numeric moderators at their mean and
        categorical ones at their reference level (``held_at`` says which).

    Notes
    -----
    R equivalent: ``metafor::rma(yi, vi, mods = ~ x1 + relevel(factor(x2), ref = r), method =
    estimator, test = test)`` on ``escalc(measure = "PFT", xi, ni)`` (or the method's scale), and
    ``predict(res, newmods = ...)`` for the line (``regplot(res, mod = "x1")``).
    """
    m = methods.get(method)
    part = pool.poolable(rows[rows["outcome"] == outcome])
    k = len(part)
    empty = pd.DataFrame(columns=POINT_COLUMNS)
    if not columns:
        return MetaRegression(pd.DataFrame(columns=TABLE_COLUMNS), empty)
    why = why_not_run(rows, studies, outcome, columns, reference, min_k)
    if why:
        return MetaRegression(_not_run(outcome, method, k, columns, why), empty)
    values = moderator_values(part, studies, columns)
    d = metareg.design(values.reset_index(drop=True), columns, reference)
    s = pool.analysis_scale(part, method)
    r = metareg.meta_regression(s.yi, s.vi, d, m.estimator, m.test, level)
    table = r.summary_frame().rename(columns={"method": "estimator"})
    table.insert(0, "outcome", outcome)
    table.insert(1, "method", method)
    table["moderators"] = ";".join(columns)
    table["reference"] = ";".join(f"{c}={v}" for c, v in d.reference.items())
    table["scale"] = m.scale
    table["note"] = ""
    return MetaRegression(table[TABLE_COLUMNS], _points(r, d, values.reset_index(drop=True), s, outcome, method,
                                                        columns, level, n_grid))


def _points(r, d, values, s, outcome, method, columns, level, n_grid):
    numeric = [c for c in columns if values[c].to_numpy().dtype.kind in "iuf"]
    w = 1 / (s.vi + r.tau2)
    crit = special.ndtri(1 - (1 - level) / 2) if not np.isfinite(r.df) else special.stdtrit(r.df, 1 - (1 - level) / 2)
    out = []
    for col in numeric:
        x = values[col].to_numpy(float)
        held = {c: float(values[c].astype(float).mean()) for c in numeric if c != col}
        held_text = "; ".join([f"{c} at its mean {v:.4g}" for c, v in held.items()]
                              + [f"{c} = {v}" for c, v in d.reference.items()])
        out.append(pd.DataFrame({"outcome": outcome, "method": method, "scale": s.scale, "moderator": col,
                                 "kind": "study", "cohort_id": s.cohorts, "x": x, "y": s.yi, "y_low": np.nan,
                                 "y_high": np.nan, "weight": 100 * w / w.sum(), "held_at": held_text}))
        grid = np.linspace(x.min(), x.max(), n_grid)
        new = np.zeros((n_grid, len(d.names)))
        new[:, 0] = 1.0
        for j, name in enumerate(d.names[1:], start=1):
            if name == col:
                new[:, j] = grid
            elif name in held:
                new[:, j] = held[name]
            # indicator columns of categorical moderators stay 0: the reference level
        pred = new @ r.beta
        se = np.sqrt(np.einsum("ij,jk,ik->i", new, r.vcov, new))
        out.append(pd.DataFrame({"outcome": outcome, "method": method, "scale": s.scale, "moderator": col,
                                 "kind": "line", "cohort_id": "", "x": grid, "y": pred, "y_low": pred - crit * se,
                                 "y_high": pred + crit * se, "weight": np.nan, "held_at": held_text}))
    return pd.concat(out, ignore_index=True)[POINT_COLUMNS] if out else pd.DataFrame(columns=POINT_COLUMNS)


def meta_regressions(rows, studies, outcomes, primary, columns, reference=None, min_k=10, level=0.95):
    """:func:`meta_regression` for each outcome (``primary``: outcome -> method id), stacked."""
    parts = [meta_regression(rows, studies, o, primary[o], columns, reference, min_k, level) for o in outcomes]
    tables = [p.table for p in parts if len(p.table)]
    points = [p.points for p in parts if len(p.points)]
    return MetaRegression(pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=TABLE_COLUMNS),
                          pd.concat(points, ignore_index=True) if points else pd.DataFrame(columns=POINT_COLUMNS))
