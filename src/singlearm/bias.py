"""Small-study effects and funnel-plot asymmetry: regression tests (Egger, Peters), Begg, trim-and-fill.

Each function takes effect sizes on the analysis scale (``yi, vi`` from :mod:`singlearm.effects`)
and returns a frozen result; nothing is back-transformed here. Where a test is undefined for
the data (too few studies, identical standard errors) the result carries NaN and a ``note``
saying why, so one degenerate subgroup does not stop a whole analysis.

With fewer than 10 studies these tests have too little power to rule asymmetry out; report
:func:`underpowered_note` beside them.
"""

from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd
from scipy import special

from singlearm import fit, metareg

# R's lm() declares a column collinear when, after removing the columns before it, less than
# this fraction of its norm is left (LINPACK dqrdc2, tol = 1e-7). Used so that Egger's test
# refuses the same near-constant standard errors that metafor::regtest refuses.
_LM_TOL = 1e-7

COCHRANE_NOTE = ("Fewer than 10 studies: tests for funnel-plot asymmetry have too little power to "
                 "distinguish chance from real asymmetry, so a non-significant result does not rule "
                 "out small-study effects (Cochrane Handbook, section 13.3.5.4).")


class _Result:
    """Base of the test results: ``summary_frame()`` gives their scalar fields as one row."""

    def summary_frame(self):
        """One-row DataFrame of the scalar results (array fields, hidden from repr, left out)."""
        return pd.DataFrame([{f.name: getattr(self, f.name) for f in fields(self) if f.repr}])



def underpowered_note(k):
    """The Cochrane Handbook's caution for asymmetry tests on fewer than 10 studies, else "".

    Tests for funnel-plot asymmetry should be used only when there are at least 10 studies,
    because with fewer the power of the tests is too low to distinguish chance from real
    asymmetry (Higgins et al., Cochrane Handbook for Systematic Reviews of Interventions,
    section 13.3.5.4).

    R equivalent: none; ``meta::metabias(k.min = 10)`` refuses to run below 10 studies instead.
    """
    return COCHRANE_NOTE if k < 10 else ""


# --------------------------------------------------------------------------------------------
# Egger
# --------------------------------------------------------------------------------------------


def not_run_note(k, min_k):
    """The note of a test skipped because k < ``min_k`` (``bias.min_k``), else ""."""
    return f"not run: k < {min_k} (k = {k})" if min_k is not None and k < min_k else ""


@dataclass(frozen=True)
class EggerResult(_Result):
    """A regression test for funnel-plot asymmetry: ``stat`` (t) and ``pval`` of the slope.

    ``predictor`` is what the effects are regressed on: ``sei`` (Egger), ``ninv`` (1/n,
    Peters), ``ni``, ``vi``, ``sqrtninv``. ``est`` is the intercept, the limit estimate as the
    predictor -> 0 (only for ``sei``, ``vi``, ``ninv``, ``sqrtninv``; NaN otherwise), with its
    ``est_se`` and ``ci_lb, ci_ub`` (t on ``df`` df). ``slope`` is the coefficient of the
    predictor (the asymmetry). ``run`` is False when the test was skipped because k < min_k;
    ``note`` says why the result is NaN when it is.
    """

    k: int
    slope: float
    slope_se: float
    stat: float
    pval: float
    df: int
    est: float
    est_se: float
    ci_lb: float
    ci_ub: float
    note: str = ""
    predictor: str = "sei"
    run: bool = True


PREDICTORS = {"sei": "standard error", "vi": "sampling variance", "ni": "sample size",
              "ninv": "inverse sample size", "sqrtni": "square root of the sample size",
              "sqrtninv": "inverse square root of the sample size"}
_LIMIT = ("sei", "vi", "ninv", "sqrtninv")   # predictors whose 0 is a study of infinite size


