"""Priors of the two hyperparameters, their citations, and the back-transforms to the reporting scale.

Both models of the Bayesian stage have two hyperparameters: the mean ``mu`` of the study effects
(logit of a rate for the binomial-normal model; the analysis scale ``y`` for the normal-normal model)
and their SD ``tau``. A :class:`PriorSet` holds one prior for each; the exact posteriors
(:mod:`singlearm.bayes.exact`) use their log densities, the PyMC model (:mod:`singlearm.bayes.model`)
their PyMC counterparts.

Where the defaults come from (cited for what they are):

* ``mu ~ N(0, 2.5)`` on the logit: a weakly informative choice that puts 95% of its mass on
  pooled rates between 0.7% and 99.3% (:func:`implied_rate_interval` shows it). It is NOT the
  prior of Gelman et al. (2008), which is a Cauchy(0, 2.5) on logistic regression coefficients of
  standardised inputs; the scale 2.5 is only borrowed.
* ``tau ~ HN(1)`` for the between-study SD of absolute logit rates (not log odds ratios): the
  precedent is the meta-analytic-predictive literature on historical single-arm data,
  Neuenschwander et al. (2010), Clin Trials 7:5-18, and R ``RBesT::gMAP`` (half-normal tau priors
  with scales 0.5 to 1 on the logit read as moderate to substantial heterogeneity). The Turner et
  al. (2012) priors are for relative effects and do not apply here.
* Sensitivity: tau ~ HN(s/2), HN(s), half-Cauchy(s) (the heavy tail of Gelman 2006, Bayesian
  Anal 1:515); mu ~ N(0, 1.5) (rates mostly between 5% and 95%) and mu ~ N(ybar, 1), centred on
  the data's own pooled logit (an empirical-Bayes-flavoured check, not a real prior).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special, stats

BN, NN = "BN", "NN"  # binomial-normal (counts), normal-normal (yi with known variances)


# ---------------------------------------------------------------------------------------------
# Back-transforms
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BackTransform:
    """Monotone map from the model scale to the reporting scale.

    Attributes
    ----------
    name : str
        Registry key (``"expit"``, ``"identity"``, ``"exp"``, ``"exp_neg_exp"``).
    increasing : bool
        False for decreasing maps (survival S = exp(-exp(y))): interval limits swap and
        P(value > t) becomes P(y < inverse(t)).
    unit : str
        How a value reads (``"rate"``, ``"months"``).
    """

    name: str
    increasing: bool
    unit: str

    def __call__(self, y):
        return _FORWARD[self.name](np.asarray(y, dtype=float))

    def inverse(self, v):
        """Model-scale value of a reporting-scale value ``v``."""
        return _INVERSE[self.name](np.asarray(v, dtype=float))


_FORWARD = {"expit": special.expit, "identity": lambda y: y, "exp": np.exp,
            "exp_neg_exp": lambda y: np.exp(-np.exp(y))}
_INVERSE = {"expit": special.logit, "identity": lambda v: v, "exp": np.log,
            "exp_neg_exp": lambda v: np.log(-np.log(v))}
BACK_TRANSFORMS = {
    "expit": BackTransform("expit", True, "rate"),
    "identity": BackTransform("identity", True, "months"),
    "exp": BackTransform("exp", True, "months"),
    # survival rates analysed as y = log(-log S) (the outcomes issue): S = exp(-exp(y)), decreasing
    "exp_neg_exp": BackTransform("exp_neg_exp", False, "rate"),
}


def back_transform(name):
    """The :class:`BackTransform` registered as ``name``."""
    if name not in BACK_TRANSFORMS:
        raise ValueError(f"back-transform: got {name!r}; expected one of {sorted(BACK_TRANSFORMS)}")
    return BACK_TRANSFORMS[name]


# ---------------------------------------------------------------------------------------------
# Priors
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Normal:
    """Normal prior of mu."""

    loc: float
    scale: float

    def logpdf(self, x):
        return stats.norm.logpdf(x, self.loc, self.scale)

    def describe(self):
        return f"N({self.loc:.3g}, {self.scale:.3g})"

    def quantile(self, q):
        return stats.norm.ppf(q, self.loc, self.scale)


@dataclass(frozen=True)
class HalfNormal:
    """Half-normal prior of tau (scale = SD of the parent normal)."""

    scale: float

    def logpdf(self, t):
        return stats.halfnorm.logpdf(t, scale=self.scale)

    def cdf(self, t):
        return stats.halfnorm.cdf(t, scale=self.scale)

    def quantile(self, q):
        return stats.halfnorm.ppf(q, scale=self.scale)

    @property
    def sd(self):
        return self.scale * np.sqrt(1 - 2 / np.pi)

    def describe(self):
        return f"HN({self.scale:.3g})"


@dataclass(frozen=True)
class HalfCauchy:
    """Half-Cauchy prior of tau (no finite SD)."""

    scale: float

    def logpdf(self, t):
        return stats.halfcauchy.logpdf(t, scale=self.scale)

    def cdf(self, t):
        return stats.halfcauchy.cdf(t, scale=self.scale)

    def quantile(self, q):
        return stats.halfcauchy.ppf(q, scale=self.scale)

    sd = float("inf")

    def describe(self):
        return f"HC({self.scale:.3g})"


@dataclass(frozen=True)
class ZeroTau:
    """tau = 0 exactly (a common-effect model): the posterior of one study on its own."""

    scale: float = 1.0
    sd = 0.0

    def describe(self):
        return "tau=0"


@dataclass(frozen=True)
class PriorSet:
    """A prior for mu and one for tau, with the label the tables show."""

    label: str
    mu: Normal
    tau: HalfNormal | HalfCauchy | ZeroTau

    @property
    def mu_text(self):
        return self.mu.describe()

    @property
    def tau_text(self):
        return self.tau.describe()


# The config's prior families and their parameters (the config check reads the same lists).
MU_FAMILIES = {"normal": ("mu", "sigma")}
TAU_FAMILIES = {"halfnormal": ("sigma",), "halfcauchy": ("beta",)}


def parse_mu(spec):
    """A mu prior from config: ``{"dist": "normal", "mu": m, "sigma": s}``."""
    if not isinstance(spec, dict) or spec.get("dist") != "normal" or set(spec) != {"dist", "mu", "sigma"}:
        raise ValueError(f"mu prior: got {spec!r}; expected {{dist: normal, mu: <number>, sigma: <number > 0>}}")
    if not float(spec["sigma"]) > 0:
        raise ValueError(f"mu prior: sigma={spec['sigma']!r}; expected a number > 0")
    return Normal(float(spec["mu"]), float(spec["sigma"]))


def parse_tau(spec):
    """A tau prior from config: ``{"dist": "halfnormal", "sigma": s}`` or ``{"dist": "halfcauchy", "beta": b}``."""
    families = {"halfnormal": ("sigma", HalfNormal), "halfcauchy": ("beta", HalfCauchy)}
    dist = spec.get("dist") if isinstance(spec, dict) else None
    if dist not in families or set(spec) != {"dist", families[dist][0]}:
        raise ValueError(f"tau prior: got {spec!r}; expected {{dist: halfnormal, sigma: s}} or "
                         "{dist: halfcauchy, beta: b}")
    key, cls = families[dist]
    if not float(spec[key]) > 0:
        raise ValueError(f"tau prior: {key}={spec[key]!r}; expected a number > 0")
    return cls(float(spec[key]))


def sensitivity_sets(main, *, centre=None, centre_scale=1.0, label="main"):
    """The main prior set and its sensitivity variants, computed exactly for every fit with k >= 2.

    Parameters
    ----------
    main : PriorSet
        The main analysis's priors (tau half-normal with scale ``s``).
    centre : float, optional
        The data's own pooled value on the model scale (logit of the crude pooled rate, or the
        inverse-variance mean); gives the variant ``mu ~ N(centre, centre_scale)``.
    centre_scale : float
        1 on the logit scale; for other scales a tenth of the main mu prior's SD is typical.

    Returns
    -------
    list of PriorSet
        main; tau ~ HN(s/2), HN(2s) and half-Cauchy(s) with mu as main; mu ~ N(loc, 0.6 x scale)
        (N(0, 1.5) for the default N(0, 2.5): rates mostly in 5-95%) and mu ~ N(centre,
        centre_scale), each with tau as main.

    Notes
    -----
    R equivalent: one ``bayesmeta::bayesmeta`` (or ``RBesT::gMAP``) call per prior set.
    """
    s = main.tau.scale
    sets = [PriorSet(label, main.mu, main.tau),
            PriorSet(f"tau~HN({s / 2:g})", main.mu, HalfNormal(s / 2)),
            PriorSet(f"tau~HN({2 * s:g})", main.mu, HalfNormal(2 * s)),
            PriorSet(f"tau~HC({s:g})", main.mu, HalfCauchy(s))]
    narrow = Normal(main.mu.loc, main.mu.scale * 0.6)
    sets.append(PriorSet(f"mu~{narrow.describe()}", narrow, main.tau))
    if centre is not None and np.isfinite(centre):
        near = Normal(float(centre), float(centre_scale))
        sets.append(PriorSet(f"mu~N(data, {near.scale:g})", near, main.tau))
    return sets


def implied_rate_interval(mu_prior, level=0.95):
    """The interval of pooled rates expit(mu) that a normal prior on the logit implies.

    ``N(0, 2.5)`` gives (0.0074, 0.9926); ``N(0, 1.5)`` gives (0.050, 0.950).
    """
    a = (1 - level) / 2
    return tuple(float(special.expit(mu_prior.quantile(q))) for q in (a, 1 - a))
