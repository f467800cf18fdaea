"""The Bayesian stage's inputs and tables, and the frequentist-vs-Bayesian comparison.

:func:`bayes_data` turns the cleaned analysis rows into the long frame :func:`singlearm.bayes.build_model`
takes (one fit per outcome x subgroup; medians with the same standard error as the frequentist
pooling). The ``*_table`` functions turn a :class:`singlearm.bayes.BayesSummary` into the
workflow's tables, and :func:`frequentist_vs_bayesian` sets every method's estimate and interval
side by side with plain-language flags where they disagree.
"""

import numpy as np
import pandas as pd

from . import effects, methods, pool

BAYES_METHOD = {"proportion": "BAYES-BN", "median": "BAYES-NN"}
DIAGNOSTIC_COLUMNS = ["outcome", "subgroup", "model", "prior", "chains", "draws", "rhat_max", "ess_bulk_min",
                      "ess_tail_min", "divergences", "attempts", "passed"]
SENSITIVITY_COLUMNS = ["outcome", "subgroup", "model", "prior", "mu_prior", "tau_prior", "k", "estimate", "ci_low",
                       "ci_high", "pi_low", "pi_high", "tau2", "tau_median", "difference", "ci_width_ratio", "note"]
PROBABILITY_COLUMNS = ["outcome", "subgroup", "method", "prior", "threshold", "probability", "statement"]
# The frequentist methods set beside the Bayesian one, per kind (PFT-REML-HKSJ: REML with the
# Hartung-Knapp-Sidik-Jonkman CI, the small-k recommendation of IntHout et al. 2014).
COMPARED = {"proportion": ["PFT-DL", "PFT-REML-HKSJ", "GLMM-ML", "BAYES-BN"],
            "median": ["MEDIAN-DL", "BAYES-NN"]}
COMPARISON_COLUMNS = ["outcome", "subgroup", "kind", "k", "method", "estimate", "ci_low", "ci_high", "ci_width",
                      "width_ratio_to_bayes", "pi_low", "pi_high", "tau2", "tau2_scale", "flags"]
# tau^2 lives on each method's own analysis scale, so it is only comparable within a scale.
TAU2_SCALE = {"PFT-DL": "double arcsine", "PFT-REML-HKSJ": "double arcsine", "GLMM-ML": "logit", "BAYES-BN": "logit",
              "MEDIAN-DL": "months", "BAYES-NN": "months"}


def fit_id(outcome, subgroup):
    """The Bayesian model's id of one meta-analysis."""
    return f"{outcome}|{subgroup}"


def split_fit(fit):
    """``(outcome, subgroup)`` of a fit id."""
    outcome, subgroup = str(fit).rsplit("|", 1)
    return outcome, subgroup


def bayes_scale(median_scale):
    """:mod:`singlearm.bayes`'s name (``identity``/``log``) of a median scale (``months``/``log``)."""
    return {"months": "identity", "log": "log"}[median_scale]


