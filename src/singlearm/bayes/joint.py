"""Bayesian random-effects meta-analysis of many small single-arm meta-analyses at once.

The Bayesian counterpart of the frequentist pooling stage. A review yields dozens of small
meta-analyses ("fits": one outcome x subgroup, typically k = 1..16 studies); each is an
independent random-effects model, but all of them, proportions and medians alike, go into
ONE PyMC model as independent blocks, so the model is compiled once and sampled in one run.
The blocks share no parameter, so the joint posterior is the product of the per-fit
posteriors: every fit's posterior is exactly what it would be if it were sampled alone.

Stages, kept apart as in metafor (effect sizes -> fit -> back-transform when reporting):

``build_model``
    data frame (one row per study) -> :class:`BayesModel`. Proportions: binomial-normal on
    the logit scale; medians: normal-normal with known standard errors.
``sample``
    :class:`BayesModel` -> ``arviz.InferenceData`` with coordinates ``prior``, ``fit`` and
    ``study`` (``"fit/study"`` labels), reproducible from ``seed``.
``diagnose`` / ``fit_with_gate``
    per-fit R-hat, bulk and tail ESS and divergences; the gate re-samples once with a
    higher ``target_accept``, longer tuning and more draws, then raises
    :class:`ConvergenceError`.
``summarise``
    posterior medians, 95% credible and prediction intervals, tau^2 and P(value > t).

Prior sensitivity needs no second model or run: several prior sets are replicated along a
``prior`` dimension inside the one model (:func:`sensitivity_priors`).

Saving is the caller's: ``idata.to_netcdf(path)``. ``idata.posterior.sel(fit=...)`` selects
one fit; the non-index coordinates ``fit_kind`` (on ``fit``) and ``study_fit`` (on
``study``) say what kind a fit is and which fit a study belongs to.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytensor.tensor as pt
import xarray as xr
from pymc.blocking import DictToArrayBijection
from scipy import special

from ..errors import DataError

PROPORTION, MEDIAN = "proportion", "median"
KINDS = (PROPORTION, MEDIAN)
IDENTITY, LOG = "identity", "log"

# Parameters each supported prior family takes (PyMC's own parameter names).
_MU_DISTS = {"normal": ("mu", "sigma")}
_TAU_DISTS = {"halfnormal": ("sigma",), "halfcauchy": ("beta",)}
_SHORT = {"normal": "N", "halfnormal": "HN", "halfcauchy": "HC"}

# Default mu prior and tau (half-normal) scale per (kind, scale); reasons in default_priors.
_DEFAULTS = {
    (PROPORTION, IDENTITY): ({"dist": "normal", "mu": 0.0, "sigma": 2.5}, 1.0),
    (MEDIAN, IDENTITY): ({"dist": "normal", "mu": 0.0, "sigma": 100.0}, 5.0),
    (MEDIAN, LOG): ({"dist": "normal", "mu": 0.0, "sigma": 10.0}, 0.5),
}
DEFAULT_LABEL, USER_LABEL = "default", "user"


class ConvergenceError(RuntimeError):
    """The sampler did not pass the convergence gate, even after its one retry.

    Attributes
    ----------
    failures : pandas.DataFrame
        The failing rows of :func:`diagnose` (one per fit x prior) of the last attempt.
    attempts : tuple of dict
        Settings and number of failing fits of every attempt, in order.
    idata : arviz.InferenceData
        The last attempt's posterior, so the caller can save it and look.
    """

    def __init__(self, failures, attempts, idata):
        self.failures, self.attempts, self.idata = failures, attempts, idata
        last = attempts[-1]
        super().__init__(
            f"{len(failures)} fit(s) failed the convergence gate after {len(attempts)} attempts "
            f"(last: target_accept={last['target_accept']}, tune={last['tune']}, draws={last['draws']}):\n"
            + "\n".join(f"  {why}" for why in failures["failures"])
            + "\nMore draws (setting 'draws') or a more informative tau prior for the fits named usually help."
        )


# ----------------------------------------------------------------------------------------------
# Priors
# ----------------------------------------------------------------------------------------------

def default_priors(kind=PROPORTION, scale=IDENTITY):
    """Default weakly informative priors for the overall mean ``mu`` and heterogeneity ``tau``.

    * Proportions (logit scale): mu ~ Normal(0, 2.5), tau ~ Half-Normal(1). Normal(0, 2.5)
      on the logit puts 95% of its mass on pooled rates between 0.7% and 99.3% (the scale
      Gelman et al. 2008, Ann Appl Stat 2:1360, recommend for logistic coefficients).
      Half-Normal(1) for tau is a weakly informative choice of Röver et al. (2021), "On weakly
      informative prior distributions for the heterogeneity parameter in Bayesian
      random-effects meta-analysis", Res Synth Methods 12:448-474: median 0.67 (study odds
      varying by a factor ~2 around the pooled odds), 95% below 2 (extreme heterogeneity on
      the logit scale). A half-normal rather than an inverse-gamma or "vague" prior follows
      Gelman (2006), Bayesian Anal 1:515-534: with few studies, which is the rule here, the
      latter are far from uninformative.
    * Medians in months (``scale="identity"``): mu ~ Normal(0, 100) months, within 16% of
      flat over 0-60 months, so the pooled median is the data's; tau ~ Half-Normal(5) months:
      median 3.4, 95% below 10 months, i.e. between-study SDs the size of the spread of
      median PFS/OS across trials of one drug are plausible and SDs of years are not.
    * Medians in log-months (``scale="log"``): mu ~ Normal(0, 10); tau ~ Half-Normal(0.5),
      Röver et al.'s choice for log ratio scales: a log-median is a log ratio to 1 month,
      and under exponential survival a log ratio of medians is minus a log hazard ratio.

    Parameters
    ----------
    kind : {"proportion", "median"}
    scale : {"identity", "log"}
        Scale of ``yi`` for medians; proportions are always modelled on the logit scale.

    Returns
    -------
    dict
        ``{"mu": {...}, "tau": {...}}``, the form :func:`build_model` takes.

    Notes
    -----
    R equivalent: ``bayesmeta::bayesmeta(y, sigma, mu.prior.mean = 0, mu.prior.sd = 2.5,
    tau.prior = function(t) dhalfnormal(t, scale = 1))``.
    """
    key = (kind, IDENTITY if kind == PROPORTION else scale)
    if key not in _DEFAULTS:
        raise ValueError(f"no default priors for kind={kind!r}, scale={scale!r}; expected kind in "
                         f"{KINDS} and scale in ('identity', 'log')")
    mu, tau_scale = _DEFAULTS[key]
    return {"mu": dict(mu), "tau": {"dist": "halfnormal", "sigma": tau_scale}}


def sensitivity_priors(scale=IDENTITY):
    """Prior sets for a tau sensitivity analysis: Half-Normal(s/2), Half-Normal(s), Half-Cauchy(s).

    ``s`` is the default tau scale of each kind (1 on the logit scale, 5 months, 0.5
    log-months); mu keeps its default. On the logit scale these are Röver et al.'s (2021)
    Half-Normal(0.5) and Half-Normal(1) and the heavy-tailed Half-Cauchy(1) of Gelman (2006).

    Parameters
    ----------
    scale : {"identity", "log"}
        Scale of the medians.

    Returns
    -------
    dict
        Label (``"tau~HN(s/2)"``, ``"tau~HN(s)"``, ``"tau~HC(s)"``) -> ``{kind: prior set}``;
        pass it as ``priors`` to :func:`build_model` to fit every fit under every set in one
        model. :func:`summarise` reports each fit's actual priors.

    Notes
    -----
    R equivalent: one ``bayesmeta::bayesmeta`` call per ``tau.prior``.
    """
    out = {}
    for label, dist, factor in (("tau~HN(s/2)", "halfnormal", 0.5), ("tau~HN(s)", "halfnormal", 1.0),
                                ("tau~HC(s)", "halfcauchy", 1.0)):
        out[label] = {}
        for kind in KINDS:
            base = default_priors(kind, scale)
            s = base["tau"]["sigma"] * factor
            param = "sigma" if dist == "halfnormal" else "beta"
            out[label][kind] = {"mu": base["mu"], "tau": {"dist": dist, param: s}}
    return out


def describe_prior(spec):
    """Short text of a prior set, e.g. ``"mu~N(0, 2.5), tau~HN(1)"``."""
    return f"mu~{_describe_one(spec['mu'])}, tau~{_describe_one(spec['tau'])}"


def _describe_one(one):
    params = _MU_DISTS.get(one["dist"]) or _TAU_DISTS[one["dist"]]
    return f"{_SHORT[one['dist']]}({', '.join(f'{float(one[p]):g}' for p in params)})"


def _check_part(part, which, families):
    if not isinstance(part, Mapping) or part.get("dist") not in families:
        raise ValueError(f"prior for {which}: got {part!r}; expected a dict with 'dist' one of {sorted(families)}")
    need = families[part["dist"]]
    if set(part) != {"dist", *need}:
        raise ValueError(f"prior for {which} ({part['dist']}): got keys {sorted(part)}; expected "
                         f"exactly 'dist' and {list(need)}")
    out = {"dist": part["dist"]}
    for p in need:
        value = float(part[p])
        if not np.isfinite(value) or (p in ("sigma", "beta") and value <= 0):
            raise ValueError(f"prior for {which}: {p}={part[p]!r}; expected a finite number"
                             + (" > 0" if p in ("sigma", "beta") else ""))
        out[p] = value
    return out


def _is_set(x):
    return isinstance(x, Mapping) and x and set(x) <= {"mu", "tau"}


def _is_per_kind(x):
    return isinstance(x, Mapping) and x and set(x) <= set(KINDS)


def resolve_priors(priors, kinds=KINDS, scale=IDENTITY):
    """Normalise ``priors`` to ``{label: {kind: {"mu": {...}, "tau": {...}}}}``.

    Parameters
    ----------
    priors : None or dict
        ``None``: the defaults (:func:`default_priors`), labelled ``"default"``.
        ``{"mu": {...}, "tau": {...}}``: one prior set for every fit, labelled ``"user"``
        (only when all fits are of one kind: logit and month scales need different priors);
        either part may be left out and keeps its default.
        ``{"proportion": {...}, "median": {...}}``: one set per kind, labelled ``"user"``.
        ``{label: <either form above>}``: several sets, each fitted as its own replicate
        (prior sensitivity; :func:`sensitivity_priors`).
        A prior is ``{"dist": "normal", "mu": m, "sigma": s}`` for mu, and
        ``{"dist": "halfnormal", "sigma": s}`` or ``{"dist": "halfcauchy", "beta": b}`` for tau.
    kinds : sequence of str
        Kinds of the fits in the model.
    scale : {"identity", "log"}
        Scale of the medians (chooses their defaults).

    Returns
    -------
    dict
        Label -> kind -> complete, validated prior set, in the order given.
    """
    kinds = [k for k in KINDS if k in set(kinds)]
    if priors is None:
        sets = {DEFAULT_LABEL: {}}
    elif _is_set(priors) or _is_per_kind(priors):
        sets = {USER_LABEL: priors}
    elif isinstance(priors, Mapping) and priors:
        sets = dict(priors)
    else:
        raise ValueError(f"priors: got {priors!r}; expected None, {{'mu': ..., 'tau': ...}}, "
                         f"{{'proportion': ..., 'median': ...}} or {{label: one of these}}")
    out = {}
    for label, spec in sets.items():
        if spec == {}:
            spec = {kind: {} for kind in kinds}
        if _is_set(spec):
            if len(kinds) > 1:
                raise ValueError(f"prior set {label!r}: one set {spec!r} for both proportion (logit) and "
                                 f"median fits; give {{'proportion': {{...}}, 'median': {{...}}}}")
            spec = {kinds[0]: spec}
        if not _is_per_kind(spec):
            raise ValueError(f"prior set {label!r}: got {spec!r}; expected {{'mu': ..., 'tau': ...}} or "
                             f"{{'proportion': ..., 'median': ...}}")
        out[str(label)] = {}
        for kind in kinds:
            base, given = default_priors(kind, scale), spec.get(kind, {})
            if not isinstance(given, Mapping) or set(given) - {"mu", "tau"}:
                raise ValueError(f"prior set {label!r}, {kind}: got {given!r}; expected keys 'mu' and/or 'tau'")
            out[str(label)][kind] = {"mu": _check_part(given.get("mu", base["mu"]), "mu", _MU_DISTS),
                                     "tau": _check_part(given.get("tau", base["tau"]), "tau", _TAU_DISTS)}
    return out


# ----------------------------------------------------------------------------------------------
# Data and model
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BayesModel:
    """A built, not yet sampled, joint model of many independent random-effects meta-analyses.

    Attributes
    ----------
    model : pymc.Model
        Coordinates ``prior``, ``fit``, ``study`` (and ``proportion_study``,
        ``median_study`` for the observed data); see :func:`build_model`.
    scale : {"identity", "log"}
        Scale of the medians' ``yi``.
    fits : pandas.DataFrame
        One row per fit, in model order (proportion fits first): ``fit``, ``kind``, ``k``.
    studies : pandas.DataFrame
        One row per study, in model order: ``fit``, ``study``, ``label`` (``"fit/study"``),
        ``kind``, ``events``, ``total``, ``yi``, ``sei`` (NaN where not of that kind).
    priors : dict
        Label -> kind -> prior set, in the order of the ``prior`` coordinate.
    """

    model: pm.Model
    scale: str
    fits: pd.DataFrame
    studies: pd.DataFrame
    priors: dict
    # Each log-density term's name -> the (prior, fit) block of each of its elements, as the
    # flat index prior * n_fit + fit; used to attribute divergences to fits.
    blocks: dict = field(repr=False)


def _row_of(data, pos):
    if "source_row" in data.columns and pd.notna(data["source_row"].iloc[pos]):
        return int(data["source_row"].iloc[pos])
    return pos + 2  # as a spreadsheet counts, if the frame was read straight from a CSV


def _column(data, name):
    if name in data.columns:
        return pd.to_numeric(data[name], errors="coerce").to_numpy(dtype=float), data[name].to_numpy()
    return np.full(len(data), np.nan), np.full(len(data), None)


def _check_data(data, kind, source):
    """Validate the rows; return each row's kind and the numeric columns."""
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
    for name in ("fit", "study"):
        if name not in data.columns:
            raise DataError(source, None, name, None,
                            "a column naming the fit (meta-analysis) and the study of each row")
    if not ({"events", "total"} <= set(data.columns) or {"yi", "sei"} <= set(data.columns)):
        raise DataError(source, None, "events/total or yi/sei", None,
                        "columns 'events' and 'total' (proportions) and/or 'yi' and 'sei' (medians)")
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind: got {kind!r}; expected one of {KINDS} or None")
    if len(data) == 0:
        raise DataError(source, None, None, None, "at least one study row")
    cols = {name: _column(data, name) for name in ("events", "total", "yi", "sei")}
    kinds = []
    for pos in range(len(data)):
        row = _row_of(data, pos)
        for name in ("fit", "study"):
            value = data[name].iloc[pos]
            if pd.isna(value) or str(value).strip() == "":
                raise DataError(source, row, name, value, "a non-empty id")
        given = {name: not pd.isna(cols[name][1][pos]) for name in cols}
        is_prop, is_med = given["events"] or given["total"], given["yi"] or given["sei"]
        if is_prop == is_med:
            raise DataError(source, row, "events/total/yi/sei", None,
                            "either events and total (a proportion) or yi and sei (a median), not both or neither")
        this = PROPORTION if is_prop else MEDIAN
        if kind is not None and this != kind:
            raise DataError(source, row, "events" if is_prop else "yi", None, f"a {kind} row (kind={kind!r})")
        for name in (("events", "total") if is_prop else ("yi", "sei")):
            value, raw = cols[name][0][pos], cols[name][1][pos]
            integer = is_prop
            if not np.isfinite(value) or (integer and value != np.round(value)):
                raise DataError(source, row, name, raw, "a whole number" if integer else "a finite number")
        if is_prop:
            events, total = cols["events"][0][pos], cols["total"][0][pos]
            if total < 1:
                raise DataError(source, row, "total", cols["total"][1][pos], "a count >= 1")
            if not 0 <= events <= total:
                raise DataError(source, row, "events", cols["events"][1][pos],
                                f"a count between 0 and total ({int(total)})")
        elif cols["sei"][0][pos] <= 0:
            raise DataError(source, row, "sei", cols["sei"][1][pos], "a standard error > 0")
        kinds.append(this)
    kinds = np.array(kinds)
    fit = data["fit"].astype(str).to_numpy()
    label = fit + "/" + data["study"].astype(str).to_numpy()
    seen = {}
    for pos in range(len(data)):
        if label[pos] in seen:
            raise DataError(source, _row_of(data, pos), "study", data["study"].iloc[pos],
                            f"each study once per fit (fit {fit[pos]!r} lists it on row {seen[label[pos]]} too)")
        seen[label[pos]] = _row_of(data, pos)
    first = {}
    for pos in range(len(data)):
        if first.setdefault(fit[pos], (kinds[pos], pos))[0] != kinds[pos]:
            kind_0, pos_0 = first[fit[pos]]
            raise DataError(source, _row_of(data, pos), "fit", fit[pos],
                            f"one kind per fit (row {_row_of(data, pos_0)} makes it a {kind_0})")
    return kinds, {name: cols[name][0] for name in cols}


