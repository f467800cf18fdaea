"""Per-fit PyMC sampling of the Bayesian stage, each fit certified against its exact posterior.

Every fit (outcome x subgroup, k >= 2) is sampled on its own, with its own NUTS adaptation
(step size and mass matrix), from a seed derived from the fit's name, so no fit's difficulty
touches another and a fit's draws do not depend on which other fits exist. Compile once, sample
many: one model per (model, tau family, padded size) is compiled and reused for every fit that
fits it, its data and priors swapped in through ``pm.Data`` containers; studies beyond a fit's
k are padding whose likelihood is masked out (their z's are independent N(0, 1) draws that
touch nothing).

Certification (:func:`certify`): the pooled median and the interval limits of the draws must
agree with the exact posterior (:mod:`singlearm.bayes.exact`) within 3 Monte Carlo standard
errors (ArviZ ``mcse(method="quantile")``). A fit that fails the convergence gate or the
certification is sampled once more (seed + 1, more tuning and draws); if it fails again it is
reported from the exact posterior with a flag. Nothing is withheld and the run never stops.

Back ends (``bayes.sampler.backend``): ``blackjax``, the default, samples the PyMC model's
log density through PyTensor's JAX linker with BlackJAX's NUTS, one XLA compilation per model
shape reused by every fit; ``pymc`` is PyMC's own NUTS on PyTensor's C back end (no JAX, about
ten times slower per fit). Measured figures of both, and of nutpie, are in benchmarks/README.md.
"""

from __future__ import annotations

import os
import zlib
from concurrent.futures import as_completed
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from .priors import BN, HalfCauchy, HalfNormal

# Padded sizes: a fit of k studies is sampled at the first size >= k, a function of its own k
# only (so its draws do not depend on the other fits); few sizes, few compilations.
BUCKETS = (16, 64, 256)
MODEL_NAME = {"BN": "binomial-normal", "NN": "normal-normal"}
STORED = ["mu", "tau", "theta", "theta_new"]
DIAGNOSTIC_COLUMNS = [
    "outcome", "subgroup", "model", "prior", "backend", "k", "chains", "draws", "rhat_max", "ess_bulk_min", "ess_tail_min",
    "divergences", "attempts", "passed", "estimate", "exact_estimate", "mcse_estimate", "ci_low", "exact_ci_low",
    "mcse_ci_low", "ci_high", "exact_ci_high", "mcse_ci_high", "certified", "reported_from", "note"]


def _quiet_pytensor():
    """No warning a user cannot act on: PyTensor's missing BLAS (the models here use no matrix
    product) and ArviZ's notice of its coming 1.0 refactor (our lock pins 0.23)."""
    import warnings

    warnings.filterwarnings("ignore", message=r"\s*ArviZ is undergoing a major refactor", category=FutureWarning)
    flags = os.environ.get("PYTENSOR_FLAGS", "")
    if "blas__ldflags" not in flags:
        os.environ["PYTENSOR_FLAGS"] = ",".join(f for f in (flags, "blas__ldflags=") if f)


def fit_seed(seed, outcome, subgroup):
    """A fit's own seed: the config seed and a stable hash of its name (not its position)."""
    return (int(seed) + zlib.crc32(f"{outcome}|{subgroup}".encode())) % (2**31 - 1)


def bucket(k):
    """The padded size a fit of k studies is sampled at."""
    for b in BUCKETS:
        if k <= b:
            return b
    return int(2 ** np.ceil(np.log2(k)))


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------

