"""Pool one outcome: every method of its kind, overall and per subgroup, with the test for subgroup differences.

This is the orchestration of :mod:`effects` -> :mod:`fit` / :mod:`glmm` -> back-transform
(:mod:`methods`) for the rows of one outcome of the cleaned analysis table. It returns tidy tables
whose columns are the workflow's output contract.

Three rules hold for every kind:

* a subgroup (or overall) with one cohort is *not pooled*: every method reports that study's own
  result (exact Clopper-Pearson CI for a count, the reported or approximated CI otherwise),
  heterogeneity and prediction interval blank, flag "single study, not pooled";
* limits are reported in ascending order on the reporting scale (the complementary log-log of a
  survival rate reverses them);
* a median's limits are never negative: on the months scale a negative lower CI or PI limit is
  clipped at 0 and flagged.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from . import effects, ftcheck, methods
from .fit import confint_tau2, rma, subgroup_test
from .glmm import glmm_ml
from .outcomes import MEDIAN, PROPORTION, SURVIVAL_RATE

ESTIMATE_COLUMNS = ["outcome", "subgroup", "method", "k", "n", "estimate", "ci_low", "ci_high", "pi_low",
                    "pi_high", "tau2", "i2", "q", "q_df", "q_p", "k_reporting"]
DETAIL_COLUMNS = ["outcome", "subgroup", "method", "scale", "b", "se", "ci_lb", "ci_ub", "stat", "pval",
                  "tau2_lb", "tau2_ub", "i2_lb", "i2_ub", "h2", "h2_lb", "h2_ub", "cohorts", "flags"]
SUBGROUP_COLUMNS = ["outcome", "method", "subgroups", "q_between", "df", "p_value", "levels"]
STUDY_COLUMNS = ["outcome", "subgroup", "cohort_id", "study_id", "events", "total", "estimate", "ci_low",
                 "ci_high", "ci_method", "has_ci", "weight_overall", "weight_subgroup"]
MEDIAN_SUMMARY_COLUMNS = ["outcome", "subgroup", "k_reported", "k_with_ci", "min", "max", "mean", "sd",
                          "cohorts_without_ci"]

SINGLE_STUDY = "single study, not pooled"
NAN = float("nan")


@dataclass(frozen=True)
class PooledOutcome:
    """All pooled results of one outcome."""

    estimates: pd.DataFrame
    details: pd.DataFrame
    subgroup_tests: pd.DataFrame
    studies: pd.DataFrame
    median_summary: pd.DataFrame


@dataclass(frozen=True)
class AnalysisScale:
    """The rows of one meta-analysis on a method's analysis scale, with its back-transform.

    ``back(b, n)`` maps an analysis-scale value pooled from studies with sizes ``n`` to the
    reporting scale: for Freeman-Tukey the harmonic mean of exactly the n that were pooled, so
    leave-one-out rows pass the k - 1 remaining n.
    """

    method: str
    cohorts: np.ndarray
    yi: np.ndarray
    vi: np.ndarray
    n: np.ndarray
    estimator: str
    test: str
    scale: str
    back: object

    @property
    def k(self):
        return len(self.yi)


@dataclass(frozen=True)
class MethodFit:
    """One method's result on one set of rows: a ``pooled_estimates`` row and a ``pooled_details`` row.

    ``b``/``se`` are the analysis-scale estimate and its SE, used by the subgroup test (NaN for
    methods without one).
    """

    estimate: dict
    detail: dict
    b: float
    se: float
    k: int


def poolable(rows):
    """The rows an inverse-variance meta-analysis can pool: every proportion; a median or survival
    rate only with a standard error (``se_source`` filled: a CI, one-sided CI or, for a survival
    rate, the binomial approximation from n).

    Medians printed without a CI are shown and summarised, and enter only the median of medians
    (MEDIAN-MM / MEDIAN-WM).
    """
    ok = rows["kind"] == PROPORTION
    if not ok.all():
        ok |= rows["se_source"].fillna("").astype(str).ne("")
    return rows[ok]


def reporting(rows):
    """The rows a median-of-medians method uses: every cohort that printed a numeric value."""
    return rows[rows["estimate"].notna()]


def analysis_scale(rows, method):
    """Effect sizes of ``rows`` (one outcome, one subgroup) on an inverse-variance method's scale.

    Parameters
    ----------
    rows : pandas.DataFrame
        Cleaned analysis rows (``cohort_id, kind, events, total, estimate, ci_low, ci_high,
        se_source``).
    method : str
        An inverse-variance method id of :data:`singlearm.methods.REGISTRY`.

    Returns
    -------
    AnalysisScale

    Notes
    -----
    R equivalent: ``metafor::escalc(measure="PFT", xi=events, ni=total)`` (or ``"PLO"``); for
    medians and survival rates ``yi`` and ``vi`` come from :mod:`singlearm.effects`.
    """
    m = methods.get(method)
    if not m.inverse_variance:
        raise ValueError(f"method {method!r} has no inverse-variance analysis scale; expected one of "
                         f"{', '.join(i for i, x in methods.REGISTRY.items() if x.inverse_variance)}")
    part = poolable(rows)
    n = part["total"].to_numpy(float)
    if m.kind == PROPORTION:
        yi, vi = effects.proportion_effects(part["events"].to_numpy(float), n, "PFT" if m.scale == methods.PFT else "PLO")
    elif m.kind == MEDIAN:
        yi, vi = effects.median_effects(part["estimate"], part["ci_low"], part["ci_high"], m.scale)
    else:
        yi, vi, _ = effects.survival_effects(part["estimate"], part["ci_low"], part["ci_high"], n)
    return AnalysisScale(method, part["cohort_id"].to_numpy(), np.asarray(yi, float), np.asarray(vi, float), n,
                         m.estimator, m.test, m.scale, m.back)


def primary_for(kind, primary_method, primary_median_method, primary_survival_method=None):
    """The method id used for an outcome kind's main analyses (sensitivity, bias, figures)."""
    if kind == MEDIAN:
        return primary_median_method
    if kind == SURVIVAL_RATE:
        return primary_survival_method or methods.DEFAULT_PRIMARY[SURVIVAL_RATE]
    return primary_method