def regression_test(yi, vi, ni=None, predictor="sei", level=0.95, min_k=None):
    """Regression test for funnel-plot asymmetry on a chosen predictor (model "lm").

    Weighted least squares of :math:`y_i = \\beta_0 + \\beta_1 x_i + e_i` with weights
    :math:`1/v_i` and a multiplicative residual variance
    :math:`\\hat\\sigma^2 = \\sum w_i \\hat e_i^2/(k-2)`; the test is
    :math:`t = \\hat\\beta_1/\\mathrm{SE}(\\hat\\beta_1)` on k - 2 df. With
    :math:`x_i = \\sqrt{v_i}` this is Egger et al.'s (1997) test (the classic regression of
    :math:`y_i/\\mathrm{SE}_i` on :math:`1/\\mathrm{SE}_i` with slope and intercept swapped);
    with :math:`x_i = 1/n_i` it is the sample-size test of Peters et al. (2006, JAMA 295:676),
    which for proportions avoids the built-in correlation between a proportion and its SE.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and sampling variances.
    ni : array_like, optional
        Sample sizes (required for the ``n`` predictors).
    predictor : {"sei", "ninv", "ni", "vi", "sqrtni", "sqrtninv"}
    level : float
        Confidence level of the limit estimate's interval.
    min_k : int, optional
        Below this many studies the test is not run (``bias.min_k``; meta's ``k.min = 10``):
        the result has ``run = False`` and the note "not run: k < min_k".

    Returns
    -------
    EggerResult
        NaN with a ``note`` when k < 3 (no residual df) or when the predictor is (nearly)
        constant, which leaves the slope unidentified.

    Notes
    -----
    R equivalent: ``metafor::regtest(rma(yi, vi), ni = ni, model = "lm", predictor =
    predictor)`` (``zval``, ``pval``, ``dfs``, ``est``); Peters: ``predictor = "ninv"``.
    """
    yi, vi = fit.as_effects(yi, vi)
    fit.check_choice("predictor", predictor, tuple(PREDICTORS))
    k = len(yi)
    nan = float("nan")

    def undefined(why, run=True):
        return EggerResult(k, nan, nan, nan, nan, max(k - 2, 0), nan, nan, nan, nan, why, predictor, run)

    skipped = not_run_note(k, min_k)
    if skipped:
        return undefined(skipped, run=False)
    if predictor in ("sei", "vi"):
        x = np.sqrt(vi) if predictor == "sei" else vi
    else:
        if ni is None:
            raise ValueError(f"predictor {predictor!r} needs the sample sizes ni")
        n = np.asarray(ni, dtype=float)
        if n.shape != yi.shape or not np.all(n > 0):
            raise ValueError(f"ni must be {k} positive sample sizes (got {n.tolist()})")
        x = {"ni": n, "ninv": 1 / n, "sqrtni": np.sqrt(n), "sqrtninv": 1 / np.sqrt(n)}[predictor]
    if k < 3:
        return undefined(f"the regression test needs at least 3 studies (k = {k}): no residual degrees of freedom")
    sw = 1.0 / np.sqrt(vi)  # sqrt of the weights 1/vi
    xs = np.column_stack([sw, sw * x])
    c1, c2 = xs[:, 0], xs[:, 1]
    left = c2 - c1 * (c1 @ c2) / (c1 @ c1)
    if np.linalg.norm(left) < _LM_TOL * np.linalg.norm(c2):
        return undefined(f"the regression test is undefined: all studies have the same {PREDICTORS[predictor]}, so "
                         "the slope cannot be estimated (metafor::regtest stops: model matrix not of full rank)")
    q, r = np.linalg.qr(xs)
    ys = yi * sw
    beta = np.linalg.solve(r, q.T @ ys)
    resid = ys - xs @ beta
    df = k - 2
    sigma2 = (resid @ resid) / df
    rinv = np.linalg.inv(r)
    cov = sigma2 * (rinv @ rinv.T)
    se = np.sqrt(np.diag(cov))
    stat = beta[1] / se[1]
    pval = float(2 * special.stdtr(df, -abs(stat)))
    crit = fit._t(level, df)
    if predictor in _LIMIT:
        est, est_se, lo, hi = float(beta[0]), float(se[0]), float(beta[0] - crit * se[0]), float(beta[0] + crit * se[0])
    else:
        est = est_se = lo = hi = nan
    return EggerResult(k, float(beta[1]), float(se[1]), float(stat), pval, df, est, est_se, lo, hi, "", predictor)


def egger_test(yi, vi, level=0.95, min_k=None):
    """Egger's regression test for funnel-plot asymmetry (Egger et al. 1997).

    :func:`regression_test` with the standard error as predictor; see there.

    Notes
    -----
    R equivalent: ``metafor::regtest(rma(yi, vi), model="lm", predictor="sei")`` (``zval``,
    ``pval``, ``dfs``, ``est``); Stata ``metabias, egger``.
    """
    return regression_test(yi, vi, None, "sei", level, min_k)