def build_model(model, tau_family, size):
    """The PyMC model of one fit, padded to ``size`` studies; data and priors are ``pm.Data``.

    Binomial-normal (proportions, logit scale)::

        events_i ~ Binomial(total_i, expit(theta_i)),  theta_i = mu + tau z_i,  z_i ~ N(0, 1)

    sampled in ``c = mu + tau mean(z)`` (the data pin down the fits' average study logit; with
    few studies the (mu, tau, z) posterior is otherwise a thin ridge that made NUTS diverge),
    written as ``c = start + c_raw`` so the initial point is the crude pooled logit.
    Normal-normal (medians, survival rates on log(-log S)): ``y_i ~ N(mu, sqrt(v_i + tau^2))``
    with mu sampled standardised by its exact conditional given tau (the decomposition bayesmeta
    integrates), study effects drawn from their exact conditionals. Both non-centred
    (Betancourt & Girolami 2015). ``theta_new = mu + tau z_new`` is a new study's true value.

    Parameters
    ----------
    model : {"BN", "NN"}
    tau_family : {"halfnormal", "halfcauchy"}
    size : int
        Padded number of studies.

    Returns
    -------
    pymc.Model

    Notes
    -----
    R equivalent: ``brms::brm(events | trials(total) ~ 1 + (1 | study), family = binomial,
    prior = c(prior(normal(0, 2.5), class = Intercept), prior(normal(0, 1), class = sd)))``;
    normal-normal ``bayesmeta::bayesmeta(y, sigma, mu.prior = c(0, 100), tau.prior = ...)``.
    """
    _quiet_pytensor()
    import pymc as pm
    import pytensor.tensor as pt

    ones, zeros = np.ones(size), np.zeros(size)
    with pm.Model(check_bounds=False) as m:
        mask = pm.Data("mask", ones)
        mu_loc, mu_sd = pm.Data("mu_loc", 0.0), pm.Data("mu_sd", 1.0)
        tau_scale = pm.Data("tau_scale", 1.0)
        tau = (pm.HalfNormal("tau", sigma=tau_scale) if tau_family == "halfnormal"
               else pm.HalfCauchy("tau", beta=tau_scale))
        z = pm.Normal("z", 0.0, 1.0, shape=size)
        z_new = pm.Normal("z_new", 0.0, 1.0)
        k = pt.sum(mask)
        if model == BN:
            events, total = pm.Data("events", zeros), pm.Data("total", ones)
            log_choose, start = pm.Data("log_choose", zeros), pm.Data("start", 0.0)
            c_raw = pm.Flat("c_raw")
            mu = start + c_raw - tau * pt.sum(mask * z) / k
            theta = mu + tau * z
            pm.Potential("loglik", pt.sum(mask * (log_choose + events * theta - total * pt.softplus(theta))))
            pm.Potential("mu_prior", pm.logp(pm.Normal.dist(mu_loc, mu_sd), mu))
        else:
            y, v = pm.Data("y", zeros), pm.Data("v", ones)
            inv_var = mask / (v + tau**2)
            prec0 = 1.0 / mu_sd**2
            var_mu = 1.0 / (prec0 + pt.sum(inv_var))
            mean_mu = var_mu * (mu_loc * prec0 + pt.sum(inv_var * y))
            u = pm.Flat("u")
            mu = mean_mu + pt.sqrt(var_mu) * u
            pm.Potential("loglik", pt.sum(mask * pm.logp(pm.Normal.dist(mu, pt.sqrt(v + tau**2)), y)))
            # mu's prior and the Jacobian |d mu / d u| = sqrt(var_mu) of the change of variable
            pm.Potential("mu_prior", pm.logp(pm.Normal.dist(mu_loc, mu_sd), mu) + 0.5 * pt.log(var_mu))
            w = tau**2 / (tau**2 + v)
            theta = w * y + (1 - w) * mu + pt.sqrt(v * w) * z
        pm.Deterministic("mu", mu)
        pm.Deterministic("theta", theta)
        pm.Deterministic("theta_new", mu + tau * z_new)
    return m


def fit_data(fit, prior, size):
    """The ``pm.Data`` values of one fit and its prior, padded to ``size``."""
    k = fit.k
    mask = np.r_[np.ones(k), np.zeros(size - k)]
    out = {"mask": mask, "mu_loc": float(prior.mu.loc), "mu_sd": float(prior.mu.scale),
           "tau_scale": float(prior.tau.scale)}
    if fit.model == BN:
        e, n = np.r_[fit.events, np.zeros(size - k)], np.r_[fit.total, np.ones(size - k)]
        out.update(events=e, total=n, log_choose=special.gammaln(n + 1) - special.gammaln(e + 1)
                   - special.gammaln(n - e + 1), start=fit.centre())
    else:
        out.update(y=np.r_[fit.yi, np.zeros(size - k)], v=np.r_[fit.vi, np.ones(size - k)])
    return out


