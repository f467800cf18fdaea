"""Binomial-normal (random-intercept logistic) models with the exact binomial likelihood.

Model: :math:`x_i \\sim \\mathrm{Bin}(n_i, \\mathrm{expit}(x_i'\\beta + \\tau z_i))`,
:math:`z_i \\sim N(0, 1)`; intercept only unless moderators are given. The marginal likelihood
integrates each :math:`z_i` out by adaptive Gauss-Hermite quadrature (nodes centred on each
study's conditional mode and scaled by its curvature), as lme4's ``glmer(nAGQ=7)`` which
``metafor::rma.glmm(measure="PLO")`` calls. Maximum likelihood by a damped Newton iteration on
:math:`(\\beta, \\tau)`: each study's log-likelihood depends on :math:`\\beta` only through its
linear predictor, so the derivatives come from central differences of k two-argument functions
and the chain rule, whatever the number of moderators. The log-likelihood is even in
:math:`\\tau`, so :math:`|\\tau|` is reported. Also here: the common-effect logistic regression,
the likelihood-ratio and Wald tests of heterogeneity against the saturated model, and the
population-averaged (marginal) proportion.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special

from . import fit
from .effects import proportion_effects
from .metareg import as_design, coefficient_arrays, coefficient_table, wald_qm

GLMM_METHODS = ("ML", "EE")


@dataclass(frozen=True)
class GlmmResult:
    """A binomial-normal (``ML``) or common-effect logistic (``EE``) fit, logit scale.

    Scalars describe the intercept (the pooled logit when there are no moderators);
    ``coefficients`` has every term. ``estimable`` is False, with NaN values and a ``note``,
    where metafor refuses to fit (no events or no non-events anywhere; more parameters than
    studies). ``converged`` is False, with a ``note``, when the Newton iteration stopped at
    ``max_iter`` or with a gradient above the tolerance: such a fit must not be reported as is.
    ``grad_norm`` is the largest absolute score at the returned point. ``vcov`` is the
    covariance of the coefficients, ``vcov_tau`` that of :math:`(\\beta, \\tau)` (None when
    :math:`\\hat\\tau = 0`, on the boundary).

    Heterogeneity: ``q_lrt`` is :math:`-2(\\ell_{EE} - \\ell_{sat})` and ``q_wald`` the Wald test
    of the saturated model's study effects (metafor's ``QE.LRT`` and ``QE.Wld``), both on
    ``q_df`` = k - p df; ``q_wald`` is NaN when a study has 0 events or 0 non-events (its
    saturated logit is infinite). ``i2``/``h2`` use the typical within-study variance of the
    logit (PLO) sampling variances, as metafor does. ``qm`` tests the moderators.
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
    df: float
    tau2: float
    i2: float
    h2: float
    q_wald: float
    q_wald_p: float
    q_lrt: float
    q_lrt_p: float
    q_df: int
    qm: float
    qm_df: int
    qm_p: float
    pi_lb: float
    pi_ub: float
    pi_df: float
    prediction_df: str
    loglik: float
    iterations: int
    grad_norm: float
    converged: bool
    estimable: bool
    level: float
    note: str = ""
    beta: np.ndarray = field(default=None, repr=False)
    se_beta: np.ndarray = field(default=None, repr=False)
    terms: tuple = field(default=(), repr=False)
    vcov: np.ndarray = field(default=None, repr=False)
    vcov_tau: np.ndarray = field(default=None, repr=False)
    events: np.ndarray = field(default=None, repr=False)
    total: np.ndarray = field(default=None, repr=False)

    @property
    def coefficients(self):
        """One row per term: ``term, estimate, se, stat, pval, ci_lb, ci_ub`` (empty if not estimable)."""
        if self.beta is None:
            return coefficient_table([], np.empty(0), np.empty(0), self.df, self.level)
        return coefficient_table(self.terms, self.beta, self.se_beta, self.df, self.level)

    def summary_frame(self):
        """One-row DataFrame of the scalar results."""
        return pd.DataFrame([{f: getattr(self, f) for f in self.__dataclass_fields__
                              if self.__dataclass_fields__[f].repr}])


