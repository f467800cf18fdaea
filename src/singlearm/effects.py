"""Effect sizes: counts or medians -> ``yi, vi`` (metafor's ``escalc`` stage), and per-study CIs.

Nothing here pools or back-transforms; see :mod:`singlearm.fit` and :mod:`singlearm.transforms`.
"""

import numpy as np
from scipy import special

Z975 = 1.959964  # the review's SE convention for medians: (upper - lower) / (2 x 1.959964)


def proportion_effects(events, total, measure):
    """Effect sizes and sampling variances of proportions.

    Parameters
    ----------
    events, total : array_like of int
    measure : {"PFT", "PLO", "PRAW"}
        ``PFT``: Freeman-Tukey double arcsine,
        :math:`y = \\tfrac12[\\arcsin\\sqrt{x/(n+1)} + \\arcsin\\sqrt{(x+1)/(n+1)}]`,
        :math:`v = 1/(4n+2)` (Freeman & Tukey 1950; Miller 1978), no correction needed.
        ``PLO``: logit :math:`\\log(x/(n-x))`, :math:`v = 1/x + 1/(n-x)`.
        ``PRAW``: raw proportion :math:`x/n`, :math:`v = p(1-p)/n`.
        For PLO and PRAW, 0.5 is added to both cells of a study with 0 events or 0 non-events
        only (metafor's ``add=1/2, to="only0"``).

    Returns
    -------
    yi, vi : numpy.ndarray

    Notes
    -----
    R equivalent: ``metafor::escalc(measure="PFT"|"PLO"|"PR", xi=events, ni=total)``.
    """
    x = np.asarray(events, dtype=float)
    n = np.asarray(total, dtype=float)
    if measure == "PFT":
        yi = 0.5 * (np.arcsin(np.sqrt(x / (n + 1))) + np.arcsin(np.sqrt((x + 1) / (n + 1))))
        return yi, 1.0 / (4 * n + 2)
    zero_cell = (x == 0) | (x == n)
    x = np.where(zero_cell, x + 0.5, x)
    n = np.where(zero_cell, n + 1.0, n)
    if measure == "PLO":
        return np.log(x / (n - x)), 1.0 / x + 1.0 / (n - x)
    if measure == "PRAW":
        p = x / n
        return p, p * (1 - p) / n
    raise ValueError(f"unknown measure {measure!r}; expected PFT, PLO or PRAW")


def median_effects(estimate, ci_low, ci_high, scale="months"):
    """Medians with a 95% CI as ``yi, vi`` for generic inverse-variance pooling.

    Two-sided CI: :math:`SE = (u - l) / (2 \\times 1.959964)` on the months scale (the review's
    approach), or :math:`SE = (\\log u - \\log l) / (2 \\times 1.959964)` with
    :math:`y = \\log m` on the log scale. One-sided CI (upper limit "not reached", ``ci_high``
    NaN): the lower half-width, :math:`SE = (m - l) / 1.959964` or
    :math:`(\\log m - \\log l) / 1.959964`. Rows without a lower limit get ``vi`` NaN.

    R equivalent: ``metafor::rma(yi=m, sei=(u-l)/(2*1.959964))`` (log scale: ``yi=log(m)``,
    ``sei=(log(u)-log(l))/(2*1.959964)``; one-sided ``sei=(log(m)-log(l))/1.959964``).
    """
    m, lo, hi = (np.asarray(a, dtype=float) for a in (estimate, ci_low, ci_high))
    if scale == "months":
        f = _identity
    elif scale == "log":
        f = np.log
    else:
        raise ValueError(f"unknown scale {scale!r}; expected months or log")
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.where(np.isnan(hi), (f(m) - f(lo)) / Z975, (f(hi) - f(lo)) / (2 * Z975))
        return f(m), se**2


def _identity(x):
    return np.asarray(x, dtype=float)