def tau_family(prior):
    if isinstance(prior.tau, HalfNormal):
        return "halfnormal"
    if isinstance(prior.tau, HalfCauchy):
        return "halfcauchy"
    raise ValueError(f"tau prior {prior.tau!r}: PyMC samples half-normal or half-Cauchy priors only")


# ---------------------------------------------------------------------------------------------
# Back ends: compile once, sample many
# ---------------------------------------------------------------------------------------------

def _jax_sample_function(model, tune, draws):
    """One jitted JAX function sampling one chain of a PyMC model: window adaptation, then NUTS.

    The model's log density (its ``pm.Data`` containers turned into function inputs, so one
    compiled function serves every fit of the same shape) comes from PyTensor's JAX linker, the
    bridge ``pymc.sampling.jax`` uses; the sampler is BlackJAX's NUTS (Hoffman & Gelman 2014)
    after Stan's windowed adaptation of step size and diagonal mass matrix, run per chain. Each
    chain starts at the model's initial point jittered by U(-1, 1), as PyMC's ``jitter+adapt_diag``.
    """
    import blackjax
    import jax
    import jax.numpy as jnp
    import pytensor.tensor as pt
    from pytensor.compile import mode
    from pytensor.graph import FunctionGraph
    from pytensor.graph.replace import graph_replace
    from pytensor.link.jax.dispatch import jax_funcify

    shared = {v.name: v for v in model.data_vars}
    inputs = {n: pt.tensor(name=n, dtype=v.dtype, shape=v.type.shape) for n, v in shared.items()}
    outputs = model.replace_rvs_by_values([model.logp()] + [model[n] for n in STORED])
    outputs = graph_replace(outputs, {shared[n]: inputs[n] for n in shared}, strict=False)
    graph = FunctionGraph(list(model.value_vars) + list(inputs.values()), outputs, clone=True)
    mode.JAX.optimizer.rewrite(graph)
    fn = jax_funcify(graph)
    names, data_names = [v.name for v in model.value_vars], list(inputs)
    start = model.initial_point()

    def one_chain(key, data, target_accept):
        def evaluate(x):
            return fn(*[x[n] for n in names], *[data[n] for n in data_names])

        def logdensity(x):
            return evaluate(x)[0]

        k_start, k_tune, k_draw = jax.random.split(key, 3)
        x0 = {n: jnp.asarray(start[n]) + jax.random.uniform(jax.random.fold_in(k_start, i), np.shape(start[n]),
                                                            minval=-1.0, maxval=1.0)
              for i, n in enumerate(names)}
        warmup = blackjax.window_adaptation(blackjax.nuts, logdensity, target_acceptance_rate=target_accept)
        (state, params), _ = warmup.run(k_tune, x0, num_steps=tune)
        kernel = blackjax.nuts(logdensity, **params).step

        def step(s, k):
            s, info = kernel(k, s)
            return s, (s.position, info.is_divergent)

        _, (positions, diverging) = jax.lax.scan(step, state, jax.random.split(k_draw, draws))
        return jax.vmap(evaluate)(positions)[1:], diverging

    # one chain per call: vmapping the chains compiled twice as long and sampled no faster
    return jax.jit(one_chain)


