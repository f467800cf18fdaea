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

    :math:`SE = (u - l) / (2 \\times 1.959964)` on the months scale (the review's approach) or
    :math:`SE = (\\log u - \\log l) / (2 \\times 1.959964)` with :math:`y = \\log m` on the log scale.

    R equivalent: ``metafor::rma(yi=m, sei=(u-l)/(2*1.959964))`` (log scale: ``yi=log(m)``,
    ``sei=(log(u)-log(l))/(2*1.959964)``).
    """
    m, lo, hi = (np.asarray(a, dtype=float) for a in (estimate, ci_low, ci_high))
    if scale == "months":
        return m, ((hi - lo) / (2 * Z975)) ** 2
    if scale == "log":
        return np.log(m), ((np.log(hi) - np.log(lo)) / (2 * Z975)) ** 2
    raise ValueError(f"unknown scale {scale!r}; expected months or log")


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