def peters_test(yi, vi, ni, level=0.95, min_k=None):
    """Peters et al.'s (2006) sample-size test: :func:`regression_test` on 1/n.

    Notes
    -----
    R equivalent: ``metafor::regtest(rma(yi, vi), ni = ni, model = "lm", predictor = "ninv")``.
    """
    return regression_test(yi, vi, ni, "ninv", level, min_k)


# --------------------------------------------------------------------------------------------
# Begg
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BeggResult(_Result):
    """Begg and Mazumdar's rank correlation test: Kendall's ``tau`` and its two-sided ``pval``.

    ``p_method`` is ``"exact"`` (permutation distribution, no ties; ``stat`` is R's T, the number
    of concordant pairs) or ``"normal"`` (tie-corrected normal approximation; ``stat`` is z).
    ``note`` says why the result is NaN when it is.
    """

    k: int
    tau: float
    pval: float
    p_method: str
    stat: float
    note: str = ""
    run: bool = True


def _kendall_pmf(n):
    """Probability mass of the number of concordant pairs among n untied pairs under H0.

    This is the Mahonian distribution (inversions of a random permutation), built by the
    recursion :math:`c_n(j) = \\sum_{i=0}^{n-1} c_{n-1}(j-i)` as probabilities, so it does not
    overflow for large n as counts divided by n! would.
    """
    f = np.array([1.0])
    for i in range(2, n + 1):
        c = np.cumsum(np.concatenate([f, np.zeros(i - 1)]))
        g = c.copy()
        g[i:] -= c[:-i]
        f = g / i
    return np.maximum(f, 0.0)