class JaxBackend:
    """BlackJAX NUTS on the PyMC model's JAX log density: compiled once per model shape, reused per fit.

    One compiled function samples one chain, whatever the number of chains asked (e.g. a
    retry's doubled chains); chain c of a fit always draws from ``fold_in(key(seed), c)``, so a
    fit's draws depend on its seed and data only, not on the thread or the order it runs in. XLA's compiled code is kept in a per-user cache
    (``$XDG_CACHE_HOME/singlearm/jax``): a rerun skips the compilation and draws the same numbers.
    Thread-safe once :meth:`prepare` has compiled every shape: fits can be sampled in parallel.
    """

    name = "blackjax"
    parallel = True

    def __init__(self):
        import jax

        jax.config.update("jax_enable_x64", True)
        cache = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "singlearm", "jax")
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        self._compiled = {}

    def _keys(self, seed, n):
        import jax
        import jax.numpy as jnp

        root = jax.random.key(seed)
        return jnp.stack([jax.random.fold_in(root, c) for c in range(n)])

    def prepare(self, shapes, pool=None):
        """Compile the sampler of every ``(key, tune, draws)`` in ``shapes``.

        PyTensor graphs and JAX tracing are built here, one after the other (PyTensor is not
        thread-safe); XLA's compilations, which release the GIL, run on ``pool`` meanwhile.
        """
        import warnings

        import jax.numpy as jnp

        pending = {}
        for key, tune, draws in shapes:
            if (key, tune, draws) in self._compiled or (key, tune, draws) in pending:
                continue
            model = build_model(*key)
            with warnings.catch_warnings():
                # PyTensor drops its parameter checks under JAX; the models here never need them
                warnings.filterwarnings("ignore", message="Skipping .* Op")
                f = _jax_sample_function(model, tune, draws)
            example = {d.name: jnp.asarray(np.asarray(d.get_value()), dtype=jnp.float64) for d in model.data_vars}
            lowered = f.lower(self._keys(0, 1)[0], example, jnp.asarray(0.9, dtype=jnp.float64))
            pending[(key, tune, draws)] = pool.submit(lowered.compile) if pool else lowered.compile()
        for shape, compiled in pending.items():
            self._compiled[shape] = compiled.result() if pool else compiled

    def sample(self, key, data, *, seed, chains, draws, tune, target_accept):
        import jax.numpy as jnp
        import xarray as xr

        if (key, tune, draws) not in self._compiled:
            self.prepare([(key, tune, draws)])
        f = self._compiled[(key, tune, draws)]
        data = {n: jnp.asarray(v, dtype=jnp.float64) for n, v in data.items()}
        target = jnp.asarray(target_accept, dtype=jnp.float64)
        runs = [f(key, data, target) for key in self._keys(seed, chains)]
        values = [np.stack([np.asarray(r[0][j]) for r in runs]) for j in range(len(STORED))]
        diverging = np.stack([np.asarray(r[1]) for r in runs])
        dims = {"mu": ("chain", "draw"), "tau": ("chain", "draw"), "theta": ("chain", "draw", "study"),
                "theta_new": ("chain", "draw")}
        post = xr.Dataset({n: (dims[n], v) for n, v in zip(STORED, values)},
                          coords={"chain": np.arange(chains), "draw": np.arange(draws)})
        return post, diverging


class PymcBackend:
    """PyMC's NUTS (C back end): model and step method built once per model and reused.

    ``pymc.sample`` resets a given step's tuning before every chain (``reset_tuning``), so each
    fit (each chain) still adapts its own step size and mass matrix; only the compiled log
    density and gradient are shared.
    """

    name = "pymc"
    parallel = False  # one step method per model, shared: fits run one after the other

    def prepare(self, shapes, pool=None):
        """Nothing to compile ahead: PyTensor compiles on the first fit of each model."""

    def __init__(self):
        self._models, self._steps = {}, {}

    def sample(self, key, data, *, seed, chains, draws, tune, target_accept):
        import pymc as pm

        if key not in self._models:
            self._models[key] = build_model(*key)
        m = self._models[key]
        with m:
            pm.set_data(data)
            if (key, target_accept) not in self._steps:
                self._steps[(key, target_accept)] = pm.NUTS(target_accept=target_accept,
                                                            compile_kwargs={"trust_input": True})
            # chains in this process: forking per fit costs more than these small models take
            idata = pm.sample(draws=draws, tune=tune, chains=chains, cores=1, random_seed=seed,
                              step=self._steps[(key, target_accept)], progressbar=False, quiet=True,
                              var_names=STORED, compute_convergence_checks=False,
                              idata_kwargs={"log_likelihood": False})
        return idata.posterior, idata.sample_stats["diverging"].values


