"""The pooling stage under the user's conventions (issue 11): prediction-interval df, the Hartung-Knapp
ad hoc rule, the complete GLMM rows, subgroup tests, Peters rows, the funnel benchmark, meta-regression
and the config checks. Reference values: tests/reference/make_reference_engine.R (metafor 3.8-1)."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from singlearm import configcheck, effects, moderation, plots, pool, robustness, transforms

from engine_reference import coefficients, debruin2009, load_engine_reference
from reference_data import REF as REF_DIR

TOL_CLOSED = 1e-8
TOL_ITERATIVE = 1e-6
# GLMM: the references are lme4 at tight bobyqa settings; 1e-6 as in tests/test_glmm.py
TOL_GLMM = 1e-6
REF = load_engine_reference()
SARCOMA = pd.read_csv(REF_DIR / "inputs" / "sarcoma_proportions.csv")


def rows_of(outcome):
    d = SARCOMA[SARCOMA.outcome == outcome]
    return d.rename(columns={"study": "cohort_id"}).assign(study_id=lambda x: x.cohort_id, kind="proportion",
                                                          group="all")


def ref(outcome, fit, q, subgroup="overall", study=""):
    return REF[("sarcoma", outcome, subgroup, fit, q, study)]


def overall(res, method):
    est = res.estimates.set_index(["subgroup", "method"]).loc[("overall", method)]
    det = res.details.set_index(["subgroup", "method"]).loc[("overall", method)]
    return est, det


def pft_back(b, outcome):
    return float(transforms.ipft_hm(b, rows_of(outcome)["total"].to_numpy(float)))


# ---- prediction-interval df and the ad hoc rule, against metafor ---------------------------------

@pytest.mark.parametrize("outcome", ["orr", "dcr"])
@pytest.mark.parametrize("pi_df, tag", [("k-1", "k1"), ("k-2", "k2"), ("z", "z")])
def test_prediction_interval_follows_the_convention(outcome, pi_df, tag):
    res = pool.pool_outcome(rows_of(outcome), outcome, conventions=pool.Conventions(prediction_df=pi_df))
    est, det = overall(res, "PFT-DL")
    assert est["pi_low"] == pytest.approx(pft_back(ref(outcome, "PFT-DL", f"pi_lb_{tag}"), outcome), abs=TOL_CLOSED)
    assert est["pi_high"] == pytest.approx(pft_back(ref(outcome, "PFT-DL", f"pi_ub_{tag}"), outcome), abs=TOL_CLOSED)
    assert f"PI: {'z' if pi_df == 'z' else 't, ' + pi_df + ' df'}" in det["conventions"]
    g_est, _ = overall(res, "GLMM-ML")
    assert g_est["pi_low"] == pytest.approx(special.expit(ref(outcome, "GLMM-ML", f"pi_lb_{tag}")), abs=TOL_GLMM)


@pytest.mark.parametrize("outcome", ["orr", "dcr"])
@pytest.mark.parametrize("adhoc, fit", [("se", "PFT-REML-HKSJ-SE"), ("ci", "PFT-REML-HKSJ-CI"),
                                        ("none", "PFT-REML-HKSJ")])
def test_hksj_adhoc_rule_and_its_flag(outcome, adhoc, fit):
    res = pool.pool_outcome(rows_of(outcome), outcome, conventions=pool.Conventions(hksj_adhoc=adhoc))
    est, det = overall(res, "PFT-REML-HKSJ")
    assert det["se"] == pytest.approx(ref(outcome, fit, "se"), abs=TOL_ITERATIVE)
    assert est["ci_low"] == pytest.approx(pft_back(ref(outcome, fit, "ci_lb"), outcome), abs=TOL_ITERATIVE)
    assert est["ci_high"] == pytest.approx(pft_back(ref(outcome, fit, "ci_ub"), outcome), abs=TOL_ITERATIVE)
    changed = bool(ref(outcome, fit, "changed")) if adhoc != "none" else False
    assert ("ad hoc rule" in det["flags"]) == changed


def test_adhoc_se_rule_by_hand():
    # three studies whose spread is smaller than chance: the Hartung-Knapp factor q < 1, so the
    # 'se' rule keeps the classic SE 1/sqrt(sum w) with t on k - 1 df
    x, n = np.array([10.0, 11.0, 10.0]), np.array([50.0, 50.0, 50.0])
    rows = pd.DataFrame({"outcome": "orr", "kind": "proportion", "subgroup": "a", "cohort_id": list("abc"),
                         "study_id": list("abc"), "events": x, "total": n})
    yi, vi = effects.proportion_effects(x, n, "PLO")
    w = 1 / vi                      # tau2 = 0 here (REML at the boundary)
    b = (w * yi).sum() / w.sum()
    q_factor = (w * (yi - b) ** 2).sum() / 2
    assert q_factor < 1
    se_classic = 1 / math.sqrt(w.sum())
    half = stats.t.ppf(0.975, 2) * se_classic
    est, det = overall(pool.pool_outcome(rows, "orr"), "PLO-REML-HKSJ")
    assert det["se"] == pytest.approx(se_classic, abs=TOL_ITERATIVE)
    assert est["ci_low"] == pytest.approx(special.expit(b - half), abs=TOL_ITERATIVE)
    assert "ad hoc rule 'se' applied" in det["flags"]
    plain, det0 = overall(pool.pool_outcome(rows, "orr", conventions=pool.Conventions(hksj_adhoc="none")),
                          "PLO-REML-HKSJ")
    assert det0["se"] == pytest.approx(se_classic * math.sqrt(q_factor), abs=TOL_ITERATIVE)
    assert "ad hoc" not in det0["flags"]


def test_prediction_df_by_hand():
    # PI = b +- t_{k-1} sqrt(se^2 + tau2) with PLO-DL on four studies (k - 1 = 3 df)
    x, n = np.array([5.0, 20.0, 9.0, 30.0]), np.array([40.0, 60.0, 45.0, 70.0])
    rows = pd.DataFrame({"outcome": "orr", "kind": "proportion", "subgroup": "a", "cohort_id": list("abcd"),
                         "study_id": list("abcd"), "events": x, "total": n})
    yi, vi = effects.proportion_effects(x, n, "PLO")
    w = 1 / vi
    bf = (w * yi).sum() / w.sum()
    q = (w * (yi - bf) ** 2).sum()
    tau2 = max(0.0, (q - 3) / (w.sum() - (w**2).sum() / w.sum()))
    ws = 1 / (vi + tau2)
    b, se = (ws * yi).sum() / ws.sum(), 1 / math.sqrt(ws.sum())
    for pi_df, crit in (("k-1", stats.t.ppf(0.975, 3)), ("k-2", stats.t.ppf(0.975, 2)), ("z", stats.norm.ppf(0.975))):
        est, det = overall(pool.pool_outcome(rows, "orr", conventions=pool.Conventions(prediction_df=pi_df)), "PLO-DL")
        assert est["pi_low"] == pytest.approx(special.expit(b - crit * math.sqrt(se**2 + tau2)), abs=TOL_CLOSED)
        assert det["pi_df"] == (3 if pi_df == "k-1" else 2 if pi_df == "k-2" else math.inf)


def test_k2_prediction_interval_from_two_studies_only_with_k1():
    rows = rows_of("orr").iloc[:2]
    k1 = overall(pool.pool_outcome(rows, "orr"), "PFT-DL")[0]
    k2 = overall(pool.pool_outcome(rows, "orr", conventions=pool.Conventions(prediction_df="k-2")), "PFT-DL")[0]
    assert np.isfinite(k1["pi_low"]) and np.isnan(k2["pi_low"])


# ---- GLMM rows ----------------------------------------------------------------------------------

def test_glmm_rows_are_complete():
    res = pool.pool_outcome(rows_of("dcr"), "dcr")
    est, det = overall(res, "GLMM-ML")
    assert det["pval"] == pytest.approx(ref("dcr", "GLMM-ML", "pval"), rel=1e-4)
    assert det["q_lrt"] == pytest.approx(ref("dcr", "GLMM-ML", "q_lrt"), abs=TOL_GLMM)
    assert det["q_lrt_p"] == pytest.approx(ref("dcr", "GLMM-ML", "q_lrt_p"), abs=TOL_GLMM)
    assert est["q"] == pytest.approx(ref("dcr", "GLMM-ML", "q_wald"), abs=TOL_CLOSED)
    assert est["tau2"] == pytest.approx(ref("dcr", "GLMM-ML", "tau2"), abs=2 * TOL_GLMM)
    ce, ce_det = overall(res, "GLMM-CE")
    assert ce_det["b"] == pytest.approx(ref("dcr", "GLMM-CE", "b"), abs=TOL_GLMM)
    assert ce_det["se"] == pytest.approx(ref("dcr", "GLMM-CE", "se"), abs=TOL_GLMM)
    assert np.isnan(ce["pi_low"])
    mg, mg_det = overall(res, "GLMM-ML-MARGINAL")
    assert mg["estimate"] == pytest.approx(ref("dcr", "GLMM-ML-MARGINAL", "est"), abs=TOL_GLMM)
    assert mg["ci_low"] == pytest.approx(ref("dcr", "GLMM-ML-MARGINAL", "ci_lb"), abs=TOL_GLMM)
    assert mg["ci_high"] == pytest.approx(ref("dcr", "GLMM-ML-MARGINAL", "ci_ub"), abs=TOL_GLMM)
    assert "population-averaged" in mg_det["flags"] and "delta method" in mg_det["flags"]
    t = overall(pool.pool_outcome(rows_of("dcr"), "dcr", conventions=pool.Conventions(glmm_test="t")), "GLMM-ML")[1]
    assert t["pval"] == pytest.approx(ref("dcr", "GLMM-ML-T", "pval"), rel=1e-4)
    assert t["df"] == 6


def test_glmm_not_converged_is_left_blank_with_the_reason(monkeypatch):
    from singlearm import glmm
    real = glmm.glmm

    def stuck(*args, **kwargs):
        return real(*args, **{**kwargs, "max_iter": 1})
    monkeypatch.setattr(glmm, "glmm", stuck)
    est, det = overall(pool.pool_outcome(rows_of("dcr"), "dcr"), "GLMM-ML")
    assert np.isnan(est["estimate"]) and "did not converge" in det["flags"]


# ---- subgroup tests -----------------------------------------------------------------------------

def test_glmm_subgroup_test_is_the_binomial_meta_regression():
    rows = rows_of("dcr")
    res = pool.pool_outcome(rows, "dcr", ["sts", "bone"])
    t = res.subgroup_tests.set_index("method").loc["GLMM-ML"]
    assert t["model"] == "glmm"
    assert t["q_between"] == pytest.approx(ref("dcr", "SUBGROUP-GLMM", "qm"), abs=1e-5)
    assert t["p_value"] == pytest.approx(ref("dcr", "SUBGROUP-GLMM", "qm_p"), abs=1e-5)


def test_tau_common_gives_the_common_tau2_test():
    res = pool.pool_outcome(rows_of("dcr"), "dcr", ["sts", "bone"], conventions=pool.Conventions(tau_common=True))
    t = res.subgroup_tests.set_index("method").loc["PFT-DL"]
    assert t["model"] == "common"
    assert t["q_between"] == pytest.approx(ref("dcr", "SUBGROUP-COMMON-PFT-DL", "qm"), abs=TOL_CLOSED)
    assert t["tau2"] == pytest.approx(ref("dcr", "SUBGROUP-COMMON-PFT-DL", "tau2"), abs=TOL_CLOSED)


def test_a_level_with_one_study_is_named_and_flags_the_test():
    rows = rows_of("orr").copy()
    rows.loc[rows.index[0], "subgroup"] = "mixed"
    res = pool.pool_outcome(rows, "orr", ["sts", "bone", "mixed"])
    t = res.subgroup_tests.set_index("method").loc["PFT-DL"]
    assert "mixed:k=1" in t["levels"] and t["subgroups"] == 3
    assert bool(t["flagged"]) and "mixed (k = 1)" in t["note"]


# ---- small-study effects ------------------------------------------------------------------------

def test_peters_row_matches_regtest_ninv():
    rows = rows_of("orr").assign(subgroup="x")
    pb = robustness.robustness(rows, "orr", method="PFT-DL", min_k=3).publication_bias
    pb = pb[pb.subgroup == "overall"].set_index("test")
    assert pb.loc["peters", "statistic"] == pytest.approx(ref("orr", "REGTEST-ninv-PFT", "zval"), abs=TOL_CLOSED)
    assert pb.loc["peters", "p_value"] == pytest.approx(ref("orr", "REGTEST-ninv-PFT", "pval"), abs=TOL_CLOSED)


@pytest.mark.parametrize("method", ["PFT-DL", "PLO-DL"])
def test_funnel_benchmark_back_transforms_to_p0(method):
    rows = rows_of("orr").assign(subgroup="x")
    fun = robustness.robustness(rows, "orr", method=method, min_k=3, p0=0.1).funnel
    s = pool.analysis_scale(rows, method)
    assert float(s.back(fun["refline"].iloc[0], s.n)) == pytest.approx(0.1, abs=TOL_CLOSED)
    assert (fun["contours"] == "p0 = 0.1").all()


def test_funnel_plot_names_its_contours():
    y, s = np.array([0.3, 0.35, 0.4]), np.array([0.05, 0.08, 0.1])
    pseudo = plots.funnel_plot(y, s, 0.35, label="ORR", scale_label="x")
    note = [t.get_text() for t in pseudo.texts if t.get_gid() == "note"][0]
    assert "pseudo-confidence limits" in note.replace("\n", " ")
    true = plots.funnel_plot(y, s, 0.35, label="ORR", scale_label="x", refline=0.32, refline_label="p0 = 0.1")
    note = [t.get_text() for t in true.texts if t.get_gid() == "note"][0].replace("\n", " ")
    assert "significance contours" in note and "p0 = 0.1" in note
    assert any(line.get_gid() == "refline" for line in true.axes[0].lines)


# ---- meta-regression ----------------------------------------------------------------------------

def debruin_rows():
    deb = debruin2009()
    ids = deb["study"].astype(str)
    rows = pd.DataFrame({"outcome": "orr", "kind": "proportion", "subgroup": "all", "cohort_id": ids, "study_id": ids,
                         "group": "all", "events": deb["events"], "total": deb["total"]})
    studies = pd.DataFrame({"study_id": ids, "group": "all", "scq": deb["scq"], "ethnicity": deb["ethnicity"]})
    return rows, studies


@pytest.mark.parametrize("method, fit", [("PFT-DL", "METAREG-DL"), ("PFT-REML", "METAREG-REML")])
def test_meta_regression_table_matches_metafor(method, fit):
    rows, studies = debruin_rows()
    r = moderation.meta_regression(rows, studies, "orr", method, ["scq", "ethnicity"], {"ethnicity": "caucasian"},
                                   min_k=10)
    t = r.table.set_index("term")
    key = ("debruin2009", "PFT", "scq+ethnicity", fit)
    names, b = coefficients(REF, *key, "b")
    _, se = coefficients(REF, *key, "se")
    ours = {"intrcpt": "intrcpt", "scq": "scq", "ethnicityother": "ethnicity=other"}
    for name, value, s in zip(names, b, se):
        assert t.loc[ours[name], "estimate"] == pytest.approx(value, abs=TOL_ITERATIVE)
        assert t.loc[ours[name], "se"] == pytest.approx(s, abs=TOL_ITERATIVE)
    for col in ("qm", "qm_p", "qe", "tau2", "tau2_null", "r2"):
        assert t[col].iloc[0] == pytest.approx(REF[(*key, col, "")], abs=TOL_ITERATIVE), col
    line = r.points[(r.points.kind == "line") & (r.points.moderator == "scq")]
    # the line holds ethnicity at its reference level: intercept + slope * scq
    assert line["y"].iloc[-1] == pytest.approx(b[0] + b[1] * line["x"].iloc[-1], abs=TOL_ITERATIVE)
    assert (r.points[r.points.kind == "study"]["weight"].sum()) == pytest.approx(100)


def test_meta_regression_not_run_below_min_k_or_on_a_constant_moderator():
    rows, studies = debruin_rows()
    few = moderation.meta_regression(rows, studies, "orr", "PFT-DL", ["scq"], min_k=50)
    assert few.table["note"].iloc[0] == f"not run: k < 50 (k = {len(rows)})" and few.points.empty
    flat = moderation.meta_regression(rows, studies.assign(scq=1.0), "orr", "PFT-DL", ["scq"], min_k=3)
    assert "constant within the data" in flat.table["note"].iloc[0]


def test_bubble_plot_draws_weights_and_line():
    rows, studies = debruin_rows()
    r = moderation.meta_regression(rows, studies, "orr", "PFT-DL", ["scq"], min_k=3)
    p = r.points
    fig = plots.bubble_plot(p[p.kind == "study"], p[p.kind == "line"], label="ORR", moderator="scq",
                            scale_label="Freeman-Tukey double arcsine")
    ax = fig.axes[0]
    assert len([c for c in ax.collections if c.get_gid() == "bubbles"][0].get_offsets()) == len(rows)
    assert [line.get_gid() for line in ax.lines].count("fit-ci") == 2


# ---- config -------------------------------------------------------------------------------------

def schema():
    from pathlib import Path
    from singlearm import sheets
    return sheets.load_schema(Path(__file__).parents[1] / "workflow" / "schemas" / "config.schema.yaml")


@pytest.mark.parametrize("key, value, allowed", [("prediction_df", "k-3", "k-1, k-2, z"),
                                                 ("hksj_adhoc", "IQWiG", "se, ci, none"),
                                                 ("i2", "H2", "tau2, q"), ("glmm_test", "knha", "z, t")])
def test_unknown_convention_names_key_and_allowed_values(key, value, allowed):
    config = {"data": {"studies": "s.csv", "extraction": "e.csv"}, "frequentist": {key: value}}
    with pytest.raises(configcheck.ConfigError) as err:
        configcheck.check_config(config, schema())
    assert f"key 'frequentist.{key}'" in str(err.value) and f"expected one of {allowed}" in str(err.value)
    with pytest.raises(ValueError, match=f"frequentist.{key}"):
        pool.Conventions(**{key: value})


def test_bad_moderators_stop_with_one_message():
    studies = pd.DataFrame({"study_id": ["a", "b", "c"], "group": "all", "year": [2020, 2020, 2020],
                            "design": ["pro", "retro", "pro"], "age__text": ["1", "2", "3"]})
    cases = [(["age"], "no such column in studies.csv; expected one of its columns: study_id, group, year, design"),
             (["year"], "moderator 'year' is constant within the data"),
             ([{"column": "design", "reference": "rct"}], "reference level 'rct' of moderator 'design'")]
    for mods, message in cases:
        with pytest.raises(configcheck.ConfigError) as err:
            configcheck.check_moderators({"moderators": mods}, studies, [], "studies.csv")
        assert "key 'moderators[0]'" in str(err.value) and message in str(err.value)
    configcheck.check_moderators({"moderators": ["design"]}, studies, [], "studies.csv")


def test_forest_footnote_names_the_prediction_interval_convention():
    from singlearm import figures
    for pi_df, text in (("k-1", "Prediction interval: t, k-1 df."), ("z", "Prediction interval: z.")):
        details = pool.pool_outcome(rows_of("dcr"), "dcr", conventions=pool.Conventions(prediction_df=pi_df)).details
        assert figures._footnotes(details, "dcr", "PFT-DL")[-1] == text


def test_scenario_refits_follow_the_conventions():
    # ORR: the 'se' rule widens the Hartung-Knapp CI (metafor test = "adhoc"); a scenario refit must too
    rows = rows_of("orr").assign(subgroup="x", design=["pro"] * 4 + ["retro"] * 4)
    keep = [{"id": "all", "description": "all", "keep": {"design": ["pro", "retro"]}}]
    ci = {}
    for adhoc in ("se", "none"):
        c = pool.Conventions(hksj_adhoc=adhoc)
        sc = robustness.robustness(rows, "orr", method="PFT-DL-HKSJ", scenarios=keep, conventions=c).scenarios
        ci[adhoc] = sc["ci_low"].iloc[0]
    assert ci["se"] == pytest.approx(pft_back(ref("orr", "PFT-DL-HKSJ-SE", "ci_lb"), "orr"), abs=TOL_CLOSED)
    assert ci["none"] == pytest.approx(pft_back(ref("orr", "PFT-DL-HKSJ", "ci_lb"), "orr"), abs=TOL_CLOSED)


# ---- the sarcoma meta-regression of the default config (make_reference_wiring.R) ----------------

def load_wiring_reference():
    ref_table = pd.read_csv(REF_DIR / "metafor_wiring_values.csv", keep_default_na=False)
    return {(r.outcome, r.fit, r.quantity, r.study): float(r.value) if r.value != "" else math.nan
            for r in ref_table.itertuples()}


WIRING = load_wiring_reference()
MODERATED = pd.read_csv(REF_DIR / "inputs" / "sarcoma_moderators.csv")


def moderated(outcome):
    d = MODERATED[MODERATED.outcome == outcome]
    rows = pd.DataFrame({"outcome": outcome, "kind": "proportion", "subgroup": "all", "cohort_id": d["study"],
                         "study_id": d["study"], "group": "all", "events": d["events"], "total": d["total"]})
    studies = d.rename(columns={"study": "study_id"})[["study_id", "median_age", "design"]].assign(group="all")
    return rows, studies


@pytest.mark.parametrize("outcome", ["orr", "dcr"])
@pytest.mark.parametrize("method, tol", [("PFT-DL", TOL_CLOSED), ("PFT-REML", TOL_ITERATIVE)])
def test_sarcoma_meta_regression_matches_metafor(outcome, method, tol):
    rows, studies = moderated(outcome)
    fit = f"METAREG-{method}"
    r = moderation.meta_regression(rows, studies, outcome, method, ["median_age", "design"],
                                   {"design": "prospective"}, min_k=7)
    t = r.table.set_index("term")
    for name, ours in (("intrcpt", "intrcpt"), ("median_age", "median_age"),
                       ("designretrospective", "design=retrospective")):
        for col, q in (("estimate", "b"), ("se", "se"), ("pval", "pval"), ("ci_lb", "ci_lb"), ("ci_ub", "ci_ub")):
            assert t.loc[ours, col] == pytest.approx(WIRING[(outcome, fit, q, name)], abs=tol), (name, col)
    for col in ("qm", "qm_p", "qe", "qe_p", "tau2", "tau2_null", "r2"):
        assert t[col].iloc[0] == pytest.approx(WIRING[(outcome, fit, col, "")], abs=tol), col
    line = r.points[(r.points.kind == "line") & (r.points.moderator == "median_age")]
    for end, i in (("min", 0), ("max", -1)):
        assert line["y"].iloc[i] == pytest.approx(WIRING[(outcome, fit, "line_pred", end)], abs=tol)
        assert line["y_low"].iloc[i] == pytest.approx(WIRING[(outcome, fit, "line_ci_lb", end)], abs=tol)
        assert line["y_high"].iloc[i] == pytest.approx(WIRING[(outcome, fit, "line_ci_ub", end)], abs=tol)


@pytest.mark.parametrize("outcome", ["orr", "dcr"])
def test_funnel_benchmark_matches_uniroot_of_transf_ipft_hm(outcome):
    rows, _ = moderated(outcome)
    fun = robustness.robustness(rows.assign(subgroup="x"), outcome, method="PFT-DL", min_k=3, p0=0.2).funnel
    assert fun["refline"].iloc[0] == pytest.approx(WIRING[(outcome, "FUNNEL-P0-PFT", "refline_p0_0.2", "")],
                                                   abs=TOL_CLOSED)


@pytest.mark.parametrize("i2, q", [("tau2", "i2"), ("q", "i2_q")])
def test_i2_convention(i2, q):
    est, det = overall(pool.pool_outcome(rows_of("dcr"), "dcr", conventions=pool.Conventions(i2=i2)), "PFT-DL")
    assert est["i2"] == pytest.approx(ref("dcr", "PFT-DL", q), abs=TOL_CLOSED)
    assert f"I2 from {i2}" in det["conventions"]


def test_p0_for_a_median_stops_at_start():
    config = {"data": {"studies": "s.csv", "extraction": "e.csv"}, "bias": {"p0": {"median_os": 0.5}}}
    with pytest.raises(configcheck.ConfigError, match=r"key 'bias.p0.median_os': a benchmark rate p0 is defined for "
                                                      r"proportions and survival rates; 'median_os' is a median"):
        configcheck.check_config(config, schema())
    configcheck.check_config({**config, "bias": {"p0": {"orr": 0.2}}}, schema())
