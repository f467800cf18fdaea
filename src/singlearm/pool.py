"""Pool one outcome: every method, overall and per subgroup, with the test for subgroup differences.

This is the orchestration of :mod:`effects` -> :mod:`fit` / :mod:`glmm` -> :mod:`transforms` for the
rows of one outcome of the cleaned analysis table. It returns tidy tables whose columns are the
workflow's output contract.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import effects, transforms
from .fit import confint_tau2, rma, subgroup_test
from .glmm import glmm_ml

ESTIMATE_COLUMNS = ["outcome", "subgroup", "method", "k", "n", "estimate", "ci_low", "ci_high", "pi_low",
                    "pi_high", "tau2", "i2", "q", "q_df", "q_p"]
DETAIL_COLUMNS = ["outcome", "subgroup", "method", "scale", "b", "se", "ci_lb", "ci_ub", "stat", "pval",
                  "tau2_lb", "tau2_ub", "i2_lb", "i2_ub", "h2", "h2_lb", "h2_ub", "flags"]
SUBGROUP_COLUMNS = ["outcome", "method", "subgroups", "q_between", "df", "p_value", "levels"]
STUDY_COLUMNS = ["outcome", "subgroup", "cohort_id", "study_id", "events", "total", "estimate", "ci_low",
                 "ci_high", "ci_method", "has_ci", "weight_overall", "weight_subgroup"]
MEDIAN_SUMMARY_COLUMNS = ["outcome", "subgroup", "k_reported", "k_with_ci", "min", "max", "mean", "sd",
                          "cohorts_without_ci"]

# method id -> (effect measure, tau^2 estimator, test); GLMM-ML is fitted by glmm_ml.
PROPORTION_METHODS = {
    "PFT-DL": ("PFT", "DL", "z"),
    "PFT-REML": ("PFT", "REML", "z"),
    "PLO-DL": ("PLO", "DL", "z"),
    "PLO-REML": ("PLO", "REML", "z"),
    "PFT-DL-HKSJ": ("PFT", "DL", "knha"),
    "GLMM-ML": ("PLO", "ML", "z"),
    "COMMON-PFT": ("PFT", "EE", "z"),
}
MEDIAN_METHODS = {"MEDIAN-DL": ("months", "DL", "z"), "LOGMEDIAN-DL": ("log", "DL", "z")}


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
    reporting scale (a proportion or months): for Freeman-Tukey the harmonic mean of exactly
    the n that were pooled, so leave-one-out rows pass the k - 1 remaining n.
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


def poolable(rows):
    """The rows a meta-analysis can pool: every proportion, and a median only with its 95% CI.

    A median's standard error comes from its CI (:func:`singlearm.effects.median_effects`), so
    medians printed without one are shown and summarised but never pooled, by any method.
    """
    return rows[(rows["kind"] != "median") | rows["has_ci"].astype(bool)]


def _identity(b, n):
    return np.asarray(b, dtype=float)


def _ilogit(b, n):
    return transforms.ilogit(b)


def _exp(b, n):
    return np.exp(b)


def analysis_scale(rows, method):
    """Effect sizes of ``rows`` (one outcome, one subgroup) for an rma-based method id.

    Proportions use every row; medians only the rows with a 95% CI (their SE comes from it).

    Parameters
    ----------
    rows : pandas.DataFrame
        Cleaned analysis rows (``cohort_id, kind, events, total, estimate, ci_low, ci_high,
        has_ci``).
    method : str
        A key of :data:`PROPORTION_METHODS` (except GLMM-ML) or :data:`MEDIAN_METHODS`.

    Returns
    -------
    AnalysisScale

    Notes
    -----
    R equivalent: ``metafor::escalc(measure="PFT", xi=events, ni=total)`` (or ``"PLO"``).
    """
    if method in MEDIAN_METHODS:
        scale, estimator, test = MEDIAN_METHODS[method]
        part = poolable(rows)
        yi, vi = effects.median_effects(part["estimate"], part["ci_low"], part["ci_high"], scale)
        back = _exp if scale == "log" else _identity
        n = part["total"].to_numpy(float)
    elif method in PROPORTION_METHODS and method != "GLMM-ML":
        measure, estimator, test = PROPORTION_METHODS[method]
        part = rows
        n = part["total"].to_numpy(float)
        yi, vi = effects.proportion_effects(part["events"].to_numpy(float), n, measure)
        scale = "pft" if measure == "PFT" else "logit"
        back = transforms.ipft_hm if measure == "PFT" else _ilogit
    else:
        raise ValueError(f"method {method!r} has no rma analysis scale; expected one of "
                         f"{', '.join(m for m in [*PROPORTION_METHODS, *MEDIAN_METHODS] if m != 'GLMM-ML')}")
    return AnalysisScale(method, part["cohort_id"].to_numpy(), np.asarray(yi, float), np.asarray(vi, float), n,
                         estimator, test, scale, back)


def primary_for(kind, primary_method, primary_median_method):
    """The method id used for an outcome kind's main analyses (sensitivity, bias, figures)."""
    return primary_median_method if kind == "median" else primary_method


