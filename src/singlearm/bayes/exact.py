"""Exact (deterministic) posteriors of the two random-effects models, by quadrature.

Both models have two hyperparameters, so their posteriors need no sampling (as R ``bayesmeta``
does for the normal-normal model; Röver 2020, J Stat Softw 93(6)):

* normal-normal, ``y_i ~ N(mu + tau z_i, v_i)``: mu is integrated out analytically given tau,
  ``mu | tau, y ~ N(m(tau), s(tau)^2)``, and tau by 1-D quadrature (:func:`exact_nn`);
* binomial-normal, ``x_i ~ Bin(n_i, expit(mu + tau z_i))``: each study's z_i is integrated out
  by adaptive Gauss-Hermite quadrature (nodes at the conditional mode, scaled by its curvature,
  as ``lme4::glmer(nAGQ=)``), and (mu, tau) by quadrature on a grid whose mu range follows the
  conditional posterior of mu at each tau (:func:`exact_bn`).

tau is laid on a grid uniform in ``u = (2/pi) arctan(tau/a)`` (``a`` the prior scale; u is the
half-Cauchy(a) CDF), which reaches tau = 1e4 a at u = 1 - 6.4e-5: heavy (half-Cauchy) tails are
covered, the prior mass beyond (6.4e-5 for a half-Cauchy) is dropped. Integrals are Simpson's in u
and in mu; CDFs are those of the cubic Hermite interpolant of each density, and quantiles are
found by bisection on these continuous CDFs. The accuracy (<= 1e-4 on the reporting scale for the default grids) is shown by a test
that refines the grids (tests/test_bayes_exact.py).

Results are :class:`GridPosterior` objects: one mixture over tau nodes of conditional posteriors
of mu, from which :func:`singlearm.bayes.summaries.summarise_exact` reads every reported number.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import special

from .priors import ZeroTau

@lru_cache(maxsize=None)
def _nodes(kind, n):
    """Quadrature nodes and weights, computed once per size (they cost an eigendecomposition)."""
    rule = {"hermite": np.polynomial.hermite.hermgauss, "hermite_e": np.polynomial.hermite_e.hermegauss,
            "legendre": np.polynomial.legendre.leggauss}[kind]
    return rule(n)


U_MAX = 2 / np.pi * np.arctan(1e4)  # tau <= 1e4 x prior scale
_SQRT2 = np.sqrt(2.0)


@dataclass(frozen=True)
class Grid:
    """Quadrature sizes: tau nodes, mu nodes per tau node, Gauss-Hermite nodes per study."""

    n_tau: int = 65
    n_mu: int = 161
    n_nodes: int = 15

    def __post_init__(self):
        if self.n_tau % 2 == 0 or self.n_mu % 2 == 0 or min(self.n_tau, self.n_mu) < 5:
            raise ValueError(f"grid sizes must be odd and >= 5 (Simpson's rule): got {self}")

    def refined(self):
        """A grid twice as fine in each direction and with more quadrature nodes (the accuracy test)."""
        return Grid(2 * self.n_tau - 1, 2 * self.n_mu - 1, self.n_nodes + 10)


# ---------------------------------------------------------------------------------------------
# The posterior as a mixture over tau nodes
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GridPosterior:
    """p(mu, tau | data) as sum_j w_j delta(tau_j) p(mu | tau_j, data), plus tau's own marginal.

    Attributes
    ----------
    tau : ndarray (J,)
        tau nodes.
    weight : ndarray (J,)
        Posterior weights of the nodes (sum 1): Simpson weights in u times tau's density in u.
    u, u_density : ndarray (J,)
        The nodes in u = (2/pi) arctan(tau/a) and tau's normalised posterior density in u.
    scale : float
        ``a`` of the map u -> tau.
    prior_tau : prior object
        For tau's prior-dominance diagnostic.
    mu : ndarray (J, L) or None
        Binomial-normal: each node's mu grid (uniform per row).
    mu_density : ndarray (J, L) or None
        Conditional density of mu on that grid (normalised per row).
    mu_mean, mu_sd : ndarray (J,) or None
        Normal-normal: the conditional N(m(tau), s(tau)^2) of mu.
    """

    tau: np.ndarray
    weight: np.ndarray
    u: np.ndarray
    u_density: np.ndarray
    scale: float
    prior_tau: object
    mu: np.ndarray | None = None
    mu_density: np.ndarray | None = None
    mu_mean: np.ndarray | None = None
    mu_sd: np.ndarray | None = None

    @property
    def is_normal(self):
        return self.mu_mean is not None

    def _cached(self, key, make):
        if key not in self.__dict__:
            object.__setattr__(self, key, make())
        return self.__dict__[key]

    @property
    def _rows(self):
        return self._cached("_rows_cdf", lambda: _RowCdf(self.mu, self.mu_density))

    @property
    def _mu_weights(self):
        """Simpson weights of each row's mu grid times its normalised density."""
        def make():
            h = self.mu[:, 1] - self.mu[:, 0]
            w = _simpson_weights(self.mu.shape[1], 1.0)[None, :] * h[:, None] * self.mu_density
            total = w.sum(axis=1, keepdims=True)
            return w / np.where(total > 0, total, 1.0)
        return self._cached("_muw", make)

    # -- mu ----------------------------------------------------------------------------------
    def mu_cdf(self, x):
        """P(mu <= x | data), vectorised over ``x``."""
        x = np.atleast_1d(np.asarray(x, dtype=float))
        if self.is_normal:
            return self.weight @ special.ndtr((x[None, :] - self.mu_mean[:, None]) / self.mu_sd[:, None])
        return self.weight @ self._rows(x)

    def mu_bounds(self):
        if self.is_normal:
            return float((self.mu_mean - 40 * self.mu_sd).min()), float((self.mu_mean + 40 * self.mu_sd).max())
        return float(self.mu[:, 0].min()), float(self.mu[:, -1].max())

    def mu_quantile(self, p):
        return _invert(self.mu_cdf, p, *self.mu_bounds())

    def expect(self, g):
        """E[g(mu) | data] for a vectorised g."""
        if self.is_normal:
            t, w = _nodes("hermite_e", 61)
            vals = g(self.mu_mean[:, None] + self.mu_sd[:, None] * t[None, :]) @ (w / w.sum())
            return float(self.weight @ vals)
        return float(self.weight @ (g(self.mu) * self._mu_weights).sum(axis=1))

    # -- a new study's true effect, theta_new = mu + tau z --------------------------------------
    def new_cdf(self, x):
        """P(theta_new <= x | data), the posterior predictive of a new study's true effect."""
        x = np.atleast_1d(np.asarray(x, dtype=float))
        if self.is_normal:
            sd = np.sqrt(self.mu_sd**2 + self.tau**2)
            return self.weight @ special.ndtr((x[None, :] - self.mu_mean[:, None]) / sd[:, None])
        h = self.mu[:, 1] - self.mu[:, 0]
        # Where tau is small against the mu grid's step, average the smooth conditional CDF of mu
        # over z (Gauss-Hermite); elsewhere integrate Phi((x - mu)/tau) over mu's density.
        narrow = self.tau < 4 * h
        out = np.zeros((len(self.tau), len(x)))
        if narrow.any():
            t, w = _nodes("hermite_e", 32)
            w = w / w.sum()
            sub = self._cached("_narrow_rows", lambda: _RowCdf(self.mu[narrow], self.mu_density[narrow]))
            pts = x[None, :, None] - self.tau[narrow][:, None, None] * t[None, None, :]
            vals = sub(pts.reshape(narrow.sum(), -1)).reshape(pts.shape)
            out[narrow] = vals @ w
        wide = ~narrow & (self.weight > 0)
        if wide.any():
            z = (x[None, :, None] - self.mu[wide][:, None, :]) / self.tau[wide][:, None, None]
            out[wide] = np.einsum("jml,jl->jm", special.ndtr(z), self._mu_weights[wide])
        return self.weight @ out

    def new_bounds(self):
        lo, hi = self.mu_bounds()
        spread = 9 * float(np.max(self.tau[self.weight > 1e-14], initial=0.0))
        return lo - spread, hi + spread

    def new_quantile(self, p):
        return _invert(self.new_cdf, p, *self.new_bounds())

    # -- tau ---------------------------------------------------------------------------------
    def tau_quantile(self, p):
        p = np.atleast_1d(np.asarray(p, dtype=float))
        if len(self.tau) == 1:
            return np.full(p.shape, float(self.tau[0]))
        cdf_fn = _linear_density_cdf(self.u, self.u_density)
        u = _invert(cdf_fn, p, float(self.u[0]), float(self.u[-1]))
        return _tau_of(u, self.scale)

    def tau_moments(self):
        """Posterior mean and SD of tau (tau's prior truncated at the grid's end)."""
        m = float(self.weight @ self.tau)
        return m, float(np.sqrt(max(self.weight @ self.tau**2 - m * m, 0.0)))

    def tau_prior_overlap(self):
        """Overlap coefficient of tau's prior and posterior, integral of min(prior, posterior) in [0, 1].

        1 means the data did not move tau's prior at all (the posterior of tau is its prior).
        The prior keeps its own normalisation: the grid ends where the posterior's tail does (or,
        for the Laplace approximation, spans only the posterior's window), and renormalising the
        prior on it would inflate the prior and the overlap; beyond the grid the posterior has no
        mass, so min(prior, posterior) adds nothing there.
        """
        if len(self.tau) == 1 or isinstance(self.prior_tau, ZeroTau):
            return float("nan")
        w = _simpson_weights(len(self.u), self.u[1] - self.u[0])
        prior = np.exp(self.prior_tau.logpdf(self.tau) + _log_jacobian(self.u, self.scale))
        post = self.u_density / (w @ self.u_density)
        return float(w @ np.minimum(prior, post))

    # -- the population-averaged rate E_z[expit(mu + tau z)] (binomial-normal) -------------------
    def population_cdf(self, v):
        """P(E_z[expit(mu + tau z)] <= v | data): monotone in mu at each tau node."""
        v = np.atleast_1d(np.asarray(v, dtype=float))
        g = self._population()
        mu_at = np.empty((len(self.tau), len(v)))
        for j in range(len(self.tau)):
            mu_at[j] = np.interp(v, g[j], self.mu[j], left=-np.inf, right=np.inf)
        return self.weight @ self._rows(mu_at)

    def _population(self):
        # shared by the posteriors of one grid (prior sets of one fit): see exact_bn
        shared = self.__dict__.get("_pop_shared")
        if shared is None:
            shared = self._cached("_pop_shared", dict)
        if "g" not in shared:
            shared["g"] = population_average(self.mu, self.tau[:, None])
        return shared["g"]

    def population_mean(self):
        g = self._population()
        return float(self.weight @ (g * self._mu_weights).sum(axis=1))


