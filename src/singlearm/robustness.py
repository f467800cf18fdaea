"""How robust is each pooled result: leave-one-out, influence, small-study tests, alternative analyses.

The orchestration of :mod:`sensitivity` and :mod:`bias` (and, for the alternative analyses,
:mod:`pool`) over the rows of one outcome, overall and per subgroup, returned as the tidy
tables the workflow writes. Every analysis uses the primary method's analysis scale (e.g. the
Freeman-Tukey double arcsine with DerSimonian-Laird) and back-transforms as the main analysis
does; leave-one-out rows with the harmonic mean of the k - 1 studies each row pooled.
"""

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import bias, pool, sensitivity
from .fit import rma

MIN_K = 3  # leave-one-out, influence and asymmetry tests need at least 3 studies

LOO_COLUMNS = ["outcome", "subgroup", "method", "omitted", "k", "estimate", "ci_low", "ci_high", "tau2", "i2",
               "q", "q_p", "outside_full_ci", "i2_change", "flag"]
INFLUENCE_COLUMNS = ["outcome", "subgroup", "method", "cohort_id", "yi", "sei", "rstudent", "dffits", "cook_d",
                     "cov_r", "tau2_del", "qe_del", "hat", "weight", "baujat_x", "baujat_y"]
BIAS_COLUMNS = ["outcome", "subgroup", "test", "k", "statistic", "p_value", "k0", "adjusted_estimate",
                "adjusted_ci_low", "adjusted_ci_high", "method", "side", "note"]
FUNNEL_COLUMNS = ["outcome", "subgroup", "method", "scale", "cohort_id", "yi", "sei", "imputed", "pooled_b"]
SCENARIO_COLUMNS = ["outcome", "scenario", "description", "method", "k", "n", "estimate", "ci_low", "ci_high",
                    "tau2", "i2", "difference", "cohorts", "dropped", "note"]


@dataclass(frozen=True)
class Robustness:
    """Robustness tables of one outcome (columns as the ``*_COLUMNS`` constants)."""

    leave_one_out: pd.DataFrame
    influence: pd.DataFrame
    publication_bias: pd.DataFrame
    funnel: pd.DataFrame
    scenarios: pd.DataFrame


def _limits(s, a, b, n):
    """Back-transformed limits in ascending order (the complementary log-log scale reverses them)."""
    return tuple(sorted((float(s.back(a, n)), float(s.back(b, n)))))


def _leave_one_out(s, outcome, subgroup, full, level, i2_margin):
    loo = sensitivity.leave_one_out(s.yi, s.vi, s.estimator, s.test, level, labels=s.cohorts)
    back = [(float(s.back(r.b, np.delete(s.n, i))), *_limits(s, r.ci_lb, r.ci_ub, np.delete(s.n, i)))
            for i, r in enumerate(loo.itertuples())]
    est = np.array(back)
    full_lo, full_hi = _limits(s, full.ci_lb, full.ci_ub, s.n)
    outside = (est[:, 0] < full_lo) | (est[:, 0] > full_hi)
    change = loo["i2"].to_numpy() - full.i2
    flags = []
    for o, c in zip(outside, change):
        why = []
        if o:
            why.append(f"estimate outside the full-data CI [{full_lo:.4g}, {full_hi:.4g}]")
        if np.isfinite(c) and abs(c) > i2_margin:
            why.append(f"I\u00b2 changes by {c:+.1f} points (more than {i2_margin:g})")
        flags.append("; ".join(why))
    return pd.DataFrame({"outcome": outcome, "subgroup": subgroup, "method": s.method, "omitted": s.cohorts,
                         "k": loo["k"].to_numpy(), "estimate": est[:, 0], "ci_low": est[:, 1], "ci_high": est[:, 2],
                         "tau2": loo["tau2"].to_numpy(), "i2": loo["i2"].to_numpy(), "q": loo["q"].to_numpy(),
                         "q_p": loo["q_p"].to_numpy(), "outside_full_ci": outside, "i2_change": change,
                         "flag": flags}, columns=LOO_COLUMNS)


