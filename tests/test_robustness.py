"""The robustness tables (leave-one-out, influence, bias tests, scenarios) against metafor and by hand.

The reference values are metafor's ``leave1out``, ``influence``, ``baujat``, ``regtest(model="lm")``,
``ranktest`` and ``trimfill`` on the sarcoma outcomes x subgroups with k >= 3 (tests/reference/
make_reference.R, fit ids ``LOO-PFT-DL`` etc.). Here they check the wiring: that each table row
holds metafor's number for the right cohort, back-transformed with the right n.
"""

import numpy as np
import pandas as pd
import pytest

from reference_data import issue13_data, issue13_reference, proportion_inputs, reference_table
from conftest import TOL_CLOSED, TOL_ITERATIVE
from singlearm.methods import of_kind as methods_of_kind
from singlearm import robustness


REF = reference_table()
R13 = issue13_reference()
SARCOMA = {(o, s): d for (ds, o, s), d in proportion_inputs().items() if ds == "sarcoma"}


def ref(outcome, subgroup, fit, quantity, study=""):
    hit = REF[(REF.dataset == "sarcoma") & (REF.outcome == outcome) & (REF.subgroup == subgroup) & (REF.fit == fit)
              & (REF.quantity == quantity) & (REF.study == study)]
    assert len(hit) == 1, (outcome, subgroup, fit, quantity, study)
    return float(hit["value"].iloc[0])


def analysis_rows(outcome, data, subgroup):
    """Cleaned-analysis-shaped rows for one reference data set."""
    return pd.DataFrame({"cohort_id": data["study"], "study_id": data["study"], "outcome": outcome, "kind": "proportion",
                         "subgroup": subgroup, "events": data["events"].astype(float),
                         "total": data["total"].astype(float), "has_ci": False, "design": "prospective",
                         "derivation": "reported", "location": "Abstract"})


CASES = [(o, s) for (o, s), d in SARCOMA.items() if len(d) >= robustness.MIN_K]


def test_reference_covers_the_analyses():
    assert {"orr", "dcr"} <= {o for o, _ in CASES}
    assert len(CASES) >= 8


@pytest.mark.parametrize("outcome,subgroup", CASES)
def test_tables_hold_metafor_values(outcome, subgroup):
    data = SARCOMA[(outcome, subgroup)]
    rows = analysis_rows(outcome, data, "x" if subgroup == "overall" else subgroup)
    # bias.min_k = 3: the review's analysis on fewer than 10 studies, as the sarcoma config runs it
    r = robustness.robustness(rows, outcome, method="PFT-DL", min_k=3)
    part = "overall"
    loo = r.leave_one_out[r.leave_one_out.subgroup == part].set_index("omitted")
    assert list(loo.index) == list(data["study"])
    for study in data["study"]:
        row = loo.loc[study]
        assert row["k"] == len(data) - 1
        assert row["estimate"] == pytest.approx(ref(outcome, subgroup, "LOO-PFT-DL", "loo_est_bt", study), abs=TOL_CLOSED)
        assert row["ci_low"] == pytest.approx(ref(outcome, subgroup, "LOO-PFT-DL", "loo_ci_lb_bt", study), abs=TOL_CLOSED)
        assert row["ci_high"] == pytest.approx(ref(outcome, subgroup, "LOO-PFT-DL", "loo_ci_ub_bt", study), abs=TOL_CLOSED)
        assert row["tau2"] == pytest.approx(ref(outcome, subgroup, "LOO-PFT-DL", "loo_tau2", study), abs=TOL_CLOSED)
        assert row["i2"] == pytest.approx(ref(outcome, subgroup, "LOO-PFT-DL", "loo_i2", study), abs=TOL_CLOSED)
        assert row["q"] == pytest.approx(ref(outcome, subgroup, "LOO-PFT-DL", "loo_q", study), abs=TOL_CLOSED)
    inf = r.influence[r.influence.subgroup == part].set_index("cohort_id")
    for study in data["study"]:
        for col, q in [("rstudent", "rstudent"), ("cook_d", "cook_d"), ("dffits", "dffits"), ("hat", "hat")]:
            assert inf.loc[study, col] == pytest.approx(ref(outcome, subgroup, "INF-PFT-DL", q, study), abs=TOL_CLOSED)
        assert inf.loc[study, "baujat_x"] == pytest.approx(ref(outcome, subgroup, "BAUJAT-PFT-DL", "baujat_x", study),
                                                           abs=TOL_CLOSED)
        assert inf.loc[study, "baujat_y"] == pytest.approx(ref(outcome, subgroup, "BAUJAT-PFT-DL", "baujat_y", study),
                                                           abs=TOL_CLOSED)
    pb = r.publication_bias[r.publication_bias.subgroup == part].set_index("test")
    assert pb.loc["egger", "statistic"] == pytest.approx(ref(outcome, subgroup, "EGGER-PFT-DL", "zval"), abs=TOL_CLOSED)
    assert pb.loc["egger", "p_value"] == pytest.approx(ref(outcome, subgroup, "EGGER-PFT-DL", "pval"), abs=TOL_CLOSED)
    assert pb.loc["begg", "statistic"] == pytest.approx(ref(outcome, subgroup, "BEGG-PFT-DL", "tau"), abs=TOL_CLOSED)
    assert pb.loc["begg", "p_value"] == pytest.approx(ref(outcome, subgroup, "BEGG-PFT-DL", "pval"), abs=TOL_CLOSED)
    tf = pb.loc["trimfill"]
    assert tf["k0"] == ref(outcome, subgroup, "TRIMFILL-PFT-DL", "k0")
    for col, q in [("adjusted_estimate", "est_bt"), ("adjusted_ci_low", "ci_lb_bt"), ("adjusted_ci_high", "ci_ub_bt")]:
        assert tf[col] == pytest.approx(ref(outcome, subgroup, "TRIMFILL-PFT-DL", q), abs=TOL_ITERATIVE)
    fun = r.funnel[r.funnel.subgroup == part]
    assert fun["imputed"].sum() == tf["k0"]
    assert (pb["k"] == len(data)).all()