def _ordered(m, a, b, n):
    """Back-transformed limits ``(low, high)`` of analysis-scale limits ``a <= b``, ascending."""
    lo, hi = float(m.back(a, n)), float(m.back(b, n))
    return (lo, hi) if m.increasing else (hi, lo)


def _row(outcome, subgroup, m, part, k_reporting, est, ci, pi, het, detail, flags):
    n = part["total"]
    estimate = dict(outcome=outcome, subgroup=subgroup, method=m.id, k=len(part),
                    n=int(n.sum()) if n.notna().all() else NAN, estimate=est, ci_low=ci[0], ci_high=ci[1],
                    pi_low=pi[0], pi_high=pi[1], k_reporting=k_reporting, **het)
    detail = dict(outcome=outcome, subgroup=subgroup, method=m.id, scale=m.scale, cohorts=";".join(part["cohort_id"]),
                  flags="; ".join(flags), **detail)
    return estimate, detail


_NO_HET = dict(tau2=NAN, i2=NAN, q=NAN, q_df=NAN, q_p=NAN)
_NO_DETAIL = dict(b=NAN, se=NAN, ci_lb=NAN, ci_ub=NAN, stat=NAN, pval=NAN, tau2_lb=NAN, tau2_ub=NAN, i2_lb=NAN,
                  i2_ub=NAN, h2=NAN, h2_lb=NAN, h2_ub=NAN)