def _influence(s, outcome, subgroup, level):
    inf = sensitivity.influence(s.yi, s.vi, s.estimator, s.test, level, labels=s.cohorts)
    bj = sensitivity.baujat(s.yi, s.vi, s.estimator, s.test, level, labels=s.cohorts)
    out = pd.DataFrame({"outcome": outcome, "subgroup": subgroup, "method": s.method, "cohort_id": s.cohorts,
                        "yi": s.yi, "sei": np.sqrt(s.vi)})
    for c in INFLUENCE_COLUMNS[6:14]:
        out[c] = inf[c].to_numpy()
    out["baujat_x"], out["baujat_y"] = bj["x"].to_numpy(), bj["y"].to_numpy()
    return out[INFLUENCE_COLUMNS]


def _publication_bias(s, outcome, subgroup, level):
    note = bias.underpowered_note(s.k)
    both = lambda extra: "; ".join(t for t in (extra, note) if t)  # noqa: E731
    eg = bias.egger_test(s.yi, s.vi, level)
    bg = bias.begg_test(s.yi, s.vi)
    tf = bias.trim_and_fill(s.yi, s.vi, method=s.estimator, level=level)
    nan = float("nan")
    base = {"outcome": outcome, "subgroup": subgroup, "k": s.k, "method": s.method}
    rows = [
        {**base, "test": "egger", "statistic": eg.stat, "p_value": eg.pval, "k0": nan, "adjusted_estimate": nan,
         "adjusted_ci_low": nan, "adjusted_ci_high": nan, "side": "", "note": both(eg.note)},
        {**base, "test": "begg", "statistic": bg.tau, "p_value": bg.pval, "k0": nan, "adjusted_estimate": nan,
         "adjusted_ci_low": nan, "adjusted_ci_high": nan, "side": "", "note": both(bg.note)},
        # the imputed studies have no n of their own: back-transform with the observed cohorts' n
        {**base, "test": "trimfill", "statistic": nan, "p_value": nan, "k0": tf.k0,
         "adjusted_estimate": float(s.back(tf.b, s.n)),
         **dict(zip(("adjusted_ci_low", "adjusted_ci_high"), _limits(s, tf.ci_lb, tf.ci_ub, s.n))),
         "side": tf.side, "note": both(tf.note)},
    ]
    funnel = pd.DataFrame({"outcome": outcome, "subgroup": subgroup, "method": s.method, "scale": s.scale,
                           "cohort_id": [*s.cohorts, *[f"imputed {i + 1}" for i in range(len(tf.filled_yi))]],
                           "yi": [*s.yi, *tf.filled_yi], "sei": np.sqrt([*s.vi, *tf.filled_vi]),
                           "imputed": [False] * s.k + [True] * len(tf.filled_yi)}, columns=FUNNEL_COLUMNS)
    funnel["pooled_b"] = rma(s.yi, s.vi, s.estimator, s.test, level).b
    return pd.DataFrame(rows, columns=BIAS_COLUMNS), funnel


def _matches(rows, rule):
    """Rows a scenario's ``keep``/``drop``/``drop_matching`` rule selects (all conditions must hold)."""
    mask = pd.Series(True, index=rows.index)
    for column, values in (rule.get("keep") or {}).items():
        mask &= rows[column].astype(str).isin([str(v) for v in values])
    for column, values in (rule.get("drop") or {}).items():
        mask &= ~rows[column].astype(str).isin([str(v) for v in values])
    for column, pattern in (rule.get("drop_matching") or {}).items():
        mask &= ~rows[column].astype(str).str.contains(pattern, flags=re.IGNORECASE, regex=True)
    return mask


def _denominator_scenarios(rows):
    """One scenario per value of the optional ``denominator`` column (itt / evaluable), when it is filled."""
    values = sorted(v for v in rows.get("denominator", pd.Series(dtype=str)).fillna("").astype(str).unique() if v)
    return [{"id": f"denominator_{v}", "description": f"Only {v} denominators", "keep": {"denominator": [v]}}
            for v in values]