def population_average(mu, tau):
    """E_z[expit(mu + tau z)], z ~ N(0, 1), by Gauss-Hermite (small tau) or over the logistic (large tau).

    For tau <= 1 the integrand is smooth in z; for tau > 1 it is close to a step in z, so the same
    expectation is taken as E_L[Phi((mu + L)/tau)], L standard logistic, smooth in L.
    """
    mu, tau = np.broadcast_arrays(np.asarray(mu, float), np.asarray(tau, float))
    t, w = _nodes("hermite_e", 40)
    w = w / w.sum()
    small = special.expit(mu[..., None] + tau[..., None] * t) @ w
    # L = logit(s), s uniform: Gauss-Legendre in s on (0, 1)
    s, ws = _nodes("legendre", 80)
    s, ws = (s + 1) / 2, ws / 2
    big = special.ndtr((mu[..., None] + special.logit(s)) / np.where(tau > 0, tau, 1.0)[..., None]) @ ws
    return np.where(tau <= 1.0, small, big)


# ---------------------------------------------------------------------------------------------
# Numerical helpers
# ---------------------------------------------------------------------------------------------

def _hermite_integrals(d, dd, h):
    """Cell integrals of the cubic Hermite interpolant of a density (values d, derivatives dd)."""
    return h * (0.5 * (d[..., 1:] + d[..., :-1]) + h * (dd[..., :-1] - dd[..., 1:]) / 12.0)


