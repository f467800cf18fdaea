"""The Bayesian stage's inputs and tables, and the frequentist-vs-Bayesian comparison.

:func:`bayes_data` turns the cleaned analysis rows into the long frame :func:`singlearm.bayes.build_model`
takes (one fit per outcome x subgroup; medians with the same standard error as the frequentist
pooling). The ``*_table`` functions turn a :class:`singlearm.bayes.BayesSummary` into the
workflow's tables, and :func:`frequentist_vs_bayesian` sets every method's estimate and interval
side by side with plain-language flags where they disagree.
"""

import numpy as np
import pandas as pd

from . import effects, formatting, methods, pool

BAYES_METHOD = {"proportion": "BAYES-BN", "median": "BAYES-NN", "survival_rate": "BAYES-NN"}
EXACT_METHOD = {"proportion": "BAYES-BN-EXACT", "median": "BAYES-NN-EXACT", "survival_rate": "BAYES-NN-EXACT"}
SINGLE_STUDY = "single study"  # the method label of a k = 1 fit's own posterior under tau = 0 (not pooled)
# a binomial-normal fit above bayes.exact_max_k: the same posterior by the Laplace approximation (singlearm.bayes.laplace)
LAPLACE_METHOD = "BAYES-BN-LAPLACE"
# The frequentist methods set beside the Bayesian one, per kind (PFT-REML-HKSJ: REML with the
# Hartung-Knapp-Sidik-Jonkman CI, the small-k recommendation of IntHout et al. 2014).
COMPARED = {"proportion": ["PFT-DL", "PFT-REML-HKSJ", "GLMM-ML", "BAYES-BN", "BAYES-BN-EXACT", LAPLACE_METHOD,
                            SINGLE_STUDY],
            "median": ["MEDIAN-DL", "BAYES-NN", "BAYES-NN-EXACT", SINGLE_STUDY],
            "survival_rate": ["SURV-DL", "SURV-REML-HKSJ", "BAYES-NN", "BAYES-NN-EXACT", SINGLE_STUDY]}
COMPARISON_COLUMNS = ["outcome", "subgroup", "kind", "k", "method", "estimate", "ci_low", "ci_high", "ci_width",
                      "width_ratio_to_bayes", "pi_low", "pi_high", "tau2", "tau2_scale", "flags"]
# tau^2 lives on each method's own analysis scale, so it is only comparable within a scale.
TAU2_SCALE = {"PFT-DL": "double arcsine", "PFT-REML-HKSJ": "double arcsine", "GLMM-ML": "logit", "BAYES-BN": "logit",
              "BAYES-BN-EXACT": "logit", LAPLACE_METHOD: "logit", "MEDIAN-DL": "months", "BAYES-NN": "months", "BAYES-NN-EXACT": "months",
              "SURV-DL": "log(-log S)", "SURV-REML-HKSJ": "log(-log S)", SINGLE_STUDY: ""}


