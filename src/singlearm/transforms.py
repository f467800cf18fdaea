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


def ipft(y, n):
    """Inverse Freeman-Tukey transform for one sample size ``n`` (Miller 1978).

    :math:`p = \\tfrac12\\{1 - \\mathrm{sgn}(\\cos 2y)\\sqrt{1 - [\\sin 2y + (\\sin 2y - 1/\\sin 2y)/n]^2}\\}`;
    values beyond the transform's range for this n map to 0 or 1.

    R equivalent: ``metafor::transf.ipft(y, ni=n)``.
    """
    y = np.asarray(y, dtype=float)
    s = np.sin(2 * y)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = 0.5 * (1 - np.sign(np.cos(2 * y)) * np.sqrt(1 - (s + (s - 1 / s) / n) ** 2))
    p = np.where(y > pft(1.0, n), 1.0, p)
    p = np.where(y < pft(0.0, n), 0.0, p)
    return p


def ipft_hm(y, n):
    """Inverse Freeman-Tukey transform with the harmonic mean of the pooled studies' n (Miller 1978).

    R equivalent: ``metafor::transf.ipft.hm(y, targs=list(ni=n))``.
    """
    return ipft(y, harmonic_mean(n))


def ilogit(y):
    """Inverse logit. R equivalent: ``metafor::transf.ilogit(y)``."""
    return special.expit(np.asarray(y, dtype=float))