def bayes_data(rows, levels=None, *, median_scale="months", min_k=1):
    """One row per study and fit (outcome x overall/subgroup) for :func:`singlearm.bayes.build_model`.

    Proportions give ``events, total``; medians give ``yi, sei`` from the reported 95% CI exactly
    as the frequentist pooling does (:func:`singlearm.effects.median_effects`), so medians without
    a CI are left out of both.

    Parameters
    ----------
    rows : pandas.DataFrame
        Cleaned analysis rows.
    levels : list of str, optional
        Subgroup levels in reporting order.
    median_scale : {"months", "log"}
    min_k : int
        Leave out fits with fewer studies (the prior-sensitivity run uses 2: with one study
        the data say nothing about tau and its posterior is its prior).

    Returns
    -------
    pandas.DataFrame
        ``fit, outcome, subgroup, study, events, total, yi, sei, source_row``.
    """
    levels = [lv for lv in (levels or list(dict.fromkeys(rows["subgroup"]))) if lv in set(rows["subgroup"])]
    parts = []
    for outcome in dict.fromkeys(rows["outcome"]):
        this = pool.poolable(rows[rows["outcome"] == outcome])
        if this.empty:
            continue
        kind = this["kind"].iloc[0]
        if kind not in BAYES_METHOD:   # Kaplan-Meier rates have no Bayesian model yet
            continue
        for subgroup in ["overall", *levels]:
            part = this if subgroup == "overall" else this[this["subgroup"] == subgroup]
            if len(part) < max(min_k, 1):
                continue
            out = pd.DataFrame({"fit": fit_id(outcome, subgroup), "outcome": outcome, "subgroup": subgroup,
                                "study": part["cohort_id"].to_numpy(), "source_row": part["source_row"].to_numpy()})
            if kind == "median":
                yi, vi = effects.median_effects(part["estimate"], part["ci_low"], part["ci_high"], median_scale)
                out["yi"], out["sei"] = yi, np.sqrt(vi)
            else:
                out["events"], out["total"] = part["events"].to_numpy(float), part["total"].to_numpy(float)
            parts.append(out)
    columns = ["fit", "outcome", "subgroup", "study", "events", "total", "yi", "sei", "source_row"]
    return pd.concat(parts, ignore_index=True).reindex(columns=columns) if parts else pd.DataFrame(columns=columns)


def _split(table):
    """``table`` with ``outcome`` and ``subgroup`` columns taken from its ``fit`` ids."""
    parts = [split_fit(f) for f in table["fit"]]
    return table.assign(outcome=[o for o, _ in parts], subgroup=[s for _, s in parts])


def pooled_rows(table, data, prior):
    """The ``BAYES-BN`` / ``BAYES-NN`` rows of ``pooled_estimates.csv`` for one prior set.

    estimate = posterior median of the pooled value, CI = equal-tailed credible interval,
    PI = posterior-predictive interval of a new study's true value, tau2 = posterior median
    of tau^2 (logit or months scale); i2, q, q_df, q_p are blank (no Bayesian analogue).
    """
    t = _split(table[table["prior"] == prior])
    n = data.groupby("fit")["total"].sum(min_count=1)
    out = pd.DataFrame({"outcome": t["outcome"], "subgroup": t["subgroup"],
                        "method": t["kind"].map(BAYES_METHOD), "k": t["k"],
                        "n": t["fit"].map(n).to_numpy()})
    for c in ("estimate", "ci_low", "ci_high", "pi_low", "pi_high", "tau2"):
        out[c] = t[c].to_numpy()
    for c in ("i2", "q", "q_df", "q_p"):
        out[c] = np.nan
    out["k_reporting"] = out["k"]
    return out[pool.ESTIMATE_COLUMNS].reset_index(drop=True)


def diagnostics_table(diagnostics, attempts, model_name, seconds, retried=frozenset()):
    """``bayes_diagnostics.csv`` rows: one per fit x prior, from the run each pair is reported from.

    No timings (they would make the table differ on every rebuild: wall times go to Snakemake
    ``benchmark:`` files); ``seconds`` is accepted and ignored. ``attempts`` counts the runs the
    pair went through. ``retried`` holds the (fit, prior) pairs of a prior-sensitivity run
    reported from its retry; without it every pair is from the last attempt.
    """
    d = _split(diagnostics)
    pairs = list(zip(d["fit"], d["prior"]))
    plans = [attempts[1] if pair in retried else attempts[0 if retried else -1] for pair in pairs]
    n_attempts = [2 if pair in retried else (1 if retried else len(attempts)) for pair in pairs]
    return pd.DataFrame({"outcome": d["outcome"], "subgroup": d["subgroup"],
                         "model": np.where(d["kind"] == "proportion", f"binomial-normal ({model_name})",
                                           f"normal-normal ({model_name})"),
                         "prior": d["prior"], "chains": [a["chains"] for a in plans],
                         "draws": [a["draws"] * a["chains"] for a in plans],
                         "rhat_max": d["rhat_max"], "ess_bulk_min": d["ess_bulk_min"],
                         "ess_tail_min": d["ess_tail_min"], "divergences": d["divergences"],
                         "attempts": n_attempts, "passed": d["passed"]},
                        columns=DIAGNOSTIC_COLUMNS)