def _own_result(rows, m, level):
    """One study's own estimate and CI on the reporting scale, and the analysis-scale b, se.

    Counts: x/n with the exact Clopper-Pearson CI. Medians and survival rates: the reported CI
    (one-sided where the upper limit was not reached); a survival rate without a CI gets
    the interval of its binomial-approximation SE on the complementary log-log scale.
    """
    r = rows.iloc[0]
    if m.kind == PROPORTION:
        lo, hi = effects.clopper_pearson([r["events"]], [r["total"]], level)
        return float(r["events"] / r["total"]), (float(lo[0]), float(hi[0])), "exact Clopper-Pearson CI"
    if m.kind == MEDIAN or (m.kind == SURVIVAL_RATE and r["se_source"] != effects.BINOMIAL_APPROXIMATION):
        return float(r["estimate"]), (float(r["ci_low"]), float(r["ci_high"]) if pd.notna(r["ci_high"]) else NAN), \
            "reported CI"
    y, v, _ = effects.survival_effects([r["estimate"]], [NAN], [NAN], [r["total"]])
    half = special.ndtri(1 - (1 - level) / 2) * np.sqrt(v[0])
    return float(r["estimate"]), _ordered(m, y[0] - half, y[0] + half, None), \
        "CI from the binomial approximation on the complementary log-log scale"