class _RowCdf:
    """CDFs of densities tabulated on uniform grids, one per row, exact for their cubic Hermite interpolants.

    Cubic Hermite interpolation of each density (derivatives by second-order differences)
    makes the CDF accurate to O(h^4), where the trapezoid's piecewise-linear density gives O(h^2).
    """

    def __init__(self, grid, density):
        self.grid = np.atleast_2d(grid)
        self.d = np.atleast_2d(density)
        self.h = (self.grid[:, 1] - self.grid[:, 0])[:, None]
        n = self.d.shape[1]
        self.dd = np.gradient(self.d, axis=1, edge_order=2) / self.h if n > 2 else np.zeros_like(self.d)
        cells = _hermite_integrals(self.d, self.dd, self.h)
        self.cum = np.concatenate([np.zeros((len(self.d), 1)), np.cumsum(cells, axis=1)], axis=1)
        self.total = self.cum[:, -1:]

    def __call__(self, x):
        """CDF of every row at x: x of shape (m,) (same points for every row) or (rows, m)."""
        x = np.asarray(x, dtype=float)
        if x.ndim == 1:
            x = np.broadcast_to(x[None, :], (len(self.d), len(x)))
        n = self.d.shape[1]
        pos = (x - self.grid[:, :1]) / self.h
        pos = np.nan_to_num(pos, nan=0.0, posinf=n, neginf=-1.0)
        i = np.clip(np.floor(pos).astype(np.int64), 0, n - 2)
        s = np.clip(pos - i, 0.0, 1.0)
        rows = np.arange(len(self.d))[:, None]
        h = self.h
        part = h * (self.d[rows, i] * (s - s**3 + 0.5 * s**4)
                    + h * self.dd[rows, i] * (0.5 * s**2 - 2 * s**3 / 3 + 0.25 * s**4)
                    + self.d[rows, i + 1] * (s**3 - 0.5 * s**4)
                    + h * self.dd[rows, i + 1] * (-s**3 / 3 + 0.25 * s**4))
        out = self.cum[rows, i] + part
        out = np.where(pos <= 0, 0.0, np.where(pos >= n - 1, self.total, out))
        return out / np.where(self.total > 0, self.total, 1.0)


