"""Single-arm outcome kinds: Kaplan-Meier rates, medians with one-sided CIs, the median of medians,
single studies, and the Freeman-Tukey safety net.

Reference values come from tests/reference/make_reference_outcomes.R (metafor 3.8-1 and base R),
committed in tests/reference/outcome_values.csv; hand computations cite their formula.
"""

import csv
import math

import numpy as np
import pandas as pd
import pytest

from conftest import RAW, SCHEMAS, TOL_CLOSED, TOL_ITERATIVE, edit_csv
from singlearm import cleaning, effects, ftcheck, pool, robustness, sheets
from singlearm.errors import DataError
from reference_data import REF

# make_reference_outcomes.R writes predict(res, pi.type = "riley") (t, k - 2 df) and plain test = "knha",
# so the pooling is run under those conventions here; the k - 1 / ad hoc defaults are checked in
# tests/test_pool_conventions.py against make_reference_engine.R.
RILEY = pool.Conventions(prediction_df="k-2", hksj_adhoc="none")


def _reference():
    out = {}
    with open(REF / "outcome_values.csv", newline="") as f:
        for r in csv.DictReader(f):
            out[(r["dataset"], r["outcome"], r["fit"], r["quantity"], r["study"])] = (
                float(r["value"]) if r["value"] else math.nan)
    return out


R = _reference()


def survival_rows():
    s = pd.read_csv(REF / "inputs" / "survival_rates.csv")
    se = effects.survival_effects(s.rate, s.ci_low, s.ci_high, s.total)[2]
    return pd.DataFrame({"outcome": "km_rate", "kind": "survival_rate", "subgroup": "sts", "cohort_id": s.study,
                         "study_id": s.study, "events": np.nan, "total": s.total, "estimate": s.rate,
                         "ci_low": s.ci_low, "ci_high": s.ci_high, "se_source": se})


def median_rows(outcome):
    m = pd.read_csv(REF / "inputs" / "sarcoma_medians.csv")
    m = m[m.outcome == outcome]
    source = np.where(m.ci_low.isna(), "", np.where(m.ci_high.isna(), "one_sided_ci", "reported_ci"))
    return m.assign(kind="median", cohort_id=m.study, study_id=m.study, events=np.nan, se_source=source)


# ---- effect sizes ----------------------------------------------------------------------------

def test_survival_effects_match_the_r_formulas():
    s = pd.read_csv(REF / "inputs" / "survival_rates.csv")
    yi, vi, source = effects.survival_effects(s.rate, s.ci_low, s.ci_high, s.total)
    for i, study in enumerate(s.study):
        assert yi[i] == pytest.approx(R[("survival5", "km_rate", "ESCALC-CLOGLOG", "yi", study)], abs=TOL_CLOSED)
        assert math.sqrt(vi[i]) == pytest.approx(R[("survival5", "km_rate", "ESCALC-CLOGLOG", "sei", study)],
                                                 abs=TOL_CLOSED)
    assert list(source) == ["reported_ci", "reported_ci", "one_sided_ci", "binomial_approximation", "reported_ci"]


def test_survival_effect_by_hand():
    # S = 0.5, 95% CI 0.4-0.6: y = log(log 2) = -0.366513; SE = (log(-log .4) - log(-log .6)) / (2 x 1.959964)
    y, v, _ = effects.survival_effects([0.5], [0.4], [0.6], [np.nan])
    assert y[0] == pytest.approx(-0.36651292058166435, abs=TOL_CLOSED)
    assert math.sqrt(v[0]) == pytest.approx((math.log(-math.log(0.4)) - math.log(-math.log(0.6))) / 3.919928,
                                            abs=TOL_CLOSED)
    # no CI: sqrt(S(1-S)/n) / |S log S| = sqrt(.25/100) / (.5 log 2) = 0.05 / 0.34657359 = 0.14426950
    _, v, src = effects.survival_effects([0.5], [np.nan], [np.nan], [100])
    assert math.sqrt(v[0]) == pytest.approx(0.05 / (0.5 * math.log(2)), abs=TOL_CLOSED)
    assert src[0] == "binomial_approximation"