def backend(name="blackjax"):
    """A sampler back end by name: ``blackjax`` (the default) or ``pymc``."""
    _quiet_pytensor()  # before anything imports PyTensor
    if name == "blackjax":
        return JaxBackend()
    if name == "pymc":
        return PymcBackend()
    raise ValueError(f"bayes.sampler.backend: got {name!r}; expected blackjax or pymc")


# ---------------------------------------------------------------------------------------------
# Diagnostics and certification
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Settings:
    """Sampler settings, the convergence gate (Vehtari et al. 2021, Bayesian Anal 16:667) and max_k."""

    chains: int = 4
    draws: int = 1000
    tune: int = 1000
    target_accept: float = 0.9
    retry_target_accept: float = 0.95
    rhat_max: float = 1.01
    ess_bulk_min: float = 400.0
    ess_tail_min: float = 400.0
    max_divergences: int = 0
    max_k: int = 200
    backend: str = "blackjax"

    @classmethod
    def from_config(cls, sampler, gate, max_k=None):
        known = set(cls.__dataclass_fields__)
        merged = {**(sampler or {}), **(gate or {})}
        if max_k is not None:
            merged["max_k"] = max_k
        unknown = set(merged) - known
        if unknown:
            raise ValueError(f"bayes sampler/gate: unknown key(s) {sorted(unknown)}; expected some of {sorted(known)}")
        return cls(**merged)


def quantile_mcse(draws, probs):
    """Monte Carlo standard errors of quantiles of (chain, draw) ``draws`` (ArviZ ``mcse``)."""
    _quiet_pytensor()
    import arviz as az

    return np.array([float(az.mcse(draws, method="quantile", prob=p)) for p in probs])


def certify(draws, exact_values, probs, n_mcse=3.0):
    """Whether the draws' quantiles agree with the exact ones within ``n_mcse`` MCSEs.

    Parameters
    ----------
    draws : numpy.ndarray
        (chain, draw) draws of the pooled value on the reporting scale.
    exact_values : sequence of float
        The exact posterior's quantiles at ``probs`` (median, interval limits).
    probs : sequence of float

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, bool)
        The draws' quantiles, their MCSEs, and whether every one is within ``n_mcse`` MCSEs.
    """
    q = np.quantile(draws.ravel(), probs)
    se = quantile_mcse(draws, probs)
    ok = bool(np.all(np.abs(q - np.asarray(exact_values)) <= n_mcse * se))
    return q, se, ok


def gate(posterior, diverging, s):
    """R-hat, bulk and tail ESS over mu, tau, the fit's thetas and theta_new; divergences."""
    import arviz as az

    names = ["mu", "tau", "theta", "theta_new"]
    r = az.rhat(posterior[names])
    b = az.ess(posterior[names], method="bulk")
    t = az.ess(posterior[names], method="tail")
    rhat = max(float(np.nanmax(r[n].values)) for n in names)
    bulk = min(float(np.nanmin(b[n].values)) for n in names)
    tail = min(float(np.nanmin(t[n].values)) for n in names)
    div = int(np.sum(diverging))
    why = []
    if not rhat <= s.rhat_max:
        why.append(f"R-hat {rhat:.3f} > {s.rhat_max:g}")
    if not bulk >= s.ess_bulk_min:
        why.append(f"bulk ESS {bulk:.0f} < {s.ess_bulk_min:g}")
    if not tail >= s.ess_tail_min:
        why.append(f"tail ESS {tail:.0f} < {s.ess_tail_min:g}")
    if div > s.max_divergences:
        why.append(f"{div} divergences")
    return {"rhat_max": rhat, "ess_bulk_min": bulk, "ess_tail_min": tail, "divergences": div}, why


# ---------------------------------------------------------------------------------------------
# The stage
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SampledFit:
    """One fit's accepted PyMC run (or its last attempt) with diagnostics and certification."""

    fit: object
    posterior: object            # xarray.Dataset: mu, tau, theta (study), theta_new, p_pooled, p_new
    diagnostics: dict            # one bayes_diagnostics.csv row
    certified: bool