def bayes_data(rows, levels=None, *, median_scale="months", min_k=1):
    """One row per study and fit (outcome x overall/subgroup) for the Bayesian models.

    Proportions give ``events, total`` (binomial-normal); medians give ``yi, sei`` from the
    reported CI exactly as the frequentist pooling does (:func:`singlearm.effects.median_effects`,
    months or log-months), survival rates ``yi = log(-log S), sei``
    (:func:`singlearm.effects.survival_effects`); both normal-normal. Rows without a standard
    error are left out of both analyses (:func:`singlearm.pool.poolable`).

    Parameters
    ----------
    rows : pandas.DataFrame
        Cleaned analysis rows.
    levels : list of str, optional
        Subgroup levels in reporting order.
    median_scale : {"months", "log"}
    min_k : int
        Leave out fits with fewer studies.

    Returns
    -------
    pandas.DataFrame
        ``outcome, subgroup, kind, study, events, total, yi, sei, source_row``: one fit per
        (outcome, subgroup).
    """
    levels = [lv for lv in (levels or list(dict.fromkeys(rows["subgroup"]))) if lv in set(rows["subgroup"])]
    parts = []
    for outcome in dict.fromkeys(rows["outcome"]):
        this = pool.poolable(rows[rows["outcome"] == outcome])
        if this.empty:
            continue
        kind = this["kind"].iloc[0]
        if kind not in BAYES_METHOD:
            continue
        for subgroup in ["overall", *levels]:
            part = this if subgroup == "overall" else this[this["subgroup"] == subgroup]
            if len(part) < max(min_k, 1):
                continue
            out = pd.DataFrame({"outcome": outcome, "subgroup": subgroup,
                                "kind": kind, "study": part["cohort_id"].to_numpy(),
                                "source_row": part["source_row"].to_numpy()})
            if kind == "median":
                yi, vi = effects.median_effects(part["estimate"], part["ci_low"], part["ci_high"], median_scale)
                out["yi"], out["sei"] = yi, np.sqrt(vi)
            elif kind == "survival_rate":
                yi, vi, _ = effects.survival_effects(part["estimate"], part["ci_low"], part["ci_high"],
                                                     part["total"])
                out["yi"], out["sei"] = yi, np.sqrt(vi)
            else:
                out["events"], out["total"] = part["events"].to_numpy(float), part["total"].to_numpy(float)
            parts.append(out)
    columns = ["outcome", "subgroup", "kind", "study", "events", "total", "yi", "sei", "source_row"]
    return pd.concat(parts, ignore_index=True).reindex(columns=columns) if parts else pd.DataFrame(columns=columns)


def _kind_of(est, bayes_kinds):
    for m in est["method"]:
        if m in methods.REGISTRY:
            return methods.get(m).kind
    return bayes_kinds.get(tuple(est[["outcome", "subgroup"]].iloc[0]), "")


