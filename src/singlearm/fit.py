"""Random- and common-effect pooling of ``yi, vi`` (metafor's ``rma.uni`` stage).

Intercept-only models: the pooled effect is a weighted mean with weights
:math:`w_i = 1/(v_i + \\hat\\tau^2)`. Heterogeneity estimators (DL, REML, PM), Wald-z and
Hartung-Knapp-Sidik-Jonkman intervals with the ad hoc rules of Knapp & Hartung and of IQWiG,
prediction intervals on k - 1 or k - 2 df or z, I^2 from tau^2 or from Q, and Q-profile
confidence intervals of tau^2, I^2 and H^2. Meta-regression is in :mod:`singlearm.metareg`,
subgroup tests in :mod:`singlearm.subgroups`. Everything is O(k) numpy, so a fit of 10,000 studies
takes milliseconds. Results stay on the analysis scale; see :mod:`singlearm.transforms`.
"""

from dataclasses import dataclass, field

import numpy as np
from scipy import special

METHODS = ("EE", "DL", "REML", "PM")


def as_effects(yi, vi):
    """``yi, vi`` as float arrays, refusing shapes, non-finite values or variances <= 0."""
    yi = np.asarray(yi, dtype=float)
    vi = np.asarray(vi, dtype=float)
    if yi.ndim != 1 or yi.shape != vi.shape:
        raise ValueError(f"yi and vi must be 1-D and of equal length (got shapes {yi.shape} and {vi.shape})")
    if not (np.all(np.isfinite(yi)) and np.all(np.isfinite(vi))):
        raise ValueError("yi and vi must be finite; drop or fix studies with missing effect sizes first")
    if np.any(vi <= 0):
        bad = np.flatnonzero(vi <= 0).tolist()
        raise ValueError(f"sampling variances must be positive; vi <= 0 at positions {bad}")
    return yi, vi


def _z(level):
    return special.ndtri(1 - (1 - level) / 2)


def _t(level, df):
    return special.stdtrit(df, 1 - (1 - level) / 2)


# Conventions a user chooses (issue 11). Function defaults keep the behaviour of earlier
# releases; the workflow's config sets its own.
PREDICTION_DF = ("k-1", "k-2", "z")
HKSJ_ADHOC = ("se", "ci", "none")
I2_METHODS = ("tau2", "q")