class _Likelihood:
    """Per-study marginal log-likelihoods by adaptive Gauss-Hermite quadrature.

    ``per_study(eta, tau)`` takes each study's fixed linear predictor ``eta``; conditional modes
    are kept between calls as warm starts.
    """

    def __init__(self, events, total, n_nodes):
        self.x = np.asarray(events, dtype=float)
        self.n = np.asarray(total, dtype=float)
        nodes, weights = np.polynomial.hermite.hermgauss(n_nodes)
        self.t = nodes[:, None]
        self.log_w = (np.log(weights) + nodes**2)[:, None]
        self.const = (special.gammaln(self.n + 1) - special.gammaln(self.x + 1)
                      - special.gammaln(self.n - self.x + 1))
        self.mode = np.zeros_like(self.x)

    def _log_f(self, z, eta, tau):
        lin = eta + tau * z
        # x*log(expit(lin)) + (n-x)*log(1-expit(lin)), written to stay finite for large |lin|
        return self.x * lin - self.n * np.logaddexp(0, lin) - 0.5 * z**2

    def per_study(self, eta, tau, constant=True):
        z = np.array(self.mode, dtype=float, copy=True)
        for _ in range(50):
            p = special.expit(eta + tau * z)
            step = (tau * (self.x - self.n * p) - z) / (tau**2 * self.n * p * (1 - p) + 1)
            z += step
            if np.abs(step).max() < 1e-12:
                break
        self.mode = z
        p = special.expit(eta + tau * z)
        scale = np.sqrt(2.0 / (tau**2 * self.n * p * (1 - p) + 1))
        nodes = z + scale * self.t
        terms = self.log_w + self._log_f(nodes, eta, tau)
        top = terms.max(axis=0)
        out = top + np.log(np.exp(terms - top).sum(axis=0)) + np.log(scale) - 0.5 * np.log(np.pi)
        return out + self.const if constant else out

    def __call__(self, mu, tau):
        return float(self.per_study(np.full_like(self.x, mu), tau).sum())


def _binomial_loglik(x, n, p):
    with np.errstate(divide="ignore", invalid="ignore"):
        ll = special.xlogy(x, p) + special.xlog1py(n - x, -p)
    return float((ll + special.gammaln(n + 1) - special.gammaln(x + 1) - special.gammaln(n - x + 1)).sum())


def _logistic_ee(x, n, design, max_iter=100):
    """Common-effect logistic regression by iteratively reweighted least squares: (beta, cov, ll).

    None when the maximum is not finite (separation: e.g. a moderator level with no events or
    only events), which shows as coefficients running off beyond |logit| = 30 (p < 1e-13).
    """
    p_obs = (x + 0.5) / (n + 1)
    beta = np.linalg.lstsq(design, special.logit(p_obs), rcond=None)[0]
    for _ in range(max_iter):
        prob = special.expit(design @ beta)
        w = n * prob * (1 - prob)
        info = (design.T * w) @ design
        try:
            step = np.linalg.solve(info, design.T @ (x - n * prob))
        except np.linalg.LinAlgError:
            return None
        beta = beta + step
        if np.max(np.abs(beta)) > 30:
            return None
        if np.max(np.abs(step)) < 1e-12:
            break
    else:
        return None
    prob = special.expit(design @ beta)
    info = (design.T * (n * prob * (1 - prob))) @ design
    return beta, np.linalg.inv(info), _binomial_loglik(x, n, prob)


def _not_estimable(method, test, k, level, prediction_df, why, x, n):
    nan = float("nan")
    return GlmmResult(method, test, k, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, k - 1,
                      nan, 0, nan, nan, nan, nan, prediction_df, nan, 0, nan, False, False, level, why, events=x,
                      total=n)