def _median_of_medians(part, m, level):
    """MEDIAN-MM (median of the reported medians, distribution-free CI) or MEDIAN-WM (weighted by n).

    MM: the sample median of the k medians; its CI is the pair of order statistics
    :math:`[y_{(j)}, y_{(k-j+1)}]` with the largest j whose coverage
    :math:`1 - 2\\,P(\\mathrm{Bin}(k, 1/2) \\le j - 1) \\ge` ``level`` (inverting the sign test;
    McGrath et al. 2019, Stat Med 38:969), blank when even ``[min, max]`` covers less (k < 6 at
    95%). WM: the median of the sample in which each cohort's median counts n_i times (type-7
    interpolation, as ``Hmisc::wtd.quantile``); no CI.

    R equivalent: ``metamedian::pool.med(yi)`` / ``pool.med(yi, wi=n)`` for the estimate. (With
    ``norm.approx=FALSE`` metamedian 0.1.x takes ``y[k - j]`` as the upper limit; we use the
    textbook ``y[k - j + 1]``, Conover 1999 section 3.2, whose coverage the formula above states.)
    """
    y = np.sort(part["estimate"].to_numpy(float))
    k = len(y)
    if m.estimator == "MM":
        est = float(np.median(y))
        j = np.arange(1, k // 2 + 1)
        cover = 1 - 2 * special.bdtr(j - 1, k, 0.5)
        ok = j[cover >= level]
        ci = (float(y[ok.max() - 1]), float(y[k - ok.max()])) if ok.size else (NAN, NAN)
        return est, ci, []
    w = part.sort_values("estimate")["total"].to_numpy(float)
    pos = 1 + (w.sum() - 1) * 0.5   # 1-based position of the median in the n-weighted sample
    cum = np.cumsum(w)
    low, frac = int(np.floor(pos)), pos % 1
    at = lambda p: y[np.searchsorted(cum, p)]  # value at 1-based position p of the expanded sample
    return float((1 - frac) * at(low) + frac * at(min(low + 1, cum[-1]))), (NAN, NAN), []


def fit_method(rows, method, *, outcome="", subgroup="overall", level=0.95, glmm_b=None, ft_logit_margin=0.2):
    """One method on one set of rows (one outcome, one subgroup): a :class:`MethodFit`, or None if nothing to pool.

    Parameters
    ----------
    rows : pandas.DataFrame
        Cleaned analysis rows of one outcome.
    method : str
        A method id of :data:`singlearm.methods.REGISTRY` of the rows' kind.
    outcome, subgroup : str
        Labels of the output rows.
    level : float
        Confidence level.
    glmm_b : float, optional
        The GLMM's pooled logit on the same rows, for the Freeman-Tukey check.
    ft_logit_margin : float
        Flag a Freeman-Tukey estimate differing from the GLMM by more than this on the logit scale.

    Notes
    -----
    R equivalent: ``metafor::rma(measure="PFT", xi, ni, method="DL")`` and
    ``transf.ipft.hm``; ``rma.glmm(measure="PLO", method="ML")``; ``rma(yi, vi, method=...)`` on
    log medians or ``log(-log S)``; ``metamedian::pool.med`` for MEDIAN-MM / MEDIAN-WM.
    """
    m = methods.get(method)
    median_of_medians = m.estimator in ("MM", "WM")
    part = reporting(rows) if median_of_medians else poolable(rows)
    if m.estimator == "WM":
        part = part[part["total"].notna()]
    k_reporting = len(reporting(rows)) if m.kind != PROPORTION else len(rows)
    if part.empty:
        return None
    flags = []
    if m.kind == SURVIVAL_RATE and (part["se_source"] == effects.BINOMIAL_APPROXIMATION).any():
        approx = ";".join(part.loc[part["se_source"] == effects.BINOMIAL_APPROXIMATION, "cohort_id"])
        flags.append(f"se_source = binomial_approximation for {approx}: no CI reported, SE from n "
                     "(a lower bound under censoring)")
    if m.estimator == "WM" and len(part) < len(reporting(rows)):
        flags.append("cohorts without n left out of the n-weighted median")
    if len(part) == 1:
        est, ci, how = _own_result(part, m, level)
        e, d = _row(outcome, subgroup, m, part, k_reporting, est, ci, (NAN, NAN), _NO_HET, _NO_DETAIL,
                    [SINGLE_STUDY, how, *flags])
        return MethodFit(e, d, NAN, NAN, 1)
    if median_of_medians:
        est, ci, more = _median_of_medians(part, m, level)
        if not np.isfinite(ci[0]):
            more.append("no CI: too few cohorts for a distribution-free CI at this level"
                        if m.estimator == "MM" else "no CI for the n-weighted median")
        e, d = _row(outcome, subgroup, m, part, k_reporting, est, ci, (NAN, NAN), _NO_HET, _NO_DETAIL, flags + more)
        return MethodFit(e, d, NAN, NAN, len(part))
    if m.estimator == "ML":
        return _fit_glmm(part, m, outcome, subgroup, level, flags)
    s = analysis_scale(part, method)
    r = rma(s.yi, s.vi, s.estimator, s.test, level)
    ci_het = confint_tau2(s.yi, s.vi, level) if s.estimator != "EE" else None
    est = float(m.back(r.b, s.n))
    ci = _ordered(m, r.ci_lb, r.ci_ub, s.n)
    pi = _ordered(m, r.pi_lb, r.pi_ub, s.n) if np.isfinite(r.pi_lb) else (NAN, NAN)
    if m.scale == methods.PFT:
        flags += ftcheck.ft_flags(r.b, r.ci_lb, r.ci_ub, r.pi_lb, r.pi_ub, r.tau2, part["events"], s.n, glmm_b,
                                  ft_logit_margin)
    if m.scale == methods.LOGIT:
        flags += _continuity_flag(part)
    if m.scale == methods.MONTHS:
        ci, pi, clipped = _clip_months(ci, pi)
        flags += clipped
    het = dict(tau2=r.tau2, i2=r.i2, q=r.q, q_df=r.q_df, q_p=r.q_p)
    detail = dict(b=r.b, se=r.se, ci_lb=r.ci_lb, ci_ub=r.ci_ub, stat=r.stat, pval=r.pval, h2=r.h2,
                  tau2_lb=ci_het.tau2_lb if ci_het else NAN, tau2_ub=ci_het.tau2_ub if ci_het else NAN,
                  i2_lb=ci_het.i2_lb if ci_het else NAN, i2_ub=ci_het.i2_ub if ci_het else NAN,
                  h2_lb=ci_het.h2_lb if ci_het else NAN, h2_ub=ci_het.h2_ub if ci_het else NAN)
    e, d = _row(outcome, subgroup, m, part, k_reporting, est, ci, pi, het, detail, flags)
    return MethodFit(e, d, r.b, r.se, len(part))


def _continuity_flag(part):
    x, n = part["events"].to_numpy(float), part["total"].to_numpy(float)
    corrected = part.loc[(x == 0) | (x == n), "cohort_id"]
    return [f"0.5 continuity correction applied ({';'.join(corrected)})"] if len(corrected) else []


def _clip_months(ci, pi):
    """Clip negative lower limits of a median in months at 0, saying so."""
    flags = []
    if ci[0] < 0:
        flags.append(f"lower CI limit {ci[0]:.2f} months clipped at 0 (a symmetric interval on the months "
                     "scale; the log scale, LOGMEDIAN-*, cannot go below 0)")
        ci = (0.0, ci[1])
    if np.isfinite(pi[0]) and pi[0] < 0:
        flags.append(f"lower PI limit {pi[0]:.2f} months clipped at 0")
        pi = (0.0, pi[1])
    return ci, pi, flags


def _fit_glmm(part, m, outcome, subgroup, level, flags):
    """The binomial-normal GLMM (ML) on two or more cohorts."""
    x, n = part["events"].to_numpy(float), part["total"].to_numpy(float)
    if x.sum() == 0 or x.sum() == n.sum():
        which = "no" if x.sum() == 0 else "every"
        e, d = _row(outcome, subgroup, m, part, len(part), NAN, (NAN, NAN), (NAN, NAN), _NO_HET, _NO_DETAIL,
                    [*flags, f"left blank: {which} patient had the event, so the GLMM likelihood has no finite maximum"])
        return MethodFit(e, d, NAN, NAN, len(part))
    g = glmm_ml(x, n, level=level)
    yi, vi = effects.proportion_effects(x, n, "PLO")
    ref = rma(yi, vi, "EE")   # Cochran's Q of the logits (as metafor reports beside the GLMM)
    het = dict(tau2=g.tau2, i2=g.i2, q=ref.q, q_df=ref.q_df, q_p=ref.q_p)
    detail = dict(_NO_DETAIL, b=g.b, se=g.se, ci_lb=g.ci_lb, ci_ub=g.ci_ub, stat=g.b / g.se)
    e, d = _row(outcome, subgroup, m, part, len(part), float(m.back(g.b)), _ordered(m, g.ci_lb, g.ci_ub, n),
                (NAN, NAN), het, detail, flags)
    return MethodFit(e, d, g.b, g.se, len(part))


def pool_outcome(rows, outcome, levels=None, level=0.95, ft_logit_margin=0.2, primary=None):
    """Pool one outcome overall and per subgroup level with every method of its kind.

    Parameters
    ----------
    rows : pandas.DataFrame
        The cleaned analysis rows of this outcome (``singlearm.cleaning`` columns).
    outcome : str
    levels : list of str, optional
        Subgroup levels in reporting order (default: order of appearance).
    level : float
        Confidence level.
    ft_logit_margin : float
        Flag a Freeman-Tukey estimate that differs from the GLMM estimate by more than this on
        the logit scale.
    primary : str, optional
        The outcome's primary method: its study weights go to the forest plot (default: the
        kind's default of :data:`singlearm.methods.DEFAULT_PRIMARY`).

    Returns
    -------
    PooledOutcome
    """
    rows = rows[rows["outcome"] == outcome]
    kind = rows["kind"].iloc[0]
    primary = primary or methods.DEFAULT_PRIMARY[kind]
    levels = [lv for lv in (levels or list(dict.fromkeys(rows["subgroup"]))) if lv in set(rows["subgroup"])]
    estimates, details, summaries = [], [], []
    fits = {}
    for subgroup in ["overall", *levels]:
        part = rows if subgroup == "overall" else rows[rows["subgroup"] == subgroup]
        if kind == MEDIAN:
            summaries.append(_median_summary(part, outcome, subgroup))
        glmm = fit_method(part, "GLMM-ML", outcome=outcome, subgroup=subgroup, level=level) \
            if kind == PROPORTION and len(part) >= 2 else None
        for method in methods.of_kind(kind):
            f = glmm if method == "GLMM-ML" and glmm else fit_method(
                part, method, outcome=outcome, subgroup=subgroup, level=level,
                glmm_b=glmm.b if glmm else None, ft_logit_margin=ft_logit_margin)
            if f is None:
                continue
            estimates.append(f.estimate)
            details.append(f.detail)
            fits.setdefault(method, {})[subgroup] = f
    tests = []
    for method, by in fits.items():
        parts = [(lv, by[lv]) for lv in levels if lv in by and np.isfinite(by[lv].b)]
        if len(parts) >= 2:
            q, df, p = subgroup_test([f.b for _, f in parts], [f.se for _, f in parts])
            tests.append(dict(outcome=outcome, method=method, subgroups=len(parts), q_between=q, df=df, p_value=p,
                              levels=";".join(f"{lv}:k={f.k}" for lv, f in parts)))
    return PooledOutcome(
        estimates=pd.DataFrame(estimates, columns=ESTIMATE_COLUMNS),
        details=pd.DataFrame(details, columns=DETAIL_COLUMNS),
        subgroup_tests=pd.DataFrame(tests, columns=SUBGROUP_COLUMNS),
        studies=study_rows(rows, outcome, primary, level),
        median_summary=pd.DataFrame(summaries, columns=MEDIAN_SUMMARY_COLUMNS),
    )


def _weights(rows, primary):
    """Percent weights of ``rows`` in the primary method's fit (NaN if it is not inverse-variance)."""
    m = methods.get(primary)
    if not m.inverse_variance or rows.empty:
        return np.full(len(rows), NAN)
    s = analysis_scale(rows, primary)
    return rma(s.yi, s.vi, s.estimator).weights * 100


def study_rows(rows, outcome, primary, level=0.95):
    """Per-cohort estimates and CIs for the forest plot, with the primary method's weights (overall and in subgroup).

    Counts carry the exact Clopper-Pearson CI; medians and survival rates the reported CI
    (``ci_high`` blank when the upper limit was not reached), or for a survival rate without a
    CI the interval of its binomial-approximation SE. Rows that cannot be pooled have
    ``has_ci`` False and no weight.
    """
    m = methods.get(primary)
    out = rows.reindex(columns=["subgroup", "cohort_id", "study_id", "events", "total", "estimate", "ci_low", "ci_high"])
    out.insert(0, "outcome", outcome)
    pooled = poolable(rows).index
    out["has_ci"] = out.index.isin(pooled)
    out["ci_method"] = ""
    for i in pooled:
        est, (lo, hi), how = _own_result(rows.loc[[i]], m, level)
        out.loc[i, ["estimate", "ci_low", "ci_high", "ci_method"]] = [est, lo, hi, how]
    out["weight_overall"] = NAN
    out["weight_subgroup"] = NAN
    with_ci = rows.loc[pooled]
    out.loc[pooled, "weight_overall"] = _weights(with_ci, primary)
    for lv in with_ci["subgroup"].unique():
        idx = with_ci.index[with_ci["subgroup"] == lv]
        out.loc[idx, "weight_subgroup"] = _weights(with_ci.loc[idx], primary)
    return out[STUDY_COLUMNS].reset_index(drop=True)


def _median_summary(part, outcome, subgroup):
    """Range and mean +/- SD of the reported medians (the review's summary of median OS)."""
    m = part["estimate"].astype(float)
    pooled = poolable(part)
    return dict(outcome=outcome, subgroup=subgroup, k_reported=len(m), k_with_ci=len(pooled),
                min=m.min(), max=m.max(), mean=m.mean(), sd=m.std(ddof=1) if len(m) > 1 else NAN,
                cohorts_without_ci=";".join(part.loc[~part.index.isin(pooled.index), "cohort_id"]))
