"""The Freeman-Tukey safety net: when a back-transformed PFT pooled proportion may mislead.

The double-arcsine back-transform needs one sample size, and no single n is right for a pooled
value (Schwarzer et al. 2019, Res Synth Methods 10:476); the transform is also not monotone in
the proportion across studies of different size (Röver & Friede 2022, Res Synth Methods 13:645).
Each check returns plain-language flags for ``pooled_details.csv``, the comparison table and
the forest plot's footnote.
"""

import numpy as np
from scipy import special

from . import transforms

WIDTH_SHARE = 0.10   # a move of more than 10% of the CI width is material (Schwarzer et al. 2019)


def candidate_ns(n):
    """The sample sizes the back-transform could defensibly use: min, geometric, harmonic, arithmetic mean, max."""
    n = np.asarray(n, dtype=float)
    # the geometric mean as scipy.stats.gmean computes it, without importing scipy.stats (about a
    # second of start-up for every job and for every parse of the workflow, no-op reruns included)
    return {"min": n.min(), "geometric mean": float(np.exp(np.mean(np.log(n)))), "harmonic mean": transforms.harmonic_mean(n),
            "arithmetic mean": n.mean(), "max": n.max()}


def ft_flags(b, ci_lb, ci_ub, pi_lb, pi_ub, tau2, events, total, glmm_b=None, logit_margin=0.2):
    """Flags of one PFT fit.

    Parameters
    ----------
    b, ci_lb, ci_ub, pi_lb, pi_ub : float
        The pooled value and its CI and PI limits on the double-arcsine scale (PI may be NaN).
    tau2 : float
    events, total : array_like
        The pooled studies' counts.
    glmm_b : float, optional
        The binomial-normal GLMM's pooled logit, to compare with.
    logit_margin : float
        Flag when FT and GLMM differ by more than this on the logit scale.

    Returns
    -------
    list of str
        Empty when nothing misleads. The checks: (1) the estimate or a CI limit moves by more
        than 10% of the CI width across the n of :func:`candidate_ns`; (2) the estimate lies
        outside the range of the study proportions, or, with tau^2 = 0, differs from the pooled
        raw proportion sum(x)/sum(n) by more than 10% of the CI width; (3) the studies' FT values
        are not ordered like their proportions; (4) FT and GLMM differ by more than
        ``logit_margin`` on the logit scale; (5) a CI or PI limit was clipped at 0 or 1.
    """
    x, n = np.asarray(events, dtype=float), np.asarray(total, dtype=float)
    p = x / n
    nh = transforms.harmonic_mean(n)
    est, lo, hi = (float(transforms.ipft(v, nh)) for v in (b, ci_lb, ci_ub))
    width = hi - lo
    flags = []
    moves = {name: [float(transforms.ipft(v, m)) for v in (b, ci_lb, ci_ub)] for name, m in candidate_ns(n).items()}
    spread = np.ptp(np.array(list(moves.values())), axis=0)
    if width > 0 and spread.max() > WIDTH_SHARE * width:
        flags.append(f"back-transform depends on n: estimate or CI limits move by up to {spread.max():.4f} "
                     f"({100 * spread.max() / width:.0f}% of the CI width) across n = min, geometric, harmonic, "
                     "arithmetic mean, max")
    if not p.min() <= est <= p.max():
        flags.append(f"estimate {est:.4f} outside the range of the study proportions [{p.min():.4f}, {p.max():.4f}]")
    elif tau2 == 0 and width > 0 and abs(est - x.sum() / n.sum()) > WIDTH_SHARE * width:
        flags.append(f"with tau2 = 0 the estimate {est:.4f} differs from the pooled proportion sum(x)/sum(n) = "
                     f"{x.sum() / n.sum():.4f} by more than 10% of the CI width")
    y = transforms.pft(p, n)
    order_p, order_y = np.sign(p[:, None] - p[None, :]), np.sign(y[:, None] - y[None, :])
    if np.any(order_p * order_y < 0):
        flags.append("the studies' Freeman-Tukey values are not ordered like their proportions (Röver & Friede 2022)")
    if glmm_b is not None and np.isfinite(glmm_b):
        with np.errstate(divide="ignore"):
            gap = abs(float(special.logit(est)) - glmm_b)
        if not gap <= logit_margin:
            flags.append(f"differs from GLMM-ML ({float(special.expit(glmm_b)):.4f}) by {gap:.2f} on the logit scale "
                         f"(more than {logit_margin})")
    lower, upper = transforms.pft(0.0, nh), transforms.pft(1.0, nh)
    limits = [v for v in (ci_lb, ci_ub, pi_lb, pi_ub) if np.isfinite(v)]
    if any(v < lower or v > upper for v in limits):
        flags.append("a CI or PI limit fell outside the back-transform's range and was clipped to 0 or 1")
    return flags