def glmm(events, total, mods=None, method="ML", test="z", level=0.95, prediction_df="k-2", n_nodes=7, tol=1e-10,
         max_iter=100, grad_tol=1e-4):
    """Fit the binomial-normal model (``ML``) or the common-effect logistic model (``EE``).

    Parameters
    ----------
    events, total : array_like of int
    mods : Design or array_like, optional
        Moderators (:func:`singlearm.metareg.design`); None for intercept only.
    method : {"ML", "EE"}
        Random-intercept model by maximum likelihood, or common-effect (tau^2 = 0) logistic
        regression.
    test : {"z", "t"}
        Wald z, or t on k - p df (QM as F), as ``rma.glmm(test="t")``.
    level : float
    prediction_df : {"k-2", "k-1", "z"}
        Prediction interval of the intercept-only ML model, see
        :func:`singlearm.fit.prediction_interval` (NaN with moderators or for EE).
    n_nodes : int
        Gauss-Hermite nodes per study (7 as lme4's ``nAGQ=7``, metafor's default).
    tol, max_iter, grad_tol : float, int, float
        Newton stops when no parameter moves by more than ``tol``; the fit counts as converged
        only if, in addition, the largest absolute score is below ``grad_tol``.

    Returns
    -------
    GlmmResult
        SEs from the inverse observed information of :math:`(\\beta, \\tau)` (of
        :math:`\\beta` alone when :math:`\\hat\\tau = 0`), Wald CIs.

    Notes
    -----
    R equivalent: ``metafor::rma.glmm(measure="PLO", xi=events, ni=total, mods=~..., method="ML",
    test=test)`` (``method="EE"`` for the common-effect model); prediction interval as
    ``predict(res, pi.type="riley")`` (k-2) or ``"t"`` (k-1).
    """
    x = np.asarray(events, dtype=float)
    n = np.asarray(total, dtype=float)
    k = len(x)
    fit.check_choice("method", method, GLMM_METHODS)
    fit.check_choice("test", test, ("z", "t"))
    fit.check_choice("prediction_df", prediction_df, fit.PREDICTION_DF)
    if k < 2:
        raise ValueError("the GLMM needs at least two studies")
    d = as_design(np.ones((k, 1)) if mods is None else mods)
    xd = d.x
    p = xd.shape[1]
    if x.sum() == 0 or x.sum() == n.sum():
        return _not_estimable(method, test, k, level, prediction_df,
                              f"not estimable: {'no events' if x.sum() == 0 else 'only events'} in any study, so the "
                              "likelihood has no finite maximum (metafor: 'Cannot fit ML model')", x, n)
    parms = p + (method == "ML")
    if parms > k:
        return _not_estimable(method, test, k, level, prediction_df,
                              f"not estimable: {parms} parameters for k = {k} studies (metafor: 'Number of parameters "
                              "to be estimated is larger than the number of observations')", x, n)

    ee = _logistic_ee(x, n, xd)
    if ee is None:
        return _not_estimable(method, test, k, level, prediction_df,
                              "not estimable: the likelihood has no finite maximum (separation, e.g. a moderator "
                              "level with no events or only events); metafor reports arbitrary large coefficients "
                              "here", x, n)
    beta_ee, cov_ee, ll_ee = ee
    ll_sat = _binomial_loglik(x, n, x / n)
    q_df = k - p
    q_lrt = max(0.0, -2 * (ll_ee - ll_sat))
    q_lrt_p = float(special.chdtrc(q_df, q_lrt)) if q_df > 0 else 1.0
    inner = (x > 0) & (x < n)
    if inner.all() and q_df > 0:
        # Wald test of the saturated logits against the model: the residual Q of a weighted
        # least-squares fit of the observed logits (variance 1/x + 1/(n-x)) on the design
        lg = np.log(x / (n - x))
        wq = x * (n - x) / n
        xtw = xd.T * wq
        resid = lg - xd @ np.linalg.solve(xtw @ xd, xtw @ lg)
        q_wald = max(0.0, float((wq * resid**2).sum()))
        q_wald_p = float(special.chdtrc(q_df, q_wald))
    elif q_df == 0:
        q_wald, q_wald_p = 0.0, 1.0     # as metafor: no residual df, nothing to test
    else:
        q_wald = q_wald_p = float("nan")

    iterations, grad_norm, converged, note = 0, 0.0, True, ""
    cov_all = None
    if method == "EE":
        beta, vcov, loglik, tau2 = beta_ee, cov_ee, ll_ee, 0.0
    else:
        like = _Likelihood(x, n, n_nodes)
        theta = np.append(beta_ee, 0.5)
        h = 1e-4
        for iterations in range(1, max_iter + 1):
            f0, grad, hess = _derivatives(like, xd, theta, h)
            try:
                negative_definite = bool(np.all(np.linalg.eigvalsh(hess) < 0))
            except np.linalg.LinAlgError:   # non-finite values: let the gradient step and the checks below act
                negative_definite = False
            direction = -np.linalg.solve(hess, grad) if negative_definite else grad / max(1.0, np.abs(grad).max())
            step = 1.0
            while _loglik(like, xd, theta + step * direction) < f0 - 1e-12 and step > 1e-8:
                step /= 2
            new = theta + step * direction
            new[-1] = abs(new[-1])
            moved = np.max(np.abs(new - theta))
            theta = new
            if moved < tol:
                break
        # The SEs come from the final Hessian: a wider step with Richardson extrapolation keeps
        # both the O(h^2) truncation error (1e-6 with few events at h = 1e-4) and rounding small
        loglik, grad, hess_half = _derivatives(like, xd, theta, 5e-4)
        hess = (4 * hess_half - _derivatives(like, xd, theta, 1e-3)[2]) / 3
        grad_norm = float(np.abs(grad).max())
        if moved >= tol or grad_norm > grad_tol:
            converged = False
            note = (f"did not converge: after {iterations} Newton iterations the largest step was {moved:.3g} and the "
                    f"largest score {grad_norm:.3g}; do not report this fit")
        tau = float(theta[-1])
        try:
            if tau > 1e-6:
                cov_all = np.linalg.inv(-hess)
                vcov = cov_all[:p, :p]
            else:   # on the boundary only beta is free
                vcov = np.linalg.inv(-hess[:p, :p])
        except np.linalg.LinAlgError:
            return _not_estimable(method, test, k, level, prediction_df,
                                  "not estimable: the information matrix at the maximum is singular", x, n)
        beta, tau2 = theta[:p], tau**2
    df = float(k - p) if test == "t" else np.inf
    se_all = np.sqrt(np.diag(vcov))
    stat, pval, lb, ub = coefficient_arrays(beta, se_all, df, level)
    qm, qm_df, qm_p = wald_qm(beta, vcov, df)
    _, vi = proportion_effects(x, n, "PLO")
    w = 1 / vi
    xtw = xd.T * w
    tr_p = float(w.sum() - np.trace(np.linalg.solve(xtw @ xd, xtw * w @ xd)))
    s2 = (k - p) / tr_p
    pi_lb = pi_ub = pi_df = float("nan")
    if method == "ML" and p == 1:
        pi_lb, pi_ub, pi_df = fit.prediction_interval(float(beta[0]), float(se_all[0]), tau2, k, prediction_df, level)
    return GlmmResult(method, test, k, float(beta[0]), float(se_all[0]), float(lb[0]), float(ub[0]),
                      float(stat[0]), float(pval[0]), df, float(tau2), float(100 * tau2 / (s2 + tau2)),
                      float(tau2 / s2 + 1), q_wald, q_wald_p, q_lrt, q_lrt_p, q_df, qm, qm_df, qm_p, pi_lb, pi_ub,
                      pi_df, prediction_df, float(loglik), iterations, grad_norm, converged, True, level, note, beta,
                      se_all, d.names, vcov, cov_all, x, n)