def test_underpowered_note_below_ten_studies():
    data = SARCOMA[("orr", "overall")]
    r = robustness.robustness(analysis_rows("orr", data, "sts"), "orr", method="PFT-DL", min_k=3)
    assert len(data) < 10
    assert r.publication_bias["note"].str.contains("Fewer than 10 studies").all()
    assert r.publication_bias.query("subgroup == 'overall'")["p_value"].notna().sum() == 3   # egger, peters, begg ran


def test_below_min_k_the_tests_are_not_run():
    # bias.min_k = 10 (meta::metabias' k.min): rows say so instead of printing p-values
    data = SARCOMA[("orr", "overall")]
    r = robustness.robustness(analysis_rows("orr", data, "sts"), "orr", method="PFT-DL")
    pb = r.publication_bias.query("subgroup == 'overall'").set_index("test")
    assert list(pb.index) == ["egger", "peters", "begg", "trimfill"]
    assert pb[["statistic", "p_value", "adjusted_estimate"]].isna().all().all()
    assert (pb["note"] == f"not run: k < 10 (k = {len(data)})").all()
    fun = r.funnel.query("subgroup == 'overall'")
    assert not fun["imputed"].any() and (fun["contours"] == "pooled estimate").all()


def test_leave_one_out_back_transforms_with_the_remaining_n():
    # the LOO row omitting study d is metafor's PFT-DL fit of the other three, back-transformed with the
    # harmonic mean of exactly their n (a big study moves the harmonic mean a lot): make_reference_tests13.R
    data = pd.DataFrame({"study": ["a", "b", "c", "d"], "events": [2, 5, 9, 40], "total": [10, 30, 41, 400]})
    assert data.values.tolist() == issue13_data("loo", "all").values.tolist()
    r = robustness.robustness(analysis_rows("orr", data, "sts"), "orr", method="PFT-DL")
    row = r.leave_one_out.query("subgroup == 'overall'").set_index("omitted").loc["d"]
    for col, q in [("estimate", "est_bt"), ("ci_low", "ci_lb_bt"), ("ci_high", "ci_ub_bt"), ("tau2", "tau2")]:
        assert row[col] == pytest.approx(R13[("loo", "without_d", "PFT-DL", q, "")], abs=TOL_CLOSED), col
    wrong = R13[("loo", "without_d", "PFT-DL", "est_bt_all_n", "")]
    assert abs(row["estimate"] - wrong) > 1e-4


def test_flags_estimate_outside_full_ci():
    # one large cohort at 13% among four small ones near 10%: it dominates the pooled rate, and
    # without it the estimate (9.7%) falls below the full CI (10.2-13.6%)
    rows = analysis_rows("orr", pd.DataFrame({"study": list("abcde"), "events": [8, 12, 10, 9, 130],
                                              "total": [100, 100, 100, 100, 1000]}), "sts")
    loo = robustness.robustness(rows, "orr", method="PFT-DL").leave_one_out.query("subgroup == 'overall'")
    loo = loo.set_index("omitted")
    assert loo.loc["e", "outside_full_ci"] and "outside the full-data CI" in loo.loc["e", "flag"]
    assert not loo.loc[list("abcd"), "outside_full_ci"].any()


def test_flags_i2_change_beyond_margin():
    # one outlying cohort carries nearly all the heterogeneity
    rows = analysis_rows("orr", pd.DataFrame({"study": list("abcde"), "events": [20, 22, 18, 21, 60],
                                              "total": [200] * 5}), "sts")
    loo = robustness.robustness(rows, "orr", method="PFT-DL", i2_margin=25).leave_one_out
    loo = loo.query("subgroup == 'overall'").set_index("omitted")
    assert loo.loc["e", "i2_change"] < -25 and "I\u00b2 changes by" in loo.loc["e", "flag"]
    assert loo.loc["a", "flag"] == ""
    wide = robustness.robustness(rows, "orr", method="PFT-DL", i2_margin=99).leave_one_out
    assert (wide["flag"] == "").all()