def test_survival_at_0_or_1_and_without_ci_or_n_has_no_standard_error():
    y, v, src = effects.survival_effects([1.0, 0.0, 0.6], [np.nan] * 3, [np.nan] * 3, [50, 50, np.nan])
    assert np.isnan(v).all() and list(src) == ["", "", ""]
    # an upper limit at 100% is infinite on the scale: the SE comes from the lower side alone
    _, v, src = effects.survival_effects([0.9], [0.8], [1.0], [np.nan])
    assert src[0] == "one_sided_ci"
    assert math.sqrt(v[0]) == pytest.approx((math.log(-math.log(0.8)) - math.log(-math.log(0.9))) / 1.959964,
                                            abs=TOL_CLOSED)


def test_one_sided_median_ci_by_hand():
    # li2024 median OS 27.40 (16.43-NR): SE(log m) = (log 27.40 - log 16.43) / 1.959964
    y, v = effects.median_effects([27.40], [16.43], [np.nan], "log")
    assert math.sqrt(v[0]) == pytest.approx((math.log(27.40) - math.log(16.43)) / 1.959964, abs=TOL_CLOSED)
    y, v = effects.median_effects([27.40], [16.43], [np.nan], "months")
    assert math.sqrt(v[0]) == pytest.approx((27.40 - 16.43) / 1.959964, abs=TOL_CLOSED)


# ---- pooling against metafor ---------------------------------------------------------------

@pytest.mark.parametrize("method", ["SURV-DL", "SURV-REML", "SURV-REML-HKSJ"])
def test_survival_pooling_matches_metafor(method):
    res = pool.pool_outcome(survival_rows(), "km_rate", primary="SURV-DL", conventions=RILEY)
    est = res.estimates.set_index(["subgroup", "method"]).loc[("overall", method)]
    det = res.details.set_index(["subgroup", "method"]).loc[("overall", method)]
    tol = TOL_CLOSED if method == "SURV-DL" else TOL_ITERATIVE
    ref = lambda q: R[("survival5", "km_rate", method, q, "")]  # noqa: E731
    assert det["b"] == pytest.approx(ref("b"), abs=tol)
    assert det["se"] == pytest.approx(ref("se"), abs=tol)
    assert est["tau2"] == pytest.approx(ref("tau2"), abs=tol)
    assert est["q"] == pytest.approx(ref("QE"), abs=TOL_CLOSED)
    for col, q in (("estimate", "est_bt"), ("ci_low", "ci_lb_bt"), ("ci_high", "ci_ub_bt"), ("pi_low", "pi_lb_bt"),
                   ("pi_high", "pi_ub_bt")):
        assert est[col] == pytest.approx(ref(q), abs=tol), col
    assert est["ci_low"] < est["estimate"] < est["ci_high"] and est["pi_low"] < est["pi_high"]
    assert "se_source = binomial_approximation for d" in det["flags"]


@pytest.mark.parametrize("outcome", ["median_os", "median_pfs"])
@pytest.mark.parametrize("method", ["LOGMEDIAN-DL", "LOGMEDIAN-REML", "MEDIAN-DL"])
def test_median_pooling_with_one_sided_cis_matches_metafor(outcome, method):
    rows = median_rows(outcome)
    res = pool.pool_outcome(rows, outcome, primary="MEDIAN-DL", conventions=RILEY)
    est = res.estimates.set_index(["subgroup", "method"]).loc[("overall", method)]
    det = res.details.set_index(["subgroup", "method"]).loc[("overall", method)]
    tol = TOL_ITERATIVE if "REML" in method else TOL_CLOSED
    ref = lambda q: R[("sarcoma", outcome, method, q, "")]  # noqa: E731
    assert det["b"] == pytest.approx(ref("b"), abs=tol)
    assert est["tau2"] == pytest.approx(ref("tau2"), abs=tol)
    assert est["estimate"] == pytest.approx(ref("est_bt"), abs=tol)
    assert est["ci_low"] == pytest.approx(max(0.0, ref("ci_lb_bt")), abs=tol)
    assert est["ci_high"] == pytest.approx(ref("ci_ub_bt"), abs=tol)
    assert est["pi_low"] == pytest.approx(max(0.0, ref("pi_lb_bt")), abs=tol)
    assert est["pi_low"] >= 0 and est["ci_low"] >= 0
    if ref("pi_lb_bt") < 0:
        assert "lower PI limit" in det["flags"] and "clipped at 0" in det["flags"]


