"""The Bayesian stage's data and tables, and the frequentist-vs-Bayesian comparison (no sampling here)."""

import numpy as np
import pandas as pd
import pytest
from conftest import TOL_CLOSED

from singlearm import comparison, effects, pool



def rows():
    """Analysis rows: a proportion outcome in two subgroups and a median outcome, one without a CI."""
    prop = pd.DataFrame({"cohort_id": ["a", "b", "c", "d"], "study_id": ["a", "b", "c", "d"], "outcome": "orr",
                         "kind": "proportion", "subgroup": ["sts", "sts", "bone", "sts"],
                         "events": [3.0, 10.0, 0.0, 7.0], "total": [30.0, 50.0, 20.0, 40.0], "estimate": np.nan,
                         "ci_low": np.nan, "ci_high": np.nan, "has_ci": False, "se_source": "", "source_row": [2, 3, 4, 5]})
    med = pd.DataFrame({"cohort_id": ["a", "b", "c"], "study_id": ["a", "b", "c"], "outcome": "median_pfs",
                        "kind": "median", "subgroup": ["sts", "sts", "bone"], "events": np.nan,
                        "total": [30.0, 50.0, 20.0], "estimate": [6.0, 8.0, 5.0], "ci_low": [4.0, 6.5, np.nan],
                        "ci_high": [8.0, 9.9, np.nan], "has_ci": [True, True, False],
                        "se_source": ["reported_ci", "reported_ci", ""], "source_row": [6, 7, 8]})
    return pd.concat([prop, med], ignore_index=True)


def test_bayes_data_builds_every_fit_with_the_frequentist_standard_errors():
    d = comparison.bayes_data(rows(), ["sts", "bone"])
    assert list(dict.fromkeys(d["fit"])) == ["orr|overall", "orr|sts", "orr|bone", "median_pfs|overall",
                                             "median_pfs|sts"]
    assert d[d.fit == "orr|sts"]["study"].tolist() == ["a", "b", "d"]
    assert d[d.fit == "orr|bone"]["events"].tolist() == [0.0]  # zero events kept
    med = d[d.fit == "median_pfs|overall"]
    assert med["study"].tolist() == ["a", "b"]  # no CI, no standard error: left out as in the DL pooling
    yi, vi = effects.median_effects([6.0, 8.0], [4.0, 6.5], [8.0, 9.9])
    np.testing.assert_allclose(med["sei"], np.sqrt(vi), rtol=0, atol=TOL_CLOSED)
    np.testing.assert_allclose(med["sei"], [(8 - 4) / (2 * 1.959964), (9.9 - 6.5) / (2 * 1.959964)], atol=1e-12)
    assert comparison.bayes_data(rows(), ["sts", "bone"], min_k=2)["fit"].nunique() == 4  # k = 1 fits dropped


def summary_table():
    return pd.DataFrame({
        "fit": ["orr|overall", "orr|sts", "orr|bone", "median_pfs|overall"], "prior": "main",
        "kind": ["proportion"] * 3 + ["median"], "k": [4, 3, 1, 2],
        "estimate": [0.2, 0.21, 0.05, 7.0], "ci_low": [0.1, 0.1, 0.01, 5.0], "ci_high": [0.3, 0.35, 0.4, 9.0],
        "pi_low": [0.05, 0.04, 0.001, 3.0], "pi_high": [0.5, 0.6, 0.8, 11.0], "tau2": [0.1, 0.2, 0.4, 2.0],
        "tau_median": [0.3, 0.4, 0.6, 1.4], "mu_prior": "N(0, 2.5)", "tau_prior": "HN(1)",
        "passed": True, "rhat_max": 1.0, "ess_bulk_min": 3000.0, "divergences": 0})


def test_pooled_rows_follow_the_contract():
    data = comparison.bayes_data(rows(), ["sts", "bone"])
    out = comparison.pooled_rows(summary_table(), data, "main")
    assert list(out.columns) == pool.ESTIMATE_COLUMNS
    assert out["method"].tolist() == ["BAYES-BN"] * 3 + ["BAYES-NN"]
    assert out.loc[0, "n"] == 140 and out.loc[2, "n"] == 20
    assert out[["i2", "q", "q_df", "q_p"]].isna().all().all()
    assert out.loc[0, "estimate"] == 0.2 and out.loc[0, "tau2"] == 0.1


def test_prior_sensitivity_table_compares_with_main_and_withholds_failures():
    main = summary_table()
    sens = main[main["k"] >= 2].copy()
    hc = sens.assign(prior="tau~HC(1)", estimate=sens["estimate"] + 0.01, ci_high=sens["ci_high"] + 0.1)
    hc.loc[hc.fit == "median_pfs|overall", "passed"] = False
    hc.loc[hc.fit == "median_pfs|overall", "divergences"] = 3
    hn = sens.assign(prior="tau~HN(0.5)")
    t = comparison.prior_sensitivity_table(pd.concat([hn, hc]), main, "main", reused=["tau~HN(1)"])
    orr = t[(t.outcome == "orr") & (t.subgroup == "overall")].set_index("prior")
    assert set(orr.index) == {"main (main)", "tau~HC(1)", "tau~HN(0.5)", "tau~HN(1)"}
    assert orr.loc["tau~HC(1)", "difference"] == pytest.approx(0.01, abs=TOL_CLOSED)
    assert orr.loc["tau~HC(1)", "ci_width_ratio"] == pytest.approx(0.3 / 0.2, abs=TOL_CLOSED)
    assert orr.loc["tau~HN(1)", "estimate"] == 0.2 and "same priors" in orr.loc["tau~HN(1)", "note"]
    failed = t[(t.outcome == "median_pfs") & (t.prior == "tau~HC(1)")].iloc[0]
    assert np.isnan(failed["estimate"]) and "did not pass the convergence gate" in failed["note"]
    assert "3 divergences" in failed["note"]
    skipped = t[(t.outcome == "orr") & (t.subgroup == "bone")]
    assert skipped["prior"].tolist() == ["not run"] and "k = 1" in skipped["note"].iloc[0]


