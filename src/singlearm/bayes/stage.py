"""The exact part of the Bayesian stage: every fit's exact posterior, its prior sensitivity and its tables.

Input is the long frame of :func:`singlearm.comparison.bayes_data` (one row per study and fit).
Each fit (outcome x subgroup) is computed on its own, so no fit's numbers depend on which other
fits exist. What one or two studies can say is said honestly:

* k = 1: no pooled (``BAYES-*``) row; the study's own posterior under tau = 0 is reported,
  labelled "single study" (its tau posterior would be its prior);
* k = 2: the flag "prior-dominated" is mandatory; every fit carries tau's prior-dominance
  diagnostics (overlap of tau's prior and posterior, ratio of their SDs);
* k >= 2: the prior sensitivity (:func:`singlearm.bayes.priors.sensitivity_sets`) is computed
  exactly on every fit, nothing withheld.

Large reviews: a binomial-normal fit with more than ``exact_max_k`` studies (config
``bayes.exact_max_k``) is computed, main prior and every sensitivity set alike, by the integrated
nested Laplace approximation of :mod:`singlearm.bayes.laplace` (the exact grid's cost grows as k x
grid size); its rows carry the method id ``BAYES-BN-LAPLACE`` and the flag "Laplace approximation,
k = ... > exact_max_k = ...". Where mu's conditional posterior is too far from normal for it (few
events or non-events overall; :func:`singlearm.bayes.laplace.normality_gap`), the fit stays on the
exact grid, flagged so. Normal-normal fits stay exact at any k (mu is integrated
analytically, so the cost is k x 521 tau nodes: 0.2 s at k = 5,000).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import exact, laplace, priors
from .priors import BN, NN, PriorSet
from .summaries import SHOWN_INTERVAL, summarise_exact

EXACT_METHOD = {BN: "BAYES-BN-EXACT", NN: "BAYES-NN-EXACT"}
LAPLACE_METHOD = "BAYES-BN-LAPLACE"
EXACT_MAX_K = 200  # default of bayes.exact_max_k (the schema's default; = bayes.max_k, see config/README.md)
MODEL_NAME = {BN: "binomial-normal", NN: "normal-normal"}
SINGLE_STUDY = "single study"
PRIOR_DOMINATED = "prior-dominated"
OVERLAP_DOMINATED = 0.9  # tau's posterior shares >= 90% of its prior's mass: the data barely moved it
SUMMARY_COLUMNS = [
    "outcome", "subgroup", "model", "method", "prior", "mu_prior", "tau_prior", "prior_rate_low",
    "prior_rate_high", "k", "n", "estimate", "mean", "ci_low", "ci_high", "interval", "hpd_low", "hpd_high",
    "pi_low", "pi_high", "tau_median", "tau_low", "tau_high", "tau2", "tau_sd_ratio", "tau_prior_overlap",
    "pop_median", "pop_mean", "pop_low", "pop_high", "flags"]
SENSITIVITY_COLUMNS = [
    "outcome", "subgroup", "model", "prior", "mu_prior", "tau_prior", "k", "estimate", "ci_low", "ci_high",
    "pi_low", "pi_high", "tau2", "tau_median", "tau_low", "tau_high", "tau_prior_overlap", "difference",
    "ci_width_ratio", "note"]
PROBABILITY_COLUMNS = ["outcome", "subgroup", "method", "prior", "threshold", "probability", "statement"]


@dataclass(frozen=True)
class FitData:
    """One meta-analysis (outcome x subgroup) as the Bayesian models take it."""

    outcome: str
    subgroup: str
    model: str                   # BN or NN
    studies: tuple
    events: np.ndarray | None
    total: np.ndarray | None
    yi: np.ndarray | None
    vi: np.ndarray | None
    back: priors.BackTransform
    kind: str = "proportion"     # proportion, median or survival_rate (which prior set applies)

    @property
    def k(self):
        return len(self.studies)

    @property
    def n(self):
        return float(np.sum(self.total)) if self.total is not None else float("nan")

    def centre(self):
        """The data's own pooled value on the model scale (for the prior centred on the data)."""
        if self.model == BN:
            e, t = float(np.sum(self.events)), float(np.sum(self.total))
            return float(np.log((e + 0.5) / (t - e + 0.5)))
        w = 1.0 / self.vi
        return float(np.sum(w * self.yi) / np.sum(w))

    def posterior(self, prior_sets, grid=None):
        """The exact posterior under each prior set."""
        if self.model == BN:
            return exact.exact_bn(self.events, self.total, list(prior_sets), grid)
        return [exact.exact_nn(self.yi, self.vi, p, grid) for p in prior_sets]

    def posterior_for_size(self, prior_sets, grid=None, exact_max_k=None):
        """One posterior per prior set, its method id, and the note on how they were computed.

        Exact (note ``""``), or, for a binomial-normal fit with k > ``exact_max_k``, the Laplace
        approximation (:func:`singlearm.bayes.laplace.laplace_bn`) unless its normality gap
        (:func:`singlearm.bayes.laplace.normality_gap`) exceeds ``laplace.MAX_GAP``: then exact
        after all (few events or non-events overall, where mu's likelihood is far from normal).
        """
        if self.model == BN and exact_max_k is not None and self.k > exact_max_k:
            posts = laplace.laplace_bn(self.events, self.total, list(prior_sets), grid)
            gap = laplace.normality_gap(self.events, self.total, posts[0], prior_sets[0])
            if gap <= laplace.MAX_GAP:
                return posts, LAPLACE_METHOD, f"Laplace approximation, k = {self.k} > exact_max_k = {exact_max_k}"
            note = (f"exact grid although k = {self.k} > exact_max_k = {exact_max_k}: mu is too far from "
                    f"normal for the Laplace approximation (normality gap {gap:.2f} > {laplace.MAX_GAP:g})")
            return self.posterior(prior_sets, grid), EXACT_METHOD[BN], note
        return self.posterior(prior_sets, grid), EXACT_METHOD[self.model], ""