def build_model(data, priors=None, *, kind=None, scale=IDENTITY, source="analysis data"):
    """Build one PyMC model holding every fit of ``data`` as an independent random-effects block.

    Proportions, binomial-normal (a generalised linear mixed model) on the logit scale::

        events_i ~ Binomial(total_i, invlogit(theta_i)),  theta_i = mu[f_i] + tau[f_i] * z_i,
        z_i ~ N(0, 1),  p_pooled = invlogit(mu),  p_new = invlogit(mu + tau * z_new)

    Medians, normal-normal with known within-study standard errors::

        yi_i ~ N(theta_i, sei_i),  theta_i = mu[f_i] + tau[f_i] * z_i,  theta_new = mu + tau * z_new

    with ``z_new ~ N(0, 1)`` a model variable, so that ``theta_new = mu + tau * z_new`` (and
    ``p_new``) is the posterior-predictive true value of a new study, the basis of the
    prediction interval (Higgins, Thompson & Spiegelhalter 2009, J R Stat Soc A 172:137).
    The study effects are non-centred because with k <= 16 studies tau is weakly identified
    and the centred form has the funnel that makes NUTS diverge (Betancourt & Girolami
    2015, "Hamiltonian Monte Carlo for hierarchical models"). Two changes of variable, each
    leaving the posterior exactly as written above, make the sampler's job easier:

    * proportions are sampled in ``c = mu + tau * mean(z)`` (the fit's average study logit,
      which the data pin down) instead of mu: with k = 1 the (mu, tau, z) posterior is a thin
      curved ridge ``mu + tau * z ~ logit(events / total)`` that needed 2-4x the leapfrog
      steps and diverged. The shift has Jacobian 1.
    * medians have the study effects integrated out, ``yi ~ N(mu, sqrt(sei^2 + tau^2))``, and
      drawn from their exact conditional ``N(w yi + (1 - w) mu, w sei^2)``,
      ``w = tau^2 / (tau^2 + sei^2)``; mu is sampled standardised by its exact conditional
      given tau (the decomposition bayesmeta integrates numerically), so NUTS explores one
      hard dimension, tau, per fit.

    The stored posterior has ``mu``, ``tau`` (dims ``prior, fit``), ``theta`` (``prior,
    study``), ``theta_new`` (model scale) and ``p_pooled``, ``p_new``: the pooled and new-study
    value on the reporting scale, i.e. invlogit for proportion fits and the median in
    months (exp of log-months) for median fits.

    Every prior set in ``priors`` gets its own replicate of every block along the ``prior``
    dimension (the data repeated): one compile, one sampling run.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per study: ``fit`` (id of the meta-analysis, e.g. ``"orr|overall"``),
        ``study``, and either ``events``, ``total`` (a proportion) or ``yi``, ``sei`` (a
        median); a frame may hold both kinds, one kind per fit. An optional ``source_row``
        column points errors at the spreadsheet row.
    priors : None or dict
        See :func:`resolve_priors`; defaults in :func:`default_priors`.
    kind : {"proportion", "median"}, optional
        Require every row to be of this kind.
    scale : {"identity", "log"}
        Scale of ``yi`` (months or log-months); chooses the medians' default priors and how
        they are reported.
    source : str
        Name of the data in error messages.

    Returns
    -------
    BayesModel

    Notes
    -----
    R equivalent: per proportion fit ``brms::brm(events | trials(total) ~ 1 + (1 | study),
    family = binomial, prior = c(prior(normal(0, 2.5), class = Intercept),
    prior(normal(0, 1), class = sd)))`` (frequentist: ``metafor::rma.glmm(measure = "PLO")``);
    per median fit ``bayesmeta::bayesmeta(y = yi, sigma = sei, mu.prior.mean = 0,
    mu.prior.sd = 100, tau.prior = function(t) dhalfnormal(t, scale = 5))``.
    """
    row_kind, values = _check_data(data, kind, source)
    if scale not in (IDENTITY, LOG):
        raise ValueError(f"scale: got {scale!r}; expected 'identity' (months) or 'log' (log-months)")
    prior_sets = resolve_priors(priors, set(row_kind), scale)

    fit_of_row = data["fit"].astype(str).to_numpy()
    # Proportion fits first, each kind in order of first appearance; studies grouped by fit.
    fit_ids = [f for kind_ in KINDS for f in pd.unique(fit_of_row[row_kind == kind_])]
    fit_pos = {f: i for i, f in enumerate(fit_ids)}
    order = np.argsort([fit_pos[f] for f in fit_of_row], kind="stable")
    studies = pd.DataFrame({"fit": fit_of_row[order], "study": data["study"].astype(str).to_numpy()[order]})
    studies["label"] = studies["fit"] + "/" + studies["study"]
    studies["kind"] = row_kind[order]
    for name, arr in values.items():
        studies[name] = arr[order]
    fit_idx = studies["fit"].map(fit_pos).to_numpy()
    k = np.bincount(fit_idx, minlength=len(fit_ids))
    fit_kind = studies.drop_duplicates("fit")["kind"].to_numpy()
    fits = pd.DataFrame({"fit": fit_ids, "kind": fit_kind, "k": k})

    labels = list(prior_sets)
    n_p, n_f, n_s = len(labels), len(fit_ids), len(studies)
    f_p, s_p = int((fit_kind == PROPORTION).sum()), int((studies["kind"] == PROPORTION).sum())
    spec = [[prior_sets[label][fit_kind[f]] for f in range(n_f)] for label in labels]
    mu_loc = np.array([[s["mu"]["mu"] for s in row] for row in spec])
    mu_sd = np.array([[s["mu"]["sigma"] for s in row] for row in spec])

    # The log density is written on flat vectors (index prior * n + i), because with small
    # arrays PyTensor's cost is per operation, not per element: 2-d broadcasting added a
    # reshuffle around every operation, and 2-d indexing (and dot, lacking a BLAS) have no C
    # gradient, which tripled the cost of a gradient.
    n_m, s_m = n_f - f_p, n_s - s_p
    rep = np.arange(n_p)[:, None]
    cell = rep * n_f + np.arange(n_f)[None, :]           # (prior, fit) -> block
    local_p = (rep * f_p + fit_idx[None, :s_p]).ravel()   # proportion study -> (prior, proportion fit)
    local_m = (rep * n_m + fit_idx[None, s_p:] - f_p).ravel()
    blocks = {"z_new": cell, "c": cell[:, :f_p], "u": cell[:, f_p:],
              "mu_prior_p": cell[:, :f_p], "mu_prior_m": cell[:, f_p:],
              "z_p": cell[:, fit_idx[:s_p]], "events": cell[:, fit_idx[:s_p]],
              "z_m": cell[:, fit_idx[s_p:]], "yi": cell[:, fit_idx[s_p:]]}
    coords = {"prior": labels, "fit": fit_ids, "study": studies["label"].tolist(),
              "proportion_study": studies["label"].tolist()[:s_p], "median_study": studies["label"].tolist()[s_p:]}
    mu_loc, mu_sd = mu_loc.ravel(), mu_sd.ravel()

    # Every data-dependent array and size enters the graph as a shared variable, never as a
    # constant: PyTensor's compiled-code cache keys on constants' values and static shapes,
    # so with constants every new data set (every test, every subset) recompiled most of the
    # C code (5-10 s); with shared variables the code compiled once serves any data.
    def shared(x, dtype=None):
        return pytensor.shared(np.asarray(x, dtype=dtype))

    def length(n):
        return pytensor.shared(np.int64(n))

    def segment_sum(x, index, n):
        return pt.zeros(n)[index].inc(x)

    # check_bounds=False: every parameter is unconstrained or made positive by its transform
    # and the data were checked above, so PyMC's per-evaluation bound checks are pure cost.
    with pm.Model(coords=coords, check_bounds=False) as model:
        pm.Data("fit_index", fit_idx, dims="study")
        pm.Data("k", k, dims="fit")
        size_p, size_f = length(n_p), length(n_f)
        # Inside the log density, (prior, fit) cells are ordered kind first: the proportion
        # cells (prior, proportion fit), then the median cells, so each kind reads its tau by
        # a slice and no reordering enters the gradient; the stored deterministics are put
        # back in (prior, fit) order.
        internal = np.concatenate([cell[:, :f_p].ravel(), cell[:, f_p:].ravel()])
        tau_int = _tau(model, spec, internal, n_f, blocks, shared, length)
        z_new = pm.Normal("z_new", 0.0, 1.0, shape=(length(n_p * n_f),))
        loc_int, sd_int = mu_loc[internal], mu_sd[internal]
        n_cp = n_p * f_p
        mu_parts, theta_parts = [], []
        if f_p:
            tau_p = tau_int[:length(n_cp)] if n_m else tau_int
            z_p = pm.Normal("z_p", 0.0, 1.0, shape=(length(n_p * s_p),))
            c = pm.Flat("c", shape=(length(n_cp),), initval=np.tile(_start(studies[:s_p], fit_idx[:s_p], f_p), n_p))
            at = shared(local_p, "int64")
            mu_p = c - tau_p * segment_sum(z_p, at, length(n_cp)) / shared(np.tile(k[:f_p], n_p), "float64")
            theta_p = mu_p[at] + tau_p[at] * z_p
            # A hand-written binomial: its log coefficient depends on the data only, so it is
            # computed here once; PyMC's Binomial, with n a shared variable, recomputed three
            # gammaln per study at every gradient.
            total = np.tile(studies["total"].to_numpy()[:s_p], n_p)
            events = np.tile(studies["events"].to_numpy()[:s_p], n_p)
            log_choose = special.gammaln(total + 1) - special.gammaln(events + 1) - special.gammaln(total - events + 1)
            pm.CustomDist("events", shared(total, "float64"), theta_p, shared(log_choose, "float64"),
                          logp=_binomial_logit_logp, random=_binomial_logit_random,
                          observed=shared(events, "int64"), dtype="int64")
            pm.Potential("mu_prior_p", pm.logp(pm.Normal.dist(shared(loc_int[:n_cp], "float64"),
                                                              shared(sd_int[:n_cp], "float64")), mu_p))
            mu_parts.append(mu_p)
            theta_parts.append(theta_p.reshape((size_p, length(s_p))))
        if n_m:
            tau_m = tau_int[length(n_cp):] if f_p else tau_int
            z_m = pm.Normal("z_m", 0.0, 1.0, shape=(length(n_p * s_m),))
            yi = shared(np.tile(studies["yi"].to_numpy()[s_p:], n_p), "float64")
            sei2 = shared(np.tile(studies["sei"].to_numpy()[s_p:], n_p) ** 2, "float64")
            at = shared(local_m, "int64")
            tau_s = tau_m[at]
            inv_var = 1.0 / (sei2 + tau_s**2)
            loc, prec0 = shared(loc_int[n_cp:], "float64"), shared(1.0 / sd_int[n_cp:] ** 2, "float64")
            v = 1.0 / (prec0 + segment_sum(inv_var, at, length(n_p * n_m)))
            m = v * (loc * prec0 + segment_sum(inv_var * yi, at, length(n_p * n_m)))
            u = pm.Flat("u", shape=(length(n_p * n_m),))
            mu_m = m + pt.sqrt(v) * u
            pm.Normal("yi", mu=mu_m[at], sigma=pt.sqrt(1.0 / inv_var), observed=yi)
            # mu's prior, and the Jacobian |d mu / d u| = sqrt(v) of the change of variable.
            pm.Potential("mu_prior_m", pm.logp(pm.Normal.dist(loc, shared(sd_int[n_cp:], "float64")), mu_m)
                         + 0.5 * pt.log(v))
            w = tau_s**2 * inv_var
            mu_parts.append(mu_m)
            theta_parts.append((w * yi + (1 - w) * mu_m[at] + pt.sqrt(sei2 * w) * z_m).reshape((size_p, length(s_m))))
        to_cell = shared(np.argsort(internal), "int64")
        mu = (mu_parts[0] if len(mu_parts) == 1 else pt.concatenate(mu_parts))[to_cell]
        tau = tau_int[to_cell]
        pm.Deterministic("theta", theta_parts[0] if len(theta_parts) == 1 else pt.concatenate(theta_parts, axis=1),
                         dims=("prior", "study"))
        mu = pm.Deterministic("mu", mu.reshape((size_p, size_f)), dims=("prior", "fit"))
        tau = pm.Deterministic("tau", tau.reshape((size_p, size_f)), dims=("prior", "fit"))
        theta_new = pm.Deterministic("theta_new", mu + tau * z_new.reshape((size_p, size_f)), dims=("prior", "fit"))
        # Reporting scale: invlogit for proportion fits, months (exp of log-months) for medians.
        is_prop, is_log = shared(fit_kind == PROPORTION)[None, :], shared(scale == LOG)
        for name, x in (("p_pooled", mu), ("p_new", theta_new)):
            pm.Deterministic(name, pt.switch(is_prop, pm.math.invlogit(x), pt.switch(is_log, pt.exp(x), x)),
                             dims=("prior", "fit"))
    return BayesModel(model=model, scale=scale, fits=fits, studies=studies, priors=prior_sets, blocks=blocks)