def _to_posterior(posterior, fit):
    """The draws with the fit's studies as a named coordinate and the pooled / new-study values."""
    import xarray as xr

    post = posterior[STORED]
    dim = [d for d in post["theta"].dims if d not in ("chain", "draw")][0]
    post = post.isel({dim: slice(0, fit.k)}).rename({dim: "cohort"})
    post = post.assign_coords(cohort=list(fit.studies))
    post = post.assign(p_pooled=xr.apply_ufunc(fit.back, post["mu"]),
                       p_new=xr.apply_ufunc(fit.back, post["theta_new"]))
    return post.expand_dims(outcome=[fit.outcome], subgroup=[fit.subgroup]).transpose("chain", "draw", ...)


def sample_fit(fit, prior, exact_summary, settings, sampler, *, seed, level=0.95):
    """Sample one fit (and retry once); certify it against its exact posterior.

    Parameters
    ----------
    fit : singlearm.bayes.stage.FitData
    prior : PriorSet
    exact_summary : singlearm.bayes.summaries.PosteriorSummary
        The exact posterior of the same fit and prior.
    settings : Settings
    sampler : NutpieBackend or PymcBackend
    seed : int
        The fit's own seed (:func:`fit_seed`); the retry uses seed + 1.

    Returns
    -------
    SampledFit

    Notes
    -----
    R equivalent: ``brms::brm(...)`` per fit, then ``update(fit, control = list(adapt_delta = 0.95))``.
    """
    a = (1 - level) / 2
    probs = [0.5, a, 1 - a]
    # On a decreasing back-transform the interval's lower limit is mu's upper quantile, but
    # quantiles of the reporting-scale draws are certified directly, so no case is needed.
    exact_q = [exact_summary.estimate, exact_summary.ci_low, exact_summary.ci_high]
    key = (fit.model, tau_family(prior), bucket(fit.k))
    data = fit_data(fit, prior, key[2])
    plans = [dict(seed=seed, chains=settings.chains, draws=settings.draws, tune=settings.tune,
                  target_accept=settings.target_accept),
             # twice the chains (twice the draws) at a higher target acceptance: a retry reuses the
             # compiled sampler, where more tuning steps would compile another
             dict(seed=seed + 1, chains=2 * settings.chains, draws=settings.draws, tune=settings.tune,
                  target_accept=settings.retry_target_accept)]
    reference = reference_name(getattr(exact_summary, "method", ""))
    for attempt, plan in enumerate(plans, start=1):
        raw, diverging = sampler.sample(key, data, **plan)
        post = _to_posterior(raw, fit)
        diag, why = gate(post, diverging, settings)
        pooled = post["p_pooled"].isel(outcome=0, subgroup=0).transpose("chain", "draw").values
        q, se, ok = certify(pooled, exact_q, probs)
        if not ok:
            why.append("quantiles differ from the exact posterior by more than 3 MCSE")
        if not why:
            break
    row = {"outcome": fit.outcome, "subgroup": fit.subgroup, "model": MODEL_NAME[fit.model], "prior": prior.label,
           "backend": sampler.name,
           "k": fit.k, "chains": plan["chains"], "draws": plan["chains"] * plan["draws"], **diag,
           "attempts": attempt, "passed": not [w for w in why if "exact" not in w],
           "estimate": q[0], "exact_estimate": exact_q[0], "mcse_estimate": se[0],
           "ci_low": q[1], "exact_ci_low": exact_q[1], "mcse_ci_low": se[1],
           "ci_high": q[2], "exact_ci_high": exact_q[2], "mcse_ci_high": se[2],
           "certified": ok and not why, "reported_from": "PyMC" if not why else reference,
           "note": "" if not why else "not certified after a retry (" + "; ".join(why)
           + f"): the BAYES row is reported from the {reference} posterior"}
    return SampledFit(fit=fit, posterior=post, diagnostics=row, certified=not why)


def reference_name(method):
    """What the reference posterior of a fit is: ``laplace`` (``BAYES-BN-LAPLACE``) or ``exact``."""
    return "laplace" if str(method).endswith("-LAPLACE") else "exact"