def _grid_cdf(grid, density, x):
    """CDF of densities (one per row of a uniform ``grid``) at points ``x`` (see :class:`_RowCdf`)."""
    return _RowCdf(grid, density)(np.atleast_1d(x))


def _linear_density_cdf(x, density):
    """CDF function of a density tabulated on one uniform grid ``x``."""
    rows = _RowCdf(x[None, :], density[None, :])

    def cdf(q):
        return rows(np.atleast_1d(q))[0]

    return cdf


def _simpson_weights(n, h):
    """Composite Simpson weights for n (odd) equally spaced nodes; trapezoid if n is even or < 3."""
    if n < 3 or n % 2 == 0:
        w = np.full(n, h)
        w[[0, -1]] *= 0.5
        return w if n > 1 else np.ones(1)
    w = np.ones(n)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    return w * h / 3.0


def _invert(cdf, p, lo, hi, table=129, iterations=12):
    """x with cdf(x) = p for each p: a table of the CDF brackets each root, false position refines it.

    ``cdf`` is continuous and non-decreasing on [lo, hi] and vectorised. The Illinois variant of
    regula falsi (Dowell & Jarratt 1971, BIT 11:168) keeps the bracket and converges superlinearly;
    12 steps from a bracket 1/128 of the range wide reach rounding error for the smooth CDFs here.
    """
    p = np.atleast_1d(np.asarray(p, dtype=float))
    xs = np.linspace(float(lo), float(hi), table)
    f = np.maximum.accumulate(cdf(xs))
    k = np.clip(np.searchsorted(f, p, side="left"), 1, table - 1)
    a, b = xs[k - 1], xs[k]
    fa, fb = f[k - 1] - p, f[k] - p
    side = np.zeros(p.shape)
    for _ in range(iterations):
        span = fb - fa
        m = np.where(span > 0, (a * fb - b * fa) / np.where(span > 0, span, 1.0), 0.5 * (a + b))
        m = np.clip(m, np.minimum(a, b), np.maximum(a, b))
        fm = cdf(m) - p
        left = fm < 0  # root in [m, b]
        a_new, fa_new = np.where(left, m, a), np.where(left, fm, fa)
        b_new, fb_new = np.where(left, b, m), np.where(left, fb, fm)
        # Illinois: halve the stale end's value when the same end is kept twice
        fb_new = np.where(left & (side == 1), 0.5 * fb_new, fb_new)
        fa_new = np.where(~left & (side == -1), 0.5 * fa_new, fa_new)
        side = np.where(left, 1, -1)
        a, b, fa, fb = a_new, b_new, fa_new, fb_new
        if np.all(np.abs(fm) <= 1e-13):  # every root found to rounding: more steps cost CDF calls only
            return m
    span = fb - fa
    return np.where(span > 0, (a * fb - b * fa) / np.where(span > 0, span, 1.0), 0.5 * (a + b))