def _fit_proportions(method, x, n, level):
    """Fit one proportion method; returns (analysis-scale fit fields, back-transform function)."""
    measure, estimator, test = PROPORTION_METHODS[method]
    if method == "GLMM-ML" and len(x) >= 2:
        if x.sum() == 0 or x.sum() == n.sum():
            nan = float("nan")
            fit = dict(b=nan, se=nan, ci_lb=nan, ci_ub=nan, stat=nan, pval=nan, tau2=nan, i2=nan, q=nan,
                       q_df=len(x) - 1, q_p=nan, h2=nan, pi_lb=nan, pi_ub=nan)
            return fit, transforms.ilogit, None   # no events (or no non-events) anywhere: no finite MLE
        g = glmm_ml(x, n, level=level)
        yi, vi = effects.proportion_effects(x, n, "PLO")
        ref = rma(yi, vi, "EE")   # Cochran's Q of the logits (as metafor reports beside the GLMM)
        fit = dict(b=g.b, se=g.se, ci_lb=g.ci_lb, ci_ub=g.ci_ub, stat=g.b / g.se, pval=np.nan, tau2=g.tau2,
                   i2=g.i2, q=ref.q, q_df=ref.q_df, q_p=ref.q_p, h2=np.nan, pi_lb=np.nan, pi_ub=np.nan)
        return fit, transforms.ilogit, None
    # k = 1 for the GLMM falls through to the study's own logit (heterogeneity NA).
    yi, vi = effects.proportion_effects(x, n, measure)
    r = rma(yi, vi, "DL" if estimator == "ML" else estimator, test, level)
    fit = {f: getattr(r, f) for f in ("b", "se", "ci_lb", "ci_ub", "stat", "pval", "tau2", "i2", "q", "q_df",
                                      "q_p", "h2", "pi_lb", "pi_ub")}
    back = (lambda y: transforms.ipft_hm(y, n)) if measure == "PFT" else transforms.ilogit
    ci = confint_tau2(yi, vi, level) if estimator not in ("EE",) and len(x) >= 2 else None
    return fit, back, ci


def _fit_medians(method, m, lo, hi, level):
    scale, estimator, test = MEDIAN_METHODS[method]
    yi, vi = effects.median_effects(m, lo, hi, scale)
    r = rma(yi, vi, estimator, test, level)
    fit = {f: getattr(r, f) for f in ("b", "se", "ci_lb", "ci_ub", "stat", "pval", "tau2", "i2", "q", "q_df",
                                      "q_p", "h2", "pi_lb", "pi_ub")}
    back = np.exp if scale == "log" else (lambda y: np.asarray(y, dtype=float))
    ci = confint_tau2(yi, vi, level) if len(yi) >= 2 else None
    return fit, back, ci