def check_choice(name, value, allowed):
    """Raise one clear ValueError when ``value`` is not one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; expected one of {', '.join(map(repr, allowed))}")


def prediction_interval(b, se, tau2, k, prediction_df="k-2", level=0.95, p=1):
    """Prediction interval for the effect in a new study: :math:`b \\pm c\\sqrt{SE^2 + \\tau^2}`.

    Parameters
    ----------
    b, se, tau2 : float
        Pooled estimate, its standard error (the fit's own: Hartung-Knapp or ad hoc if chosen)
        and the between-study variance.
    k : int
        Number of studies.
    prediction_df : {"k-1", "k-2", "z"}
        ``k-1``: :math:`c = t_{k-p}` (meta 8's default; Veroniki et al. 2019), from k = 2;
        ``k-2``: :math:`c = t_{k-p-1}` (Higgins, Thompson & Spiegelhalter 2009; Riley et al.
        2011), from k = 3; ``z``: :math:`c = z_{1-\\alpha/2}` (metafor's default), from k = 2.
    level : float
    p : int
        Number of fixed-effect coefficients (1 for an intercept-only model).

    Returns
    -------
    (lb, ub, df) : tuple of float
        NaN limits when k is below the convention's minimum; ``df`` is ``inf`` for ``z``.

    Notes
    -----
    R equivalent: ``predict(res, pi.type="t")`` (k-1), ``predict(res, pi.type="riley")``
    (k-2), ``predict(res)`` of a ``test="z"`` fit (z).
    """
    check_choice("prediction_df", prediction_df, PREDICTION_DF)
    nan = float("nan")
    df = {"k-1": k - p, "k-2": k - p - 1, "z": float("inf")}[prediction_df]
    if k < 2 or df < 1 or not np.isfinite(tau2):
        return nan, nan, float(df) if prediction_df != "z" else df
    crit = _z(level) if prediction_df == "z" else _t(level, df)
    half = crit * np.sqrt(se**2 + tau2)
    return float(b - half), float(b + half), float(df)


@dataclass(frozen=True)
class MetaResult:
    """A fitted intercept-only meta-analysis, on the analysis scale.

    ``tau2``, ``q``, ``i2``, ``h2`` are NaN for k = 1 (no heterogeneity to estimate); the
    prediction interval is NaN below the minimum k of ``prediction_df`` (and for the
    common-effect model). ``yi``/``vi`` are what was fitted. ``df`` is the degrees of freedom
    of the test and CI (``inf`` for Wald z). ``adhoc_changed`` is True when the Hartung-Knapp
    ad hoc rule ``hksj_adhoc`` replaced the Hartung-Knapp interval.
    """

    method: str
    test: str
    k: int
    b: float
    se: float
    ci_lb: float
    ci_ub: float
    stat: float
    pval: float
    tau2: float
    q: float
    q_df: int
    q_p: float
    i2: float
    h2: float
    pi_lb: float
    pi_ub: float
    level: float
    yi: np.ndarray = field(repr=False)
    vi: np.ndarray = field(repr=False)
    weights: np.ndarray = field(repr=False)
    prediction_df: str = "k-2"
    pi_df: float = float("nan")
    hksj_adhoc: str = "none"
    adhoc_changed: bool = False
    i2_method: str = "tau2"
    df: float = float("inf")

    def summary_frame(self):
        """One-row DataFrame of the scalar results."""
        import pandas as pd

        keys = ["method", "test", "k", "b", "se", "ci_lb", "ci_ub", "stat", "pval", "df", "tau2", "q", "q_df",
                "q_p", "i2", "h2", "pi_lb", "pi_ub", "prediction_df", "pi_df", "hksj_adhoc", "adhoc_changed",
                "i2_method"]
        return pd.DataFrame([{k: getattr(self, k) for k in keys}])


def _q_stats(yi, wi):
    """Cochran's Q with common-effect weights, and the 'typical' within-study variance s^2."""
    sw = wi.sum()
    b = (wi * yi).sum() / sw
    q = (wi * (yi - b) ** 2).sum()
    s2 = (len(yi) - 1) * sw / (sw**2 - (wi**2).sum())
    return q, s2


def tau2_dl(yi, vi):
    """DerSimonian-Laird: :math:`\\max(0, (Q - (k-1)) / (\\sum w - \\sum w^2/\\sum w))`, :math:`w = 1/v`.

    R equivalent: ``metafor::rma(yi, vi, method="DL")$tau2``.
    """
    wi = 1 / vi
    q, _ = _q_stats(yi, wi)
    sw = wi.sum()
    return max(0.0, (q - (len(yi) - 1)) / (sw - (wi**2).sum() / sw))


def _generalised_q(tau2, yi, vi):
    w = 1 / (vi + tau2)
    b = (w * yi).sum() / w.sum()
    return (w * (yi - b) ** 2).sum()


def _solve_generalised_q(yi, vi, target):
    """The tau^2 >= 0 at which the generalised Q equals ``target`` (0 if it is below already at 0).

    The generalised Q decreases monotonically in tau^2 (Viechtbauer 2007), so a bracketing root
    finder is exact to machine precision.
    """
    if _generalised_q(0.0, yi, vi) <= target:
        return 0.0
    hi = max(np.var(yi, ddof=1), np.max(vi), 1e-8)
    while _generalised_q(hi, yi, vi) > target:
        hi *= 4
    from scipy import optimize  # here, not at the top: importing it costs every job and workflow parse ~0.5 s

    return optimize.brentq(lambda t: _generalised_q(t, yi, vi) - target, 0.0, hi, xtol=1e-15, rtol=1e-15,
                           maxiter=500)


def tau2_pm(yi, vi):
    """Paule-Mandel: the tau^2 at which the generalised Q equals k - 1.

    R equivalent: ``metafor::rma(yi, vi, method="PM")$tau2``.
    """
    return _solve_generalised_q(yi, vi, len(yi) - 1)


def tau2_reml(yi, vi, tol=1e-12, max_iter=200):
    """Restricted maximum likelihood by Fisher scoring, started at DL, never below 0.

    Update :math:`\\tau^2 \\leftarrow \\tau^2 + (y'PPy - \\mathrm{tr}P) / \\mathrm{tr}(PP)` with
    :math:`P = W - Ww w'/\\sum w`, step-halved to stay non-negative (Viechtbauer 2005).

    R equivalent: ``metafor::rma(yi, vi, method="REML")$tau2``.
    """
    tau2 = tau2_dl(yi, vi)
    for _ in range(max_iter):
        w = 1 / (vi + tau2)
        sw, sw2 = w.sum(), (w**2).sum()
        r = yi - (w * yi).sum() / sw
        tr_p = sw - sw2 / sw
        tr_pp = sw2 - 2 * (w**3).sum() / sw + sw2**2 / sw**2
        step = ((w**2 * r**2).sum() - tr_p) / tr_pp
        new = tau2 + step
        while new < 0:
            step /= 2
            new = tau2 + step
            if step < tol:
                new = 0.0
                break
        if abs(new - tau2) < tol * max(1.0, tau2):
            return new
        tau2 = new
    raise RuntimeError("REML did not converge")


_ESTIMATORS = {"EE": lambda yi, vi: 0.0, "DL": tau2_dl, "REML": tau2_reml, "PM": tau2_pm}


def rma(yi, vi, method="DL", test="z", level=0.95, prediction_df="k-2", hksj_adhoc="none", i2="tau2"):
    r"""Fit an intercept-only meta-analysis.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and sampling variances (e.g. from :mod:`singlearm.effects`).
    method : {"DL", "REML", "PM", "EE"}
        Heterogeneity estimator; ``EE`` is the common-effect (equal-effects) model.
    test : {"z", "knha"}
        Wald-z inference, or Hartung-Knapp-Sidik-Jonkman: :math:`SE^2 \times q` with
        :math:`q = \sum w_i (y_i - \hat\mu)^2 / (k-1)` and t on k - 1 df.
    level : float
        Confidence level.
    prediction_df : {"k-2", "k-1", "z"}
        Critical value of the prediction interval, see :func:`prediction_interval`.
    hksj_adhoc : {"none", "se", "ci"}
        Ad hoc rule for ``test="knha"`` (ignored for ``z``). ``se``: Knapp & Hartung (2003),
        :math:`q^* = \max(1, q)`, i.e. the larger of the Hartung-Knapp and the classic SE,
        t on k - 1 df (meta's ``adhoc.hakn.ci="se"``, metafor's ``test="adhoc"``). ``ci``:
        IQWiG (2022), the wider of the Hartung-Knapp CI and the classic Wald-z CI (meta's
        ``adhoc.hakn.ci="ci"``); when the classic one is wider, SE, test statistic, p-value,
        CI and prediction interval are all the classic (z) ones. ``none``: plain HKSJ.
        ``adhoc_changed`` tells whether the rule replaced the Hartung-Knapp interval.
    i2 : {"tau2", "q"}
        ``tau2``: :math:`I^2 = 100\tau^2/(\tau^2 + s^2)`, :math:`H^2 = (\tau^2 + s^2)/s^2` with
        :math:`s^2 = (k-1)\sum w/((\sum w)^2 - \sum w^2)` (Higgins & Thompson 2002; metafor).
        ``q``: :math:`I^2 = 100\max(0, (Q-(k-1))/Q)`, :math:`H^2 = Q/(k-1)` (meta's
        ``method.I2="Q"``). The common-effect model always uses the latter, as metafor does.

    Returns
    -------
    MetaResult
        ``pi_lb, pi_ub`` is :math:`\hat\mu \pm c \sqrt{SE^2 + \hat\tau^2}` with the fit's own SE
        and ``c`` set by ``prediction_df`` (``pi_df`` its degrees of freedom).

    Notes
    -----
    R equivalent: ``metafor::rma(yi, vi, method=method, test=test)`` (``test="adhoc"`` for
    ``hksj_adhoc="se"``); prediction intervals as ``predict(res, pi.type="riley")`` (k-2),
    ``pi.type="t"`` (k-1) or ``predict(rma(..., test="z"))`` (z).
    """
    yi = np.asarray(yi, dtype=float)
    vi = np.asarray(vi, dtype=float)
    k = len(yi)
    if k == 0:
        raise ValueError("no studies to pool")
    if method not in _ESTIMATORS:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    check_choice("test", test, ("z", "knha"))
    check_choice("prediction_df", prediction_df, PREDICTION_DF)
    check_choice("hksj_adhoc", hksj_adhoc, HKSJ_ADHOC)
    check_choice("i2", i2, I2_METHODS)
    nan = float("nan")
    conventions = dict(prediction_df=prediction_df, hksj_adhoc=hksj_adhoc, i2_method=i2)
    if k == 1:
        se = float(np.sqrt(vi[0]))
        z = _z(level)
        return MetaResult(method, test, 1, float(yi[0]), se, yi[0] - z * se, yi[0] + z * se, yi[0] / se,
                          2 * special.ndtr(-abs(yi[0] / se)), nan, nan, 0, nan, nan, nan, nan, nan, level,
                          yi, vi, np.ones(1), **conventions)
    tau2 = float(_ESTIMATORS[method](yi, vi))
    w = 1 / (vi + tau2)
    sw = w.sum()
    b = float((w * yi).sum() / sw)
    se = float(np.sqrt(1 / sw))
    q, s2 = _q_stats(yi, 1 / vi)
    q_p = float(special.chdtrc(k - 1, q))
    if method == "EE" or i2 == "q":
        i2_value = 100 * max(0.0, (q - (k - 1)) / q) if q > 0 else 0.0
        h2 = q / (k - 1)
    else:
        i2_value = 100 * tau2 / (tau2 + s2)
        h2 = (tau2 + s2) / s2
    changed = False
    df = float("inf")
    if test == "knha":
        factor = float((w * (yi - b) ** 2).sum() / (k - 1))
        se_hk = se * np.sqrt(factor)
        t_crit = _t(level, k - 1)
        # a relative margin of 1e-10 so that rounding alone never counts as a change (with k = 2
        # and tau2 > 0 the factor is exactly 1 in theory)
        if hksj_adhoc == "se" and factor < 1 - 1e-10:
            se_hk, changed = se, True
        if hksj_adhoc == "ci" and t_crit * se_hk < _z(level) * se * (1 - 1e-10):
            changed = True   # the classic Wald-z interval is wider: it is reported instead
        else:
            se, df = float(se_hk), float(k - 1)
    if np.isfinite(df):
        crit = t_crit
        # identical effects (e.g. two cohorts both at 50%) give se = 0: stat = +-Inf, p = 0 and
        # a CI of width 0, as metafor reports
        with np.errstate(divide="ignore", invalid="ignore"):
            stat = float(np.float64(b) / se)
        pval = float(2 * special.stdtr(df, -abs(stat)))
    else:
        crit = _z(level)
        stat = b / se
        pval = float(2 * special.ndtr(-abs(stat)))
    if method != "EE":
        pi_lb, pi_ub, pi_df = prediction_interval(b, se, tau2, k, prediction_df, level)
    else:
        pi_lb = pi_ub = pi_df = nan
    return MetaResult(method, test, k, b, se, b - crit * se, b + crit * se, stat, pval, tau2, float(q), k - 1,
                      q_p, float(i2_value), float(h2), float(pi_lb), float(pi_ub), level, yi, vi, w / sw,
                      pi_df=pi_df, adhoc_changed=changed, df=df, **{k_: v for k_, v in conventions.items()})


@dataclass(frozen=True)
class HeterogeneityCI:
    """Q-profile confidence intervals of tau^2, I^2 and H^2."""

    tau2_lb: float
    tau2_ub: float
    i2_lb: float
    i2_ub: float
    h2_lb: float
    h2_ub: float


def confint_tau2(yi, vi, level=0.95):
    """Q-profile confidence intervals for tau^2, and the I^2 and H^2 they imply (Viechtbauer 2007).

    The limits solve :math:`Q_{gen}(\\tau^2) = \\chi^2_{k-1, 1-\\alpha/2}` (lower) and
    :math:`\\chi^2_{k-1, \\alpha/2}` (upper), truncated at 0.

    R equivalent: ``confint(metafor::rma(yi, vi))`` (its ``random`` block).
    """
    yi = np.asarray(yi, dtype=float)
    vi = np.asarray(vi, dtype=float)
    k = len(yi)
    if k < 2:
        nan = float("nan")
        return HeterogeneityCI(nan, nan, nan, nan, nan, nan)
    a = (1 - level) / 2
    lb = _solve_generalised_q(yi, vi, special.chdtri(k - 1, a))
    ub = _solve_generalised_q(yi, vi, special.chdtri(k - 1, 1 - a))
    _, s2 = _q_stats(yi, 1 / vi)
    return HeterogeneityCI(lb, ub, 100 * lb / (lb + s2), 100 * ub / (ub + s2), (lb + s2) / s2, (ub + s2) / s2)


def subgroup_test(estimates, ses):
    """Test for subgroup differences: Q between subgroups, each pooled with its own tau^2.

    :math:`Q_b = \\sum_g w_g (\\hat\\mu_g - \\bar\\mu)^2`, :math:`w_g = 1/SE_g^2`, on G - 1 df
    (Borenstein et al. 2009, ch. 19, separate estimates of tau^2).

    R equivalent: ``metafor::rma(yi=b_g, sei=se_g, method="EE")$QE``.

    Returns
    -------
    (q, df, p) : tuple
        q and p are NaN when a subgroup's SE is 0 or missing (e.g. Hartung-Knapp on identical
        effects): a subgroup with infinite weight leaves the test undefined.
    """
    b = np.asarray(estimates, dtype=float)
    ses = np.asarray(ses, dtype=float)
    df = len(b) - 1
    if not (np.isfinite(ses) & (ses > 0)).all():
        return float("nan"), df, float("nan")
    w = 1 / ses**2
    mean = (w * b).sum() / w.sum()
    q = float((w * (b - mean) ** 2).sum())
    return q, df, float(special.chdtrc(df, q)) if df > 0 else float("nan")