def skipped_row(fit, max_k, reference="exact"):
    """The diagnostics row of a fit NUTS did not sample (k above bayes.max_k)."""
    row = {c: np.nan for c in DIAGNOSTIC_COLUMNS}
    row.update(outcome=fit.outcome, subgroup=fit.subgroup, model=MODEL_NAME[fit.model], prior="main", backend="none",
               k=fit.k, attempts=0, passed=False, certified=False, reported_from=reference,
               note=f"k = {fit.k} > bayes.max_k = {max_k}: NUTS skipped, reported from the {reference} posterior")
    return row


def run_sampling(fits, main, exact_summaries, settings, *, seed, level=0.95, progress=None, sampler=None,
                 threads=1):
    """Sample every fit with k >= 2 (k <= max_k) on its own; certify each against its exact posterior.

    Parameters
    ----------
    fits : list of FitData
    main : dict
        Kind -> main PriorSet (:func:`singlearm.bayes.stage.main_priors`).
    exact_summaries : dict or callable
        (outcome, subgroup) -> the exact PosteriorSummary under the main prior, or a function
        returning that dict, called once the sampler is compiled.
    settings : Settings
    seed : int
    progress : callable, optional
        ``progress(i, n, fit)`` as each fit is done.
    sampler : back end, optional
        Default :func:`backend` of ``settings.backend``.
    threads : int
        Fits sampled at once (back ends that allow it); each fit's draws depend on its own seed
        and data only, so the results do not depend on it.

    Returns
    -------
    (list of SampledFit, pandas.DataFrame)
        The sampled fits and ``bayes_diagnostics.csv`` (``DIAGNOSTIC_COLUMNS``).
    """
    from concurrent.futures import ThreadPoolExecutor

    sampler = sampler or backend(settings.backend)
    todo = [f for f in fits if f.k >= 2]
    sampled = [f for f in todo if f.k <= settings.max_k]
    workers = max(1, min(threads, os.cpu_count() or 1, len(sampled))) if getattr(sampler, "parallel", False) else 1
    results = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        shapes = sorted({((f.model, tau_family(main[f.kind]), bucket(f.k)), settings.tune, settings.draws)
                         for f in sampled})
        if hasattr(progress, "say"):
            progress.say(f"{sampler.name}: compiling {len(shapes)} sampler(s) for {len(sampled)} fit(s) on "
                         f"{workers} thread(s)")
        getattr(sampler, "prepare", lambda shapes, pool: None)(shapes, pool)
        if callable(exact_summaries):  # computed meanwhile (singlearm.bayes.stage.run_stage)
            exact_summaries = exact_summaries()
        jobs = {pool.submit(sample_fit, f, main[f.kind], exact_summaries[(f.outcome, f.subgroup)], settings, sampler,
                            seed=fit_seed(seed, f.outcome, f.subgroup), level=level): f for f in sampled}
        for done, job in enumerate(as_completed(jobs)):
            fit = jobs[job]
            results[(fit.outcome, fit.subgroup)] = job.result()
            if progress is not None:
                progress(done, len(sampled), fit)
    out, rows = [], []
    for fit in todo:
        if fit.k > settings.max_k:
            ref = exact_summaries.get((fit.outcome, fit.subgroup)) if isinstance(exact_summaries, dict) else None
            rows.append(skipped_row(fit, settings.max_k, reference_name(ref["method"] if ref is not None else "")))
            continue
        out.append(results[(fit.outcome, fit.subgroup)])
        rows.append(out[-1].diagnostics)
    return out, pd.DataFrame(rows, columns=DIAGNOSTIC_COLUMNS)


def to_inference_data(sampled, backend_name="pymc"):
    """One fit's ``InferenceData``: ``posterior`` with outcome, subgroup and cohort as coordinates.

    Attributes name the library and version that drew the sample; there is no creation time, so
    the same seed gives the same bytes.
    """
    import arviz as az
    import pymc

    post = sampled.posterior.copy()
    post.attrs = {"inference_library": "pymc", "inference_library_version": pymc.__version__,
                  "sampler": backend_name}
    if backend_name == "blackjax":
        import blackjax
        import jax

        post.attrs["sampler_version"] = f"blackjax {blackjax.__version__}, jax {jax.__version__}"
    return az.InferenceData(posterior=post)


