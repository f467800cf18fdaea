"""The Bayesian stage's data and tables, and the frequentist-vs-Bayesian comparison (no sampling here)."""

import numpy as np
import pandas as pd
import pytest
from conftest import TOL_CLOSED, TOL_ITERATIVE
from reference_data import issue13_data, issue13_reference

from singlearm import comparison, pool

R13 = issue13_reference()


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
    fits = list(dict.fromkeys(zip(d["outcome"], d["subgroup"])))
    assert fits == [("orr", "overall"), ("orr", "sts"), ("orr", "bone"), ("median_pfs", "overall"), ("median_pfs", "sts")]

    def fit(outcome, subgroup):
        return d[(d["outcome"] == outcome) & (d["subgroup"] == subgroup)]

    assert fit("orr", "sts")["study"].tolist() == ["a", "b", "d"]
    assert fit("orr", "bone")["events"].tolist() == [0.0]  # zero events kept
    med = fit("median_pfs", "overall")
    assert med["study"].tolist() == ["a", "b"]  # no CI, no standard error: left out as in the DL pooling
    # the review's convention, by hand: SE = (upper - lower) / (2 x 1.959964) on months
    np.testing.assert_allclose(med["sei"], [(8 - 4) / (2 * 1.959964), (9.9 - 6.5) / (2 * 1.959964)], rtol=0,
                               atol=TOL_CLOSED)
    kept = comparison.bayes_data(rows(), ["sts", "bone"], min_k=2)
    assert len(kept.drop_duplicates(["outcome", "subgroup"])) == 4  # k = 1 fits dropped
    assert d.drop_duplicates(["outcome", "subgroup"])["kind"].tolist() == ["proportion"] * 3 + ["median"] * 2


def test_bayes_data_puts_survival_rates_on_log_minus_log():
    surv = pd.DataFrame({"cohort_id": ["a", "b"], "study_id": ["a", "b"], "outcome": "os_2y", "kind": "survival_rate",
                         "subgroup": "sts", "events": np.nan, "total": [30.0, 50.0], "estimate": [0.6, 0.4],
                         "ci_low": [0.4, 0.25], "ci_high": [0.75, 0.55], "has_ci": True,
                         "se_source": "reported_ci", "source_row": [2, 3]})
    d = comparison.bayes_data(surv, ["sts"])
    overall = d[(d["outcome"] == "os_2y") & (d["subgroup"] == "overall")]
    np.testing.assert_allclose(overall["yi"], np.log(-np.log([0.6, 0.4])), rtol=0, atol=TOL_CLOSED)
    # by hand: SE = (log(-log l) - log(-log u)) / (2 x 1.959964), the cloglog scale decreasing in S
    cll = lambda s: np.log(-np.log(np.array(s)))   # noqa: E731
    np.testing.assert_allclose(overall["sei"], (cll([0.4, 0.25]) - cll([0.75, 0.55])) / (2 * 1.959964), rtol=0,
                               atol=TOL_CLOSED)
    assert set(d["kind"]) == {"survival_rate"}


def estimates_with_bayes(bayes_estimate, bayes_ci):
    freq = pool.pool_outcome(rows(), "orr", ["sts", "bone"])
    bayes = pd.DataFrame([{"outcome": "orr", "subgroup": "overall", "method": "BAYES-BN", "k": 4, "n": 140,
                           "estimate": bayes_estimate, "ci_low": bayes_ci[0], "ci_high": bayes_ci[1],
                           "pi_low": 0.01, "pi_high": 0.7, "tau2": 0.3}])
    return pd.concat([freq.estimates, bayes], ignore_index=True), freq.details


def bayes_table():
    """A Bayesian stage's table: PyMC and exact rows for orr overall (k = 4), a single study for orr bone."""
    return pd.DataFrame([
        {"outcome": "orr", "subgroup": "overall", "method": "BAYES-BN", "k": 4, "n": 140, "estimate": 0.17,
         "ci_low": 0.10, "ci_high": 0.26, "pi_low": 0.01, "pi_high": 0.7, "tau2": 0.3, "kind": "proportion",
         "flags": ""},
        {"outcome": "orr", "subgroup": "overall", "method": "BAYES-BN-EXACT", "k": 4, "n": 140, "estimate": 0.171,
         "ci_low": 0.101, "ci_high": 0.259, "pi_low": 0.01, "pi_high": 0.7, "tau2": 0.3, "kind": "proportion",
         "flags": ""},
        {"outcome": "orr", "subgroup": "bone", "method": "single study", "k": 1, "n": 20, "estimate": 0.02,
         "ci_low": 0.0, "ci_high": 0.12, "pi_low": np.nan, "pi_high": np.nan, "tau2": np.nan, "kind": "proportion",
         "flags": "single study: the study's own posterior under tau = 0 (not pooled)"}])


def test_the_bayesian_stage_table_joins_the_frequentist_one_in_the_comparison():
    freq = pool.pool_outcome(rows(), "orr", ["sts", "bone"])
    wide = comparison.frequentist_vs_bayesian(freq.estimates, freq.details, rows(), bayes=bayes_table())
    assert not freq.estimates["method"].str.startswith("BAYES").any()  # the frequentist table stays frequentist
    by = wide.set_index("subgroup")
    assert (by.loc["overall", "bayes_method"], by.loc["overall", "exact_method"]) == ("BAYES-BN", "BAYES-BN-EXACT")
    assert by.loc["overall", "exact_estimate"] == 0.171
    # k = 1: no pooled Bayesian value; the exact slot shows the study's own posterior, labelled
    assert pd.isna(by.loc["bone", "bayes_method"]) and by.loc["bone", "exact_method"] == "single study"
    assert "single study" in by.loc["bone", "flags"]
    view = comparison.comparison_view(wide)
    assert "exact" in view.columns


def test_comparison_sets_methods_side_by_side_with_reml_hksj():
    est, det = estimates_with_bayes(0.17, (0.10, 0.26))
    t = comparison.comparison_long(est, det, rows())
    overall = t[t.subgroup == "overall"].set_index("method")
    assert list(overall.index) == ["PFT-DL", "PFT-REML-HKSJ", "GLMM-ML", "BAYES-BN"]
    assert t["subgroup"].unique().tolist() == ["overall"]  # only fits with a Bayesian row
    # metafor on the same four studies (tests/reference/make_reference_tests13.R): REML is iterative
    orr = rows()[rows().outcome == "orr"]
    assert orr[["cohort_id", "events", "total"]].values.tolist() == \
        issue13_data("comparison", "overall").values.tolist()
    for method, tol in [("PFT-REML-HKSJ", TOL_ITERATIVE), ("PFT-DL", TOL_CLOSED)]:
        for col, q in [("estimate", "est_bt"), ("ci_low", "ci_lb_bt"), ("ci_high", "ci_ub_bt"), ("tau2", "tau2")]:
            assert overall.loc[method, col] == pytest.approx(R13[("comparison", "overall", method, q, "")],
                                                             abs=tol), (method, col)
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
        "outcome", "subgroup", "k", "dl", "reml_hksj", "glmm", "bayes", "exact", "flags"]