def fits_from_frame(data, median_scale="months"):
    """:class:`FitData` per fit of a :func:`singlearm.comparison.bayes_data` frame, in its order.

    Parameters
    ----------
    data : pandas.DataFrame
        ``outcome, subgroup, kind, study, events, total, yi, sei``: one fit per (outcome, subgroup).
    median_scale : {"months", "log"}
        Scale of the medians' ``yi``: back-transform ``identity`` or ``exp``. Survival rates are
        on log(-log S), back-transform ``exp_neg_exp`` (decreasing).
    """
    out = []
    median_back = {"months": "identity", "log": "exp"}[median_scale]
    for _, part in data.groupby(["outcome", "subgroup"], sort=False):
        outcome, subgroup = str(part["outcome"].iloc[0]), str(part["subgroup"].iloc[0])
        kind = str(part["kind"].iloc[0]) if "kind" in part else (
            "proportion" if part["events"].notna().all() else "median")
        studies = tuple(part["study"].astype(str))
        if kind == "proportion":
            out.append(FitData(outcome, subgroup, BN, studies, part["events"].to_numpy(float),
                               part["total"].to_numpy(float), None, None, priors.back_transform("expit"), kind))
        else:
            back = median_back if kind == "median" else "exp_neg_exp"
            out.append(FitData(outcome, subgroup, NN, studies, None, None, part["yi"].to_numpy(float),
                               part["sei"].to_numpy(float) ** 2, priors.back_transform(back), kind))
    return out


def main_priors(config_priors):
    """Kind -> main :class:`PriorSet` from the config's ``bayes.priors``.

    ``proportion`` (logit scale) and ``median`` (months or log-months) are required;
    ``survival_rate`` (log(-log S), a scale like the logit's) defaults to the proportion priors.
    """
    out = {}
    if set(config_priors) <= {"mu", "tau"}:  # one set for every fit, as the config check allows
        config_priors = {"proportion": config_priors, "median": config_priors}
    for kind in ("proportion", "median", "survival_rate"):
        spec = config_priors.get(kind, config_priors["proportion"] if kind == "survival_rate" else None)
        if spec is None:
            raise ValueError(f"bayes.priors: no {kind!r} prior set; expected {{mu: ..., tau: ...}}")
        out[kind] = PriorSet("main", priors.parse_mu(spec["mu"]), priors.parse_tau(spec["tau"]))
    return out


@dataclass(frozen=True)
class ExactStageResult:
    """The exact posteriors of every fit: the tables the workflow writes."""

    summary: pd.DataFrame         # every fit x prior set, SUMMARY_COLUMNS
    estimates: pd.DataFrame       # BAYES-*-EXACT rows of the main prior, k >= 2 (pooled_estimates columns)
    sensitivity: pd.DataFrame     # SENSITIVITY_COLUMNS
    probabilities: pd.DataFrame   # PROBABILITY_COLUMNS (main prior)

    def summary_frame(self):
        return self.summary


