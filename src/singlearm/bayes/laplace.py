"""Laplace approximation of the binomial-normal posterior, for fits too large for the exact grid.

The exact posterior (:func:`singlearm.bayes.exact.exact_bn`) evaluates every study's integrated
likelihood at some 60,000 (mu, tau) points, so its cost grows as k x grid size (about 2 min per
prior set at k = 5,000), and its tau grid, laid from 0 to the end of the posterior's tail, holds
fewer and fewer nodes inside tau's posterior as k grows and that posterior narrows. Above
``bayes.exact_max_k`` studies the stage uses this module instead: an integrated nested Laplace
approximation in the sense of Rue, Martino & Chopin (2009, J R Stat Soc B 71:319), with the
Gaussian strategy, for a model with one latent mean:

1. each study's theta_i = mu + tau z_i is integrated out exactly as the exact grid does, by
   adaptive Gauss-Hermite quadrature (Liu & Pierce 1994), vectorised over studies; the same
   quadrature gives the first two mu-derivatives of the log-likelihood l(mu, tau);
2. at each tau, mu | tau, data is approximated by a normal at the conditional mode with the
   curvature there (Laplace; Tierney & Kadane 1986, J Am Stat Assoc 81:82), and the same Laplace
   integral gives p(tau | data) up to a constant;
3. tau is integrated on a grid uniform in u = (2/pi) arctan(tau/a) laid over the window where
   p(u | data) is above 1e-13 of its peak (found by zooming scans), so the grid follows tau's
   posterior however narrow it is.

The mode in mu is found under the main prior; the other prior sets of the sensitivity analysis
(normal priors on mu) use the quadratic expansion of l(., tau) at that mode, i.e. one Newton step
from it (exact for a quadratic l, and the shift between prior sets is O(1/k) of a prior's weight).
The error of the Gaussian conditional is of the order of mu's conditional skewness, O(k^-1/2)
of its posterior SD; tests/test_bayes_laplace.py bounds it against the exact grid at k = 60.

The result is a :class:`~singlearm.bayes.exact.GridPosterior` whose rows hold each normal
conditional of mu on a grid of +-9 SD, so every summary (quantiles, predictive interval,
population-averaged rate, probabilities) is read exactly as for the exact posterior.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from .exact import (
    U_MAX,
    Grid,
    _assemble,
    _log_jacobian,
    _nodes,
    _tau_of,
    adaptive_nodes,
)
from .priors import ZeroTau

_CHUNK = 2_000_000  # elements of (studies x points x nodes) per block: bounded memory for any k
_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)
_CUT = np.log(1e-13)  # tau's window: where p(u | data) is above 1e-13 of its peak
# Largest normality gap (:func:`normality_gap`) the stage accepts. Against the exact grid, a gap of
# 0.06 (k = 20) gave quantile errors of 2% of the posterior SD, 0.57 (k = 60, 21 events) 22%: the
# error is about a third of the gap in SD units, so 0.1 keeps it near 3% of the SD.
MAX_GAP = 0.1
_ROW_SD = 9.0  # each row's mu grid spans the normal conditional's mean +- 9 SD


def loglik_derivatives(events, total, mu, tau, n_nodes=15):
    """Sum over studies of log L_i(mu, tau) and of its first two derivatives in mu.

    ``L_i(mu, tau) = int Bin(x_i | n_i, expit(mu + tau z)) phi(z) dz`` (binomial coefficients
    dropped) by adaptive Gauss-Hermite quadrature, nodes at the integrand's mode in z scaled by
    its curvature (Liu & Pierce 1994, Biometrika 81:624), as
    :func:`singlearm.bayes.exact.log_lik_bn` computes it but vectorised over studies. With the
    nodes held fixed in z, the derivatives are the quadrature's weighted moments of the score:
    ``d log L_i / d mu = E[x_i - n_i p]`` and ``d^2 log L_i / d mu^2 = Var[x_i - n_i p] - E[n_i p (1 - p)]``
    under the normalised quadrature weights. For a study with no (or only) events and tau > 1
    the integrand is a step in z, and all three are taken over theta by Gauss-Legendre instead
    (as in the exact grid).

    Parameters
    ----------
    events, total : array_like (k,)
    mu, tau : array_like (m,)
        The points (mu_j, tau_j).
    n_nodes : int

    Returns
    -------
    (ndarray, ndarray, ndarray)
        l(mu, tau), dl/dmu and d^2 l/dmu^2 at each point, each of shape (m,).

    Notes
    -----
    R equivalent: the marginal log-likelihood of ``lme4::glmer(cbind(x, n - x) ~ 1 + (1 | study),
    family = binomial, nAGQ = n_nodes)`` at fixed (mu, tau), and its numerical derivatives in mu.
    """
    # Studies with the same (x, n) have the same integral: each distinct pair is computed once and
    # counted (thousands of cohorts hold far fewer distinct pairs).
    pairs, count = np.unique(np.stack([np.asarray(events, float), np.asarray(total, float)], axis=1), axis=0,
                             return_counts=True)
    x_all, n_all = pairs[:, 0], pairs[:, 1]
    mu, tau = np.broadcast_arrays(np.atleast_1d(np.asarray(mu, float)), np.atleast_1d(np.asarray(tau, float)))
    out = np.zeros((3, mu.size))
    edge = ((x_all == 0) | (x_all == n_all)) & np.any(tau > 1.0)
    step = tau > 1.0
    per = max(1, _CHUNK // (mu.size * n_nodes))
    for start in range(0, len(x_all), per):
        x, n = x_all[start:start + per, None], n_all[start:start + per, None]
        ll, d1, d2 = _agq(x, n, mu[None, :], tau[None, :], n_nodes)
        e = edge[start:start + per]
        if e.any():
            # the step integral replaces AGQ where tau > 1 for the edge studies only
            sign = np.where(x[e] == 0, 1.0, -1.0)
            s_ll, s_d1, s_d2 = _step(n[e], sign * mu[None, :], np.where(step, tau, 1.0)[None, :])
            mask = np.zeros(ll.shape, bool)
            mask[e] = step[None, :]
            ll = np.where(mask, _place(ll, e, s_ll), ll)
            d1 = np.where(mask, _place(d1, e, sign * s_d1), d1)
            d2 = np.where(mask, _place(d2, e, s_d2), d2)
        c = count[start:start + per, None]
        out += np.stack([(c * ll).sum(0), (c * d1).sum(0), (c * d2).sum(0)])
    return out[0], out[1], out[2]


def _place(full, rows, values):
    """``full`` with its ``rows`` replaced by ``values``."""
    full = full.copy()
    full[rows] = values
    return full


def _agq(x, n, mu, tau, n_nodes):
    """Adaptive Gauss-Hermite log L and its mu-derivatives, arrays (studies, points)."""
    t, w = _nodes("hermite", n_nodes)
    log_w = np.log(w) + t**2
    zk, eta, scale = adaptive_nodes(x, n, mu, tau, t)
    terms = log_w + x[..., None] * eta - n[..., None] * np.logaddexp(0.0, eta) - 0.5 * zk**2
    top = terms.max(axis=-1)
    wk = np.exp(terms - top[..., None])
    total = wk.sum(axis=-1)
    ll = top + np.log(total) + np.log(scale) - _LOG_SQRT_2PI
    wk /= total[..., None]
    pk = special.expit(eta)
    score = x[..., None] - n[..., None] * pk
    d1 = (wk * score).sum(-1)
    d2 = (wk * score**2).sum(-1) - d1**2 - (wk * n[..., None] * pk * (1 - pk)).sum(-1)
    return ll, d1, d2


def _step(n, mu, tau, nodes=64):
    """log int (1 - expit(theta))^n N(theta; mu, tau^2) d theta and its mu-derivatives (tau >= 1).

    As :func:`singlearm.bayes.exact._log_lik_step`: below ``lo`` the first factor is 1 within
    1e-13 (a normal CDF), above it Gauss-Legendre in theta. With r = (theta - mu)/tau,
    d phi(r)/d mu = r phi(r) / tau and d^2 phi(r)/d mu^2 = (r^2 - 1) phi(r) / tau^2.
    """
    g, gw = _nodes("legendre", nodes)
    lo = np.log(1e-13 / n)
    hi = np.maximum(40.0 / n, 1.0) + 2.0
    theta = lo[..., None] + (hi - lo)[..., None] * (g + 1) / 2           # (studies, 1, nodes)
    c = np.exp(-n[..., None] * np.logaddexp(0.0, theta)) * gw * ((hi - lo) / 2)[..., None]
    r = (theta - mu[..., None]) / tau[..., None]                          # (studies, points, nodes)
    phi = np.exp(-0.5 * r**2 - _LOG_SQRT_2PI) / tau[..., None]
    a = (lo - mu) / tau
    phi_a = np.exp(-0.5 * a**2 - _LOG_SQRT_2PI)
    i0 = special.ndtr(a) + (c * phi).sum(-1)
    i1 = -phi_a / tau + (c * phi * r).sum(-1) / tau
    i2 = -a * phi_a / tau**2 + (c * phi * (r**2 - 1)).sum(-1) / tau**2
    i0 = np.maximum(i0, 1e-300)
    return np.log(i0), i1 / i0, i2 / i0 - (i1 / i0) ** 2


def _conditional_modes(x, n, tau, prior_mu, start, n_nodes, iterations=40):
    """Mode in mu of l(mu, tau) + log p(mu) at each tau (Newton; the target is concave in mu).

    l(., tau) is log-concave in mu (the integral over z of a function log-concave in (mu, z);
    Prekopa 1973), so damped Newton converges from any start.

    Returns mode, l, dl/dmu, d^2 l/dmu^2 at the mode, for each tau.
    """
    p0 = 1.0 / prior_mu.scale**2
    mu = np.asarray(start, float).copy()
    for _ in range(iterations):
        ll, d1, d2 = loglik_derivatives(x, n, mu, tau, n_nodes)
        step = np.clip((d1 - (mu - prior_mu.loc) * p0) / (-d2 + p0), -2.0, 2.0)
        if np.abs(step).max() < 1e-8:
            # converged: keep the point the terms were computed at (its offset from the mode is
            # below 1e-8 and is carried exactly by d1 in :func:`_laplace_terms`)
            break
        mu = mu + step
    else:
        ll, d1, d2 = loglik_derivatives(x, n, mu, tau, n_nodes)
    return mu, ll, d1, d2


def _laplace_terms(mode, ll, d1, d2, prior_mu):
    """Normal approximation of mu | tau under a N(m0, s0^2) prior from l's quadratic expansion at ``mode``.

    l(mode + d) ~ l + d1 d - H d^2 / 2 (H = -d2); with the prior, mu | tau ~ N(mode + d*, 1/P),
    P = H + 1/s0^2, d* = (d1 - (mode - m0)/s0^2)/P, and log int exp(l) p(mu) dmu is the value of
    the quadratic at d* plus log sqrt(2 pi / P).
    """
    p0 = 1.0 / prior_mu.scale**2
    h = np.maximum(-d2, 1e-12)
    prec = h + p0
    shift = (d1 - (mode - prior_mu.loc) * p0) / prec
    at = ll + d1 * shift - 0.5 * h * shift**2 + prior_mu.logpdf(mode + shift)
    log_marginal = at + 0.5 * np.log(2 * np.pi / prec)
    return mode + shift, 1.0 / np.sqrt(prec), log_marginal


def laplace_bn(events, total, prior, grid=None, scan=33):
    """Integrated nested Laplace approximation of the binomial-normal posterior (large k).

    Same model as :func:`singlearm.bayes.exact.exact_bn`: ``x_i ~ Bin(n_i, expit(mu + tau z_i))``,
    ``z_i ~ N(0, 1)``, ``mu ~ N(m0, s0^2)``, tau ~ its prior. theta_i by adaptive Gauss-Hermite,
    mu | tau by a Laplace (normal) approximation, tau by quadrature over its posterior window
    (module docs; Rue, Martino & Chopin 2009, J R Stat Soc B 71:319, Gaussian strategy).

    Parameters
    ----------
    events, total : array_like of int
    prior : PriorSet or list of PriorSet
        The first set's mu prior locates the conditional modes; every set shares tau's grid.
    grid : Grid, optional
        ``n_tau`` nodes over tau's window, ``n_mu`` nodes per row (+-9 SD of mu | tau),
        ``n_nodes`` Gauss-Hermite nodes per study.
    scan : int
        Nodes of each zooming scan for tau's window.

    Returns
    -------
    GridPosterior, or a list of them (one per prior set) when ``prior`` is a list

    Notes
    -----
    R equivalent: ``INLA::inla(x ~ 1 + f(study, model = "iid"), family = "binomial", Ntrials = n,
    control.inla = list(strategy = "gaussian", int.strategy = "grid"))`` with the same priors (INLA
    puts tau's prior on the precision; here it stays on tau).
    """
    many = isinstance(prior, (list, tuple))
    sets = list(prior) if many else [prior]
    if any(isinstance(p.tau, ZeroTau) for p in sets):
        raise ValueError("laplace_bn: tau = 0 prior sets (single studies) go to the exact grid")
    grid = grid or Grid()
    x, n = np.asarray(events, dtype=float), np.asarray(total, dtype=float)
    a = sets[0].tau.scale
    ref = sets[0].mu
    pooled = np.log((x.sum() + 0.5) / (n.sum() - x.sum() + 0.5))
    cache = {}

    def at(u):
        """Conditional modes and l-terms at u nodes, warm-started from the nearest node already seen."""
        u = np.asarray(u, float)
        if cache:
            seen = np.array(sorted(cache))
            near = seen[np.abs(seen[None, :] - u[:, None]).argmin(1)]
            start = np.array([cache[s][0] for s in near])
        else:
            start = np.full(len(u), pooled)
        res = _conditional_modes(x, n, _tau_of(u, a), ref, start, grid.n_nodes)
        for j, uj in enumerate(u):
            cache[float(uj)] = tuple(r[j] for r in res)
        return res

    def log_u(u, parts, p):
        mode, ll, d1, d2 = parts
        _, _, lm = _laplace_terms(mode, ll, d1, d2, p.mu)
        tau = _tau_of(u, a)
        return lm + p.tau.logpdf(tau) + _log_jacobian(u, a)

    def window_lp(u):
        parts = at(u)
        return np.max([log_u(u, parts, p) for p in sets], axis=0)  # union of the sets' windows

    # Zoom on tau's window: scan, keep the nodes within the cut of the peak (plus one each side),
    # rescan there; stop when the window holds enough scan nodes to locate its ends.
    lo, hi = 0.0, U_MAX
    for _ in range(12):
        u = np.linspace(lo, hi, scan)
        lp = window_lp(u)
        keep = np.nonzero(lp - lp.max() > _CUT)[0]
        new_lo, new_hi = u[max(keep.min() - 1, 0)], u[min(keep.max() + 1, scan - 1)]
        if len(keep) >= scan // 3:
            lo, hi = new_lo, new_hi
            break
        lo, hi = new_lo, new_hi
    u = np.linspace(lo, hi, grid.n_tau)
    parts = at(u)
    z = np.linspace(-_ROW_SD, _ROW_SD, grid.n_mu)
    out = []
    for p in sets:  # each set has its own mu rows, so no shared population-average cache
        m, s, _ = _laplace_terms(*parts, p.mu)
        mu = m[:, None] + s[:, None] * z[None, :]
        dens = np.exp(-0.5 * z**2)[None, :] / s[:, None]
        h = (mu[:, 1] - mu[:, 0])[:, None]
        wz = np.ones(grid.n_mu)
        wz[1:-1:2], wz[2:-1:2] = 4.0, 2.0
        mass = (dens * wz[None, :] * h / 3.0).sum(1)
        out.append(_assemble(u, log_u(u, parts, p), a, p, mu=mu, mu_density=dens / mass[:, None]))
    return out if many else out[0]


def normality_gap(events, total, post, prior, n_nodes=15, z=2.5):
    """How far mu | tau, data is from the normal the Laplace step assumes, at tau's posterior median.

    The exact log conditional density of mu, ``l(mu, tau) + log p(mu)``, is evaluated at the
    normal's mean +- ``z`` SDs, where the normal puts it ``z^2 / 2`` below its value at the mean;
    the gap is the largest difference (in log density). A skewness g of mu | tau gives a gap of
    about g z^3 / 6 (Edgeworth), so a gap of 0.1 is a skewness of about 0.04. With no (or only)
    events anywhere the likelihood of mu is a half-line, mu | tau is far from normal and the gap
    is large: the stage then computes the fit on the exact grid instead (:data:`MAX_GAP`).

    Parameters
    ----------
    events, total : array_like
    post : GridPosterior
        From :func:`laplace_bn` under ``prior``.
    prior : PriorSet

    Returns
    -------
    float

    Notes
    -----
    R equivalent: none; the nearest is what ``INLA::inla(control.inla = list(strategy =
    "simplified.laplace"))`` corrects, the skewness of the Gaussian approximation.
    """
    j = int(np.argmin(np.abs(np.cumsum(post.weight) - 0.5)))
    m = 0.5 * float(post.mu[j, 0] + post.mu[j, -1])
    s = float(post.mu[j, -1] - post.mu[j, 0]) / (2 * _ROW_SD)
    pts = m + s * np.array([-z, 0.0, z])
    ll, _, _ = loglik_derivatives(events, total, pts, np.full(3, post.tau[j]), n_nodes)
    lp = ll + prior.mu.logpdf(pts)
    return float(np.max(np.abs((lp[[0, 2]] - lp[1]) + 0.5 * z**2)))