def test_fewer_than_three_studies_gives_no_rows():
    rows = analysis_rows("orr", pd.DataFrame({"study": ["a", "b"], "events": [1, 2], "total": [10, 20]}), "sts")
    r = robustness.robustness(rows, "orr", method="PFT-DL")
    assert r.leave_one_out.empty and r.influence.empty and r.publication_bias.empty
    assert list(r.leave_one_out.columns) == robustness.LOO_COLUMNS


def test_zero_event_cohorts_are_analysed():
    rows = analysis_rows("orr", pd.DataFrame({"study": list("abcd"), "events": [0, 0, 3, 1],
                                              "total": [20, 15, 30, 25]}), "sts")
    r = robustness.robustness(rows, "orr", method="PFT-DL")
    assert len(r.leave_one_out) == 8  # overall and the one subgroup
    assert np.isfinite(r.leave_one_out["estimate"]).all()
    assert (r.leave_one_out["estimate"] >= 0).all()


SCENARIOS = [
    {"id": "all_methods", "description": "every method", "all_methods": True},
    {"id": "prospective_only", "description": "prospective", "keep": {"design": ["prospective"]}},
    {"id": "excluding_rebuilt", "description": "no rebuilt counts", "keep": {"derivation": ["reported", "arithmetic"]}},
    {"id": "no_conference", "description": "no abstracts", "drop_matching": {"location": "meeting abstract"}},
]


def test_scenarios_select_the_right_cohorts():
    # metafor's fits of these five cohorts and of the rows each scenario keeps: make_reference_tests13.R
    data = pd.DataFrame({"study": list("abcde"), "events": [5, 20, 3, 18, 7], "total": [40, 50, 30, 60, 45]})
    assert data.values.tolist() == issue13_data("scenarios", "all").values.tolist()
    rows = analysis_rows("orr", data, "sts")
    rows["design"] = ["prospective", "prospective", "retrospective", "prospective", "retrospective"]
    rows["derivation"] = ["reported", "from_percent", "arithmetic", "reported", "reported"]
    rows["location"] = ["Abstract", "ASCO Annual Meeting abstract", "Abstract", "Abstract", "Abstract"]
    sc = robustness.robustness(rows, "orr", method="PFT-DL", scenarios=SCENARIOS).scenarios
    methods = sc[sc.scenario == "all_methods"].set_index("method")
    sc = sc[sc.scenario != "all_methods"].set_index("scenario")
    assert list(methods.index) == methods_of_kind("proportion")
    # the main estimates by every method: GLMM-ML (iterative) and PFT-DL, the reference of `difference`
    full = R13[("scenarios", "all", "PFT-DL", "est_bt", "")]
    for method, tol in [("GLMM-ML", TOL_ITERATIVE), ("PFT-DL", TOL_CLOSED)]:
        for col, q in [("estimate", "est_bt"), ("ci_low", "ci_lb_bt"), ("ci_high", "ci_ub_bt"), ("tau2", "tau2")]:
            assert methods.loc[method, col] == pytest.approx(R13[("scenarios", "all", method, q, "")], abs=tol), \
                (method, col)
    assert methods.loc["PFT-DL", "difference"] == 0
    assert methods.loc["GLMM-ML", "difference"] == pytest.approx(
        R13[("scenarios", "all", "GLMM-ML", "est_bt", "")] - full, abs=TOL_ITERATIVE)
    assert sc.loc["prospective_only", "dropped"] == "c;e"
    assert sc.loc["excluding_rebuilt", "dropped"] == "b"
    assert sc.loc["no_conference", "dropped"] == "b"
    # each scenario: PFT-DL refitted on the kept rows, back-transformed with their harmonic-mean n
    for scenario in ("prospective_only", "excluding_rebuilt", "no_conference"):
        kept = issue13_data("scenarios", scenario)
        assert sc.loc[scenario, "cohorts"] == ";".join(kept["study"])
        assert sc.loc[scenario, "k"] == R13[("scenarios", scenario, "PFT-DL", "k", "")] == len(kept)
        assert sc.loc[scenario, "n"] == kept["total"].sum()
        for col, q in [("estimate", "est_bt"), ("ci_low", "ci_lb_bt"), ("ci_high", "ci_ub_bt"), ("tau2", "tau2"),
                       ("i2", "i2")]:
            assert sc.loc[scenario, col] == pytest.approx(R13[("scenarios", scenario, "PFT-DL", q, "")],
                                                          abs=TOL_CLOSED), (scenario, col)
        assert sc.loc[scenario, "difference"] == pytest.approx(
            R13[("scenarios", scenario, "PFT-DL", "est_bt", "")] - full, abs=TOL_CLOSED)


def test_scenario_that_leaves_nothing_says_so():
    rows = analysis_rows("orr", pd.DataFrame({"study": ["a", "b"], "events": [1, 2], "total": [10, 20]}), "sts")
    sc = robustness.robustness(rows, "orr", method="PFT-DL",
                               scenarios=[{"id": "retro", "description": "r", "keep": {"design": ["retrospective"]}}])
    row = sc.scenarios.iloc[0]
    assert row["k"] == 0 and np.isnan(row["estimate"]) and row["note"] == "no cohort left to pool"