def run_exact(fits, main, *, level=0.95, thresholds=None, grid=None, progress=None, exact_max_k=EXACT_MAX_K):
    """Exact posteriors of every fit under the main priors and, for k >= 2, every sensitivity set.

    Parameters
    ----------
    fits : list of FitData
    main : dict
        :func:`main_priors`.
    level : float
    thresholds : dict, optional
        Outcome -> thresholds on the reporting scale for P(pooled value > t | data).
    grid : exact.Grid, optional
    progress : callable, optional
        Called as ``progress(i, n, fit)`` before each fit.
    exact_max_k : int or None
        Binomial-normal fits with more studies use the Laplace approximation
        (:func:`singlearm.bayes.laplace.laplace_bn`; method ``BAYES-BN-LAPLACE``, flagged), under
        every prior set; None: exact at any k.

    Returns
    -------
    ExactStageResult

    Notes
    -----
    R equivalent: per fit, one ``bayesmeta::bayesmeta`` call per prior set (normal-normal); above
    ``exact_max_k``, ``INLA::inla(..., control.inla = list(strategy = "gaussian"))``.
    """
    thresholds = thresholds or {}
    rows, probs = [], []
    for i, fit in enumerate(fits):
        if progress is not None:
            progress(i, len(fits), fit)
        base = main[fit.kind]
        cuts = list(thresholds.get(fit.outcome, []))
        if fit.k == 1:
            sets = [PriorSet(SINGLE_STUDY, base.mu, priors.ZeroTau())]
        else:
            sets = priors.sensitivity_sets(base, centre=fit.centre(),
                                           centre_scale=1.0 if fit.kind != "median" else base.mu.scale / 10)
        posts, method, how = fit.posterior_for_size(sets, grid, exact_max_k)
        for j, (prior, post) in enumerate(zip(sets, posts)):
            # the sensitivity variants (j > 0) report what prior_sensitivity.csv shows, no more
            s = summarise_exact(post, fit.back, level=level, thresholds=cuts if j == 0 else (),
                                population=fit.model == BN and j == 0, shortest=j == 0)
            flags = []
            if how:
                flags.append(how)
            if fit.k == 1:
                flags.append(f"{SINGLE_STUDY}: the study's own posterior under tau = 0 (not pooled)")
            elif fit.k == 2 or s.tau_prior_overlap >= OVERLAP_DOMINATED:
                flags.append(f"{PRIOR_DOMINATED}: tau's posterior overlaps its prior by "
                             f"{s.tau_prior_overlap:.0%} (k = {fit.k})")
            rate = priors.implied_rate_interval(prior.mu, level) if fit.model == BN else (np.nan, np.nan)
            rec = s.record()
            rows.append({"outcome": fit.outcome, "subgroup": fit.subgroup, "model": MODEL_NAME[fit.model],
                         "method": method, "prior": prior.label, "mu_prior": prior.mu_text,
                         "tau_prior": prior.tau_text, "prior_rate_low": rate[0], "prior_rate_high": rate[1],
                         "k": fit.k, "n": fit.n, "interval": SHOWN_INTERVAL, "flags": "; ".join(flags),
                         **rec})
            if j == 0 and fit.k >= 2:  # a single study is not a pooled value
                for t, p in s.probabilities.items():
                    shown = f"{t:.0%}" if fit.back.unit == "rate" else f"{t:g} {fit.back.unit}"
                    probs.append({"outcome": fit.outcome, "subgroup": fit.subgroup,
                                  "method": method, "prior": prior.label, "threshold": t,
                                  "probability": p,
                                  "statement": f"P(pooled {fit.outcome} > {shown} | data) = {p:.3f}"})
    summary = pd.DataFrame(rows).reindex(columns=SUMMARY_COLUMNS)
    return ExactStageResult(summary=summary, estimates=_estimates(summary), sensitivity=_sensitivity(summary),
                            probabilities=pd.DataFrame(probs, columns=PROBABILITY_COLUMNS))