def _kendall(x, y):
    """Kendall's tau-b, the score S = concordant - discordant, and the tie-group sizes."""
    sx = np.sign(x[:, None] - x[None, :])
    sy = np.sign(y[:, None] - y[None, :])
    iu = np.triu_indices(len(x), 1)
    s = float((sx * sy)[iu].sum())
    n0 = len(x) * (len(x) - 1) / 2
    n1 = float((sx[iu] == 0).sum())
    n2 = float((sy[iu] == 0).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = s / np.sqrt((n0 - n1) * (n0 - n2))
    return tau, s


def _tie_sizes(x):
    _, counts = np.unique(x, return_counts=True)
    return counts[counts > 1].astype(float)


def begg_test(yi, vi, min_k=None):
    """Begg and Mazumdar's (1994) rank correlation test for funnel-plot asymmetry.

    Kendall's tau-b between the standardised effects
    :math:`y_i^* = (y_i - \\hat\\mu_{EE}) / \\sqrt{v_i - 1/\\sum_j w_j}`
    (:math:`w_j = 1/v_j`, :math:`\\hat\\mu_{EE}` the common-effect estimate) and :math:`v_i`.
    The two-sided p-value is exact (permutation distribution of the number of concordant
    pairs) when neither variable has ties, otherwise from the normal approximation with
    Kendall's tie-corrected variance of S and no continuity correction.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and sampling variances (k >= 2).

    min_k : int, optional
        Below this many studies the test is not run (``run = False``, note "not run: k < min_k").

    Returns
    -------
    BeggResult
        NaN with a ``note`` when tau is undefined (all variances equal, or all standardised
        effects equal), as ``cor.test`` returns NA.

    Notes
    -----
    metafor calls ``cor.test(..., exact=TRUE)``, so the p-value is exact whenever there are no
    ties, whatever k (not only for k < 50, ``cor.test``'s own default). R's exact p-value is
    NaN for k >= 171 (its permutation counts overflow); this one stays finite.

    R equivalent: ``metafor::ranktest(rma(yi, vi))`` (``tau``, ``pval``).
    """
    yi, vi = fit.as_effects(yi, vi)
    k = len(yi)
    nan = float("nan")
    skipped = not_run_note(k, min_k)
    if skipped:
        return BeggResult(k, nan, nan, "", nan, skipped, False)
    if k < 2:
        return BeggResult(k, nan, nan, "", nan, f"Begg's test needs at least 2 studies (k = {k})")
    w = 1.0 / vi
    theta = (w * yi).sum() / w.sum()
    ystar = (yi - theta) / np.sqrt(vi - 1.0 / w.sum())
    tau, s = _kendall(ystar, vi)
    if not np.isfinite(tau):
        why = ("all studies have the same sampling variance" if np.ptp(vi) == 0
               else "all standardised effects are equal")
        return BeggResult(k, nan, nan, "", nan, f"Kendall's tau is undefined: {why}")
    ties = min(len(np.unique(ystar)), len(np.unique(vi))) < k
    if not ties:
        # R: q = round((tau + 1) n(n-1)/4) concordant pairs; p = 2 * the smaller tail, capped at 1.
        q = int(round((tau + 1) * k * (k - 1) / 4))
        pmf = _kendall_pmf(k)
        if q > k * (k - 1) / 4:
            p = pmf[q:].sum()
        else:
            p = pmf[: q + 1].sum()
        return BeggResult(k, float(tau), float(min(2 * p, 1.0)), "exact", float(q))
    tx, ty = _tie_sizes(ystar), _tie_sizes(vi)
    v0 = k * (k - 1) * (2 * k + 5)
    vt = (tx * (tx - 1) * (2 * tx + 5)).sum()
    vu = (ty * (ty - 1) * (2 * ty + 5)).sum()
    v1 = (tx * (tx - 1)).sum() * (ty * (ty - 1)).sum()
    v2 = (tx * (tx - 1) * (tx - 2)).sum() * (ty * (ty - 1) * (ty - 2)).sum()
    var_s = (v0 - vt - vu) / 18 + v1 / (2 * k * (k - 1)) + (v2 / (9 * k * (k - 1) * (k - 2)) if k > 2 else 0.0)
    z = s / np.sqrt(var_s)
    return BeggResult(k, float(tau), float(2 * special.ndtr(-abs(z))), "normal", float(z))


# --------------------------------------------------------------------------------------------
# Trim and fill
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrimFillResult(_Result):
    """Duval and Tweedie's trim-and-fill: ``k0`` studies imputed on ``side``, and the refit.

    ``b, se, ci_lb, ci_ub, tau2`` are the fit to the k observed plus k0 imputed studies
    (``fit``, a :class:`singlearm.fit.MetaResult`); with k0 = 0 they are the original fit.
    ``filled_yi, filled_vi`` are the imputed studies in metafor's order. ``note`` says why
    the result is NaN when it is.
    """

    k: int
    k0: float
    se_k0: float
    side: str
    estimator: str
    iterations: int
    b: float
    se: float
    ci_lb: float
    ci_ub: float
    tau2: float
    note: str = ""
    filled_yi: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    filled_vi: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    fit: object = field(default=None, repr=False)
    run: bool = True


def _wls(x, yi, w):
    xtw = x.T * w
    a = xtw @ x
    return np.linalg.solve(a, xtw @ yi), a


def _side_slope(yi, vi, method):
    """Slope of y on SE in the meta-regression metafor uses to pick the trim-and-fill side."""
    x = np.column_stack([np.ones(len(yi)), np.sqrt(vi)])
    tau2 = metareg.residual_tau2(yi, vi, x, method)
    beta, _ = _wls(x, yi, 1 / (vi + tau2))
    return float(beta[1])


def _constant_se(vi):
    sw = 1 / np.sqrt(vi)
    left = 1 - sw * sw.sum() / (sw @ sw)
    return np.linalg.norm(left) < _LM_TOL * np.sqrt(len(vi))


def trim_and_fill(yi, vi, method="DL", side=None, test="z", level=0.95, maxiter=100, min_k=None):
    """Trim-and-fill with the L0 estimator (Duval & Tweedie 2000a, 2000b).

    The side to fill is the one opposite the asymmetry: unless given, metafor's rule is used,
    i.e. fit the meta-regression :math:`y_i = \\beta_0 + \\beta_1 \\sqrt{v_i}` with the same
    tau^2 estimator and fill on the left if :math:`\\hat\\beta_1 \\ge 0`, else on the right.
    Then, with the effects flipped so that filling is on the left and sorted: pool the
    k - k0 smallest, rank :math:`|y_i - \\hat\\mu|` over all k, take
    :math:`S_r` = the sum of the ranks of the studies above :math:`\\hat\\mu` and
    :math:`k_0 = \\max(0, \\mathrm{round}[(4S_r - k(k+1))/(2k-1)])`; repeat until k0 no longer
    changes. The k0 most extreme studies are mirrored about the last :math:`\\hat\\mu`
    (:math:`2\\hat\\mu - y_i`, same :math:`v_i`) and all k + k0 studies are pooled again.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and sampling variances (k >= 3 unless ``side`` is given).
    method : {"DL", "REML", "PM", "EE"}
        Estimator for every fit, including the final one.
    side : {None, "left", "right"}
        Side on which to impute studies; None applies metafor's rule above.
    test, level
        Inference of the final fit, as in :func:`singlearm.fit.rma`.
    maxiter : int
        Iterations of the trim step before giving up.
    min_k : int, optional
        Below this many studies the method is not run (``run = False``, note "not run: k < min_k").

    Returns
    -------
    TrimFillResult
        NaN with a ``note`` when the side cannot be chosen (k < 3, or all standard errors
        equal so the slope on SE is undefined); pass ``side`` explicitly then.

    Notes
    -----
    metafor refits the filled data with ``test="z"`` and 95% intervals whatever the input
    fit used; here ``test`` and ``level`` apply (their defaults reproduce metafor). The filled
    fit pools k + k0 studies; back-transform its PFT estimate with the n of the observed
    studies (the imputed ones have no n of their own).

    R equivalent: ``metafor::trimfill(rma(yi, vi, method=method))`` (estimator ``"L0"``).
    """
    yi, vi = fit.as_effects(yi, vi)
    k = len(yi)
    if method not in fit.METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(fit.METHODS)}")
    if side not in (None, "left", "right"):
        raise ValueError(f"side must be None, 'left' or 'right' (got {side!r})")
    nan = float("nan")

    def undefined(why, run=True):
        return TrimFillResult(k, nan, nan, "", "L0", 0, nan, nan, nan, nan, nan, why, run=run)

    skipped = not_run_note(k, min_k)
    if skipped:
        return undefined(skipped, run=False)
    if k < 2:
        return undefined(f"trim-and-fill needs at least 2 studies (k = {k})")
    if side is None:
        if k < 3:
            return undefined(f"cannot choose the side to fill with k = {k}: the regression on SE has no "
                             "residual degrees of freedom; pass side='left' or 'right'")
        if _constant_se(vi):
            return undefined("cannot choose the side to fill: all studies have the same standard error, so "
                             "the slope on SE is undefined (metafor::trimfill fails here too); pass "
                             "side='left' or 'right'")
        side = "right" if _side_slope(yi, vi, method) < 0 else "left"

    sign = -1.0 if side == "right" else 1.0
    order = np.argsort(sign * yi, kind="stable")  # R's sort(): stable, ties keep input order
    y = sign * yi[order]
    v = vi[order]
    k0, k0_prev, it = 0, -1, 0
    beta = se_k0 = nan
    while k0 != k0_prev:
        k0_prev = k0
        it += 1
        if it > maxiter:
            raise RuntimeError(f"trim-and-fill did not converge in {maxiter} iterations")
        beta = fit.rma(y[: k - k0], v[: k - k0], method=method).b
        yc = y - beta
        rank = np.empty(k)
        rank[np.argsort(np.abs(yc), kind="stable")] = np.arange(1, k + 1)  # ties.method="first"
        sr = rank[yc > 0].sum()
        k0_raw = (4 * sr - k * (k + 1)) / (2 * k - 1)
        var_sr = (k * (k + 1) * (2 * k + 1) + 10 * k0_raw**3 + 27 * k0_raw**2 + 17 * k0_raw
                  - 18 * k * k0_raw**2 - 18 * k * k0_raw + 6 * k**2 * k0_raw) / 24
        se_k0 = max(0.0, 4 * np.sqrt(var_sr) / (2 * k - 1)) if var_sr >= 0 else nan
        k0 = max(0, int(np.round(k0_raw)))
        if k0 >= k:
            raise RuntimeError(f"trim-and-fill estimated k0 = {k0} missing studies for k = {k}")

    if k0 > 0:
        filled_yi = sign * (2 * beta - y[k - k0:])
        filled_vi = v[k - k0:].copy()
        res = fit.rma(np.concatenate([yi, filled_yi]), np.concatenate([vi, filled_vi]), method=method,
                      test=test, level=level)
    else:
        filled_yi = filled_vi = np.empty(0)
        res = fit.rma(yi, vi, method=method, test=test, level=level)
    return TrimFillResult(k, float(k0), float(se_k0), side, "L0", it, float(res.b), float(res.se),
                          float(res.ci_lb), float(res.ci_ub), float(res.tau2), "", filled_yi, filled_vi, res)