def _rows(outcome, subgroup, method, scale, k, n, fit, back, ci, flags):
    nan = float("nan")
    est = dict(outcome=outcome, subgroup=subgroup, method=method, k=k, n=n,
               estimate=float(back(fit["b"])), ci_low=float(back(fit["ci_lb"])), ci_high=float(back(fit["ci_ub"])),
               pi_low=float(back(fit["pi_lb"])) if np.isfinite(fit["pi_lb"]) else nan,
               pi_high=float(back(fit["pi_ub"])) if np.isfinite(fit["pi_ub"]) else nan,
               tau2=fit["tau2"], i2=fit["i2"], q=fit["q"], q_df=fit["q_df"] if k > 1 else nan,
               q_p=fit["q_p"])
    detail = dict(outcome=outcome, subgroup=subgroup, method=method, scale=scale,
                  **{f: fit[f] for f in ("b", "se", "ci_lb", "ci_ub", "stat", "pval", "h2")},
                  tau2_lb=ci.tau2_lb if ci else nan, tau2_ub=ci.tau2_ub if ci else nan,
                  i2_lb=ci.i2_lb if ci else nan, i2_ub=ci.i2_ub if ci else nan,
                  h2_lb=ci.h2_lb if ci else nan, h2_ub=ci.h2_ub if ci else nan, flags="; ".join(flags))
    return est, detail


def pool_outcome(rows, outcome, levels=None, level=0.95, ft_glmm_margin=0.02):
    """Pool one outcome overall and per subgroup level with every method.

    Parameters
    ----------
    rows : pandas.DataFrame
        The cleaned analysis rows of this outcome (``singlearm.cleaning`` columns).
    outcome : str
    levels : list of str, optional
        Subgroup levels in reporting order (default: order of appearance).
    level : float
        Confidence level.
    ft_glmm_margin : float
        Flag a Freeman-Tukey estimate that differs from the GLMM estimate by more than this
        (absolute, on the proportion scale).

    Returns
    -------
    PooledOutcome
    """
    rows = rows[rows["outcome"] == outcome]
    kind = rows["kind"].iloc[0]
    levels = [lv for lv in (levels or list(dict.fromkeys(rows["subgroup"]))) if lv in set(rows["subgroup"])]
    estimates, details, studies, summaries = [], [], [], []
    fits_by_method = {}
    if kind == "proportion":
        studies.append(_study_rows(rows, outcome))
    for subgroup in ["overall", *levels]:
        part = rows if subgroup == "overall" else rows[rows["subgroup"] == subgroup]
        if kind == "proportion":
            x, n = part["events"].to_numpy(float), part["total"].to_numpy(float)
            glmm_estimate = None
            results = {}
            for method in PROPORTION_METHODS:
                fit, back, ci = _fit_proportions(method, x, n, level)
                results[method] = (fit, back, ci)
                if method == "GLMM-ML":
                    glmm_estimate = float(back(fit["b"]))
            for method, (fit, back, ci) in results.items():
                flags = [] if method != "GLMM-ML" or np.isfinite(fit["b"]) else [  # the blank row says why
                    f"left blank: {'no' if x.sum() == 0 else 'every'} patient had the event, so the GLMM likelihood "
                    "has no finite maximum"]
                if PROPORTION_METHODS[method][0] == "PFT":
                    flags = transforms.ft_pathology(fit["b"], fit["ci_lb"], fit["ci_ub"], n)
                    est = float(back(fit["b"]))
                    if glmm_estimate is not None and abs(est - glmm_estimate) > ft_glmm_margin:
                        flags.append(f"differs from GLMM-ML ({glmm_estimate:.4f}) by more than {ft_glmm_margin}")
                scale = "logit" if PROPORTION_METHODS[method][0] == "PLO" else PROPORTION_METHODS[method][0].lower()
                e, d = _rows(outcome, subgroup, method, scale, len(x), int(n.sum()), fit, back, ci, flags)
                estimates.append(e)
                details.append(d)
                fits_by_method.setdefault(method, {})[subgroup] = (fit["b"], fit["se"], len(x))
        else:
            summaries.append(_median_summary(part, outcome, subgroup))
            pooled = poolable(part)
            if kind == "median" and subgroup == "overall":
                studies.append(_median_study_rows(rows, outcome))
            if pooled.empty:
                continue
            totals = pooled["total"]
            n = int(totals.sum()) if totals.notna().all() else float("nan")
            for method in MEDIAN_METHODS:
                fit, back, ci = _fit_medians(method, pooled["estimate"], pooled["ci_low"], pooled["ci_high"], level)
                e, d = _rows(outcome, subgroup, method, MEDIAN_METHODS[method][0], len(pooled), n, fit, back, ci, [])
                estimates.append(e)
                details.append(d)
                fits_by_method.setdefault(method, {})[subgroup] = (fit["b"], fit["se"], len(pooled))
    tests = []
    for method, by in fits_by_method.items():
        parts = [(lv, *by[lv]) for lv in levels if lv in by]
        if len(parts) >= 2:
            q, df, p = subgroup_test([p[1] for p in parts], [p[2] for p in parts])
            tests.append(dict(outcome=outcome, method=method, subgroups=len(parts), q_between=q, df=df, p_value=p,
                              levels=";".join(f"{p[0]}:k={p[3]}" for p in parts)))
    return PooledOutcome(
        estimates=pd.DataFrame(estimates, columns=ESTIMATE_COLUMNS),
        details=pd.DataFrame(details, columns=DETAIL_COLUMNS),
        subgroup_tests=pd.DataFrame(tests, columns=SUBGROUP_COLUMNS),
        studies=pd.concat(studies, ignore_index=True) if studies else pd.DataFrame(columns=STUDY_COLUMNS),
        median_summary=pd.DataFrame(summaries, columns=MEDIAN_SUMMARY_COLUMNS),
    )