def _u_grid(n, u_hi):
    return np.linspace(0.0, u_hi, n)


def _tau_of(u, a):
    """tau = a tan(pi u / 2): u is the CDF of a half-Cauchy(a), so heavy tails are well resolved."""
    return a * np.tan(0.5 * np.pi * u)


def _log_jacobian(u, a):
    """log d tau / d u of :func:`_tau_of`."""
    return np.log(0.5 * np.pi * a) - 2 * np.log(np.cos(0.5 * np.pi * u))


# ---------------------------------------------------------------------------------------------
# Normal-normal
# ---------------------------------------------------------------------------------------------

def _nn_conditional(y, v, tau, prior_mu):
    """log p(y | tau) with mu integrated out, and mu | tau, y ~ N(m, s^2); vectorised over tau."""
    tau = np.asarray(tau, dtype=float)[:, None]
    w = 1.0 / (v[None, :] + tau**2)
    p0 = 1.0 / prior_mu.scale**2
    prec = p0 + w.sum(1)
    m = (prior_mu.loc * p0 + (w * y).sum(1)) / prec
    quad = (w * y**2).sum(1) + prior_mu.loc**2 * p0 - prec * m**2
    log_marg = 0.5 * np.log(w).sum(1) + 0.5 * np.log(p0) - 0.5 * np.log(prec) - 0.5 * quad
    return log_marg, m, 1.0 / np.sqrt(prec)


def exact_nn(yi, vi, prior, grid=None):
    """Exact posterior of the normal-normal random-effects model.

    ``y_i ~ N(theta_i, v_i)``, ``theta_i ~ N(mu, tau^2)``, ``mu ~ N(m0, s0^2)``, tau ~ its prior.
    Given tau, mu is normal with precision ``1/s0^2 + sum w_i`` (``w_i = 1/(v_i + tau^2)``), and
    p(tau | y) is proportional to p(tau) N(y | m0, diag(v + tau^2) + s0^2 J), integrated over a
    grid in u = (2/pi) arctan(tau/a) (:mod:`module docs <singlearm.bayes.exact>`).

    Parameters
    ----------
    yi, vi : array_like
        Effects on the analysis scale and their within-study variances.
    prior : PriorSet
    grid : Grid, optional

    Returns
    -------
    GridPosterior

    Notes
    -----
    R equivalent: ``bayesmeta::bayesmeta(y = yi, sigma = sqrt(vi), mu.prior.mean = m0,
    mu.prior.sd = s0, tau.prior = function(t) dhalfnormal(t, scale = a))``.
    """
    grid = grid or Grid()
    y, v = np.asarray(yi, dtype=float), np.asarray(vi, dtype=float)
    if isinstance(prior.tau, ZeroTau):
        _, m, s = _nn_conditional(y, v, np.zeros(1), prior.mu)
        one = np.ones(1)
        return GridPosterior(np.zeros(1), one, np.zeros(1), one, 1.0, prior.tau, mu_mean=m, mu_sd=s)
    a = prior.tau.scale
    n = 8 * grid.n_tau + 1  # 1-D and cheap: a finer grid than the binomial-normal's
    u_hi = _tau_range(lambda u: _nn_log_u(y, v, u, a, prior), U_MAX)
    u = _u_grid(n, u_hi)
    lp, m, s = _nn_log_u(y, v, u, a, prior, full=True)
    return _assemble(u, lp, a, prior, mu_mean=m, mu_sd=s)


