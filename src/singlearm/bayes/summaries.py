"""What the Bayesian stage reports about one posterior, on the reporting scale.

:func:`summarise_exact` reads a :class:`~singlearm.bayes.exact.GridPosterior`; :func:`summarise_draws`
reads posterior draws (a PyMC fit) the same way, so both give a :class:`PosteriorSummary` with the
same fields.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .priors import BackTransform

SHOWN_INTERVAL = "equal-tailed"  # the interval in ci_low/ci_high; the shortest one is in hpd_low/hpd_high


@dataclass(frozen=True)
class PosteriorSummary:
    """One fit under one prior set, on the reporting scale (a rate, or months).

    ``estimate`` is the posterior median of the pooled value g(mu), ``mean`` its mean,
    ``ci_low, ci_high`` the equal-tailed ``level`` credible interval (the one tables show) and
    ``hpd_low, hpd_high`` the shortest interval of the same level; ``pi_low, pi_high`` the
    equal-tailed posterior-predictive interval of a new study's true value g(mu + tau z);
    ``tau_median, tau_low, tau_high`` tau on the model scale, ``tau2`` the posterior median of
    tau^2; ``tau_sd_ratio`` the posterior SD of tau over its prior SD (NaN for a half-Cauchy) and
    ``tau_prior_overlap`` the overlap of tau's prior and posterior densities (1 = the data say
    nothing about tau); ``pop_*`` the population-averaged rate E_z[expit(mu + tau z)]
    (binomial-normal only); ``probabilities`` maps each threshold t to P(g(mu) > t | data).
    """

    estimate: float
    mean: float
    ci_low: float
    ci_high: float
    hpd_low: float
    hpd_high: float
    pi_low: float
    pi_high: float
    tau_median: float
    tau_low: float
    tau_high: float
    tau2: float
    tau_sd_ratio: float
    tau_prior_overlap: float
    pop_median: float = float("nan")
    pop_mean: float = float("nan")
    pop_low: float = float("nan")
    pop_high: float = float("nan")
    probabilities: dict = field(default_factory=dict)

    def record(self):
        """The scalar fields as a dict (for one table row)."""
        out = asdict(self)
        out.pop("probabilities")
        return out


def _on_scale(back: BackTransform, q_fn, probs):
    """Quantiles of g(X) from quantiles of X: a decreasing g swaps the tails."""
    probs = np.asarray(probs, dtype=float)
    if back.increasing:
        return back(q_fn(probs))
    return back(q_fn(1 - probs))


def _shortest(back, q_fn, level, n=41):
    """Shortest interval of g(X) with probability ``level``: minimise width over the lower tail mass."""
    lo_a, hi_a = 0.0, 1 - level
    for _ in range(3):
        alpha = np.linspace(lo_a, hi_a, n)
        ends = _on_scale(back, q_fn, np.concatenate([alpha, alpha + level]))
        width = ends[n:] - ends[:n]
        i = int(np.argmin(width))
        step = alpha[1] - alpha[0]
        lo_a, hi_a = max(alpha[i] - step, 0.0), min(alpha[i] + step, 1 - level)
    return float(ends[i]), float(ends[n + i])


def _prob_greater(back, cdf, thresholds):
    out = {}
    for t in thresholds:
        y = float(back.inverse(t))
        below = float(cdf(np.array([y]))[0])
        out[float(t)] = 1.0 - below if back.increasing else below
    return out


def summarise_exact(post, back, *, level=0.95, thresholds=(), population=False, shortest=True):
    """Every reported number of one exact posterior.

    Parameters
    ----------
    post : singlearm.bayes.exact.GridPosterior
    back : BackTransform
        Model scale -> reporting scale (expit for rates; identity, exp or exp(-exp) otherwise).
    level : float
    thresholds : sequence of float
        t on the reporting scale for P(value > t | data).
    population : bool
        Also the population-averaged rate E_z[expit(mu + tau z)] (binomial-normal fits).
    shortest : bool
        Also the shortest interval (else ``hpd_low, hpd_high`` are NaN); a third of the cost, so
        the prior-sensitivity variants, whose table shows the equal-tailed interval, skip it.

    Returns
    -------
    PosteriorSummary

    Notes
    -----
    R equivalent: ``bayesmeta(...)$summary``, ``$post.interval(method = "central")`` and
    ``method = "shortest"``, ``$qposterior(tau.p = )``, ``1 - $pposterior(mu = t)``.
    """
    a = (1 - level) / 2
    mu_q = _on_scale(back, post.mu_quantile, [a, 0.5, 1 - a])
    new_q = _on_scale(back, post.new_quantile, [a, 1 - a])
    hpd = _shortest(back, post.mu_quantile, level) if shortest else (float("nan"), float("nan"))
    tau_q = post.tau_quantile([a, 0.5, 1 - a])
    tau_mean, tau_sd = post.tau_moments()
    prior_sd = getattr(post.prior_tau, "sd", float("nan"))
    pop = {}
    if population:
        from .exact import _invert  # one bisection for every quantile of the stage

        pq = _invert(post.population_cdf, [a, 0.5, 1 - a], 0.0, 1.0)
        pop = {"pop_low": float(pq[0]), "pop_median": float(pq[1]), "pop_high": float(pq[2]),
               "pop_mean": post.population_mean()}
    return PosteriorSummary(
        estimate=float(mu_q[1]), mean=post.expect(back), ci_low=float(mu_q[0]), ci_high=float(mu_q[2]),
        hpd_low=hpd[0], hpd_high=hpd[1], pi_low=float(new_q[0]), pi_high=float(new_q[1]),
        tau_median=float(tau_q[1]), tau_low=float(tau_q[0]), tau_high=float(tau_q[2]),
        tau2=float(tau_q[1]) ** 2,
        tau_sd_ratio=tau_sd / prior_sd if np.isfinite(prior_sd) and prior_sd > 0 else float("nan"),
        tau_prior_overlap=post.tau_prior_overlap(),
        probabilities=_prob_greater(back, post.mu_cdf, thresholds), **pop)