def _tau(model, spec, internal, n_f, blocks, shared, length):
    """tau over the cells in ``internal`` order: one vectorised variable per prior family used."""
    parts, order = [], []
    for dist, (param,) in _TAU_DISTS.items():
        mine = [i for i, c in enumerate(internal) if spec[c // n_f][c % n_f]["tau"]["dist"] == dist]
        if not mine:
            continue
        scale = shared([spec[internal[i] // n_f][internal[i] % n_f]["tau"][param] for i in mine], "float64")
        size = (length(len(mine)),)
        rv = (pm.HalfNormal(f"tau_{dist}", sigma=scale, shape=size) if dist == "halfnormal"
              else pm.HalfCauchy(f"tau_{dist}", beta=scale, shape=size))
        blocks[model.rvs_to_values[rv].name] = internal[mine]
        parts.append(rv)
        order.extend(mine)
    if len(parts) == 1:  # one family: already in internal order
        return parts[0]
    return pt.concatenate(parts)[shared(np.argsort(order), "int64")]


def _binomial_logit_logp(value, total, logit_p, log_choose):
    """Binomial log-pmf on the logit scale: log C(n, x) + x theta - n log(1 + e^theta)."""
    return log_choose + value * logit_p - total * pt.softplus(logit_p)


def _binomial_logit_random(total, logit_p, log_choose, rng=None, size=None):
    return rng.binomial(total.astype(np.int64), 1.0 / (1.0 + np.exp(-logit_p)), size=size)


def _start(studies, fit_idx, n_f):
    """Initial c: each fit's pooled logit with 0.5 added to both cells, finite for 0 or all events."""
    e = np.bincount(fit_idx, studies["events"], n_f)
    t = np.bincount(fit_idx, studies["total"], n_f)
    return np.log((e + 0.5) / (t - e + 0.5))


_STORED = ["mu", "tau", "theta", "theta_new", "p_pooled", "p_new"]


# ----------------------------------------------------------------------------------------------
# Sampling
# ----------------------------------------------------------------------------------------------

def sample(bm, *, seed, chains=4, draws=1500, tune=700, target_accept=0.9, cores=None, progressbar=False):
    """Sample a :class:`BayesModel` with NUTS; the same ``seed`` gives identical draws.

    Parameters
    ----------
    bm : BayesModel
    seed : int
        Seeds every chain's initial jitter and NUTS randomness (``pymc.sample(random_seed=)``).
    chains, draws, tune : int
        4 chains x 1500 draws: tau, the slowest parameter, runs at 0.15-0.5 effective draws
        per draw. On the review's 60 fits the smallest bulk or tail ESS over all fits was
        1150-2200 across seeds; on a harder simulated set (k up to 16, n up to 200) it was
        620-1300, so there the gate's retry is sometimes needed. 700 tuning iterations gave
        the same ESS as 1000, for 10% less time.
    target_accept : float
        NUTS step-size adaptation target (Hoffman & Gelman 2014, JMLR 15:1593).
    cores : int, optional
        Chains run in parallel processes; ``None`` lets PyMC choose (CPU count, at most 4).
    progressbar : bool
        Show PyMC's progress bar and log lines; off by default (no output but the result).

    Returns
    -------
    arviz.InferenceData
        ``posterior``: ``mu``, ``tau``, ``theta_new``, ``p_pooled``, ``p_new`` (dims
        ``prior, fit``) and ``theta`` (``prior, study``); non-index coordinates ``fit_kind``
        and ``study_fit``. ``sample_stats`` adds ``diverging_fit`` (``chain, draw, prior,
        fit``; see :func:`attribute_divergences`) and ``diverging_unattributed``.
        ``constant_data``: ``k``, ``fit_index``, ``total``, ``sei``. Posterior attributes
        ``singlearm_scale``, ``singlearm_priors`` and ``singlearm_sampler`` (JSON) make a
        saved file self-describing.

    Notes
    -----
    R equivalent: ``brms::brm(..., chains = 4, iter = 2200, warmup = 700, seed = seed,
    control = list(adapt_delta = 0.9))``.
    """
    settings = {"seed": int(seed), "chains": int(chains), "draws": int(draws), "tune": int(tune),
                "target_accept": float(target_accept)}
    with bm.model:
        idata = pm.sample(draws=draws, tune=tune, chains=chains, cores=cores, random_seed=seed,
                          target_accept=target_accept, progressbar=progressbar, quiet=not progressbar,
                          var_names=_STORED,
                          keep_warning_stat=True, compute_convergence_checks=False,
                          idata_kwargs={"log_likelihood": False},
                          # NUTS hands the gradient function one float64 vector per leapfrog
                          # step; skipping PyTensor's input checks saves ~12% of the run.
                          compile_kwargs={"trust_input": True})
    by_fit, unattributed = attribute_divergences(bm, idata)
    idata = pm.drop_warning_stat(idata)
    idata.sample_stats["diverging_fit"] = by_fit
    idata.sample_stats["diverging_unattributed"] = unattributed
    studies, fits = bm.studies, bm.fits
    extra = {"fit_kind": ("fit", fits["kind"].to_numpy()), "study_fit": ("study", studies["fit"].to_numpy())}
    idata.posterior = idata.posterior.assign_coords(extra)
    # The data once, by study label (the model holds them flat and once per prior set).
    prop = (studies["kind"] == PROPORTION).to_numpy()

    def by_study(column, rows, dtype):
        dim = "proportion_study" if rows is prop else "median_study"
        return xr.DataArray(studies.loc[rows, column].to_numpy().astype(dtype), dims=dim,
                            coords={dim: studies.loc[rows, "label"].to_numpy()})

    idata.observed_data = xr.Dataset({"events": by_study("events", prop, np.int64),
                                      "yi": by_study("yi", ~prop, float)})
    idata.constant_data = idata.constant_data.assign(
        total=by_study("total", prop, np.int64), sei=by_study("sei", ~prop, float)).assign_coords(extra)
    idata.posterior.attrs.update({"singlearm_scale": bm.scale, "singlearm_priors": json.dumps(bm.priors),
                                  "singlearm_sampler": json.dumps(settings)})
    return idata


def _block_logp_fn(bm):
    """Compiled function: point (value variables) -> log density of each (prior, fit) block."""
    model = bm.model
    n_blocks = len(model.coords["prior"]) * len(model.coords["fit"])
    terms = model.free_RVs + model.observed_RVs + model.potentials
    block = pt.zeros(n_blocks)
    for var, logp in zip(terms, model.logp(vars=terms, sum=False)):
        name = model.rvs_to_values[var].name if var in model.free_RVs else var.name
        block = pt.inc_subtensor(block[bm.blocks[name].ravel()], logp.ravel())
    return model.compile_fn(block, inputs=model.value_vars, point_fn=True)


def attribute_divergences(bm, idata):
    """Attribute each divergent transition of the joint model to the fit that caused it.

    The joint Hamiltonian is a sum over (prior, fit) blocks, H = sum_f [-log p_f(q_f) +
    p_f' M_f^-1 p_f / 2], because the blocks share no parameter and PyMC's adapted mass
    matrix is diagonal. Leapfrog integration of a separable Hamiltonian is the product of
    per-block leapfrog integrations with a shared step size, so the energy error that makes
    NUTS flag a divergence is the sum of per-block energy errors. For every divergent
    transition PyMC keeps the last state and the divergent state one leapfrog step later
    (``SamplerWarning.divergence_info``); the divergence is attributed to the block whose
    energy rose most over that step. Divergences that cannot be attributed (PyMC keeps the
    states of the first 99 per chain only; an integration error leaves no divergent state)
    are returned separately, and :func:`diagnose` charges them to every fit.

    A divergence biases only the block that caused it: for the other blocks the early end
    of the trajectory is a random trajectory length that does not depend on their state,
    which leaves their target distribution invariant.

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
    priors, fit_ids = list(bm.model.coords["prior"]), list(bm.model.coords["fit"])
    by_fit = np.zeros(diverging.shape + (len(priors) * len(fit_ids),), dtype=bool)
    unattributed = diverging.copy()
    if diverging.any() and "warning" in stats:
        logp_fn = _block_logp_fn(bm)
        warnings = stats["warning"].values
        for c, d in zip(*np.nonzero(diverging)):
            item = warnings[c, d]
            if isinstance(item, np.ndarray):  # one array of warnings per draw
                item = next((w for w in item.ravel() if getattr(w, "divergence_info", None) is not None), None)
            info = getattr(item, "divergence_info", None)
            if info is None or info.state is None or info.state_div is None:
                continue
            energy = []
            for state in (info.state, info.state_div):
                kinetic, start = np.zeros(by_fit.shape[-1]), 0
                for name, _, size, _ in state.q.point_map_info:
                    part = slice(start, start + size)
                    np.add.at(kinetic, bm.blocks[name].ravel(), 0.5 * state.p[part] * state.v[part])
                    start += size
                energy.append(kinetic - logp_fn(DictToArrayBijection.rmap(state.q)))
            rise = np.nan_to_num(energy[1] - energy[0], nan=np.inf)
            by_fit[c, d, int(np.argmax(rise))] = True
            unattributed[c, d] = False
    dims = ("chain", "draw")
    coords = {dim: stats.coords[dim].values for dim in dims}
    by_fit = xr.DataArray(by_fit.reshape(diverging.shape + (len(priors), len(fit_ids))), dims=dims + ("prior", "fit"),
                          coords={**coords, "prior": priors, "fit": fit_ids})
    return by_fit, xr.DataArray(unattributed, dims=dims, coords=coords)


# ----------------------------------------------------------------------------------------------
# Diagnostics and the gate
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SamplerSettings:
    """Sampler settings and the thresholds of the convergence gate.

    Thresholds follow Vehtari et al. (2021), "Rank-normalization, folding, and
    localization: an improved R-hat for assessing convergence of MCMC", Bayesian Anal
    16:667-718: R-hat <= 1.01, and bulk and tail ESS large enough for stable 95% intervals
    (here >= 1000, so that the Monte-Carlo error of a 2.5% quantile is small against the
    posterior SD). ``retry_*`` are the one retry's settings; ``None`` means 2 x ``tune`` and
    2 x ``draws``. The retry's target_accept is 0.95 rather than 0.99: on the simulated
    benchmark set 0.99 took 127 leapfrog steps per draw against 63 at 0.95 and 31 at 0.9,
    and the failures seen were ESS shortfalls, which more draws cure.
    """

    seed: int = 20251121
    chains: int = 4
    draws: int = 1500
    tune: int = 700
    target_accept: float = 0.9
    cores: int | None = None
    retry_target_accept: float = 0.95
    retry_tune: int | None = None
    retry_draws: int | None = None
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
    bulk and tail ESS (Vehtari et al. 2021) over ``mu``, ``tau``, the fit's study effects
    ``theta`` and its new-study value ``theta_new`` (the prediction interval is read from
    it; ``p_pooled`` and ``p_new`` are monotone transforms of mu and theta_new, with the same
    rank-based diagnostics), and the number of divergent transitions: those attributed to
    the fit (:func:`attribute_divergences`) plus the unattributed ones, charged to every fit
    because none can be ruled out.

    Parameters
    ----------
    idata : arviz.InferenceData
        From :func:`sample`.
    rhat_max, ess_bulk_min, ess_tail_min, max_divergences : float
        The gate's thresholds.

    Returns
    -------
    pandas.DataFrame
        ``fit, prior, kind, k, rhat_max, ess_bulk_min, ess_tail_min, divergences,
        divergences_total, passed, failures`` (text naming each failing diagnostic, its value
        and threshold).

    Notes
    -----
    R equivalent: ``posterior::summarise_draws(draws, "rhat", "ess_bulk", "ess_tail")`` and
    ``rstan::get_num_divergent(fit)``.
    """
    post = idata.posterior
    names = ["mu", "tau", "theta", "theta_new"]
    sub = post[names]
    study_fit = xr.DataArray(post["study_fit"].values, dims="study", name="fit")

    def per_fit(ds, how):
        out = None
        for name in names:
            arr = ds[name]
            if "study" in arr.dims:
                arr = getattr(arr.groupby(study_fit), how)().reindex(fit=post["fit"].values)
            out = arr if out is None else (np.fmax(out, arr) if how == "max" else np.fmin(out, arr))
        return out.transpose("prior", "fit").values

    r = per_fit(az.rhat(sub), "max")
    b = per_fit(az.ess(sub, method="bulk"), "min")
    t = per_fit(az.ess(sub, method="tail"), "min")
    stats = idata.sample_stats
    total = int(stats["diverging"].sum())
    if "diverging_fit" in stats:
        div = stats["diverging_fit"].sum(("chain", "draw")).transpose("prior", "fit").values \
            + int(stats["diverging_unattributed"].sum())
    else:  # not from `sample`: no attribution, so every fit carries every divergence
        div = np.full(r.shape, total)
    fit_ids = [str(f) for f in post["fit"].values]
    kinds = [str(x) for x in post["fit_kind"].values]
    k = idata.constant_data["k"].sel(fit=fit_ids).values
    rows = []
    for i, prior in enumerate(str(p) for p in post["prior"].values):
        for j, fit in enumerate(fit_ids):
            why = []
            if not r[i, j] <= rhat_max:
                why.append(f"rhat_max {r[i, j]:.4f} > {rhat_max:g}")
            if not b[i, j] >= ess_bulk_min:
                why.append(f"ess_bulk_min {b[i, j]:.0f} < {ess_bulk_min:g}")
            if not t[i, j] >= ess_tail_min:
                why.append(f"ess_tail_min {t[i, j]:.0f} < {ess_tail_min:g}")
            if div[i, j] > max_divergences:
                why.append(f"divergences {int(div[i, j])} > {max_divergences:g}")
            rows.append({"fit": fit, "prior": prior, "kind": kinds[j], "k": int(k[j]), "rhat_max": float(r[i, j]),
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
        Settings, number of failing fits, NUTS sampling time and whole time (seconds: compile,
        sampling, diagnostics) of every attempt, in order.
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

    Attempt 1 uses ``settings``. If any fit fails the R-hat, bulk/tail ESS or divergence
    threshold, the whole joint model is sampled again with ``retry_target_accept`` (smaller
    steps: fewer divergences, longer trajectories), ``retry_tune`` warm-up iterations (better
    adapted step size and mass matrix) and ``retry_draws`` draws (ESS grows with draws), from
    seed + 1 so the retry does not replay the first attempt's starting points. Re-sampling
    the whole model rather than only the failing fits keeps one coherent, reproducible run
    per posterior file; the model is not rebuilt and PyTensor's cache makes the second
    compile quick.

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
    R equivalent: ``brms::brm(...)``, then ``update(fit, control = list(adapt_delta = 0.95),
    warmup = 1400, iter = 4400)`` when ``rhat``, ``neff_ratio`` or ``nuts_params`` flag problems.
    """
    s = SamplerSettings.from_mapping(settings)
    bm = build_model(data, priors, kind=kind, scale=scale, source=source)
    thresholds = {"rhat_max": s.rhat_max, "ess_bulk_min": s.ess_bulk_min, "ess_tail_min": s.ess_tail_min,
                  "max_divergences": s.max_divergences}
    plans = [{"seed": s.seed, "chains": s.chains, "draws": s.draws, "tune": s.tune, "target_accept": s.target_accept},
             {"seed": s.seed + 1, "chains": s.chains,
              "draws": s.retry_draws if s.retry_draws is not None else 2 * s.draws,
              "tune": s.retry_tune if s.retry_tune is not None else 2 * s.tune,
              "target_accept": s.retry_target_accept}]
    attempts = []
    for plan in plans:
        start = time.perf_counter()
        idata = sample(bm, cores=s.cores, **plan)
        diag = diagnose(idata, **thresholds)
        attempts.append({**plan, "failing_fits": int((~diag["passed"]).sum()),
                         "sampling_seconds": round(float(idata.posterior.attrs.get("sampling_time", np.nan)), 2),
                         "seconds": round(time.perf_counter() - start, 2)})
        if diag["passed"].all():
            return GatedFit(idata=idata, diagnostics=diag, attempts=tuple(attempts), model=bm)
    raise ConvergenceError(diag[~diag["passed"]].reset_index(drop=True), tuple(attempts), idata)


def fit_posterior(idata, fit):
    """The part of a joint posterior that belongs to one fit, as its own ``InferenceData``.

    Every group is cut to the fit (``fit`` dimension) and its studies (``study`` entries whose
    ``study_fit`` is ``fit``); the per-draw sampler statistics stay whole, since the fits were
    sampled together. Run-specific attributes (``created_at``, sampling time) are dropped so
    that the same draws give the same file.

    Parameters
    ----------
    idata : arviz.InferenceData
        From :func:`sample` or :func:`fit_with_gate`.
    fit : str
        A fit id.

    Returns
    -------
    arviz.InferenceData
    """
    post = idata.posterior
    studies = post["study"].values[post["study_fit"].values == fit]
    groups = {}
    for name in idata.groups():
        ds = idata[name]
        sel = {}
        if "fit" in ds.dims:
            sel["fit"] = [fit]
        if "study" in ds.dims:
            sel["study"] = studies
        groups[name] = ds.sel(sel)
    return without_run_attributes(az.InferenceData(**groups))


_RUN_ATTRIBUTES = ("created_at", "sampling_time", "arviz_version", "inference_library_version")
_RUN_STATS = ("perf_counter_start", "perf_counter_diff", "process_time_diff")  # NUTS timings per draw


def without_run_attributes(idata):
    """A copy without what differs between identical runs: time stamps and timings.

    The same seed gives the same draws; without the creation time, the sampling time and the
    per-draw clock readings NUTS records, and with the variables in a fixed order, it also
    gives the same NetCDF bytes.
    """
    groups = {}
    for name in idata.groups():
        ds = idata[name].copy()
        ds = ds.drop_vars([v for v in _RUN_STATS if v in ds.data_vars])
        ds = ds[sorted(ds.data_vars)]  # PyMC gathers sampler stats in a set: order varies by process
        ds.attrs = {k: v for k, v in ds.attrs.items() if k not in _RUN_ATTRIBUTES}
        groups[name] = ds
    return az.InferenceData(**groups)


@dataclass(frozen=True)
class SensitivityFit:
    """A prior-sensitivity run: the first run of every (fit, prior) pair and the retry of the failures.

    Attributes
    ----------
    runs : tuple of arviz.InferenceData
        The first run and, when some pairs failed the gate, the retry of those fits.
    diagnostics : pandas.DataFrame
        :func:`diagnose` rows of every pair, from the run each pair is reported from (the
        retry for the pairs that failed first); ``passed`` False marks pairs still failing.
    attempts : tuple of dict
        Settings and failing pairs of each run.
    retried_pairs : frozenset of tuple
        (fit, prior) pairs reported from the retry.
    """

    runs: tuple
    diagnostics: pd.DataFrame
    attempts: tuple
    retried_pairs: frozenset

    def summarise(self, **kwargs):
        """:func:`summarise` of each run, every pair taken from the run it is reported from."""
        parts = [summarise(idata, **kwargs) for idata in self.runs]
        pair = ["fit", "prior"]

        def take(frames):
            first = frames[0]
            if len(frames) == 1:
                return first.reset_index(drop=True)
            def retried(frame):
                return np.array([(f, p) in self.retried_pairs for f, p in zip(frame["fit"], frame["prior"])], bool)

            again, keep = frames[1].loc[retried(frames[1])], first.loc[~retried(first)]
            order = first[pair].drop_duplicates()
            return order.merge(pd.concat([keep, again]), on=pair, how="inner")

        table = take([p.table.drop(columns=["rhat_max", "ess_bulk_min", "ess_tail_min", "divergences", "passed"])
                      for p in parts])
        keep = ["fit", "prior", "rhat_max", "ess_bulk_min", "ess_tail_min", "divergences", "passed"]
        table = table.merge(self.diagnostics[keep], on=pair, how="left")
        return BayesSummary(table=table, probabilities=take([p.probabilities for p in parts]))


def fit_prior_sensitivity(data, priors, settings=None, *, scale=IDENTITY, source="analysis data"):
    """Sample every fit under several priors; retry only the failing pairs; report, do not raise.

    A heavy-tailed tau prior (Half-Cauchy) on a fit with few or no events puts mass where the
    posterior has the funnel NUTS cannot always cross without divergences, even at
    ``target_accept=0.99``. In the main analysis that stops the run (:func:`fit_with_gate`);
    in a sensitivity analysis it is itself the finding (the result depends on a prior the data
    cannot overrule), so failing pairs are retried once, in a model of only those fits with the
    retry settings, and pairs still failing are returned with ``passed`` False for the caller
    to withhold and report.

    Parameters
    ----------
    data, priors, scale, source
        As :func:`build_model`; ``priors`` names several prior sets.
    settings : SamplerSettings or dict, optional

    Returns
    -------
    SensitivityFit

    Notes
    -----
    R equivalent: one ``bayesmeta::bayesmeta`` call per fit and ``tau.prior``.
    """
    s = SamplerSettings.from_mapping(settings)
    thresholds = {"rhat_max": s.rhat_max, "ess_bulk_min": s.ess_bulk_min, "ess_tail_min": s.ess_tail_min,
                  "max_divergences": s.max_divergences}
    plan = {"seed": s.seed, "chains": s.chains, "draws": s.draws, "tune": s.tune, "target_accept": s.target_accept}
    idata = sample(build_model(data, priors, scale=scale, source=source), cores=s.cores, **plan)
    diag = diagnose(idata, **thresholds)
    failing = diag[~diag["passed"]]
    attempts = [{**plan, "failing_fits": len(failing)}]
    if failing.empty:
        return SensitivityFit((idata,), diag, tuple(attempts), frozenset())
    retry_plan = {"seed": s.seed + 1, "chains": s.chains,
                  "draws": s.retry_draws if s.retry_draws is not None else 2 * s.draws,
                  "tune": s.retry_tune if s.retry_tune is not None else 2 * s.tune,
                  "target_accept": s.retry_target_accept}
    labels = list(dict.fromkeys(failing["prior"]))
    subset = data[data["fit"].isin(set(failing["fit"]))]
    again = sample(build_model(subset, {label: priors[label] for label in labels}, scale=scale, source=source),
                   cores=s.cores, **retry_plan)
    diag2 = diagnose(again, **thresholds)
    retried = frozenset(zip(failing["fit"], failing["prior"]))
    pairs2 = [(f, p) in retried for f, p in zip(diag2["fit"], diag2["prior"])]
    merged = pd.concat([diag[diag["passed"]], diag2[np.array(pairs2, bool)]])
    merged = diag[["fit", "prior"]].merge(merged, on=["fit", "prior"], how="inner")
    attempts.append({**retry_plan, "failing_fits": int((~merged["passed"]).sum()),
                     "retried": [f"{f} ({p})" for f, p in sorted(retried)]})
    return SensitivityFit((idata, again), merged, tuple(attempts), retried)


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
        Long form ``fit, prior, threshold, probability``: P(pooled value > threshold | data).
    """

    table: pd.DataFrame
    probabilities: pd.DataFrame

    def summary_frame(self):
        """The per-fit table."""
        return self.table


def summarise(idata, *, level=0.95, thresholds=(), diagnostics=None):
    """Posterior summaries per fit (x prior), on the reporting scale.

    ``estimate`` is the posterior median of the pooled value ``p_pooled`` (invlogit(mu) for
    proportions; mu for medians, exp(mu) on the log scale) and ``ci_low, ci_high`` its
    equal-tailed ``level`` credible interval; ``pi_low, pi_high`` is the equal-tailed
    interval of ``p_new``, the true value in a new study (posterior-predictive; Higgins,
    Thompson & Spiegelhalter 2009). Quantiles commute with the monotone back-transforms.
    ``tau2`` and ``tau_median`` are posterior medians of tau^2 and tau, ``mu_mean, mu_sd``
    the posterior mean and SD of mu, all on the model scale (logit, months or log-months).

    Parameters
    ----------
    idata : arviz.InferenceData
        From :func:`sample` or :func:`fit_with_gate`, or loaded back from NetCDF.
    level : float
        Credible and prediction level.
    thresholds : sequence of float, or dict
        Values t for P(pooled value > t | data), on the reporting scale (a rate, or months);
        ``{"proportion": [...], "median": [...]}`` gives each kind its own.
    diagnostics : pandas.DataFrame, optional
        :func:`diagnose` output to join; computed with default thresholds when omitted.

    Returns
    -------
    BayesSummary
        ``table``: ``fit, prior, kind, k, estimate, ci_low, ci_high, pi_low, pi_high, tau2,
        tau_median, mu_mean, mu_sd, mu_prior, tau_prior, rhat_max, ess_bulk_min,
        ess_tail_min, divergences, passed``; ``probabilities``.

    Notes
    -----
    R equivalent: ``bayesmeta::bayesmeta(...)$summary`` (median, 95% interval, prediction)
    and ``1 - bayesmeta(...)$pposterior(mu = t)``.
    """
    if not 0 < level < 1:
        raise ValueError(f"level: got {level!r}; expected a probability between 0 and 1")
    post = idata.posterior
    priors = json.loads(post.attrs["singlearm_priors"])

    def draws(name):  # (prior, fit, sample)
        return post[name].stack(sample=("chain", "draw")).transpose("prior", "fit", "sample").values

    mu, tau, pooled, new = draws("mu"), draws("tau"), draws("p_pooled"), draws("p_new")
    a = (1 - level) / 2
    q_pooled = np.quantile(pooled, [a, 0.5, 1 - a], axis=-1)
    q_new = np.quantile(new, [a, 1 - a], axis=-1)
    fit_ids = [str(f) for f in post["fit"].values]
    kinds = [str(x) for x in post["fit_kind"].values]
    k = idata.constant_data["k"].sel(fit=fit_ids).values
    rows, probs = [], []
    for i, prior in enumerate(str(p) for p in post["prior"].values):
        for j, fit in enumerate(fit_ids):
            spec = priors[prior][kinds[j]]
            rows.append({"fit": fit, "prior": prior, "kind": kinds[j], "k": int(k[j]),
                         "estimate": q_pooled[1, i, j], "ci_low": q_pooled[0, i, j], "ci_high": q_pooled[2, i, j],
                         "pi_low": q_new[0, i, j], "pi_high": q_new[1, i, j],
                         "tau2": float(np.median(tau[i, j] ** 2)), "tau_median": float(np.median(tau[i, j])),
                         "mu_mean": float(mu[i, j].mean()), "mu_sd": float(mu[i, j].std(ddof=1)),
                         "mu_prior": _describe_one(spec["mu"]), "tau_prior": _describe_one(spec["tau"])})
            cuts = thresholds.get(kinds[j], ()) if isinstance(thresholds, Mapping) else thresholds
            for t in cuts:
                probs.append({"fit": fit, "prior": prior, "threshold": float(t),
                              "probability": float(np.mean(pooled[i, j] > t))})
    diag = diagnose(idata) if diagnostics is None else diagnostics
    keep = ["fit", "prior", "rhat_max", "ess_bulk_min", "ess_tail_min", "divergences", "passed"]
    table = pd.DataFrame(rows).merge(diag[keep], on=["fit", "prior"], how="left")
    probabilities = pd.DataFrame(probs, columns=["fit", "prior", "threshold", "probability"])
    return BayesSummary(table=table, probabilities=probabilities)


__all__ = [
    "BayesModel", "BayesSummary", "ConvergenceError", "GatedFit", "SamplerSettings",
    "attribute_divergences", "build_model", "default_priors", "describe_prior", "diagnose",
    "SensitivityFit", "fit_posterior", "fit_prior_sensitivity", "fit_with_gate", "without_run_attributes", "resolve_priors", "sample", "sensitivity_priors", "summarise",
]