def cloglog(s):
    """Complementary log-log of a survival probability, :math:`\\log(-\\log S)` (decreasing in S)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(-np.log(np.asarray(s, dtype=float)))


def icloglog(y):
    """Inverse of :func:`cloglog`: :math:`S = \\exp(-\\exp(y))`. R equivalent: ``exp(-exp(y))``."""
    return np.exp(-np.exp(np.asarray(y, dtype=float)))


REPORTED_CI, ONE_SIDED_CI, BINOMIAL_APPROXIMATION = "reported_ci", "one_sided_ci", "binomial_approximation"


def survival_effects(rate, ci_low, ci_high, n):
    """Kaplan-Meier landmark rates as ``yi, vi`` on the complementary log-log scale.

    :math:`y = \\log(-\\log S)`. The SE comes from the reported 95% CI on the same scale,
    :math:`(\\log(-\\log l) - \\log(-\\log u)) / (2 \\times 1.959964)`; from one side when
    only one limit is usable (the other blank, or at 0 or 1 where the scale is infinite).
    Without a CI it is the binomial delta-method approximation
    :math:`\\sqrt{S(1-S)/n} / |S \\log S|` with ``n`` the cohort's patients, a lower bound
    under censoring (Greenwood's variance exceeds the binomial one).

    Parameters
    ----------
    rate, ci_low, ci_high : array_like
        Survival probability and its 95% limits as fractions (NaN where blank).
    n : array_like
        Patients in the cohort (NaN where unknown).

    Returns
    -------
    yi, vi : numpy.ndarray
        ``vi`` is NaN where neither a CI nor ``n`` gives a standard error.
    source : numpy.ndarray of str
        ``reported_ci``, ``one_sided_ci``, ``binomial_approximation`` or ``""`` (no SE).

    Notes
    -----
    R equivalent: ``metafor::rma(yi=log(-log(S)), sei=(log(-log(l))-log(-log(u)))/(2*1.959964))``.
    """
    s, lo, hi, n = (np.asarray(a, dtype=float) for a in (rate, ci_low, ci_high, n))
    y, y_lo, y_hi = cloglog(s), cloglog(lo), cloglog(hi)   # y_lo >= y >= y_hi: the scale is decreasing
    lo_ok, hi_ok = np.isfinite(y_lo), np.isfinite(y_hi)
    with np.errstate(divide="ignore", invalid="ignore"):
        two = (y_lo - y_hi) / (2 * Z975)
        one = np.where(lo_ok, y_lo - y, y - y_hi) / Z975
        binom = np.sqrt(s * (1 - s) / n) / np.abs(s * np.log(s))
    se = np.where(lo_ok & hi_ok, two, np.where(lo_ok | hi_ok, one, binom))
    source = np.where(lo_ok & hi_ok, REPORTED_CI, np.where(lo_ok | hi_ok, ONE_SIDED_CI, BINOMIAL_APPROXIMATION))
    bad = ~np.isfinite(se) | ~np.isfinite(y) | (se <= 0)
    source = np.where(bad, "", source)
    return y, np.where(bad, np.nan, se**2), source


def clopper_pearson(events, total, level=0.95):
    """Exact (Clopper-Pearson) confidence limits of each study's proportion.

    :math:`[B(\\alpha/2; x, n-x+1),\\ B(1-\\alpha/2; x+1, n-x)]` with :math:`B` the beta quantile;
    0 and 1 at the boundaries. R equivalent: ``binom.test(x, n)$conf.int``.
    """
    x = np.asarray(events, dtype=float)
    n = np.asarray(total, dtype=float)
    a = (1 - level) / 2
    with np.errstate(invalid="ignore"):
        lo = np.where(x == 0, 0.0, special.betaincinv(x, n - x + 1, a))
        hi = np.where(x == n, 1.0, special.betaincinv(x + 1, n - x, 1 - a))
    return lo, hi


def wilson(events, total, level=0.95):
    """Wilson score confidence limits of each study's proportion.

    :math:`\\frac{p + z^2/2n \\pm z\\sqrt{p(1-p)/n + z^2/4n^2}}{1 + z^2/n}`.
    R equivalent: ``prop.test(x, n, correct=FALSE)$conf.int``.
    """
    x = np.asarray(events, dtype=float)
    n = np.asarray(total, dtype=float)
    z = special.ndtri(1 - (1 - level) / 2)
    p = x / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return centre - half, centre + half