def _nn_log_u(y, v, u, a, prior, full=False):
    tau = _tau_of(u, a)
    log_marg, m, s = _nn_conditional(y, v, tau, prior.mu)
    lp = log_marg + prior.tau.logpdf(tau) + _log_jacobian(u, a)
    return (lp, m, s) if full else lp


def _tau_range(log_u_density, u_max, n=201, cut=1e-13):
    """Upper end of the u grid: where tau's posterior density in u stays below ``cut`` of its peak."""
    u = np.linspace(0.0, u_max, n)
    lp = log_u_density(u)
    keep = np.nonzero(lp - lp.max() > np.log(cut))[0]
    top = min(int(keep.max()) + 2, n - 1)
    return float(u[top])


def _assemble(u, lp, a, prior, **mu_parts):
    dens = np.exp(lp - lp.max())
    w = _simpson_weights(len(u), u[1] - u[0])
    dens /= w @ dens
    weight = w * dens
    weight /= weight.sum()
    return GridPosterior(_tau_of(u, a), weight, u, dens, a, prior.tau, **mu_parts)


# ---------------------------------------------------------------------------------------------
# Binomial-normal
# ---------------------------------------------------------------------------------------------

def log_lik_bn(events, total, mu, tau, n_nodes=15):
    """log p(x | mu, tau) = sum_i log int Bin(x_i | n_i, expit(mu + tau z)) phi(z) dz, without binomial coefficients.

    Each integral by adaptive Gauss-Hermite quadrature: nodes centred at the mode of the
    integrand in z and scaled by its curvature (Liu & Pierce 1994, Biometrika 81:624), as
    ``lme4::glmer(nAGQ = n_nodes)`` does.

    Parameters
    ----------
    events, total : array_like (k,)
    mu, tau : ndarray
        Broadcastable arrays of (mu, tau) values.

    Returns
    -------
    ndarray
        The log-likelihood at every (mu, tau).

    Notes
    -----
    R equivalent: the marginal likelihood maximised by ``metafor::rma.glmm(measure = "PLO")``.
    """
    mu, tau = np.broadcast_arrays(np.asarray(mu, dtype=float), np.asarray(tau, dtype=float))
    t, w = _nodes("hermite", n_nodes)
    log_w = np.log(w) + t**2
    total_lp = np.zeros(mu.shape)
    safe_tau = np.where(tau > 0, tau, 1.0)
    wide = tau > 1.0
    for (x, n), count in _distinct_pairs(events, total):
        if x in (0.0, n) and wide.any():
            # With no (or only) events the integrand is a step in z of width 1/tau, which
            # Gauss-Hermite cannot integrate for large tau: integrate over theta instead.
            edge = np.where(wide, _log_lik_step(n, mu if x == 0 else -mu, safe_tau), 0.0)
        else:
            edge = None
        zk, eta, scale = adaptive_nodes(x, n, mu, tau, t)
        terms = log_w + x * eta - n * np.logaddexp(0.0, eta) - 0.5 * zk**2
        top = terms.max(axis=-1)
        agq = top + np.log(np.exp(terms - top[..., None]).sum(axis=-1)) + np.log(scale) - 0.5 * np.log(2 * np.pi)
        term = agq if edge is None else np.where(wide, edge, agq)
        total_lp += term if count == 1 else count * term
    return total_lp


def adaptive_nodes(x, n, mu, tau, t):
    """Adaptive Gauss-Hermite nodes of one study's integral over its z (Liu & Pierce 1994).

    The mode of ``x eta - n log(1 + e^eta) - z^2 / 2`` in z (eta = mu + tau z; concave) by Newton,
    and the nodes ``t`` scaled by the curvature there. Arrays broadcast; tau = 0 gives z = 0.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, numpy.ndarray)
        The nodes in z and in eta (last axis: nodes) and their scale.

    Notes
    -----
    R equivalent: ``lme4::glmer(..., nAGQ = length(t))``'s per-group adaptive quadrature.
    """
    safe_tau = np.where(tau > 0, tau, 1.0)
    lhat = np.log((x + 0.5) / (n - x + 0.5))
    z = np.where(tau > 0, np.clip((lhat - mu) / safe_tau, -8.0, 8.0), 0.0)
    for _ in range(60):
        p = special.expit(mu + tau * z)
        hess = tau**2 * n * p * (1 - p) + 1.0
        step = np.clip((tau * (x - n * p) - z) / hess, -1.0, 1.0)
        z = z + step
        if np.abs(step).max() < 1e-11:
            break
    p = special.expit(mu + tau * z)
    scale = np.sqrt(2.0 / (tau**2 * n * p * (1 - p) + 1.0))
    zk = z[..., None] + scale[..., None] * t
    return zk, mu[..., None] + tau[..., None] * zk, scale