def _scenarios(rows, outcome, scenarios, method, level, main):
    """The alternative analyses: the main estimates by every method (from ``main``, not refitted),
    and the primary method refitted on the cohorts each selection rule keeps."""
    main = main[main["subgroup"] == "overall"]
    ref = main[main["method"] == method]
    ref_est = float(ref["estimate"].iloc[0]) if len(ref) else float("nan")
    nan = float("nan")
    pooled = pool.poolable(rows)
    out = []
    for sc in [*scenarios, *_denominator_scenarios(rows)]:
        base = {"outcome": outcome, "scenario": sc["id"], "description": sc.get("description", sc["id"])}
        if sc.get("all_methods"):
            for r in main.itertuples():
                out.append({**base, "method": r.method, "k": r.k, "n": r.n, "estimate": r.estimate,
                            "ci_low": r.ci_low, "ci_high": r.ci_high, "tau2": r.tau2, "i2": r.i2,
                            "difference": r.estimate - ref_est, "cohorts": ";".join(pooled["cohort_id"]),
                            "dropped": "", "note": ""})
            continue
        keep = _matches(pooled, sc)
        kept, dropped = pooled[keep], pooled[~keep]
        row = {**base, "method": method, "k": 0, "n": nan, "estimate": nan, "ci_low": nan, "ci_high": nan,
               "tau2": nan, "i2": nan, "difference": nan, "cohorts": ";".join(kept["cohort_id"]),
               "dropped": ";".join(dropped["cohort_id"]), "note": ""}
        if dropped.empty:
            row["note"] = "no cohort dropped: same as the main analysis"
        fit = pool.fit_method(kept, method, outcome=outcome, level=level) if len(kept) else None
        if fit is None:
            row["note"] = "no cohort left to pool"
        else:
            r = fit.estimate
            row.update({c: r[c] for c in ("k", "n", "estimate", "ci_low", "ci_high", "tau2", "i2")},
                       difference=r["estimate"] - ref_est)
            if r["k"] == 1:
                row["note"] = "k = 1: a single cohort, not a pooled estimate"
        out.append(row)
    return pd.DataFrame(out, columns=SCENARIO_COLUMNS)


def robustness(rows, outcome, levels=None, *, method, main=None, scenarios=(), level=0.95, i2_margin=25.0):
    """Every robustness analysis of one outcome, overall and per subgroup with k >= 3.

    Parameters
    ----------
    rows : pandas.DataFrame
        Cleaned analysis rows (any outcomes; those of ``outcome`` are used).
    outcome : str
    levels : list of str, optional
        Subgroup levels in reporting order.
    method : str
        The primary method id for this outcome's kind (an rma-based method, see
        :func:`singlearm.pool.analysis_scale`).
    main : pandas.DataFrame, optional
        The outcome's pooled estimates (``pooled_estimates.csv`` rows), which the scenarios are
        compared with; the workflow passes the pooling stage's, so they are not refitted (by
        default they are pooled here).
    scenarios : sequence of dict
        Alternative analyses: ``{"id", "description", "all_methods": true}`` (the overall result
        by every pooling method) or ``{"id", "description", "keep": {column: [values]},
        "drop": {column: [values]}, "drop_matching": {column: regex}}`` (the primary method on
        the cohorts the rule selects, on any column of the analysis table). With a filled
        ``denominator`` column, one scenario per denominator kind is added.
    level : float
    i2_margin : float
        Flag a leave-one-out row whose I^2 differs from the full fit's by more than this many
        percentage points.

    Returns
    -------
    Robustness

    Notes
    -----
    R equivalent: ``leave1out(res)``, ``influence(res)``, ``baujat(res)``,
    ``regtest(res, model="lm", predictor="sei")``, ``ranktest(res)``, ``trimfill(res)`` with
    ``res <- metafor::rma(measure="PFT", xi, ni, method="DL")``.
    """
    rows = rows[rows["outcome"] == outcome]
    levels = [lv for lv in (levels or list(dict.fromkeys(rows["subgroup"]))) if lv in set(rows["subgroup"])]
    if main is None:
        main = pool.pool_outcome(rows, outcome, level=level, primary=method).estimates
    loo, inf, pb, fun = [], [], [], []
    for subgroup in ["overall", *levels]:
        part = rows if subgroup == "overall" else rows[rows["subgroup"] == subgroup]
        s = pool.analysis_scale(part, method)
        if s.k < MIN_K:
            continue
        full = rma(s.yi, s.vi, s.estimator, s.test, level)
        loo.append(_leave_one_out(s, outcome, subgroup, full, level, i2_margin))
        inf.append(_influence(s, outcome, subgroup, level))
        b, f = _publication_bias(s, outcome, subgroup, level)
        pb.append(b)
        fun.append(f)

    def stack(parts, columns):
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)

    return Robustness(leave_one_out=stack(loo, LOO_COLUMNS), influence=stack(inf, INFLUENCE_COLUMNS),
                      publication_bias=stack(pb, BIAS_COLUMNS), funnel=stack(fun, FUNNEL_COLUMNS),
                      scenarios=_scenarios(rows, outcome, scenarios, method, level, main))