def test_probability_table_keeps_each_outcomes_thresholds():
    class S:
        table = summary_table()
        probabilities = pd.DataFrame({"fit": ["orr|overall", "orr|overall", "median_pfs|overall"],
                                      "prior": "main", "threshold": [0.1, 6.0, 6.0], "probability": [0.97, 0.0, 0.8]})

    p = comparison.probability_table(S, {"orr": [0.1], "median_pfs": [6.0]}, "main")
    assert p["statement"].tolist() == ["P(pooled orr > 10% | data) = 0.970",
                                       "P(pooled median_pfs > 6 months | data) = 0.800"]
    assert p["method"].tolist() == ["BAYES-BN", "BAYES-NN"]


def estimates_with_bayes(bayes_estimate, bayes_ci):
    freq = pool.pool_outcome(rows(), "orr", ["sts", "bone"])
    bayes = pd.DataFrame([{"outcome": "orr", "subgroup": "overall", "method": "BAYES-BN", "k": 4, "n": 140,
                           "estimate": bayes_estimate, "ci_low": bayes_ci[0], "ci_high": bayes_ci[1],
                           "pi_low": 0.01, "pi_high": 0.7, "tau2": 0.3}])
    return pd.concat([freq.estimates, bayes], ignore_index=True), freq.details


def test_comparison_sets_methods_side_by_side_with_reml_hksj():
    est, det = estimates_with_bayes(0.17, (0.10, 0.26))
    t = comparison.comparison_long(est, det, rows())
    overall = t[t.subgroup == "overall"].set_index("method")
    assert list(overall.index) == ["PFT-DL", "PFT-REML-HKSJ", "GLMM-ML", "BAYES-BN"]
    assert t["subgroup"].unique().tolist() == ["overall"]  # only fits with a Bayesian row
    s = pool.analysis_scale(rows()[rows().outcome == "orr"], "PFT-REML")
    from singlearm.fit import rma
    r = rma(s.yi, s.vi, "REML", "knha")
    assert overall.loc["PFT-REML-HKSJ", "ci_high"] == pytest.approx(float(s.back(r.ci_ub, s.n)), abs=TOL_CLOSED)
    dl = overall.loc["PFT-DL"]
    assert dl["width_ratio_to_bayes"] == pytest.approx((dl["ci_high"] - dl["ci_low"]) / 0.16, abs=TOL_CLOSED)
    assert overall.loc["GLMM-ML", "tau2_scale"] == "logit" and dl["tau2_scale"] == "double arcsine"


def test_comparison_flags_material_disagreement_and_wide_credible_interval():
    est, det = estimates_with_bayes(0.30, (0.02, 0.90))
    flags = comparison.comparison_long(est, det, rows(), estimate_margin=0.03, width_ratio=1.5)
    text = flags.set_index("method").loc["BAYES-BN", "flags"]
    assert "estimate differs from PFT-DL" in text and "credible interval" in text and "as wide" in text
    est, det = estimates_with_bayes(float(est.query("method == 'PFT-DL' and subgroup == 'overall'")["estimate"].iloc[0]),
                                    (0.10, 0.26))
    calm = comparison.comparison_long(est, det, rows(), estimate_margin=0.5, width_ratio=10)
    assert calm.set_index("method").loc["BAYES-BN", "flags"] == ""


def test_side_by_side_table_has_one_row_per_fit_with_width_ratios():
    est, det = estimates_with_bayes(0.30, (0.02, 0.90))
    long = comparison.comparison_long(est, det, rows()).set_index("method")
    wide = comparison.frequentist_vs_bayesian(est, det, rows())
    assert list(wide.columns) == comparison.FVB_COLUMNS and len(wide) == 1
    row = wide.iloc[0]
    assert (row["dl_method"], row["reml_hksj_method"], row["glmm_method"], row["bayes_method"]) == (
        "PFT-DL", "PFT-REML-HKSJ", "GLMM-ML", "BAYES-BN")
    assert row["glmm_estimate"] == long.loc["GLMM-ML", "estimate"]
    assert row["width_ratio_dl"] == pytest.approx(0.88 / long.loc["PFT-DL", "ci_width"], abs=TOL_CLOSED)
    assert row["bayes_pi_high"] == 0.7 and "estimate differs from PFT-DL" in row["flags"]
    view = comparison.comparison_view(wide)
    assert view.loc[0, "bayes"] == "30.0 (2.0\u201390.0)" and list(view.columns) == [
        "outcome", "subgroup", "k", "dl", "reml_hksj", "glmm", "bayes", "flags"]