def _distinct_pairs(events, total):
    """((x, n), count) per distinct study, in order of first appearance.

    Studies with the same (x, n) have the same integral, so each is computed once and counted:
    thousands of cohorts hold far fewer distinct pairs (a third at 5,000 cohorts, a few hundred
    for rare events). Order of first appearance and no multiplication for count 1 keep the sum,
    to the last bit, what it was without duplicates.
    """
    counts = {}
    for x, n in zip(np.asarray(events, float).tolist(), np.asarray(total, float).tolist()):
        counts[(x, n)] = counts.get((x, n), 0) + 1
    return list(counts.items())


def _log_lik_step(n, mu, tau, nodes=64):
    """log int (1 - expit(theta))^n N(theta; mu, tau^2) d theta, for tau >= 1 (a study without events).

    Below ``lo`` the integrand's first factor is 1 within 1e-13, so that part is Phi((lo - mu)/tau);
    above it Gauss-Legendre covers the smooth step, beyond which the factor is below e^-40.
    """
    lo, hi = np.log(1e-13 / n), max(40.0 / n, 1.0) + 2.0
    g, gw = _nodes("legendre", nodes)
    theta = lo + (hi - lo) * (g + 1) / 2
    log_f = -n * np.logaddexp(0.0, theta)
    w = np.exp(log_f) * gw * (hi - lo) / 2 / np.sqrt(2 * np.pi)
    middle = np.exp(-0.5 * ((theta - mu[..., None]) / tau[..., None]) ** 2) @ w / tau
    # where both parts underflow the point has no posterior mass; the floor keeps logs finite
    return np.log(np.maximum(special.ndtr((lo - mu) / tau) + middle, 1e-300))