@dataclass(frozen=True)
class StageResult:
    """The whole Bayesian stage of a run: what rule fit_bayes writes."""

    exact: ExactStageResult       # every fit's exact posterior, prior sensitivity, probabilities
    sampled: list                 # singlearm.bayes.sampling.SampledFit per fit sampled
    diagnostics: pd.DataFrame     # bayes_diagnostics.csv
    estimates: pd.DataFrame       # bayes_estimates.csv


def run_stage(fits, main, settings, *, seed, level=0.95, thresholds=None, exact_max_k=EXACT_MAX_K, progress=None,
              threads=1, sampler=None):
    """Every fit's exact posterior, then its MCMC sample certified against it.

    The exact posteriors (quadrature in numpy) are computed on a side thread while the sampler
    compiles (XLA's compiler releases the GIL), so on two cores they cost little wall time; the
    sampling waits for them only before its first fit.

    Parameters
    ----------
    fits : list of FitData
    main : dict
        Kind -> main PriorSet (:func:`main_priors`).
    settings : singlearm.bayes.sampling.Settings
    seed : int
    progress : callable, optional
        :func:`progress_printer`'s printer.
    threads : int
        Fits sampled at once.
    sampler : back end, optional
        Default: ``settings.backend``.

    Returns
    -------
    StageResult

    Notes
    -----
    R equivalent: ``bayesmeta::bayesmeta`` (exact, normal-normal) beside ``brms::brm`` per fit.
    """
    from concurrent.futures import ThreadPoolExecutor

    from . import sampling

    with ThreadPoolExecutor(max_workers=1) as side:
        job = side.submit(run_exact, fits, main, level=level, thresholds=thresholds, exact_max_k=exact_max_k)

        def exact_main():
            summary = job.result().summary
            if progress is not None and hasattr(progress, "say"):
                progress.say(f"exact posteriors of {len(fits)} fit(s) and their prior sensitivity done")
            rows = summary[summary["prior"] == "main"].set_index(["outcome", "subgroup"])
            return {key: row for key, row in rows.iterrows()}

        sampled, diagnostics = sampling.run_sampling(fits, main, exact_main, settings, seed=seed, level=level,
                                                     progress=progress, threads=threads, sampler=sampler)
    result = job.result()
    estimates = sampling.estimates_table(fits, sampled, diagnostics, result.summary, level=level)
    return StageResult(result, sampled, diagnostics, estimates)


def _estimates(summary):
    """``pooled_estimates.csv`` rows: main prior, k >= 2 (a single study is not a pooled estimate)."""
    from ..pool import ESTIMATE_COLUMNS

    t = summary[(summary["prior"] == "main") & (summary["k"] >= 2)]
    out = t[["outcome", "subgroup", "method", "k", "n", "estimate", "ci_low", "ci_high", "pi_low", "pi_high",
             "tau2"]].copy()
    for c in ("i2", "q", "q_df", "q_p"):
        out[c] = np.nan
    return out.reindex(columns=ESTIMATE_COLUMNS).reset_index(drop=True)


def _sensitivity(summary):
    """``prior_sensitivity.csv``: every fit with k >= 2 under every prior set, beside the main one."""
    t = summary[summary["k"] >= 2].copy()
    key = ["outcome", "subgroup"]
    base = t[t["prior"] == "main"].set_index(key)
    ref = base.loc[list(zip(t["outcome"], t["subgroup"]))]
    t["difference"] = t["estimate"].to_numpy() - ref["estimate"].to_numpy()
    t["ci_width_ratio"] = (t["ci_high"] - t["ci_low"]).to_numpy() / (ref["ci_high"] - ref["ci_low"]).to_numpy()
    t["note"] = t["flags"]
    return t.reindex(columns=SENSITIVITY_COLUMNS).reset_index(drop=True)


def progress_printer(name, stream):
    """``progress(i, n, fit)`` printing "[name] fit i of N: outcome / subgroup (k = .), t s elapsed"
    to ``stream`` (the rule's log) and to the terminal, so a long stage is visibly working."""
    import sys
    import time

    start = time.perf_counter()

    def say(text):
        line = f"[{name}] {text}, {time.perf_counter() - start:.1f} s elapsed"
        print(line, file=stream, flush=True)
        print(line, file=sys.__stderr__, flush=True)

    def progress(i, n, fit):
        say(f"fit {i + 1} of {n}: {fit.outcome} / {fit.subgroup} (k = {fit.k})")

    progress.say = say  # free-text steps (e.g. compiling the sampler)
    return progress