def split_sensitivity_priors(main_priors, sensitivity_priors, scale):
    """Which sensitivity prior sets need a run, and which are the main analysis's priors again.

    A sensitivity set identical (after defaults are filled in) to the main priors would only
    re-sample the main model; its rows are copied from the main run instead.

    Returns
    -------
    (dict, list)
        Prior sets to sample, labels reused from the main run.
    """
    from . import bayes  # PyMC is imported only by the Bayesian stage

    main = bayes.resolve_priors({"main": main_priors}, scale=scale)["main"]
    full = bayes.resolve_priors(dict(sensitivity_priors), scale=scale)
    reused = [label for label, spec in full.items() if spec == main]
    return {label: spec for label, spec in sensitivity_priors.items() if label not in reused}, reused


def prior_sensitivity_table(sensitivity, main, main_prior, reused=()):
    """``prior_sensitivity.csv``: every fit under every tau prior, beside the main analysis.

    ``difference`` is the estimate minus the main prior's estimate and ``ci_width_ratio`` the
    credible interval's width over the main prior's, so a reader sees at once whether the
    conclusion depends on the prior. Fits of the main analysis left out of the sensitivity run
    (too few studies) get one row saying so.

    Parameters
    ----------
    sensitivity, main : pandas.DataFrame
        :func:`singlearm.bayes.summarise` tables of the sensitivity and the main run.
    main_prior : str
        The main run's prior label.
    reused : sequence of str
        Sensitivity labels whose priors are the main ones: their rows are the main run's.
    """
    ref = main[main["prior"] == main_prior].set_index("fit")
    mine = main[main["prior"] == main_prior]
    t = pd.concat([mine.assign(prior=f"{main_prior} (main)"), sensitivity,
                   *[mine[mine["fit"].isin(set(sensitivity["fit"]))].assign(prior=label) for label in reused]],
                  ignore_index=True)
    t = t[t["fit"].isin(set(sensitivity["fit"]))]
    t = _split(t)
    base = ref.loc[t["fit"]]
    t["model"] = np.where(t["kind"] == "proportion", "binomial-normal", "normal-normal")
    t["difference"] = t["estimate"].to_numpy() - base["estimate"].to_numpy()
    t["ci_width_ratio"] = (t["ci_high"] - t["ci_low"]).to_numpy() / (base["ci_high"] - base["ci_low"]).to_numpy()
    t["note"] = np.where(t["prior"].isin(list(reused)), "same priors as the main analysis: its draws", "")
    if "passed" in t:
        bad = t["passed"].eq(False).to_numpy()
        t.loc[bad, ["estimate", "ci_low", "ci_high", "pi_low", "pi_high", "tau2", "tau_median", "difference",
                    "ci_width_ratio"]] = np.nan
        t.loc[bad, "note"] = [f"did not pass the convergence gate after a retry (R-hat {r:.3f}, ESS {e:.0f}, "
                              f"{d:.0f} divergences): estimate withheld; under this prior the posterior is "
                              "not reliably computable from these data"
                              for r, e, d in t.loc[bad, ["rhat_max", "ess_bulk_min", "divergences"]].to_numpy()]
    skipped = _split(ref[~ref.index.isin(set(sensitivity["fit"]))].reset_index())
    skipped = skipped.assign(model=np.where(skipped["kind"] == "proportion", "binomial-normal", "normal-normal"),
                             prior="not run", note=[f"k = {k}: too few studies to inform tau, so its posterior "
                                                    "is its prior; no sensitivity run" for k in skipped["k"]])
    for c in ("estimate", "ci_low", "ci_high", "pi_low", "pi_high", "tau2", "tau_median", "mu_prior", "tau_prior"):
        skipped[c] = np.nan if c not in ("mu_prior", "tau_prior") else ""
    t = pd.concat([t, skipped], ignore_index=True)
    order = {f: i for i, f in enumerate(main["fit"].drop_duplicates())}
    t = t.assign(_o=t["fit"].map(order)).sort_values(["_o", "prior"], kind="stable")
    return t[SENSITIVITY_COLUMNS].reset_index(drop=True)