def exact_bn(events, total, prior, grid=None):
    """Exact posterior of the binomial-normal random-effects model (logit link).

    ``x_i ~ Bin(n_i, expit(theta_i))``, ``theta_i = mu + tau z_i``, ``z_i ~ N(0, 1)``,
    ``mu ~ N(m0, s0^2)``, tau ~ its prior. The likelihood of (mu, tau) integrates each z_i out by
    adaptive Gauss-Hermite quadrature (:func:`log_lik_bn`); (mu, tau) are integrated on a grid of
    ``n_tau`` nodes in u = (2/pi) arctan(tau/a) and, at each node, ``n_mu`` mu nodes spanning the region
    where the conditional density of mu is above e^-36 of its peak (found by coarse scans).

    Parameters
    ----------
    events, total : array_like of int
    prior : PriorSet or list of PriorSet
        Several prior sets share one likelihood grid (the union of their regions), so a prior
        sensitivity analysis costs little more than one fit.
    grid : Grid, optional

    Returns
    -------
    GridPosterior, or a list of them (one per prior set) when ``prior`` is a list

    Notes
    -----
    R equivalent: ``brms::brm(events | trials(total) ~ 1 + (1 | study), family = binomial,
    prior = c(prior(normal(m0, s0), class = Intercept), prior(normal(0, a), class = sd)))``, computed
    by quadrature instead of sampling (as ``bayesmeta`` does for the normal-normal model).
    """
    many = isinstance(prior, (list, tuple))
    sets = list(prior) if many else [prior]
    grid = grid or Grid()
    x, n = np.asarray(events, dtype=float), np.asarray(total, dtype=float)
    zero = [isinstance(p.tau, ZeroTau) for p in sets]
    if any(zero) and not all(zero):
        out = [None] * len(sets)
        for flag in (True, False):
            idx = [i for i, z in enumerate(zero) if z == flag]
            for i, post in zip(idx, exact_bn(x, n, [sets[i] for i in idx], grid)):
                out[i] = post
        return out if many else out[0]
    zero = zero[0]
    lhat = np.log((x + 0.5) / (n - x + 0.5))
    mlo = min(min(p.mu.loc - 9 * p.mu.scale for p in sets), lhat.min() - 12)
    mhi = max(max(p.mu.loc + 9 * p.mu.scale for p in sets), lhat.max() + 12)
    coarse_mu = np.linspace(mlo, mhi, 321)
    a = sets[0].tau.scale  # one u -> tau map for every set, so they share the grid

    def log_prior(mu, u, p):
        if zero:
            return p.mu.logpdf(mu)
        tau = _tau_of(u, a)
        return p.mu.logpdf(mu) + p.tau.logpdf(tau) + _log_jacobian(u, a)

    def loglik(mu, u):
        return log_lik_bn(x, n, mu, np.zeros_like(u) if zero else _tau_of(u, a), grid.n_nodes)

    def ranges(mu, u, ll):
        """Union over prior sets of each row's mu range."""
        lo, hi = np.full(len(u), np.inf), np.full(len(u), -np.inf)
        for p in sets:
            lp = ll + log_prior(mu, u[:, None], p)
            r_lo, r_hi = _row_ranges_rows(np.broadcast_to(mu, lp.shape), lp, 36.0)
            lo, hi = np.minimum(lo, r_lo), np.maximum(hi, r_hi)
        return lo, hi

    if zero:
        u = np.zeros(1)
    else:
        cu = np.linspace(0.0, U_MAX, 49)
        ll = loglik(coarse_mu[None, :], cu[:, None])
        u_hi = 0.0
        for p in sets:
            lp = ll + log_prior(coarse_mu[None, :], cu[:, None], p)
            row = np.log(np.trapezoid(np.exp(lp - lp.max()), coarse_mu, axis=1) + 1e-300)
            keep = np.nonzero(row - row.max() > np.log(1e-13))[0]
            u_hi = max(u_hi, float(cu[min(int(keep.max()) + 2, len(cu) - 1)]))
        u = np.linspace(0.0, u_hi, grid.n_tau)
    lo, hi = ranges(coarse_mu[None, :], u, loglik(coarse_mu[None, :], u[:, None]))
    for _ in range(2):  # finer scans where the first found the mass (narrow posteriors)
        mu = lo[:, None] + (hi - lo)[:, None] * np.linspace(0.0, 1.0, 81)[None, :]
        lo, hi = ranges(mu, u, loglik(mu, u[:, None]))
    mu = lo[:, None] + (hi - lo)[:, None] * np.linspace(0.0, 1.0, grid.n_mu)[None, :]
    ll = loglik(mu, u[:, None])
    wmu = _simpson_weights(grid.n_mu, 1.0)[None, :] * (mu[:, 1] - mu[:, 0])[:, None]
    out, shared = [], {}
    for p in sets:
        lp = ll + log_prior(mu, u[:, None], p)
        dens = np.exp(lp - lp.max())
        mass = (dens * wmu).sum(axis=1)  # p(u | data) up to a constant
        cond = dens / np.where(mass > 0, mass, 1.0)[:, None]
        if zero:
            out.append(GridPosterior(np.zeros(1), np.ones(1), np.zeros(1), np.ones(1), 1.0, p.tau,
                                     mu=mu, mu_density=cond))
        else:
            out.append(_assemble(u, np.log(mass + 1e-300), a, p, mu=mu, mu_density=cond))
        object.__setattr__(out[-1], "_pop_shared", shared)
    return out if many else out[0]


def _row_ranges_rows(x, lp, drop):
    """Per row, the x range where lp is within ``drop`` of the row's peak, widened by one step."""
    ok = lp - lp.max(axis=1, keepdims=True) > -drop
    first = np.argmax(ok, axis=1)
    last = ok.shape[1] - 1 - np.argmax(ok[:, ::-1], axis=1)
    rows = np.arange(len(x))
    return x[rows, np.maximum(first - 1, 0)], x[rows, np.minimum(last + 1, x.shape[1] - 1)]