def test_median_os_pools_three_cohorts_on_the_log_scale():
    est = pool.pool_outcome(median_rows("median_os"), "median_os").estimates
    row = est.set_index(["subgroup", "method"]).loc[("overall", "LOGMEDIAN-DL")]
    assert (row["k"], row["k_reporting"]) == (3, 5)
    det = pool.pool_outcome(median_rows("median_os"), "median_os").details.set_index(["subgroup", "method"])
    assert det.loc[("overall", "LOGMEDIAN-DL"), "cohorts"] == "li2024;tang2022;zhang2022"


@pytest.mark.parametrize("outcome", ["median_os", "median_pfs"])
def test_median_of_medians_matches_r(outcome):
    est = pool.pool_outcome(median_rows(outcome), outcome).estimates.set_index(["subgroup", "method"])
    mm, wm = est.loc[("overall", "MEDIAN-MM")], est.loc[("overall", "MEDIAN-WM")]
    assert mm["estimate"] == pytest.approx(R[("sarcoma", outcome, "MEDIAN-MM", "est", "")], abs=TOL_CLOSED)
    for col, q in (("ci_low", "ci_lb"), ("ci_high", "ci_ub")):
        ref = R[("sarcoma", outcome, "MEDIAN-MM", q, "")]
        assert (math.isnan(mm[col]) and math.isnan(ref)) or mm[col] == pytest.approx(ref, abs=TOL_CLOSED)
    assert wm["estimate"] == pytest.approx(R[("sarcoma", outcome, "MEDIAN-WM", "est", "")], abs=TOL_CLOSED)
    assert mm["k"] == len(median_rows(outcome))   # every cohort reporting a median, with or without a CI


def test_median_of_medians_ci_needs_six_cohorts():
    # [min, max] of k medians covers the median with 1 - 2 / 2^k: 0.9375 for k = 5, 0.96875 for k = 6
    for k, has_ci in ((5, False), (6, True)):
        rows = pd.DataFrame({"outcome": "m", "kind": "median", "subgroup": "sts", "cohort_id": [f"c{i}" for i in range(k)],
                             "study_id": "s", "events": np.nan, "total": 20.0, "estimate": np.arange(1.0, k + 1),
                             "ci_low": np.nan, "ci_high": np.nan, "se_source": ""})
        est = pool.pool_outcome(rows, "m", primary="MEDIAN-DL").estimates.set_index("method").loc["MEDIAN-MM"].iloc[0]
        assert np.isfinite(est["ci_low"]) == has_ci
        if has_ci:
            assert (est["ci_low"], est["ci_high"]) == (1.0, 6.0)


# ---- a single study is not a pooled estimate -----------------------------------------------

def test_single_survival_rate_reports_its_own_result():
    rows = survival_rows().iloc[[0]]
    res = pool.pool_outcome(rows, "km_rate")
    est = res.estimates.query("subgroup == 'overall'")
    assert (est["estimate"] == 0.72).all() and (est["ci_low"] == 0.60).all() and (est["ci_high"] == 0.81).all()
    assert est[["tau2", "i2", "pi_low", "pi_high"]].isna().all().all()
    assert res.details["flags"].str.startswith("single study, not pooled").all()


def test_single_median_with_one_sided_ci_reports_the_reported_ci():
    rows = median_rows("median_os").query("study == 'li2024'")
    est = pool.pool_outcome(rows, "median_os").estimates.query("subgroup == 'overall'").set_index("method")
    assert est.loc["LOGMEDIAN-DL", "estimate"] == 27.40 and est.loc["LOGMEDIAN-DL", "ci_low"] == 16.43
    assert math.isnan(est.loc["LOGMEDIAN-DL", "ci_high"])


