"""Meta-regression of ``yi, vi`` on study-level moderators (metafor's ``rma(yi, vi, mods = ~ ...)``).

A mixed-effects model :math:`y_i = x_i'\\beta + u_i + e_i`, :math:`u_i \\sim N(0, \\tau^2)`,
:math:`e_i \\sim N(0, v_i)`: the residual tau^2 by DL, REML or PM (Viechtbauer 2005; Raudenbush
2009), weighted least squares for :math:`\\beta`, Wald z or Hartung-Knapp (Knapp & Hartung 2003)
inference, the omnibus test of the moderators QM, the residual heterogeneity test QE and the
proportion of tau^2 accounted for, R^2. :func:`design` turns a table of numeric and categorical
moderators into the model matrix (treatment coding against a reference level), refusing
moderators the data cannot identify.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special

from . import fit

COEFFICIENT_COLUMNS = ["term", "estimate", "se", "stat", "pval", "ci_lb", "ci_ub"]


@dataclass(frozen=True)
class Design:
    """A model matrix with named columns (``intrcpt`` first) and the moderators it came from."""

    x: np.ndarray = field(repr=False)
    names: tuple
    moderators: tuple
    reference: dict


def design(data, moderators, reference=None, what="study table"):
    """Model matrix of an intercept and ``moderators`` (columns of ``data``).

    Numeric columns enter as they are; other columns (text, category, bool) are categorical with
    treatment coding: one indicator per level other than the reference level, named
    ``column=level``.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per study.
    moderators : sequence of str
        Column names; may be empty (intercept only).
    reference : dict, optional
        ``{column: level}``; the default reference is the first level in sorted order (R's
        ``factor()`` default).
    what : str
        Name of the table for error messages.

    Returns
    -------
    Design

    Raises
    ------
    ValueError
        A moderator that is missing from ``data``, has missing values, is constant within the
        data (a single value or a single level), names an unknown reference level, or makes the
        model matrix rank-deficient; the message names the column and the offending value(s).

    Notes
    -----
    R equivalent: ``model.matrix(~ x1 + relevel(factor(x2), ref=...), data)``.
    """
    reference = dict(reference or {})
    k = len(data)
    cols = [np.ones(k)]
    names = ["intrcpt"]
    used_reference = {}
    for col in moderators:
        if col not in data.columns:
            raise ValueError(f"moderator {col!r} is not a column of the {what} (columns: {', '.join(map(str, data.columns))})")
        values = data[col].to_numpy()
        missing = pd.isna(values)
        if missing.any():
            rows = np.flatnonzero(missing).tolist()
            raise ValueError(f"moderator {col!r} of the {what} has missing values at rows {rows}; "
                             "every study in a meta-regression needs a value")
        if values.dtype.kind in "iuf":   # numeric; bool, text and categories are categorical
            v = values.astype(float)
            if np.ptp(v) == 0:
                raise ValueError(f"moderator {col!r} is constant within the data (value {v[0]:g} in all {k} "
                                 "studies): its effect cannot be estimated; drop it or add studies that differ")
            cols.append(v)
            names.append(str(col))
            continue
        as_text = values.astype(str)
        levels = np.unique(as_text).tolist()
        if len(levels) < 2:
            raise ValueError(f"moderator {col!r} is constant within the data (level {levels[0]!r} in all {k} "
                             "studies): its effect cannot be estimated; drop it or add studies that differ")
        ref = str(reference.get(col, levels[0]))
        if ref not in levels:
            raise ValueError(f"reference level {ref!r} of moderator {col!r} does not occur in the data; "
                             f"expected one of {', '.join(map(repr, levels))}")
        used_reference[col] = ref
        for level in levels:
            if level != ref:
                cols.append((as_text == level).astype(float))
                names.append(f"{col}={level}")
    x = np.column_stack(cols)
    if np.linalg.matrix_rank(x) < x.shape[1]:
        raise ValueError(f"the moderators {', '.join(map(repr, moderators))} are collinear in the data "
                         f"(model matrix of rank {np.linalg.matrix_rank(x)} < {x.shape[1]} columns: "
                         f"{', '.join(names)}); drop one")
    return Design(x, tuple(names), tuple(moderators), used_reference)


def as_design(x):
    """A :class:`Design` from a Design, or from a plain model matrix whose first column is the intercept."""
    if isinstance(x, Design):
        return x
    x = np.atleast_2d(np.asarray(x, dtype=float))
    return Design(x, ("intrcpt",) + tuple(f"x{j}" for j in range(1, x.shape[1])), (), {})


# ---------------------------------------------------------------------------------------------
# residual heterogeneity estimators
# ---------------------------------------------------------------------------------------------


def _p_matrix(x, w):
    """:math:`P = W - WX(X'WX)^{-1}X'W` for diagonal W given by ``w``."""
    xtw = x.T * w
    pm = -(xtw.T @ np.linalg.solve(xtw @ x, xtw))
    pm[np.diag_indices_from(pm)] += w
    return pm


def _qe_trace(x, yi, w):
    """:math:`y'Py` and :math:`\\mathrm{tr}P` without forming the k x k matrix P."""
    xtw = x.T * w
    a = xtw @ x
    resid = yi - x @ np.linalg.solve(a, xtw @ yi)
    return float((w * resid**2).sum()), float(w.sum() - np.trace(np.linalg.solve(a, xtw * w @ x)))


def residual_tau2(yi, vi, x, method):
    """Residual tau^2 of a meta-regression on design ``x``.

    DL: :math:`\\max\\{0, (Q_E - (k-p)) / \\mathrm{tr} P\\}` with common-effect weights
    (Raudenbush 2009); PM: the root of :math:`Q_E(\\tau^2) = k - p`; REML: Fisher scoring
    :math:`\\tau^2 \\leftarrow \\tau^2 + (y'PPy - \\mathrm{tr}P)/\\mathrm{tr}(PP)`, step-halved to
    stay non-negative (Viechtbauer 2005); EE: 0.

    R equivalent: ``metafor::rma(yi, vi, mods=x, intercept=FALSE, method=method)$tau2``.
    """
    k, p = x.shape
    if method == "EE":
        return 0.0
    if method == "DL":
        qe, tr_p = _qe_trace(x, yi, 1 / vi)
        return max(0.0, (qe - (k - p)) / tr_p)
    if method == "PM":
        def excess(t):
            return _qe_trace(x, yi, 1 / (vi + t))[0] - (k - p)
        if excess(0.0) <= 0:
            return 0.0
        hi = max(float(np.var(yi, ddof=1)), float(vi.max()), 1e-8)
        while excess(hi) > 0:
            hi *= 4
        from scipy import optimize  # here, not at the top: importing it costs every job and parse ~0.5 s

        return optimize.brentq(excess, 0.0, hi, xtol=1e-15, rtol=1e-15, maxiter=500)
    if method != "REML":
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(fit.METHODS)}")
    tau2 = residual_tau2(yi, vi, x, "DL")
    for _ in range(1000):
        pm = _p_matrix(x, 1 / (vi + tau2))
        py = pm @ yi
        step = (py @ py - np.trace(pm)) / np.sum(pm * pm)
        new = tau2 + step
        while new < 0:
            step /= 2
            new = tau2 + step
            if step < 1e-14:
                new = 0.0
                break
        if abs(new - tau2) < 1e-12 * max(1.0, tau2):
            return float(new)
        tau2 = new
    raise RuntimeError("REML did not converge in the meta-regression")


# ---------------------------------------------------------------------------------------------
# meta-regression
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetaRegResult:
    """A fitted meta-regression (analysis scale).

    ``coefficients`` has one row per term (:data:`COEFFICIENT_COLUMNS`), built on access from
    ``beta`` and ``se_beta`` (t on ``df`` df with Hartung-Knapp, z otherwise). ``qm`` tests all
    coefficients but the intercept (chi-square on ``qm_df`` df, or F on ``qm_df`` and k - p df
    with Hartung-Knapp); ``qe`` is the test for residual heterogeneity on k - p df; ``tau2`` the
    residual and ``tau2_null`` the intercept-only between-study variance of the same estimator;
    ``r2`` (percent) is :math:`\\max(0, 100(\\tau^2_0 - \\tau^2)/\\tau^2_0)` (0 when
    :math:`\\tau^2_0 = 0`; for the common-effect model the adjusted R^2 of the weighted
    least-squares fit, as metafor).
    """

    method: str
    test: str
    k: int
    p: int
    beta: np.ndarray = field(repr=False)
    se_beta: np.ndarray = field(repr=False)
    df: float
    qm: float
    qm_df: int
    qm_p: float
    qe: float
    qe_df: int
    qe_p: float
    tau2: float
    tau2_null: float
    r2: float
    i2: float
    h2: float
    level: float
    vcov: np.ndarray = field(repr=False)
    design: Design = field(repr=False)

    @property
    def coefficients(self):
        """One row per term: ``term, estimate, se, stat, pval, ci_lb, ci_ub``."""
        return coefficient_table(self.design.names, self.beta, self.se_beta, self.df, self.level)

    def summary_frame(self):
        """The coefficient table with the model-level results repeated on every row."""
        out = self.coefficients.copy()
        for key in ("method", "test", "k", "qm", "qm_df", "qm_p", "qe", "qe_df", "qe_p", "tau2", "tau2_null", "r2",
                    "i2", "h2"):
            out[key] = getattr(self, key)
        return out


def coefficient_arrays(beta, se, df, level):
    """Statistics, p-values and CI limits per coefficient (t on ``df`` df unless inf): four arrays."""
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = beta / se
    if np.isfinite(df):
        pval = 2 * special.stdtr(df, -np.abs(stat))
        crit = fit._t(level, df)
    else:
        pval = 2 * special.ndtr(-np.abs(stat))
        crit = fit._z(level)
    return stat, pval, beta - crit * se, beta + crit * se


def coefficient_table(names, beta, se, df, level):
    """Estimates, SE, z or t statistics, p-values and CIs per term, as a DataFrame."""
    stat, pval, lb, ub = coefficient_arrays(beta, se, df, level)
    return pd.DataFrame({"term": list(names), "estimate": beta, "se": se, "stat": stat, "pval": pval,
                         "ci_lb": lb, "ci_ub": ub})


def wald_qm(beta, vcov, df_resid=np.inf):
    """Omnibus Wald test of all coefficients but the intercept: (QM, df, p).

    Chi-square on m = p - 1 df, or with a finite ``df_resid`` F = QM/m on (m, df_resid) df.
    """
    m = len(beta) - 1
    if m == 0:
        return float("nan"), 0, float("nan")
    b = beta[1:]
    qm = float(b @ np.linalg.solve(vcov[1:, 1:], b))
    if np.isfinite(df_resid):
        qm /= m
        return qm, m, float(special.fdtrc(m, df_resid, qm)) if df_resid > 0 else float("nan")
    return qm, m, float(special.chdtrc(m, qm))


def meta_regression(yi, vi, mods, method="REML", test="z", level=0.95):
    """Mixed-effects meta-regression of ``yi`` on moderators.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and sampling variances.
    mods : Design or array_like
        From :func:`design` (or a model matrix whose first column is the intercept).
    method : {"DL", "REML", "PM", "EE"}
        Residual tau^2 estimator (:func:`residual_tau2`).
    test : {"z", "knha"}
        Wald z, or Hartung-Knapp: covariance times :math:`\\sum w_i e_i^2/(k-p)`, t on k - p df,
        QM as F.
    level : float

    Returns
    -------
    MetaRegResult
        ``i2``/``h2`` are residual: :math:`100\\tau^2/(\\tau^2 + s^2)` with
        :math:`s^2 = (k-p)/\\mathrm{tr}P` (metafor), from QE for the common-effect model.

    Raises
    ------
    ValueError
        Fewer studies than coefficients plus one (no residual df).

    Notes
    -----
    R equivalent: ``metafor::rma(yi, vi, mods = ~ x1 + x2, method=method, test=test)``.
    """
    yi, vi = fit.as_effects(yi, vi)
    d = as_design(mods)
    x = d.x
    k, p = x.shape
    fit.check_choice("method", method, fit.METHODS)
    fit.check_choice("test", test, ("z", "knha"))
    if k <= p:
        raise ValueError(f"a meta-regression with {p} coefficients ({', '.join(d.names)}) needs at least {p + 1} "
                         f"studies (k = {k})")
    tau2 = residual_tau2(yi, vi, x, method)
    w = 1 / (vi + tau2)
    xtw = x.T * w
    vcov = np.linalg.inv(xtw @ x)
    beta = vcov @ (xtw @ yi)
    df = np.inf
    if test == "knha":
        resid = yi - x @ beta
        vcov = vcov * float((w * resid**2).sum() / (k - p))
        df = k - p
    se = np.sqrt(np.diag(vcov))
    qm, qm_df, qm_p = wald_qm(beta, vcov, df)
    qe, tr_p = _qe_trace(x, yi, 1 / vi)
    qe = max(0.0, qe)
    qe_p = float(special.chdtrc(k - p, qe))
    s2 = (k - p) / tr_p
    if method == "EE":
        i2, h2 = 100 * max(0.0, (qe - (k - p)) / qe) if qe > 0 else 0.0, qe / (k - p)
    else:
        i2, h2 = 100 * tau2 / (s2 + tau2), tau2 / s2 + 1
    tau2_null = float(fit._ESTIMATORS[method](yi, vi))   # the intercept-only fit, same estimator
    if method == "EE":
        # metafor: the adjusted R^2 of the weighted least-squares fit, truncated at 0
        yw = (w * yi).sum() / w.sum()
        rss, tss = float((w * (yi - x @ beta) ** 2).sum()), float((w * (yi - yw) ** 2).sum())
        r2 = 0.0 if tss == 0 else max(0.0, 100 * (1 - (rss / tss) * (k - 1) / (k - p)))
    else:
        r2 = 0.0 if tau2_null == 0 else max(0.0, 100 * (tau2_null - tau2) / tau2_null)
    return MetaRegResult(method, test, k, p, beta, se, float(df), qm, qm_df, qm_p, qe, k - p, qe_p, float(tau2), float(tau2_null),
                         float(r2), float(i2), float(h2), level, vcov, d)