def _loglik(like, xd, theta):
    return float(like.per_study(xd @ theta[:-1], theta[-1]).sum())


def _derivatives(like, xd, theta, h):
    """Log-likelihood, score and Hessian in :math:`(\\beta, \\tau)` by central differences.

    Each study's log-likelihood :math:`\\ell_i(\\eta_i, \\tau)` depends on :math:`\\beta` through
    :math:`\\eta_i = x_i'\\beta` only, so seven evaluations of the k per-study values give every
    derivative by the chain rule, whatever the number of coefficients.
    """
    eta, tau = xd @ theta[:-1], theta[-1]

    def f(e, t):
        # without the binomial coefficients: they cancel in every difference but add rounding error
        return like.per_study(e, t, constant=False)

    f0 = f(eta, tau)
    fe_p, fe_m = f(eta + h, tau), f(eta - h, tau)
    ft_p, ft_m = f(eta, tau + h), f(eta, tau - h)
    fpp, fmm = f(eta + h, tau + h), f(eta - h, tau - h)
    g_eta = (fe_p - fe_m) / (2 * h)
    g_tau = (ft_p - ft_m) / (2 * h)
    h_ee = (fe_p - 2 * f0 + fe_m) / h**2
    h_tt = (ft_p - 2 * f0 + ft_m) / h**2
    h_et = (fpp - fe_p - ft_p + 2 * f0 - fe_m - ft_m + fmm) / (2 * h * h)
    p = xd.shape[1]
    grad = np.empty(p + 1)
    grad[:p] = xd.T @ g_eta
    grad[p] = g_tau.sum()
    hess = np.empty((p + 1, p + 1))
    hess[:p, :p] = (xd.T * h_ee) @ xd
    hess[:p, p] = hess[p, :p] = xd.T @ h_et
    hess[p, p] = h_tt.sum()
    return float(f0.sum() + like.const.sum()), grad, hess