ESTIMATE_EXTRA = ["kind", "flags"]
PYMC_METHOD = {"BN": "BAYES-BN", "NN": "BAYES-NN"}


def estimates_table(fits, sampled, diagnostics, exact_summary, *, level=0.95):
    """``bayes_estimates.csv``: every Bayesian row the comparison sets beside the frequentist ones.

    Per fit with k >= 2: ``BAYES-BN`` / ``BAYES-NN`` from its certified PyMC draws (posterior
    median, equal-tailed credible interval, posterior-predictive interval of a new study, posterior
    median of tau^2), or, when not certified or not sampled (k > max_k), from the exact posterior
    with a flag saying so; and ``BAYES-*-EXACT`` from the exact posterior. Per fit with k = 1:
    the study's own posterior under tau = 0, method ``single study`` (no pooled row).

    Parameters
    ----------
    fits : list of FitData
    sampled : list of SampledFit
    diagnostics : pandas.DataFrame
        From :func:`run_sampling`.
    exact_summary : pandas.DataFrame
        The exact stage's summary (:data:`singlearm.bayes.stage.SUMMARY_COLUMNS`).

    Returns
    -------
    pandas.DataFrame
        :data:`singlearm.pool.ESTIMATE_COLUMNS` plus ``kind, flags``.
    """
    from ..pool import ESTIMATE_COLUMNS
    from .stage import SINGLE_STUDY

    a = (1 - level) / 2
    by_fit = {(s.fit.outcome, s.fit.subgroup): s for s in sampled}
    diag = {(o, g): r for o, g, r in zip(diagnostics["outcome"], diagnostics["subgroup"],
                                         diagnostics.to_dict("records"))}
    ex = exact_summary.set_index(["outcome", "subgroup", "prior"])
    rows = []
    fields = ["estimate", "ci_low", "ci_high", "pi_low", "pi_high", "tau2"]
    for fit in fits:
        key = (fit.outcome, fit.subgroup)
        base = {"outcome": fit.outcome, "subgroup": fit.subgroup, "k": fit.k, "n": fit.n, "kind": fit.kind,
                "k_reporting": fit.k}
        if fit.k == 1:
            e = ex.loc[(*key, SINGLE_STUDY)]
            rows.append({**base, "method": SINGLE_STUDY, **{c: e[c] for c in fields}, "tau2": np.nan,
                         "flags": e["flags"]})
            continue
        e = ex.loc[(*key, "main")]
        flags = e["flags"] if isinstance(e["flags"], str) else ""  # an unflagged fit read back from CSV: NaN
        s = by_fit.get(key)
        if s is not None and s.certified:
            post = s.posterior.isel(outcome=0, subgroup=0)
            pooled, new = post["p_pooled"].values.ravel(), post["p_new"].values.ravel()
            q = np.quantile(pooled, [0.5, a, 1 - a])
            pi = np.quantile(new, [a, 1 - a])
            rows.append({**base, "method": PYMC_METHOD[fit.model], "estimate": q[0], "ci_low": q[1], "ci_high": q[2],
                         "pi_low": pi[0], "pi_high": pi[1], "tau2": float(np.median(post["tau"].values ** 2)),
                         "flags": flags})
        else:
            why = diag.get(key, {}).get("note", "") or "not sampled"
            origin = f"from the {reference_name(e['method'])} posterior: {why}"
            rows.append({**base, "method": PYMC_METHOD[fit.model], **{c: e[c] for c in fields},
                         "flags": "; ".join(f for f in (flags, origin) if f)})
        rows.append({**base, "method": e["method"], **{c: e[c] for c in fields}, "flags": flags})
    t = pd.DataFrame(rows)
    for c in ("i2", "q", "q_df", "q_p"):
        t[c] = np.nan
    return t.reindex(columns=ESTIMATE_COLUMNS + ESTIMATE_EXTRA).reset_index(drop=True)