def test_all_rates_without_ci_use_the_binomial_approximation_flagged():
    rows = survival_rows().assign(ci_low=np.nan, ci_high=np.nan, se_source="binomial_approximation")
    det = pool.pool_outcome(rows, "km_rate").details.query("subgroup == 'overall'")
    assert det["flags"].str.contains("se_source = binomial_approximation for a;b;c;d;e").all()


# ---- the Freeman-Tukey safety net -----------------------------------------------------------

def test_ft_flags_fire_on_complete_responses():
    # sarcoma CR: 0/40, 0/28, 0/48, 1/21. PFT-DL 0.12% against GLMM 0.73%: every check but the ordering fires.
    x, n = np.array([0, 0, 0, 1.0]), np.array([40, 28, 48, 21.0])
    res = pool.pool_outcome(pd.DataFrame({"outcome": "cr", "kind": "proportion", "subgroup": "sts",
                                          "cohort_id": list("abcd"), "study_id": list("abcd"), "events": x,
                                          "total": n}), "cr")
    flags = res.details.set_index(["subgroup", "method"]).loc[("overall", "PFT-DL"), "flags"]
    assert "back-transform depends on n" in flags
    assert "with tau2 = 0 the estimate 0.0012 differs from the pooled proportion sum(x)/sum(n) = 0.0073" in flags
    assert "differs from GLMM-ML (0.0073) by 1.84 on the logit scale (more than 0.2)" in flags
    assert "clipped to 0 or 1" in flags


def test_ft_flags_silent_on_a_well_behaved_fit_and_ordering_check_fires():
    # equal n, mid-range homogeneous proportions: no flag
    x, n = [20, 21, 22, 20], [60, 60, 60, 60]
    assert ftcheck.ft_flags(*_pft_fit(x, n), x, n, None) == []
    # 0/5 (0%) has a larger double arcsine than 1/100 (1%): 0.5 asin(sqrt(1/6)) = 0.2103 against
    # 0.5 (asin(sqrt(1/101)) + asin(sqrt(2/101))) = 0.1204 (Röver & Friede 2022): discordant order
    flags = ftcheck.ft_flags(*_pft_fit([0, 1], [5, 100]), [0, 1], [5, 100], None)
    assert any("not ordered like their proportions" in f for f in flags)


def _pft_fit(x, n):
    from singlearm.fit import rma

    r = rma(*effects.proportion_effects(x, n, "PFT"), "DL")
    return r.b, r.ci_lb, r.ci_ub, r.pi_lb, r.pi_ub, r.tau2


# ---- cleaning and scenarios on the sarcoma sheets -------------------------------------------

@pytest.fixture(scope="module")
def sarcoma():
    ex = sheets.read_sheet(RAW / "extraction.csv", sheets.load_schema(SCHEMAS / "extraction.schema.yaml"))
    st = sheets.read_sheet(RAW / "study_characteristics.csv", sheets.load_schema(SCHEMAS / "studies.schema.yaml"))
    return cleaning.clean(ex, st).analysis


def test_no_kaplan_meier_rate_is_a_count(sarcoma):
    km = sarcoma[sarcoma.kind == "survival_rate"]
    assert set(km.outcome) == {"pfr_12w", "pfs_rate_3m", "pfs_rate_6m", "os_rate_12m"}
    assert km.events.isna().all() and (km.events_source == "").all()