def comparison_long(estimates, details, rows, *, bayes=None, level=0.95, estimate_margin=0.03,
                    median_margin=1.0, width_ratio=1.5, median_scale="months"):
    """Every outcome x subgroup x method compared: one row per method (the form figures draw).

    The Bayesian rows come from the Bayesian stage's own table (``bayes``, ``bayes_estimates.csv``):
    ``BAYES-BN`` / ``BAYES-NN`` (PyMC, certified against the exact posterior, or the exact
    posterior with a flag), ``BAYES-*-EXACT`` and, for one study, its own posterior under tau = 0
    labelled ``single study``. Flags, in plain language, on the main Bayesian row of a fit:

    * the estimates differ by more than ``estimate_margin`` (rates, absolute) or
      ``median_margin`` months between the Bayesian and any frequentist method;
    * the credible interval is more than ``width_ratio`` times as wide as the DerSimonian-Laird
      CI: the Bayesian analysis carries the uncertainty about tau that DL's plug-in ignores;
    * the Freeman-Tukey back-transform misleads (clipped or non-monotone limits, from
      ``pooled_details.csv``), so the PFT estimates should not be read at face value.

    Parameters
    ----------
    estimates : pandas.DataFrame
        ``pooled_estimates.csv`` (the frequentist rows; BAYES rows there are accepted too).
    details : pandas.DataFrame
        ``pooled_details.csv`` (its ``flags`` column).
    rows : pandas.DataFrame
        Cleaned analysis rows (unused; kept for the adapter's call).
    bayes : pandas.DataFrame, optional
        ``bayes_estimates.csv`` (pooled-estimate columns plus ``kind`` and ``flags``).
    level, estimate_margin, median_margin, width_ratio : float
    median_scale : {"months", "log"}
        Scale of the Bayesian median model (for the ``tau2_scale`` column).

    Returns
    -------
    pandas.DataFrame
        Long form, one row per outcome x subgroup x method (``COMPARISON_COLUMNS``).
    """
    out = []
    flags_of = details.set_index(["outcome", "subgroup", "method"])["flags"].fillna("")
    bayes_kinds, bayes_flags_of = {}, {}
    if bayes is not None and len(bayes):
        bayes_kinds = {(o, s): k for o, s, k in zip(bayes["outcome"], bayes["subgroup"], bayes["kind"])}
        bayes_flags_of = {(o, s, m): f for o, s, m, f in
                          zip(bayes["outcome"], bayes["subgroup"], bayes["method"], bayes["flags"].fillna(""))}
        have = set(zip(estimates["outcome"], estimates["subgroup"], estimates["method"]))
        extra = bayes[[(o, s, m) not in have for o, s, m in zip(bayes["outcome"], bayes["subgroup"], bayes["method"])]]
        estimates = pd.concat([estimates, extra.reindex(columns=estimates.columns)], ignore_index=True)
    order = list(dict.fromkeys(zip(estimates["outcome"], estimates["subgroup"])))
    for (outcome, subgroup) in order:
        est = estimates[(estimates["outcome"] == outcome) & (estimates["subgroup"] == subgroup)]
        kind = _kind_of(est, bayes_kinds)
        if kind not in COMPARED:
            continue
        by = {r["method"]: dict(r) for _, r in est.iterrows()}
        main_id = next((m for m in (BAYES_METHOD[kind], EXACT_METHOD[kind], SINGLE_STUDY) if m in by), None)
        if main_id is None:
            continue
        bayes = by[main_id]
        b_width = bayes["ci_high"] - bayes["ci_low"]
        margin = median_margin if kind == "median" else estimate_margin
        unit = " months" if kind == "median" else ""
        bayes_flags = []
        for method in COMPARED[kind]:
            if method not in by or method in (BAYES_METHOD[kind], EXACT_METHOD[kind], LAPLACE_METHOD, SINGLE_STUDY):
                continue
            diff = bayes["estimate"] - by[method]["estimate"]
            if np.isfinite(diff) and abs(diff) > margin:
                bayes_flags.append(f"estimate differs from {method} by {diff:+.3g}{unit} (margin {margin:g})")
        dl = by.get(COMPARED[kind][0])
        if dl is not None and main_id != SINGLE_STUDY:
            ratio = b_width / (dl["ci_high"] - dl["ci_low"])
            if np.isfinite(ratio) and ratio > width_ratio:
                bayes_flags.append(f"credible interval {ratio:.1f}x as wide as the DL CI: tau is poorly "
                                   f"determined by k = {int(bayes['k'])} and the DL CI ignores that")
        for method in COMPARED[kind]:
            if method not in by:
                continue
            r = by[method]
            fl = []
            if method in ("PFT-DL", "PFT-REML-HKSJ"):
                text = flags_of.get((outcome, subgroup, method), "")
                fl += [f"Freeman-Tukey: {f}" for f in text.split("; ") if f and f not in (pool.SINGLE_STUDY,)]
            fl += [f for f in str(bayes_flags_of.get((outcome, subgroup, method), "")).split("; ") if f]
            if method == main_id:
                fl += bayes_flags
            width = r["ci_high"] - r["ci_low"]
            scale = TAU2_SCALE.get(method, "")
            if method.startswith("BAYES-NN") and kind == "median" and median_scale == "log":
                scale = "log-months"
            elif method.startswith("BAYES-NN") and kind == "survival_rate":
                scale = "log(-log S)"
            out.append({"outcome": outcome, "subgroup": subgroup, "kind": kind, "k": int(r["k"]), "method": method,
                        "estimate": r["estimate"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                        "ci_width": width, "width_ratio_to_bayes": width / b_width if b_width > 0 else np.nan,
                        "pi_low": r["pi_low"], "pi_high": r["pi_high"], "tau2": r["tau2"],
                        "tau2_scale": scale, "flags": "; ".join(dict.fromkeys(fl))})
    return pd.DataFrame(out, columns=COMPARISON_COLUMNS)


# which method fills each slot of the side-by-side table, per kind ("exact": the exact posterior,
# or for one study its own posterior under tau = 0, labelled "single study")
SLOTS = {"proportion": {"dl": "PFT-DL", "reml_hksj": "PFT-REML-HKSJ", "glmm": "GLMM-ML", "bayes": "BAYES-BN",
                        "exact": "BAYES-BN-EXACT"},
         "median": {"dl": "MEDIAN-DL", "bayes": "BAYES-NN", "exact": "BAYES-NN-EXACT"},
         "survival_rate": {"dl": "SURV-DL", "reml_hksj": "SURV-REML-HKSJ", "bayes": "BAYES-NN",
                           "exact": "BAYES-NN-EXACT"}}
SLOT_NAMES = ("dl", "reml_hksj", "glmm", "bayes", "exact")
_SLOT_FIELDS = ("method", "estimate", "ci_low", "ci_high")
FVB_COLUMNS = (["outcome", "subgroup", "kind", "k"]
               + [f"{slot}_{f}" for slot in SLOT_NAMES for f in _SLOT_FIELDS]
               + ["bayes_pi_low", "bayes_pi_high", "bayes_tau2", "width_ratio_dl", "width_ratio_reml_hksj",
                  "width_ratio_glmm", "flags"])


def frequentist_vs_bayesian(estimates, details, rows, **kwargs):
    """Every outcome x subgroup: DL, REML-HKSJ, GLMM-ML, PyMC and exact Bayesian side by side, with flags.

    One row per outcome x subgroup that has a Bayesian result. Slots ``dl`` (PFT-DL; MEDIAN-DL,
    SURV-DL), ``reml_hksj``, ``glmm`` (GLMM-ML), ``bayes`` (BAYES-BN / BAYES-NN: PyMC) and
    ``exact`` (BAYES-*-EXACT; for k = 1 the study's own posterior under tau = 0, method
    ``single study``, and no ``bayes`` slot) give each method's id, estimate and interval on
    the reporting scale; ``width_ratio_<slot>`` is the main Bayesian credible interval's width
    over that method's CI width; ``flags`` joins the plain-language flags of :func:`comparison_long`.

    Parameters
    ----------
    estimates, details, rows
        As :func:`comparison_long`.
    **kwargs
        ``bayes`` (the Bayesian stage's table), margins and settings of :func:`comparison_long`.

    Returns
    -------
    pandas.DataFrame
        ``FVB_COLUMNS``.
    """
    long = comparison_long(estimates, details, rows, **kwargs)
    out = []
    for (outcome, subgroup), part in long.groupby(["outcome", "subgroup"], sort=False):
        kind = part["kind"].iloc[0]
        by = part.set_index("method")
        row = {"outcome": outcome, "subgroup": subgroup, "kind": kind, "k": int(part["k"].max())}
        slots = dict(SLOTS[kind])
        if SINGLE_STUDY in by.index:
            slots["exact"] = SINGLE_STUDY
        elif LAPLACE_METHOD in by.index:  # k > bayes.exact_max_k: the exact slot holds the Laplace posterior
            slots["exact"] = LAPLACE_METHOD
        for slot, method in slots.items():
            if method in by.index:
                row.update({f"{slot}_{f}": method if f == "method" else by.loc[method, f] for f in _SLOT_FIELDS})
        main_id = next(m for m in (slots["bayes"], slots["exact"]) if m in by.index)
        bayes = by.loc[main_id]
        row.update(bayes_pi_low=bayes["pi_low"], bayes_pi_high=bayes["pi_high"], bayes_tau2=bayes["tau2"])
        for slot in ("dl", "reml_hksj", "glmm"):
            method = slots.get(slot)
            if method in by.index and by.loc[method, "ci_width"] > 0:
                row[f"width_ratio_{slot}"] = bayes["ci_width"] / by.loc[method, "ci_width"]
        row["flags"] = "; ".join(dict.fromkeys(f for cell in part["flags"].fillna("") for f in cell.split("; ") if f))
        out.append(row)
    return pd.DataFrame(out, columns=FVB_COLUMNS)


def comparison_view(table):
    """:func:`frequentist_vs_bayesian` for reading: one "estimate (CI)" text per method slot.

    Percent for rates, months for medians; the Markdown table of the workflow. A k = 1 fit's
    ``exact`` cell is the study's own posterior (``single study``).
    """
    view = table[["outcome", "subgroup", "k"]].copy()
    for slot in SLOT_NAMES:
        view[slot] = [formatting.format_estimate(e, lo, hi, kind) if pd.notna(e) else "" for e, lo, hi, kind in
                      zip(table[f"{slot}_estimate"], table[f"{slot}_ci_low"], table[f"{slot}_ci_high"], table["kind"])]
    view["flags"] = table["flags"].fillna("")
    return view