def probability_table(summary, thresholds, prior):
    """Posterior probabilities P(pooled value > t | data) for the configured thresholds.

    Parameters
    ----------
    summary : singlearm.bayes.BayesSummary
    thresholds : dict
        Outcome id -> list of thresholds on the reporting scale (a rate, or months).
    prior : str
        The prior set to report.
    """
    p = _split(summary.probabilities[summary.probabilities["prior"] == prior])
    kinds = summary.table.drop_duplicates("fit").set_index("fit")["kind"]
    keep = [t in thresholds.get(o, []) for o, t in zip(p["outcome"], p["threshold"])]
    p = p[keep]
    kind = p["fit"].map(kinds)
    fmt = [f"{t:.0%}" if k == "proportion" else f"{t:g} months" for t, k in zip(p["threshold"], kind)]
    return pd.DataFrame({"outcome": p["outcome"], "subgroup": p["subgroup"], "method": kind.map(BAYES_METHOD),
                         "prior": p["prior"], "threshold": p["threshold"], "probability": p["probability"],
                         "statement": [f"P(pooled {o} > {f} | data) = {q:.3f}" for o, f, q in
                                       zip(p["outcome"], fmt, p["probability"])]},
                        columns=PROBABILITY_COLUMNS).reset_index(drop=True)