def glmm_ml(events, total, n_nodes=7, level=0.95, tol=1e-10, max_iter=100, **kwargs):
    """Intercept-only binomial-normal model by ML: :func:`glmm` with ``method="ML"``.

    R equivalent: ``metafor::rma.glmm(measure="PLO", xi=events, ni=total, method="ML")``.
    """
    return glmm(events, total, None, "ML", level=level, n_nodes=n_nodes, tol=tol, max_iter=max_iter, **kwargs)


# ---------------------------------------------------------------------------------------------
# population-averaged proportion
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MarginalResult:
    """Population-averaged proportion :math:`E[\\mathrm{expit}(\\mu + \\tau z)]` with its CI.

    ``estimate`` and ``ci_lb, ci_ub`` are proportions (0-1); ``logit_se`` is the delta-method SE
    of the logit of the estimate; ``conditional`` is :math:`\\mathrm{expit}(\\hat\\mu)`, the
    median study's proportion that the usual GLMM row reports.
    """

    estimate: float
    ci_lb: float
    ci_ub: float
    logit_se: float
    conditional: float
    tau2: float
    level: float
    ci_method: str = "delta method on the logit scale"
    note: str = ""

    def summary_frame(self):
        """One-row DataFrame of the results."""
        return pd.DataFrame([{f: getattr(self, f) for f in self.__dataclass_fields__}])


_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite.hermgauss(80)


def _marginal(mu, tau):
    """E[expit(mu + tau z)] and its derivatives in (mu, tau), z ~ N(0, 1), by 80-node Gauss-Hermite."""
    z = np.sqrt(2) * _GH_NODES
    w = _GH_WEIGHTS / np.sqrt(np.pi)
    p = special.expit(mu + tau * z)
    dp = p * (1 - p)
    return float(w @ p), float(w @ dp), float(w @ (dp * z))


def marginal_proportion(result, level=None):
    """Population-averaged (marginal) pooled proportion of an intercept-only binomial-normal fit.

    :math:`\\bar p = \\int \\mathrm{expit}(\\hat\\mu + \\hat\\tau z)\\,\\phi(z)\\,dz` (Lin & Chu 2020,
    Epidemiology 31:713), by Gauss-Hermite quadrature. CI by the delta method on the logit scale:
    :math:`\\mathrm{SE}(\\mathrm{logit}\\,\\bar p)^2 = g'Vg` with :math:`g` the gradient of
    :math:`\\mathrm{logit}\\,\\bar p` in :math:`(\\mu, \\tau)` and :math:`V` their inverse observed
    information (of :math:`\\mu` alone when :math:`\\hat\\tau = 0`), back-transformed with expit
    so the limits stay in (0, 1).

    Parameters
    ----------
    result : GlmmResult
        From :func:`glmm` with ``method="ML"`` and no moderators.
    level : float, optional
        Defaults to the fit's level.

    Returns
    -------
    MarginalResult
        NaN with a ``note`` when the fit is not estimable.

    Notes
    -----
    R equivalent: ``altmeta::maprop.glmm(..., pop.avg=TRUE)`` (point estimate); reference values
    in tests/reference/make_reference_engine.R use ``integrate()`` at metafor's estimates and
    lme4's deviance Hessian (``glmer(..., devFunOnly=TRUE)``).
    """
    level = result.level if level is None else level
    nan = float("nan")
    if result.method != "ML" or len(result.terms) > 1:
        raise ValueError("the marginal proportion is defined here for the intercept-only ML model")
    if not result.estimable:
        return MarginalResult(nan, nan, nan, nan, nan, nan, level, note=result.note)
    mu, tau = result.b, float(np.sqrt(result.tau2))
    pm, d_mu, d_tau = _marginal(mu, tau)
    scale = 1 / (pm * (1 - pm))
    if result.vcov_tau is not None:
        g = np.array([d_mu, d_tau]) * scale
        var = float(g @ result.vcov_tau @ g)
    else:
        var = (d_mu * scale) ** 2 * result.se**2
    se = float(np.sqrt(var))
    crit = fit._z(level)
    centre = special.logit(pm)
    return MarginalResult(pm, float(special.expit(centre - crit * se)), float(special.expit(centre + crit * se)), se,
                          float(special.expit(mu)), result.tau2, level, note=result.note)