def _weights(yi, vi, method="DL"):
    return rma(yi, vi, method).weights * 100 if len(yi) else np.array([])


def _study_rows(rows, outcome):
    """Per-cohort estimates with exact (Clopper-Pearson) CIs and PFT-DL weights, for forest plots."""
    x, n = rows["events"].to_numpy(float), rows["total"].to_numpy(float)
    lo, hi = effects.clopper_pearson(x, n)
    yi, vi = effects.proportion_effects(x, n, "PFT")
    w_sub = np.empty(len(x))
    for lv in rows["subgroup"].unique():
        mask = (rows["subgroup"] == lv).to_numpy()
        w_sub[mask] = _weights(yi[mask], vi[mask])
    return pd.DataFrame(dict(outcome=outcome, subgroup=rows["subgroup"].to_numpy(), cohort_id=rows["cohort_id"].to_numpy(),
                             study_id=rows["study_id"].to_numpy(), events=x.astype(int), total=n.astype(int),
                             estimate=x / n, ci_low=lo, ci_high=hi, ci_method="clopper-pearson", has_ci=True,
                             weight_overall=_weights(yi, vi), weight_subgroup=w_sub), columns=STUDY_COLUMNS)


def _median_study_rows(rows, outcome):
    """Per-cohort medians with their reported CIs; weights (MEDIAN-DL) only for those with a CI."""
    out = rows[["subgroup", "cohort_id", "study_id", "total", "estimate", "ci_low", "ci_high", "has_ci"]].copy()
    out.insert(0, "outcome", outcome)
    out["events"] = np.nan
    out["ci_method"] = np.where(out["has_ci"].astype(bool), "reported", "")
    out["weight_overall"] = np.nan
    out["weight_subgroup"] = np.nan
    with_ci = out["has_ci"].astype(bool).to_numpy()
    if with_ci.any():
        yi, vi = effects.median_effects(out.loc[with_ci, "estimate"], out.loc[with_ci, "ci_low"], out.loc[with_ci, "ci_high"])
        out.loc[with_ci, "weight_overall"] = _weights(yi, vi)
        for lv in out.loc[with_ci, "subgroup"].unique():
            mask = with_ci & (out["subgroup"] == lv).to_numpy()
            yi, vi = effects.median_effects(out.loc[mask, "estimate"], out.loc[mask, "ci_low"], out.loc[mask, "ci_high"])
            out.loc[mask, "weight_subgroup"] = _weights(yi, vi)
    return out[STUDY_COLUMNS]


def _median_summary(part, outcome, subgroup):
    """Range and mean +/- SD of the reported medians (the review's summary of median OS)."""
    m = part["estimate"].astype(float)
    return dict(outcome=outcome, subgroup=subgroup, k_reported=len(m), k_with_ci=int(part["has_ci"].astype(bool).sum()),
                min=m.min(), max=m.max(), mean=m.mean(), sd=m.std(ddof=1) if len(m) > 1 else float("nan"),
                cohorts_without_ci=";".join(part.loc[~part["has_ci"].astype(bool), "cohort_id"]))
