"""Random-intercept logistic model with the exact binomial likelihood, fitted by maximum likelihood.

Model: :math:`x_i \\sim \\mathrm{Bin}(n_i, \\mathrm{expit}(\\mu + \\tau z_i))`, :math:`z_i \\sim N(0, 1)`.
The marginal likelihood integrates each :math:`z_i` out by adaptive Gauss-Hermite quadrature
(nodes centred on each study's conditional mode and scaled by its curvature), as lme4's
``glmer(nAGQ=7)`` which ``metafor::rma.glmm(measure="PLO")`` calls. The maximisation is a damped
Newton iteration on :math:`(\\mu, \\tau)` with central-difference derivatives; the log-likelihood is
even in :math:`\\tau`, so :math:`|\\tau|` is reported.
"""

from dataclasses import dataclass

import numpy as np
from scipy import special

from .effects import proportion_effects
from .fit import _q_stats, _z


@dataclass(frozen=True)
class GlmmResult:
    """ML fit of the binomial-normal model (logit scale)."""

    k: int
    b: float
    se: float
    ci_lb: float
    ci_ub: float
    tau2: float
    i2: float
    loglik: float
    iterations: int


class _Likelihood:
    """Marginal log-likelihood by adaptive Gauss-Hermite quadrature; keeps modes for warm starts."""

    def __init__(self, events, total, n_nodes):
        self.x = np.asarray(events, dtype=float)
        self.n = np.asarray(total, dtype=float)
        nodes, weights = np.polynomial.hermite.hermgauss(n_nodes)
        self.t = nodes[:, None]
        self.log_w = (np.log(weights) + nodes**2)[:, None]
        self.const = (special.gammaln(self.n + 1) - special.gammaln(self.x + 1)
                      - special.gammaln(self.n - self.x + 1)).sum()
        self.mode = np.zeros_like(self.x)

    def _log_f(self, z, mu, tau):
        eta = mu + tau * z
        # x*log(expit(eta)) + (n-x)*log(1-expit(eta)), written to stay finite for large |eta|
        return self.x * eta - self.n * np.logaddexp(0, eta) - 0.5 * z**2

    def __call__(self, mu, tau):
        z = self.mode.copy()
        for _ in range(50):
            p = special.expit(mu + tau * z)
            step = (tau * (self.x - self.n * p) - z) / (tau**2 * self.n * p * (1 - p) + 1)
            z += step
            if np.abs(step).max() < 1e-12:
                break
        self.mode = z
        p = special.expit(mu + tau * z)
        scale = np.sqrt(2.0 / (tau**2 * self.n * p * (1 - p) + 1))
        nodes = z + scale * self.t
        terms = self.log_w + self._log_f(nodes, mu, tau)
        top = terms.max(axis=0)
        per_study = top + np.log(np.exp(terms - top).sum(axis=0)) + np.log(scale) - 0.5 * np.log(np.pi)
        return per_study.sum() + self.const


def _derivatives(f, theta, h):
    """Gradient and Hessian of f at theta by central differences (step h per coordinate)."""
    d = len(theta)
    f0 = f(theta)
    grad = np.empty(d)
    hess = np.empty((d, d))
    e = np.eye(d) * h
    fp = [f(theta + e[i]) for i in range(d)]
    fm = [f(theta - e[i]) for i in range(d)]
    for i in range(d):
        grad[i] = (fp[i] - fm[i]) / (2 * h[i])
        hess[i, i] = (fp[i] - 2 * f0 + fm[i]) / h[i] ** 2
    for i in range(d):
        for j in range(i + 1, d):
            # two extra evaluations instead of four, reusing the axis points
            fpp = f(theta + e[i] + e[j])
            fmm = f(theta - e[i] - e[j])
            hess[i, j] = hess[j, i] = (fpp - fp[i] - fp[j] + 2 * f0 - fm[i] - fm[j] + fmm) / (2 * h[i] * h[j])
    return f0, grad, hess


def glmm_ml(events, total, n_nodes=7, level=0.95, tol=1e-10, max_iter=100):
    """Fit the random-intercept logistic model by maximum likelihood.

    Parameters
    ----------
    events, total : array_like of int
    n_nodes : int
        Gauss-Hermite nodes per study (7 as lme4's ``nAGQ=7``, metafor's default).
    level : float
        Confidence level of the Wald interval for mu.

    Returns
    -------
    GlmmResult
        ``b`` (logit of the pooled rate) with its SE from the inverse observed information of
        :math:`(\\mu, \\tau)`, Wald CI, ``tau2`` and ``i2`` (:math:`100\\tau^2/(\\tau^2 + s^2)` with
        :math:`s^2` from the PLO sampling variances, as metafor reports it).

    Notes
    -----
    R equivalent: ``metafor::rma.glmm(measure="PLO", xi=events, ni=total, method="ML")``.
    """
    x = np.asarray(events, dtype=float)
    n = np.asarray(total, dtype=float)
    k = len(x)
    if k < 2:
        raise ValueError("the GLMM needs at least two studies")
    yi, vi = proportion_effects(x, n, "PLO")
    like = _Likelihood(x, n, n_nodes)

    def f(theta):
        return like(theta[0], theta[1])

    theta = np.array([special.logit(x.sum() / n.sum()) if 0 < x.sum() < n.sum() else yi.mean(), 0.5])
    h = np.array([1e-4, 1e-4])
    for iteration in range(1, max_iter + 1):
        f0, grad, hess = _derivatives(f, theta, h)
        try:
            negative_definite = np.all(np.linalg.eigvalsh(hess) < 0)
        except np.linalg.LinAlgError:
            negative_definite = False
        direction = -np.linalg.solve(hess, grad) if negative_definite else grad / max(1.0, np.abs(grad).max())
        step = 1.0
        while f(theta + step * direction) < f0 - 1e-12 and step > 1e-8:
            step /= 2
        new = theta + step * direction
        new[1] = abs(new[1])
        if np.max(np.abs(new - theta)) < tol:
            theta = new
            break
        theta = new
    loglik, _, hess = _derivatives(f, theta, h)
    cov = np.linalg.inv(-hess) if theta[1] > 1e-6 else np.array([[1 / -hess[0, 0]]])
    b, tau = float(theta[0]), float(theta[1])
    se = float(np.sqrt(cov[0, 0]))
    crit = _z(level)
    _, s2 = _q_stats(yi, 1 / vi)
    tau2 = tau**2
    return GlmmResult(k, b, se, b - crit * se, b + crit * se, tau2, 100 * tau2 / (tau2 + s2), float(loglik), iteration)