def comparison_long(estimates, details, rows, *, level=0.95, estimate_margin=0.03,
                    median_margin=1.0, width_ratio=1.5, median_scale="months"):
    """Every outcome x subgroup x method compared: one row per method (the form figures draw).

    Flags, in plain language, on the Bayesian row of a fit:

    * the estimates differ by more than ``estimate_margin`` (proportions, absolute) or
      ``median_margin`` months between the Bayesian and any frequentist method;
    * the credible interval is more than ``width_ratio`` times as wide as the DerSimonian-Laird
      CI: the Bayesian analysis carries the uncertainty about tau that DL's plug-in ignores;
    * the Freeman-Tukey back-transform misleads (clipped or non-monotone limits, from
      ``pooled_details.csv``), so the PFT estimates should not be read at face value.

    Parameters
    ----------
    estimates : pandas.DataFrame
        ``pooled_estimates.csv`` including the Bayesian rows.
    details : pandas.DataFrame
        ``pooled_details.csv`` (its ``flags`` column).
    rows : pandas.DataFrame
        Cleaned analysis rows (unused; kept for the adapter's call).
    level, estimate_margin, median_margin, width_ratio : float
    median_scale : {"months", "log"}
        Scale of the Bayesian median model (for the ``tau2_scale`` column).

    Returns
    -------
    pandas.DataFrame
        Long form, one row per outcome x subgroup x method (``COMPARISON_COLUMNS``).
        :func:`frequentist_vs_bayesian` is the same, one row per outcome x subgroup.
    """
    out = []
    flags_of = details.set_index(["outcome", "subgroup", "method"])["flags"].fillna("")
    for (outcome, subgroup), est in estimates.groupby(["outcome", "subgroup"], sort=False):
        first = est["method"].iloc[0]
        kind = "median" if first == "BAYES-NN" else methods.get(first).kind if first in methods.REGISTRY else ""
        by = {r["method"]: dict(r) for _, r in est.iterrows()}
        bayes_id = BAYES_METHOD.get(kind)
        if bayes_id not in by:
            continue
        bayes = by[bayes_id]
        b_width = bayes["ci_high"] - bayes["ci_low"]
        margin = median_margin if kind == "median" else estimate_margin
        unit = " months" if kind == "median" else ""
        bayes_flags = []
        for method in COMPARED[kind]:
            if method not in by or method == bayes_id:
                continue
            r = by[method]
            diff = bayes["estimate"] - r["estimate"]
            if np.isfinite(diff) and abs(diff) > margin:
                bayes_flags.append(f"estimate differs from {method} by {diff:+.3g}{unit} (margin {margin:g})")
        dl = by.get("PFT-DL" if kind == "proportion" else "MEDIAN-DL")
        if dl is not None:
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
            if method == bayes_id:
                fl += bayes_flags
            width = r["ci_high"] - r["ci_low"]
            out.append({"outcome": outcome, "subgroup": subgroup, "kind": kind, "k": int(r["k"]), "method": method,
                        "estimate": r["estimate"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                        "ci_width": width, "width_ratio_to_bayes": width / b_width if b_width > 0 else np.nan,
                        "pi_low": r["pi_low"], "pi_high": r["pi_high"], "tau2": r["tau2"],
                        "tau2_scale": "log-months" if method == "BAYES-NN" and median_scale == "log"
                        else TAU2_SCALE[method], "flags": "; ".join(dict.fromkeys(fl))})
    return pd.DataFrame(out, columns=COMPARISON_COLUMNS)


# which method fills each slot of the side-by-side table, per kind
SLOTS = {"proportion": {"dl": "PFT-DL", "reml_hksj": "PFT-REML-HKSJ", "glmm": "GLMM-ML", "bayes": "BAYES-BN"},
         "median": {"dl": "MEDIAN-DL", "bayes": "BAYES-NN"}}
_SLOT_FIELDS = ("method", "estimate", "ci_low", "ci_high")
FVB_COLUMNS = (["outcome", "subgroup", "kind", "k"]
               + [f"{slot}_{f}" for slot in ("dl", "reml_hksj", "glmm", "bayes") for f in _SLOT_FIELDS]
               + ["bayes_pi_low", "bayes_pi_high", "bayes_tau2", "width_ratio_dl", "width_ratio_reml_hksj",
                  "width_ratio_glmm", "flags"])


def frequentist_vs_bayesian(estimates, details, rows, **kwargs):
    """Every outcome x subgroup: PFT-DL, REML-HKSJ, GLMM-ML and Bayesian side by side, with flags.

    One row per outcome x subgroup that has a Bayesian fit. Slots ``dl`` (PFT-DL; MEDIAN-DL for
    medians), ``reml_hksj`` (PFT-REML-HKSJ), ``glmm`` (GLMM-ML) and ``bayes`` (BAYES-BN or
    BAYES-NN) give each method's id, estimate and interval on the reporting scale;
    ``width_ratio_<slot>`` is the Bayesian credible interval's width over that method's CI
    width; ``flags`` joins the plain-language flags of :func:`comparison_long`.

    Parameters
    ----------
    estimates, details, rows
        As :func:`comparison_long`.
    **kwargs
        Margins and settings of :func:`comparison_long`.

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
        for slot, method in SLOTS[kind].items():
            if method in by.index:
                row.update({f"{slot}_{f}": method if f == "method" else by.loc[method, f] for f in _SLOT_FIELDS})
        bayes = by.loc[SLOTS[kind]["bayes"]]
        row.update(bayes_pi_low=bayes["pi_low"], bayes_pi_high=bayes["pi_high"], bayes_tau2=bayes["tau2"])
        for slot in ("dl", "reml_hksj", "glmm"):
            method = SLOTS[kind].get(slot)
            if method in by.index and by.loc[method, "ci_width"] > 0:
                row[f"width_ratio_{slot}"] = bayes["ci_width"] / by.loc[method, "ci_width"]
        row["flags"] = "; ".join(dict.fromkeys(f for cell in part["flags"].fillna("") for f in cell.split("; ") if f))
        out.append(row)
    return pd.DataFrame(out, columns=FVB_COLUMNS)


def comparison_view(table):
    """:func:`frequentist_vs_bayesian` for reading: one "estimate (CI)" text per method slot.

    Percent for proportions, months for medians; the Markdown table of the workflow.
    """
    from .tables import format_estimate  # one number format for every table

    view = table[["outcome", "subgroup", "k"]].copy()
    for slot in ("dl", "reml_hksj", "glmm", "bayes"):
        view[slot] = [format_estimate(e, lo, hi, kind) if pd.notna(e) else "" for e, lo, hi, kind in
                      zip(table[f"{slot}_estimate"], table[f"{slot}_ci_low"], table[f"{slot}_ci_high"], table["kind"])]
    view["flags"] = table["flags"].fillna("")
    return view
