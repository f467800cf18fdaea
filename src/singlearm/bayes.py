"""Bayesian random-effects meta-analysis of many small single-arm meta-analyses at once.

The Bayesian counterpart of the frequentist pooling stage. A review yields dozens of small
meta-analyses ("fits": one outcome x subgroup, typically k = 1..16 studies); each is an
independent random-effects model, but all of them are put into ONE PyMC model as independent
blocks, so the model is compiled once and sampled in one run. Because the blocks share no
parameter, the joint posterior is the product of the per-fit posteriors and every fit's
marginal posterior is exactly what it would be if it were sampled alone.

Stages, kept apart as in metafor (effect sizes -> fit -> back-transform when reporting):

``build_model``
    data frame (one row per study) -> :class:`BayesModel` (the PyMC model and what it was
    built from). Proportions: binomial-normal on the logit scale; medians: normal-normal.
``sample``
    :class:`BayesModel` -> ``arviz.InferenceData`` with coordinates ``prior``, ``fit`` and
    ``study`` (``"fit/study"`` labels), reproducible from ``seed``.
``diagnose`` / ``fit_with_gate``
    per-fit R-hat, bulk and tail ESS and divergences; the gate re-samples once with a
    higher ``target_accept`` and longer tuning, then raises :class:`ConvergenceError`.
``summarise``
    posterior medians, 95% credible and prediction intervals, tau^2 and P(rate > t).

Prior sensitivity costs no extra compile or run: several prior sets are replicated along a
``prior`` dimension inside the one model (:func:`sensitivity_priors`).

Saving is the caller's: ``idata.to_netcdf(path)``; ``idata.posterior.sel(fit=...)`` selects
one fit, and the non-index coordinate ``study_fit`` on ``study`` says which fit a study is in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from pymc.blocking import DictToArrayBijection

from .errors import DataError

PROPORTION, MEDIAN = "proportion", "median"
IDENTITY, LOG = "identity", "log"

# Parameters each supported prior family takes (PyMC's own parameter names).
_MU_DISTS = {"normal": ("mu", "sigma")}
_TAU_DISTS = {"halfnormal": ("sigma",), "halfcauchy": ("beta",)}
_SHORT = {"normal": "N", "halfnormal": "HN", "halfcauchy": "HC"}

# Default (mu, tau) priors per (kind, scale); see default_priors for the reasons.
_DEFAULTS = {
    (PROPORTION, IDENTITY): ({"dist": "normal", "mu": 0.0, "sigma": 2.5}, 1.0),
    (MEDIAN, IDENTITY): ({"dist": "normal", "mu": 0.0, "sigma": 100.0}, 5.0),
    (MEDIAN, LOG): ({"dist": "normal", "mu": 0.0, "sigma": 10.0}, 0.5),
}


class ConvergenceError(RuntimeError):
    """The sampler did not pass the convergence gate, even after its one retry.

    Attributes
    ----------
    failures : pandas.DataFrame
        The failing rows of :func:`diagnose` (one per fit x prior) from the last attempt.
    attempts : tuple of dict
        Settings and number of failing fits of every attempt, in order.
    idata : arviz.InferenceData
        The last attempt's posterior, so the caller can save it and look.
    """

    def __init__(self, failures, attempts, idata):
        self.failures, self.attempts, self.idata = failures, attempts, idata
        lines = [f"  {why}" for why in failures["failures"]]
        super().__init__(
            f"{len(failures)} fit(s) failed the convergence gate after {len(attempts)} attempts "
            f"(last: target_accept={attempts[-1]['target_accept']}, tune={attempts[-1]['tune']}, "
            f"draws={attempts[-1]['draws']}):\n" + "\n".join(lines)
            + "\nMore draws (settings 'draws'), or a more informative tau prior for the fits named, usually help."
        )


# ----------------------------------------------------------------------------------------------
# Priors
# ----------------------------------------------------------------------------------------------

def default_priors(kind=PROPORTION, scale=IDENTITY):
    """Default weakly informative priors for the overall mean ``mu`` and heterogeneity ``tau``.

    * Proportions (logit scale): mu ~ Normal(0, 2.5), tau ~ Half-Normal(1). Normal(0, 2.5)
      on the logit puts 95% of its mass on pooled rates between 0.7% and 99.3% and is nearly
      flat on the probability scale between 5% and 95% (Gelman et al. 2008, Ann Appl Stat
      2:1360, use the same scale for logistic coefficients). Half-Normal(1) for tau is the
      weakly informative choice of Röver et al. (2021), "On weakly informative prior
      distributions for the heterogeneity parameter in Bayesian random-effects
      meta-analysis", Res Synth Methods 12:448-474: its median 0.67 means study odds
      varying by a factor ~2 around the pooled odds, and 95% of its mass lies below tau = 2
      (a "very large" heterogeneity on the logit scale). A half-normal rather than an
      improper or inverse-gamma prior follows Gelman (2006), Bayesian Anal 1:515-534, who
      shows the latter are not uninformative when k is small, which is the rule here.
    * Medians in months (``scale="identity"``): mu ~ Normal(0, 100) months, flat to within
      16% over 0-60 months so the pooled median is driven by the data; tau ~ Half-Normal(5)
      months: median 3.4 months, 95% below 10 months, i.e. between-study SDs of the size
      seen among trials of one drug (median PFS 3-10 months) are plausible and SDs of
      several years are not.
    * Medians in log-months (``scale="log"``): mu ~ Normal(0, 10); tau ~ Half-Normal(0.5),
      Röver et al.'s recommendation for log ratio scales: a log-median is a log ratio to
      1 month, and under exponential survival a log ratio of medians is minus a log hazard
      ratio.

    Parameters
    ----------
    kind : {"proportion", "median"}
    scale : {"identity", "log"}
        Scale of ``yi`` for medians; proportions are always modelled on the logit scale.

    Returns
    -------
    dict
        ``{"mu": {...}, "tau": {...}}`` in the form :func:`build_model` takes.

    Notes
    -----
    R equivalent: ``bayesmeta::bayesmeta(y, sigma, mu.prior.mean=0, mu.prior.sd=2.5,
    tau.prior=function(t) dhalfnormal(t, scale=1))``.
    """
    key = (kind, IDENTITY if kind == PROPORTION else scale)
    if key not in _DEFAULTS:
        raise ValueError(f"no default priors for kind={kind!r}, scale={scale!r}; expected kind in "
                         f"('proportion', 'median') and scale in ('identity', 'log')")
    mu, tau_scale = _DEFAULTS[key]
    return {"mu": dict(mu), "tau": {"dist": "halfnormal", "sigma": tau_scale}}


def sensitivity_priors(kind=PROPORTION, scale=IDENTITY):
    """Prior sets for a tau sensitivity analysis: Half-Normal(s/2), Half-Normal(s), Half-Cauchy(s).

    ``s`` is the default tau scale (1 on the logit scale, 5 months, 0.5 log-months); mu keeps
    its default. Half-Normal(0.5) is Röver et al.'s (2021) "conservative" choice for the
    logit scale, Half-Cauchy(1) the heavy-tailed one of Gelman (2006).

    Parameters
    ----------
    kind : {"proportion", "median"}
    scale : {"identity", "log"}

    Returns
    -------
    dict
        Label (e.g. ``"tau~HN(0.5)"``) -> prior set; pass it as ``priors`` to
        :func:`build_model` to fit every fit under every set in one model.

    Notes
    -----
    R equivalent: one ``bayesmeta::bayesmeta`` call per ``tau.prior``.
    """
    base = default_priors(kind, scale)
    s = base["tau"]["sigma"]
    sets = [{"dist": "halfnormal", "sigma": s / 2}, {"dist": "halfnormal", "sigma": s},
            {"dist": "halfcauchy", "beta": s}]
    return {f"tau~{_describe_one(t)}": {"mu": dict(base["mu"]), "tau": t} for t in sets}


def describe_prior(spec):
    """Short text label of a prior set, e.g. ``"mu~N(0, 2.5), tau~HN(1)"``."""
    return f"mu~{_describe_one(spec['mu'])}, tau~{_describe_one(spec['tau'])}"


def _describe_one(one):
    params = _MU_DISTS.get(one["dist"]) or _TAU_DISTS[one["dist"]]
    return f"{_SHORT[one['dist']]}({', '.join(f'{float(one[p]):g}' for p in params)})"


def _check_part(part, which, families):
    if not isinstance(part, Mapping) or part.get("dist") not in families:
        raise ValueError(f"prior for {which}: got {part!r}; expected a dict with 'dist' one of "
                         f"{sorted(families)}")
    need = families[part["dist"]]
    extra = set(part) - {"dist", *need}
    if extra or any(p not in part for p in need):
        raise ValueError(f"prior for {which} ({part['dist']}): got keys {sorted(part)}; expected "
                         f"exactly 'dist' and {list(need)}")
    for p in need:
        value = float(part[p])
        if not np.isfinite(value) or (p in ("sigma", "beta") and value <= 0):
            raise ValueError(f"prior for {which}: {p}={part[p]!r}; expected a finite number"
                             + (" > 0" if p in ("sigma", "beta") else ""))
    return {"dist": part["dist"], **{p: float(part[p]) for p in need}}


def resolve_priors(priors, kind=PROPORTION, scale=IDENTITY):
    """Normalise ``priors`` to ``{label: {"mu": {...}, "tau": {...}}}``.

    Parameters
    ----------
    priors : None, dict
        ``None`` for the defaults; one prior set ``{"mu": {...}, "tau": {...}}`` (either part
        may be left out and takes its default), labelled by :func:`describe_prior`; or a dict
        of such sets keyed by label, as :func:`sensitivity_priors` returns.
    kind, scale : str
        Choose the defaults (:func:`default_priors`).

    Returns
    -------
    dict
        Label -> complete, validated prior set, in the order given.
    """
    base = default_priors(kind, scale)
    if priors is None:
        sets = {None: {}}
    elif isinstance(priors, Mapping) and priors and set(priors) <= {"mu", "tau"} \
            and all(isinstance(v, Mapping) and "dist" in v for v in priors.values()):
        sets = {None: priors}
    elif isinstance(priors, Mapping) and priors:
        sets = dict(priors)
    else:
        raise ValueError(f"priors: got {priors!r}; expected None, {{'mu': ..., 'tau': ...}} or "
                         f"{{label: {{'mu': ..., 'tau': ...}}}}")
    out = {}
    for label, spec in sets.items():
        if not isinstance(spec, Mapping) or set(spec) - {"mu", "tau"}:
            raise ValueError(f"prior set {label!r}: got {spec!r}; expected keys 'mu' and/or 'tau'")
        full = {"mu": _check_part(spec.get("mu", base["mu"]), "mu", _MU_DISTS),
                "tau": _check_part(spec.get("tau", base["tau"]), "tau", _TAU_DISTS)}
        out[describe_prior(full) if label is None else str(label)] = full
    return out


# ----------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BayesModel:
    """A built (not yet sampled) joint model of many independent random-effects meta-analyses.

    Attributes
    ----------
    model : pymc.Model
        Coordinates ``prior``, ``fit``, ``study``; see :func:`build_model`.
    kind : {"proportion", "median"}
    scale : {"identity", "log"}
        Scale of the median model (``"identity"`` for proportions, modelled on the logit).
    fits : pandas.DataFrame
        One row per fit, in model order: ``fit``, ``k``.
    studies : pandas.DataFrame
        One row per study, in model order: ``fit``, ``study``, ``label`` (``"fit/study"``) and
        the data columns used.
    priors : dict
        Label -> prior set, in the order of the ``prior`` coordinate.
    """

    model: pm.Model
    kind: str
    scale: str
    fits: pd.DataFrame
    studies: pd.DataFrame
    priors: dict
    # Name of each free value variable -> (prior, fit) block of each of its elements, flat
    # index prior * n_fit + fit; used to attribute divergences to fits.
    blocks: dict = field(repr=False)


def _row_of(data, pos):
    if "source_row" in data.columns and pd.notna(data["source_row"].iloc[pos]):
        return int(data["source_row"].iloc[pos])
    return pos + 2  # as a spreadsheet counts, if the frame was read straight from a CSV


def _numeric(data, column, source, integer=False):
    values = pd.to_numeric(data[column], errors="coerce").to_numpy(dtype=float)
    for pos, (raw, value) in enumerate(zip(data[column], values)):
        if not np.isfinite(value) or (integer and value != np.round(value)):
            raise DataError(source, _row_of(data, pos), column, raw,
                            "a whole number" if integer else "a finite number")
    return values


def _check_data(data, kind, source):
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
    for column in ("fit", "study"):
        if column not in data.columns:
            raise DataError(source, None, column, None, "a column naming the fit (meta-analysis) and study of each row")
    has_prop = {"events", "total"} <= set(data.columns)
    has_med = {"yi", "sei"} <= set(data.columns)
    if kind is None:
        if has_prop == has_med:
            raise DataError(source, None, "events/total or yi/sei", None,
                            "either columns 'events' and 'total' (proportions) or 'yi' and 'sei' "
                            "(medians); with both, say which with kind=")
        kind = PROPORTION if has_prop else MEDIAN
    if kind not in (PROPORTION, MEDIAN):
        raise ValueError(f"kind: got {kind!r}; expected 'proportion' or 'median'")
    if (kind == PROPORTION and not has_prop) or (kind == MEDIAN and not has_med):
        need = "'events' and 'total'" if kind == PROPORTION else "'yi' and 'sei'"
        raise DataError(source, None, need, None, f"columns {need} for kind={kind!r}")
    if len(data) == 0:
        raise DataError(source, None, None, None, "at least one study row")
    for column in ("fit", "study"):
        for pos, value in enumerate(data[column]):
            if pd.isna(value) or str(value) == "":
                raise DataError(source, _row_of(data, pos), column, value, "a non-empty id")
    labels = data["fit"].astype(str) + "/" + data["study"].astype(str)
    dup = labels.duplicated()
    if dup.any():
        pos = int(np.flatnonzero(dup.to_numpy())[0])
        raise DataError(source, _row_of(data, pos), "study", data["study"].iloc[pos],
                        f"each study once per fit (fit {data['fit'].iloc[pos]!r} lists it twice)")
    if kind == PROPORTION:
        events = _numeric(data, "events", source, integer=True)
        total = _numeric(data, "total", source, integer=True)
        for pos in range(len(data)):
            if total[pos] < 1:
                raise DataError(source, _row_of(data, pos), "total", data["total"].iloc[pos], "a count >= 1")
            if not 0 <= events[pos] <= total[pos]:
                raise DataError(source, _row_of(data, pos), "events", data["events"].iloc[pos],
                                f"a count between 0 and total ({int(total[pos])})")
        return kind, {"events": events.astype(np.int64), "total": total.astype(np.int64)}
    yi = _numeric(data, "yi", source)
    sei = _numeric(data, "sei", source)
    for pos in range(len(data)):
        if sei[pos] <= 0:
            raise DataError(source, _row_of(data, pos), "sei", data["sei"].iloc[pos], "a standard error > 0")
    return kind, {"yi": yi, "sei": sei}


def build_model(data, priors=None, *, kind=None, scale=IDENTITY, source="analysis data"):
    """Build one PyMC model holding every fit of ``data`` as an independent random-effects block.

    Proportions, binomial-normal (generalised linear mixed model) on the logit scale::

        events_i ~ Binomial(total_i, invlogit(theta_i)),  theta_i = mu[f_i] + tau[f_i] * z_i,
        z_i ~ N(0, 1),  p_pooled = invlogit(mu),  p_new = invlogit(mu + tau * z_new),  z_new ~ N(0, 1)

    Medians, normal-normal with known within-study standard errors::

        yi_i ~ N(theta_i, sei_i),  theta_i = mu[f_i] + tau[f_i] * z_i,  theta_new = mu + tau * z_new

    The study effects are non-centred (``z_i``) because with k <= 16 studies tau is weakly
    identified and the centred form has the funnel that makes NUTS diverge (Betancourt &
    Girolami 2015, "Hamiltonian Monte Carlo for hierarchical models"). ``p_new`` /
    ``theta_new`` is the true rate / median of a new study from the same population, i.e. the
    posterior-predictive distribution behind the prediction interval (Higgins, Thompson &
    Spiegelhalter 2009, J R Stat Soc A 172:137). Every prior set in ``priors`` gets its own
    replicate of every block along the ``prior`` dimension: one compile, one sampling run.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per study: ``fit`` (id of the meta-analysis, e.g. ``"orr|overall"``),
        ``study``, and either ``events``, ``total`` or ``yi``, ``sei``. An optional
        ``source_row`` column is used to point errors at the spreadsheet row.
    priors : None or dict
        See :func:`resolve_priors`; defaults in :func:`default_priors`.
    kind : {"proportion", "median"}, optional
        Inferred from the columns when only one pair is present.
    scale : {"identity", "log"}
        Scale of ``yi`` for medians (months or log-months); chooses default priors and how
        :func:`summarise` reports. Ignored for proportions.
    source : str
        Name of the data used in error messages.

    Returns
    -------
    BayesModel

    Notes
    -----
    R equivalent: per fit, ``brms::brm(events | trials(total) ~ 1 + (1 | study),
    family = binomial, prior = c(prior(normal(0, 2.5), class = Intercept),
    prior(normal(0, 1), class = sd)))``, or ``metafor::rma.glmm(measure = "PLO")`` for the
    frequentist counterpart; medians ``bayesmeta::bayesmeta(yi, sei)``.
    """
    kind, values = _check_data(data, kind, source)
    if kind == PROPORTION:
        scale = IDENTITY
    elif scale not in (IDENTITY, LOG):
        raise ValueError(f"scale: got {scale!r}; expected 'identity' (months) or 'log' (log-months)")
    prior_sets = resolve_priors(priors, kind, scale)

    fit_ids = [str(f) for f in pd.unique(data["fit"].astype(str))]
    fit_pos = {f: i for i, f in enumerate(fit_ids)}
    # Studies ordered by fit (then as given) so each fit's studies are contiguous.
    order = np.argsort([fit_pos[str(f)] for f in data["fit"]], kind="stable")
    studies = pd.DataFrame({"fit": data["fit"].astype(str).to_numpy()[order],
                            "study": data["study"].astype(str).to_numpy()[order]})
    studies["label"] = studies["fit"] + "/" + studies["study"]
    for name, arr in values.items():
        studies[name] = arr[order]
    fit_idx = studies["fit"].map(fit_pos).to_numpy()
    k = np.bincount(fit_idx, minlength=len(fit_ids))
    fits = pd.DataFrame({"fit": fit_ids, "k": k})
    labels = list(prior_sets)
    n_p, n_f, n_s = len(labels), len(fit_ids), len(studies)

    coords = {"prior": labels, "fit": fit_ids, "study": studies["label"].tolist()}
    blocks = {}
    with pm.Model(coords=coords) as model:
        pm.Data("fit_index", fit_idx, dims="study")
        pm.Data("k", k, dims="fit")
        mu_loc = np.array([prior_sets[p]["mu"]["mu"] for p in labels])[:, None]
        mu_sd = np.array([prior_sets[p]["mu"]["sigma"] for p in labels])[:, None]
        blocks["mu"] = np.arange(n_p * n_f).reshape(n_p, n_f)
        if _PARAM == "mu":
            mu_free = pm.Normal("mu", mu=mu_loc, sigma=mu_sd, dims=("prior", "fit"))
        else:
            c = pm.Flat("c", dims=("prior", "fit"), initval=np.broadcast_to(_start(studies, kind, fit_idx, n_f), (n_p, n_f)))
            blocks["c"] = blocks["mu"]

        # One vectorised variable per tau family; rows then put back in the order of `prior`.
        parts, rows = [], []
        for dist, (param,) in _TAU_DISTS.items():
            mine = [i for i, p in enumerate(labels) if prior_sets[p]["tau"]["dist"] == dist]
            if not mine:
                continue
            scale_ = np.array([prior_sets[labels[i]]["tau"][param] for i in mine])[:, None]
            rv = (pm.HalfNormal(f"tau_{dist}", sigma=scale_, shape=(len(mine), n_f)) if dist == "halfnormal"
                  else pm.HalfCauchy(f"tau_{dist}", beta=scale_, shape=(len(mine), n_f)))
            blocks[model.rvs_to_values[rv].name] = np.array(mine)[:, None] * n_f + np.arange(n_f)[None, :]
            parts.append(rv)
            rows.extend(mine)
        if rows == sorted(rows):
            stacked = parts[0] if len(parts) == 1 else pt.concatenate(parts, axis=0)
        else:
            flat = (np.argsort(rows)[:, None] * n_f + np.arange(n_f)[None, :]).ravel()
            stacked = pt.concatenate([x.ravel() for x in parts])[flat].reshape((n_p, n_f))
        tau = pm.Deterministic("tau", stacked, dims=("prior", "fit"))

        z = pm.Normal("z", 0.0, 1.0, dims=("prior", "study"))
        blocks["z"] = np.arange(n_p)[:, None] * n_f + fit_idx[None, :]
        # Gather from the flattened (prior, fit) vectors: PyTensor has C code for the gradient
        # of a 1-d gather only; 2-d indexing (and dot, without a BLAS) falls back to Python
        # and tripled the cost of a gradient.
        gather = blocks["z"].ravel()

        def per_study(x):
            return x.ravel()[gather].reshape((n_p, n_s))

        if _PARAM == "mu":
            mu = mu_free
        else:
            zbar = pt.zeros(n_p * n_f)[gather].inc(z.ravel()).reshape((n_p, n_f)) / k[None, :]
            mu = pm.Deterministic("mu", c - tau * zbar, dims=("prior", "fit"))
            pm.Potential("mu_prior", pm.logp(pm.Normal.dist(mu_loc, mu_sd), mu), dims=("prior", "fit"))
        theta = pm.Deterministic("theta", per_study(mu) + per_study(tau) * z, dims=("prior", "study"))
        z_new = pm.Normal("z_new", 0.0, 1.0, dims=("prior", "fit"))
        blocks["z_new"] = blocks["mu"]

        # The observed data are repeated once per prior set: each replicate is its own model.
        if kind == PROPORTION:
            total = pm.Data("total", studies["total"].to_numpy(), dims="study")
            pm.Binomial("events", n=total[None, :], logit_p=theta,
                        observed=np.broadcast_to(studies["events"].to_numpy(), (n_p, n_s)),
                        dims=("prior", "study"))
            pm.Deterministic("p_pooled", pm.math.invlogit(mu), dims=("prior", "fit"))
            pm.Deterministic("p_new", pm.math.invlogit(mu + tau * z_new), dims=("prior", "fit"))
        else:
            sei = pm.Data("sei", studies["sei"].to_numpy(), dims="study")
            pm.Normal("yi", mu=theta, sigma=sei[None, :],
                      observed=np.broadcast_to(studies["yi"].to_numpy(), (n_p, n_s)),
                      dims=("prior", "study"))
            pm.Deterministic("theta_new", mu + tau * z_new, dims=("prior", "fit"))
    return BayesModel(model=model, kind=kind, scale=scale, fits=fits, studies=studies,
                      priors=prior_sets, blocks=blocks)


_PARAM = "c"


def _start(studies, kind, fit_idx, n_f):
    if kind == PROPORTION:
        e = np.bincount(fit_idx, studies["events"], n_f)
        t = np.bincount(fit_idx, studies["total"], n_f)
        p = (e + 0.5) / (t + 1.0)
        return np.log(p / (1 - p))
    return np.bincount(fit_idx, studies["yi"], n_f) / np.bincount(fit_idx, minlength=n_f)


def _stored_vars(kind):
    return ["mu", "tau", "theta"] + (["p_pooled", "p_new"] if kind == PROPORTION else ["theta_new"])


# ----------------------------------------------------------------------------------------------
# Sampling
# ----------------------------------------------------------------------------------------------

def sample(bm, *, seed, chains=4, draws=2000, tune=1000, target_accept=0.9, cores=None, progressbar=False):
    """Sample a :class:`BayesModel` with NUTS; the same ``seed`` gives identical draws.

    Parameters
    ----------
    bm : BayesModel
    seed : int
        Seeds every chain's initial jitter and NUTS randomness (``pymc.sample(random_seed=)``).
    chains, draws, tune : int
        4 x 2000 draws gives bulk and tail ESS well above 1000 for these models (typically
        0.3-1 effective draws per draw for tau, the slowest parameter).
    target_accept : float
        NUTS step-size adaptation target (Hoffman & Gelman 2014, JMLR 15:1593).
    cores : int, optional
        Chains run in parallel processes; ``None`` lets PyMC choose (CPU count, at most 4).
    progressbar : bool

    Returns
    -------
    arviz.InferenceData
        ``posterior`` holds ``mu``, ``tau`` (dims ``prior, fit``), ``theta`` (``prior,
        study``), ``p_pooled``, ``p_new`` (proportions) or ``theta_new`` (medians);
        ``sample_stats`` adds ``diverging_fit`` (``chain, draw, prior, fit``: the fit a
        divergent transition is attributed to, see :func:`attribute_divergences`) and
        ``diverging_unattributed``; ``constant_data`` holds ``k``, ``fit_index`` and the
        data. Attributes ``singlearm_kind``, ``singlearm_scale``, ``singlearm_priors`` (JSON)
        and ``singlearm_sampler`` (JSON) make the file self-describing.

    Notes
    -----
    R equivalent: ``brms::brm(..., chains = 4, iter = 3000, warmup = 1000, seed = seed,
    control = list(adapt_delta = 0.9))``.
    """
    settings = {"seed": int(seed), "chains": int(chains), "draws": int(draws), "tune": int(tune),
                "target_accept": float(target_accept)}
    with bm.model:
        idata = pm.sample(draws=draws, tune=tune, chains=chains, cores=cores, random_seed=seed,
                          target_accept=target_accept, progressbar=progressbar,
                          var_names=_stored_vars(bm.kind), keep_warning_stat=True,
                          compute_convergence_checks=False, idata_kwargs={"log_likelihood": False})
    by_fit, unattributed = attribute_divergences(bm, idata)
    idata = pm.drop_warning_stat(idata)
    idata.sample_stats["diverging_fit"] = by_fit
    idata.sample_stats["diverging_unattributed"] = unattributed
    study_fit = ("study", bm.studies["fit"].to_numpy())
    for group in ("posterior", "constant_data", "observed_data"):
        ds = getattr(idata, group)
        if "study" in ds.dims:
            setattr(idata, group, ds.assign_coords(study_fit=study_fit))
    idata.posterior.attrs.update({
        "singlearm_kind": bm.kind, "singlearm_scale": bm.scale,
        "singlearm_priors": json.dumps(bm.priors), "singlearm_sampler": json.dumps(settings)})
    return idata


def _block_logp_fn(bm):
    """Compiled function: point (value variables) -> log density of each (prior, fit) block."""
    model = bm.model
    n_p, n_f = len(model.coords["prior"]), len(model.coords["fit"])
    rvs = model.free_RVs + model.observed_RVs
    block = pt.zeros((n_p * n_f,))
    for rv, term in zip(rvs, model.logp(vars=rvs, sum=False)):
        name = model.rvs_to_values[rv].name if rv in model.rvs_to_values else rv.name
        # Per-study terms (z, the data) are summed into their fit's block.
        index = bm.blocks["z" if name in ("events", "yi") else name].ravel()
        block = pt.inc_subtensor(block[index], term.ravel())
    return model.compile_fn(block, inputs=model.value_vars, point_fn=True)


def attribute_divergences(bm, idata):
    """Attribute each divergent transition of the joint model to the fit that caused it.

    The joint model's Hamiltonian is a sum over (prior, fit) blocks, H = sum_f [-log p_f(q_f)
    + p_f' M_f^-1 p_f / 2], because the blocks share no parameter and PyMC's adapted mass
    matrix is diagonal. Leapfrog integration of a separable Hamiltonian is the product of
    per-block leapfrog integrations with a shared step size, so the energy error that makes
    NUTS flag a divergence is a sum of per-block energy errors. For every divergent
    transition PyMC keeps the last finite state and the divergent state one leapfrog step
    later (``SamplerWarning.divergence_info``); the divergence is attributed to the block
    whose energy rose most over that step. Divergences that cannot be attributed (PyMC keeps
    states only for the first 99 per chain; an integration error leaves no divergent state)
    are returned separately, and :func:`diagnose` charges them to every fit.

    A divergence biases only the block that caused it: for the other blocks the early end of
    the trajectory is a random trajectory length that does not depend on their state, which
    leaves their target distribution invariant.

    Parameters
    ----------
    bm : BayesModel
    idata : arviz.InferenceData
        From ``pymc.sample(keep_warning_stat=True)``.

    Returns
    -------
    diverging_fit : xarray.DataArray of bool, dims (chain, draw, prior, fit)
    unattributed : xarray.DataArray of bool, dims (chain, draw)
    """
    stats = idata.sample_stats
    diverging = stats["diverging"].values.astype(bool)
    n_p, n_f = len(bm.model.coords["prior"]), len(bm.model.coords["fit"])
    by_fit = np.zeros(diverging.shape + (n_p * n_f,), dtype=bool)
    unattributed = diverging.copy()
    if diverging.any() and "warning" in stats:
        logp_fn = _block_logp_fn(bm)
        warnings = stats["warning"].values
        for c, d in zip(*np.nonzero(diverging)):
            info = getattr(warnings[c, d], "divergence_info", None)
            if info is None or info.state is None or info.state_div is None:
                continue
            energy = []
            for state in (info.state, info.state_div):
                element = np.zeros(n_p * n_f)
                start = 0
                for name, shape, size, _ in state.q.point_map_info:
                    np.add.at(element, bm.blocks[name].ravel(),
                              0.5 * state.p[start:start + size] * state.v[start:start + size])
                    start += size
                energy.append(element - logp_fn(DictToArrayBijection.rmap(state.q)))
            rise = np.nan_to_num(energy[1] - energy[0], nan=np.inf)
            by_fit[c, d, int(np.argmax(rise))] = True
            unattributed[c, d] = False
    dims = ("chain", "draw")
    coords = {dim: stats.coords[dim].values for dim in dims}
    by_fit = xr.DataArray(by_fit.reshape(diverging.shape + (n_p, n_f)), dims=dims + ("prior", "fit"),
                          coords={**coords, "prior": list(bm.model.coords["prior"]),
                                  "fit": list(bm.model.coords["fit"])})
    return by_fit, xr.DataArray(unattributed, dims=dims, coords=coords)


# ----------------------------------------------------------------------------------------------
# Diagnostics and the gate
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SamplerSettings:
    """Sampler settings and convergence thresholds of the gate (config: ``bayes:``).

    Thresholds follow Vehtari et al. (2021), "Rank-normalization, folding, and
    localization: an improved R-hat", Bayesian Anal 16:667: R-hat <= 1.01, and bulk and tail
    ESS large enough for stable 95% intervals; here >= 1000 so that the Monte-Carlo error of
    a 2.5% quantile is small against its posterior SD.
    """

    seed: int = 20251121
    chains: int = 4
    draws: int = 2000
    tune: int = 1000
    target_accept: float = 0.9
    cores: int | None = None
    retry_target_accept: float = 0.99
    retry_tune: int | None = None  # None: 3 x tune
    rhat_max: float = 1.01
    ess_bulk_min: float = 1000.0
    ess_tail_min: float = 1000.0
    max_divergences: int = 0

    @classmethod
    def from_mapping(cls, settings):
        """Settings from a config mapping; unknown keys are an error, missing ones default."""
        if settings is None:
            return cls()
        if isinstance(settings, cls):
            return settings
        known = {f.name for f in fields(cls)}
        unknown = set(settings) - known
        if unknown:
            raise ValueError(f"sampler settings: unknown key(s) {sorted(unknown)}; expected some of {sorted(known)}")
        return cls(**settings)


def diagnose(idata, *, rhat_max=1.01, ess_bulk_min=1000.0, ess_tail_min=1000.0, max_divergences=0):
    """Per-fit convergence diagnostics and whether each fit passes the gate.

    For each fit (and prior set): the largest rank-normalised split R-hat and the smallest
    bulk and tail ESS (Vehtari et al. 2021, Bayesian Anal 16:667) over ``mu``, ``tau``, the
    fit's study effects ``theta`` and its predictive node (``p_new`` / ``theta_new``, which
    the prediction interval is read from), and the number of divergent transitions: those
    attributed to the fit (:func:`attribute_divergences`) plus the unattributed ones, which
    are charged to every fit because they cannot be ruled out for any.

    Parameters
    ----------
    idata : arviz.InferenceData
        From :func:`sample`.
    rhat_max, ess_bulk_min, ess_tail_min, max_divergences : float
        Gate thresholds.

    Returns
    -------
    pandas.DataFrame
        ``fit, prior, k, rhat_max, ess_bulk_min, ess_tail_min, divergences,
        divergences_total, passed, failures`` (text naming each failing diagnostic and value).

    Notes
    -----
    R equivalent: ``posterior::summarise_draws(draws, "rhat", "ess_bulk", "ess_tail")`` and
    ``rstan::get_num_divergent(fit)``.
    """
    post = idata.posterior
    names = [v for v in ("mu", "tau", "theta", "p_new", "theta_new") if v in post]
    sub = post[names]
    rhat, bulk, tail = az.rhat(sub), az.ess(sub, method="bulk"), az.ess(sub, method="tail")

    def per_fit(ds, how):
        out = None
        for name in names:
            arr = ds[name]
            if "study" in arr.dims:
                grouped = arr.groupby(xr.DataArray(post["study_fit"].values, dims="study", name="fit"))
                arr = getattr(grouped, how)().reindex(fit=post["fit"].values)
            out = arr if out is None else (np.fmax(out, arr) if how == "max" else np.fmin(out, arr))
        return out.transpose("prior", "fit").values

    r, b, t = per_fit(rhat, "max"), per_fit(bulk, "min"), per_fit(tail, "min")
    stats = idata.sample_stats
    total = int(stats["diverging"].sum())
    if "diverging_fit" in stats:
        div = stats["diverging_fit"].sum(("chain", "draw")).transpose("prior", "fit").values \
            + int(stats["diverging_unattributed"].sum())
    else:  # not sampled by `sample`: no attribution, every fit carries all divergences
        div = np.full(r.shape, total)
    k = idata.constant_data["k"].sel(fit=post["fit"].values).values
    rows = []
    for i, prior in enumerate(post["prior"].values):
        for j, fit in enumerate(post["fit"].values):
            why = []
            if not r[i, j] <= rhat_max:
                why.append(f"rhat_max {r[i, j]:.4f} > {rhat_max}")
            if not b[i, j] >= ess_bulk_min:
                why.append(f"ess_bulk_min {b[i, j]:.0f} < {ess_bulk_min:g}")
            if not t[i, j] >= ess_tail_min:
                why.append(f"ess_tail_min {t[i, j]:.0f} < {ess_tail_min:g}")
            if div[i, j] > max_divergences:
                why.append(f"divergences {int(div[i, j])} > {max_divergences}")
            rows.append({"fit": str(fit), "prior": str(prior), "k": int(k[j]), "rhat_max": float(r[i, j]),
                         "ess_bulk_min": float(b[i, j]), "ess_tail_min": float(t[i, j]),
                         "divergences": int(div[i, j]), "divergences_total": total, "passed": not why,
                         "failures": f"fit {fit!r} (prior {prior!r}): " + "; ".join(why) if why else ""})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class GatedFit:
    """A posterior that passed the convergence gate.

    Attributes
    ----------
    idata : arviz.InferenceData
        The accepted attempt's posterior (save with ``idata.to_netcdf``).
    diagnostics : pandas.DataFrame
        :func:`diagnose` of the accepted attempt.
    attempts : tuple of dict
        Settings and number of failing fits of every attempt, in order.
    model : BayesModel
    """

    idata: az.InferenceData
    diagnostics: pd.DataFrame
    attempts: tuple
    model: BayesModel

    @property
    def retried(self):
        """Whether the first attempt failed the gate."""
        return len(self.attempts) > 1


def fit_with_gate(data, priors=None, settings=None, *, kind=None, scale=IDENTITY, source="analysis data"):
    """Build, sample and check every fit; retry once with careful settings; else raise.

    Attempt 1 uses ``settings``; if any fit fails R-hat, bulk/tail ESS or divergence
    thresholds, the whole joint model is sampled again with ``retry_target_accept``
    (smaller steps, fewer divergences) and ``retry_tune`` warm-up iterations (better
    adapted step size and mass matrix), from seed + 1 so the retry does not replay the first
    attempt's initial points. Re-sampling the whole model rather than only the failing fits
    keeps one coherent, reproducible run per posterior file; the model is not rebuilt, and
    PyTensor's cache makes the second compile quick.

    Parameters
    ----------
    data, priors, kind, scale, source
        As :func:`build_model`.
    settings : SamplerSettings or dict, optional
        Sampler settings and thresholds (:class:`SamplerSettings`).

    Returns
    -------
    GatedFit

    Raises
    ------
    ConvergenceError
        Naming every failing fit and diagnostic, with values, after the retry.

    Notes
    -----
    R equivalent: ``brms::brm(...)`` then ``update(fit, control = list(adapt_delta = 0.99),
    warmup = 3000)`` if ``rhat``, ``neff_ratio`` or ``nuts_params`` flag problems.
    """
    s = SamplerSettings.from_mapping(settings)
    bm = build_model(data, priors, kind=kind, scale=scale, source=source)
    thresholds = {"rhat_max": s.rhat_max, "ess_bulk_min": s.ess_bulk_min, "ess_tail_min": s.ess_tail_min,
                  "max_divergences": s.max_divergences}
    plans = [{"seed": s.seed, "chains": s.chains, "draws": s.draws, "tune": s.tune, "target_accept": s.target_accept},
             {"seed": s.seed + 1, "chains": s.chains, "draws": s.draws,
              "tune": s.retry_tune if s.retry_tune is not None else 3 * s.tune,
              "target_accept": s.retry_target_accept}]
    attempts = []
    for plan in plans:
        idata = sample(bm, cores=s.cores, **plan)
        diag = diagnose(idata, **thresholds)
        attempts.append({**plan, "failing_fits": int((~diag["passed"]).sum())})
        if diag["passed"].all():
            return GatedFit(idata=idata, diagnostics=diag, attempts=tuple(attempts), model=bm)
    raise ConvergenceError(diag[~diag["passed"]].reset_index(drop=True), tuple(attempts), idata)


# ----------------------------------------------------------------------------------------------
# Summary
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BayesSummary:
    """Per-fit posterior summaries and exceedance probabilities.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per fit x prior; see :func:`summarise`.
    probabilities : pandas.DataFrame
        Long form ``fit, prior, threshold, probability``: P(pooled rate > threshold | data).
    """

    table: pd.DataFrame
    probabilities: pd.DataFrame

    def summary_frame(self):
        """The per-fit table."""
        return self.table


def summarise(idata, *, level=0.95, thresholds=(), diagnostics=None):
    """Posterior summaries per fit (x prior), on the reporting scale.

    ``estimate`` is the posterior median of the pooled value (invlogit(mu) for proportions;
    mu for medians, exp(mu) on the log scale), ``ci_low, ci_high`` its equal-tailed
    ``level`` credible interval, ``pi_low, pi_high`` the equal-tailed interval of the
    posterior-predictive ``p_new`` / ``theta_new`` (the true value in a new study; Higgins,
    Thompson & Spiegelhalter 2009). Quantiles commute with the monotone back-transforms, so
    they are the back-transformed quantiles of mu. ``tau2`` is the posterior median of tau^2
    and ``tau_median`` of tau; ``mu_mean, mu_sd`` are on the model scale (logit, months or
    log-months).

    Parameters
    ----------
    idata : arviz.InferenceData
        From :func:`sample` or :func:`fit_with_gate` (or loaded back from NetCDF).
    level : float
        Credible/prediction level.
    thresholds : sequence of float
        Values t (rates, or medians in months) for P(pooled > t | data).
    diagnostics : pandas.DataFrame, optional
        :func:`diagnose` output to join; computed with default thresholds when omitted.

    Returns
    -------
    BayesSummary

    Notes
    -----
    R equivalent: ``bayesmeta::bayesmeta(...)$summary`` (median, 95% interval, prediction).
    """
    if not 0 < level < 1:
        raise ValueError(f"level: got {level!r}; expected a probability between 0 and 1")
    post = idata.posterior
    kind, scale = post.attrs["singlearm_kind"], post.attrs["singlearm_scale"]
    back = np.exp if (kind == MEDIAN and scale == LOG) else (lambda x: x)

    def draws(name):  # (prior, fit, sample)
        return post[name].stack(sample=("chain", "draw")).transpose("prior", "fit", "sample").values

    mu, tau = draws("mu"), draws("tau")
    pooled = draws("p_pooled") if kind == PROPORTION else back(mu)
    new = draws("p_new") if kind == PROPORTION else back(draws("theta_new"))
    a = (1 - level) / 2
    q_pooled = np.quantile(pooled, [a, 0.5, 1 - a], axis=-1)
    q_new = np.quantile(new, [a, 1 - a], axis=-1)
    priors, fits = post["prior"].values, post["fit"].values
    k = idata.constant_data["k"].sel(fit=fits).values
    rows, probs = [], []
    for i, prior in enumerate(priors):
        for j, fit in enumerate(fits):
            rows.append({"fit": str(fit), "prior": str(prior), "k": int(k[j]),
                         "estimate": q_pooled[1, i, j], "ci_low": q_pooled[0, i, j], "ci_high": q_pooled[2, i, j],
                         "pi_low": q_new[0, i, j], "pi_high": q_new[1, i, j],
                         "tau2": float(np.median(tau[i, j] ** 2)), "tau_median": float(np.median(tau[i, j])),
                         "mu_mean": float(mu[i, j].mean()), "mu_sd": float(mu[i, j].std(ddof=1))})
            for t in thresholds:
                probs.append({"fit": str(fit), "prior": str(prior), "threshold": float(t),
                              "probability": float(np.mean(pooled[i, j] > t))})
    table = pd.DataFrame(rows)
    diag = diagnose(idata) if diagnostics is None else diagnostics
    keep = ["fit", "prior", "rhat_max", "ess_bulk_min", "ess_tail_min", "divergences", "passed"]
    table = table.merge(diag[keep], on=["fit", "prior"], how="left")
    probabilities = pd.DataFrame(probs, columns=["fit", "prior", "threshold", "probability"])
    return BayesSummary(table=table, probabilities=probabilities)


__all__ = [
    "BayesModel", "BayesSummary", "ConvergenceError", "GatedFit", "SamplerSettings",
    "attribute_divergences", "build_model", "default_priors", "describe_prior", "diagnose",
    "fit_with_gate", "resolve_priors", "sample", "sensitivity_priors", "summarise",
]
