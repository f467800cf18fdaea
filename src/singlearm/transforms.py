"""Back-transforms, applied only when reporting (metafor's ``transf.*`` stage)."""

import numpy as np
from scipy import special


def harmonic_mean(n):
    """Harmonic mean of sample sizes, :math:`k / \\sum 1/n_i` (Miller 1978)."""
    n = np.asarray(n, dtype=float)
    return len(n) / (1 / n).sum()


def pft(p, n):
    """Freeman-Tukey double arcsine of a proportion ``p`` for sample size ``n``.

    R equivalent: ``metafor::transf.pft(p, n)``.
    """
    x = np.asarray(p, dtype=float) * n
    return 0.5 * (np.arcsin(np.sqrt(x / (n + 1))) + np.arcsin(np.sqrt((x + 1) / (n + 1))))


def ipft_hm(y, n):
    """Inverse Freeman-Tukey transform with the harmonic mean of the pooled studies' n (Miller 1978).

    :math:`p = \\tfrac12\\{1 - \\mathrm{sgn}(\\cos 2y)\\sqrt{1 - [\\sin 2y + (\\sin 2y - 1/\\sin 2y)/\\bar n]^2}\\}`,
    with :math:`\\bar n` the harmonic mean of ``n``; values beyond the transform's range map to 0 or 1.

    R equivalent: ``metafor::transf.ipft.hm(y, targs=list(ni=n))``.
    """
    y = np.asarray(y, dtype=float)
    nh = harmonic_mean(n)
    s = np.sin(2 * y)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = 0.5 * (1 - np.sign(np.cos(2 * y)) * np.sqrt(1 - (s + (s - 1 / s) / nh) ** 2))
    p = np.where(y > pft(1.0, nh), 1.0, p)
    p = np.where(y < pft(0.0, nh), 0.0, p)
    return p


def ilogit(y):
    """Inverse logit. R equivalent: ``metafor::transf.ilogit(y)``."""
    return special.expit(np.asarray(y, dtype=float))


def ft_pathology(b, ci_lb, ci_ub, n):
    """Where the Freeman-Tukey back-transform of a pooled result misleads (Schwarzer et al. 2019).

    Returns a list of plain-language problems: limits clipped at 0 or 1 by the transform's range,
    or back-transformed limits that are not ordered like the analysis-scale ones.
    """
    est, lo, hi = (float(ipft_hm(v, n)) for v in (b, ci_lb, ci_ub))
    nh = harmonic_mean(n)
    problems = []
    if ci_lb < pft(0.0, nh) or ci_ub > pft(1.0, nh):
        problems.append("CI limit outside the back-transform's range, clipped to 0 or 1")
    if not lo <= est <= hi:
        problems.append("back-transformed CI is non-monotone (does not contain the estimate)")
    return problems