def test_scenarios_keep_exactly_the_cohorts_the_cleaning_flags_allow(sarcoma):
    from singlearm import cleaning as c

    scenarios = [
        {"id": "excluding_rebuilt_counts", "drop": {"events_source": ["rebuilt_from_percent", "from_percent"]}},
        {"id": "excluding_enrolled_denominators", "drop": {"total_source": [c.ENROLLED_N]}},
    ]
    for outcome in ("orr", "dcr"):
        rows = sarcoma[sarcoma.outcome == outcome]
        sc = robustness.robustness(rows, outcome, method="PFT-DL", scenarios=scenarios).scenarios.set_index("scenario")
        rebuilt = set(rows.loc[rows.events_source.isin(["rebuilt_from_percent", "from_percent"]), "cohort_id"])
        enrolled = set(rows.loc[rows.total_source == c.ENROLLED_N, "cohort_id"])
        assert set(sc.loc["excluding_rebuilt_counts", "cohorts"].split(";")) == set(rows.cohort_id) - rebuilt
        assert set(filter(None, sc.loc["excluding_enrolled_denominators", "dropped"].split(";"))) == enrolled
    orr = sarcoma[sarcoma.outcome == "orr"]
    sc = robustness.robustness(orr, "orr", method="PFT-DL", scenarios=scenarios).scenarios.set_index("scenario")
    assert "zhang2022" in sc.loc["excluding_rebuilt_counts", "dropped"].split(";")


def test_denominator_column_adds_one_scenario_per_kind(sarcoma):
    rows = sarcoma[sarcoma.outcome == "orr"].copy()
    rows["denominator"] = ["itt", "evaluable"] * (len(rows) // 2) + ["itt"] * (len(rows) % 2)
    sc = robustness.robustness(rows, "orr", method="PFT-DL").scenarios.set_index("scenario")
    assert set(sc.index) == {"denominator_evaluable", "denominator_itt"}
    assert set(sc.loc["denominator_itt", "cohorts"].split(";")) == set(rows.loc[rows.denominator == "itt", "cohort_id"])


# ---- bad input -------------------------------------------------------------------------------

def _clean(path):
    ex = sheets.read_sheet(path, sheets.load_schema(SCHEMAS / "extraction.schema.yaml"))
    st = sheets.read_sheet(RAW / "study_characteristics.csv", sheets.load_schema(SCHEMAS / "studies.schema.yaml"))
    return cleaning.clean(ex, st, extraction_path=str(path))


def _row(outcome, study):
    with open(RAW / "extraction.csv", newline="", encoding="utf-8") as f:
        for i, r in enumerate(csv.DictReader(f), start=2):
            if (r["study_id"], r["group"], r["outcome"]) == (study, "all", outcome):
                return i
    raise KeyError((outcome, study))


@pytest.mark.parametrize("column,value,message", [
    ("estimate", "100.5", "column 'estimate': value '100.5': expected a percentage between 0 and 100"),
    ("ci_high", "60", "column 'ci_high': value '60': expected a confidence interval that contains the estimate 98.0"),
])
def test_bad_survival_rate_is_refused(tmp_path, column, value, message):
    r = _row("os_rate_12m", "xu2023")
    path = edit_csv(RAW / "extraction.csv", tmp_path / "extraction.csv", r, column, value)
    if column == "ci_high":
        path = edit_csv(path, path, r, "ci_low", "50")
    with pytest.raises(DataError) as err:
        _clean(path)
    assert str(err.value) == f"{path}, row {r}, {message}"


def test_ci_high_without_ci_low_is_refused(tmp_path):
    r = _row("median_pfs", "li2024")
    path = edit_csv(RAW / "extraction.csv", tmp_path / "extraction.csv", r, "ci_low", "")
    with pytest.raises(DataError) as err:
        _clean(path)
    assert str(err.value) == (f"{path}, row {r}, column 'ci_low': value '': expected a lower confidence limit beside "
                              "ci_high (8.71); only the upper limit may be blank ('not reached')")


def test_median_ci_not_containing_the_median_is_refused(tmp_path):
    r = _row("median_os", "li2024")
    path = edit_csv(RAW / "extraction.csv", tmp_path / "extraction.csv", r, "ci_low", "30")
    with pytest.raises(DataError) as err:
        _clean(path)
    assert str(err.value) == (f"{path}, row {r}, column 'ci_low': value '30': expected a confidence interval that "
                              "contains the estimate 27.40")
