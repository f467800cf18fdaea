"""Tests of singlearm.tables: the review's tables, the reproduction table and the Markdown renderer.

Synthetic inputs are small enough to check by hand; one test runs on the result tables of the test
review (.test/), built once per session by conftest.review_tables.
"""

import math
import re

import numpy as np
import pandas as pd
import pytest

from singlearm import reproduction, tables
from singlearm.errors import DataError


PROPORTION_METHOD = {"proportion": "PFT-DL", "median": "MEDIAN-DL"}
ESTIMATE_COLUMNS = ["outcome", "subgroup", "method", "k", "n", "estimate", "ci_low", "ci_high", "pi_low", "pi_high",
                    "tau2", "i2", "q", "q_df", "q_p"]


def fit(outcome, subgroup, method, k, estimate, ci_low, ci_high, n=100.0, **extra):
    """One row of pooled_estimates.csv; unspecified statistics are NaN, as for k = 1."""
    row = dict.fromkeys(ESTIMATE_COLUMNS, np.nan)
    row.update(outcome=outcome, subgroup=subgroup, method=method, k=k, n=n, estimate=estimate, ci_low=ci_low,
               ci_high=ci_high, **extra)
    return row


def frame(rows):
    return pd.DataFrame(rows, columns=ESTIMATE_COLUMNS)


def study(study_id, histology, endpoints, group="all", **extra):
    row = dict(study_id=study_id, author=study_id[:-4].capitalize(), year=int(study_id[-4:]), ref=1,
               design="retrospective", registration=np.nan, period_start="2018-01", period_end="2019-06",
               median_followup_months=10.0, followup_is_mean="no", group=group, n_male=10, n_female=12,
               median_age=50.0, age_is_mean="no", histology=histology, line_of_therapy="second", endpoints=endpoints)
    row.update(extra)
    return row


def table_rows(markdown):
    """Rows of the Markdown table, header and separator included."""
    return [line for line in markdown.splitlines() if line.startswith("|")]


def cells(line):
    """Cells of one table line, splitting only on unescaped pipes."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]


# ------------------------------------------------------------------------------------------
# Tables 1-3
# ------------------------------------------------------------------------------------------

def test_table1_one_row_per_study_and_group_rows_in_sheet_order():
    studies = pd.DataFrame([
        study("chi2018", "sts", "PFS;ORR;AEs>=3", ref=14, median_followup_months=23.2, followup_is_mean="yes"),
        study("tian2020", "bone", "PFS;ORR", group="bone", median_followup_months=np.nan, age_is_mean="yes",
              median_age=20.5, n_male=5, n_female=8),
        study("tian2020", "sts", "PFS;ORR", group="sts", median_followup_months=np.nan, age_is_mean="yes",
              median_age=42.0, n_male=15, n_female=14),
    ])
    t1 = tables.table1_characteristics(studies)
    assert list(t1.columns) == tables.TABLE1_COLUMNS
    assert list(t1["study_id"]) == ["chi2018", "tian2020", "tian2020"]
    assert t1.loc[0, "study"] == "Chi, 2018 (14)"
    assert t1.loc[0, "follow_up"] == "23.2 (mean)"
    assert t1.loc[0, "endpoints"] == "PFS, ORR, AEs \u2265 3"
    assert t1.loc[0, "period"] == "2018-01 to 2019-06"
    assert t1.loc[0, "line"] == "Second line"
    # the group row shows what differs (n, age, histology), not the study's repeated cells
    assert t1.loc[2, "study"] == "" and t1.loc[2, "design"] == "" and t1.loc[2, "endpoints"] == ""
    assert t1.loc[2, "n_male_female"] == "15/14"
    assert t1.loc[2, "age"] == "42 (mean)"
    # the package knows no review's names: without labels the sheet's values print as they are
    assert t1.loc[1, "histology"] == "bone" and t1.loc[2, "histology"] == "sts"
    assert pd.isna(t1.loc[1, "follow_up"])
    labels = {"overall": "Overall", "sts": "Soft-tissue sarcoma", "bone": "Bone sarcoma"}
    t1 = tables.table1_characteristics(studies, labels)
    assert t1.loc[1, "histology"] == "Bone sarcoma" and t1.loc[2, "histology"] == "Soft-tissue sarcoma"
    # labels name the subgroup column's values; another subgroup column leaves histology alone
    assert tables.table1_characteristics(studies, labels, "design").loc[1, "histology"] == "bone"


def test_table2_minors_total_is_the_item_sum_and_a_wrong_total_is_named():
    minors = pd.DataFrame({"study_id": ["a", "b"], "A": [2, 2], "B": [1, 0], "C": [0, 2], "total": [3, 4],
                           "note": ["", "x"]})
    t2 = tables.table2_minors(minors)
    assert list(t2.columns) == ["study_id", "A", "B", "C", "total"]
    assert list(t2["total"]) == [3, 4]
    minors.loc[1, "total"] = 5
    with pytest.raises(DataError, match=r"row 3.*'total'.*\(4\)"):
        tables.table2_minors(minors)
    minors.loc[1, ["B", "total"]] = [3, 7]
    with pytest.raises(DataError, match="'B'"):
        tables.table2_minors(minors)


def test_table3_jbi_counts_yes():
    jbi = pd.DataFrame({"study_id": ["a", "b"], "Q1": ["Y", "y"], "Q2": ["N", "Y"], "Q3": ["U", "NA"]})
    t3 = tables.table3_jbi(jbi)
    assert list(t3.columns) == ["study_id", "Q1", "Q2", "Q3", "n_yes"]
    assert list(t3["n_yes"]) == [1, 2]
    jbi.loc[0, "Q2"] = "maybe"
    with pytest.raises(DataError, match="'Q2'"):
        tables.table3_jbi(jbi)


# ------------------------------------------------------------------------------------------
# Tables 4-5 and main results
# ------------------------------------------------------------------------------------------

def ae_estimates():
    return frame([
        fit("ae_all:hypertension", "overall", "PFT-DL", 3, 0.324, 0.218, 0.44, i2=88.0, q_p=0.001),
        fit("ae_g34:hypertension", "overall", "PFT-DL", 4, 0.079, 0.047, 0.117, i2=57.0, q_p=0.02),
        fit("ae_g34:pneumothorax", "overall", "PFT-DL", 1, 0.03, 0.011, 0.056),
        fit("ae_all:diarrhea", "overall", "PFT-DL", 2, 0.5, 0.4, 0.6),
        # other methods and subgroups must not leak into Table 4
        fit("ae_all:hypertension", "overall", "PLO-DL", 3, 0.9, 0.8, 0.95),
        fit("ae_g34:fatigue", "sts", "PFT-DL", 2, 0.1, 0.05, 0.2),
        fit("orr", "overall", "PFT-DL", 8, 0.1, 0.08, 0.14),
    ])


def test_table4_grades_side_by_side_and_blank_where_a_grade_is_missing():
    t4 = tables.table4_adverse_events(ae_estimates(), "PFT-DL")
    assert list(t4.columns) == tables.TABLE4_COLUMNS
    # ordered by any-grade incidence; an event only reported at grade >= 3 comes last
    assert list(t4["ae"]) == ["Diarrhea", "Hypertension", "Pneumothorax"]
    hyp = t4.set_index("ae").loc["Hypertension"]
    assert hyp["incidence_all"] == "32.4 (21.8\u201344.0)" and hyp["k_all"] == 3
    assert hyp["incidence_g34"] == "7.9 (4.7\u201311.7)" and hyp["k_g34"] == 4
    assert hyp["i2_all"] == 88.0 and hyp["p_g34"] == 0.02
    pneu = t4.set_index("ae").loc["Pneumothorax"]
    assert pd.isna(pneu["k_all"]) and pd.isna(pneu["incidence_all"]) and pd.isna(pneu["i2_all"])
    assert pneu["incidence_g34"] == "3.0 (1.1\u20135.6)"
    assert pd.isna(t4.set_index("ae").loc["Diarrhea", "incidence_g34"])


def subgroup_inputs():
    estimates = frame([
        fit("orr", "overall", "PFT-DL", 8, 0.1, 0.08, 0.14),
        fit("orr", "sts", "PFT-DL", 6, 0.109, 0.07, 0.154, n=339.0, i2=19.7),
        fit("orr", "bone", "PFT-DL", 2, 0.1, 0.044, 0.173, n=90.0, i2=0.0),
        fit("orr", "sts", "PLO-DL", 6, 0.5, 0.4, 0.6),
        fit("median_pfs", "sts", "MEDIAN-DL", 4, 8.1042, 5.6394, 10.5691, n=np.nan, i2=50.0),
        fit("median_pfs", "bone", "MEDIAN-DL", 1, 5.3, 2.85, 7.75, n=np.nan),
    ])
    tests = pd.DataFrame([
        dict(outcome="orr", method="PFT-DL", subgroups=2, q_between=0.0759, df=1, p_value=0.783,
             levels="bone:k=2;sts:k=6"),
        dict(outcome="orr", method="PLO-DL", subgroups=2, q_between=9.0, df=1, p_value=0.003,
             levels="sts:k=6;bone:k=2"),
        dict(outcome="median_pfs", method="MEDIAN-DL", subgroups=2, q_between=2.5, df=1, p_value=0.114,
             levels="sts:k=4;bone:k=1"),
    ])
    return estimates, tests


def test_table5_subgroups_with_between_test_on_the_first_row():
    estimates, tests = subgroup_inputs()
    t5 = tables.table5_subgroups(estimates, tests, PROPORTION_METHOD)
    assert list(t5.columns) == tables.TABLE5_COLUMNS
    assert list(zip(t5["outcome"], t5["subgroup"])) == [("orr", "bone"), ("orr", "sts"),
                                                        ("median_pfs", "sts"), ("median_pfs", "bone")]
    assert list(t5["method"]) == ["PFT-DL", "PFT-DL", "MEDIAN-DL", "MEDIAN-DL"]
    assert t5.loc[0, "q_between"] == 0.0759 and t5.loc[0, "p_between"] == 0.783 and t5.loc[0, "df_between"] == 1
    assert t5.loc[1, "q_between"] == "" and t5.loc[1, "p_between"] == ""
    assert t5.loc[1, "estimate_ci"] == "10.9 (7.0\u201315.4)" and t5.loc[1, "n"] == 339
    assert t5.loc[2, "estimate_ci"] == "8.10 (5.64\u201310.57)" and t5.loc[2, "unit"] == "months"
    # with one method id for everything, medians (pooled by another method) drop out
    assert set(tables.table5_subgroups(estimates, tests, "PFT-DL")["outcome"]) == {"orr"}


def test_main_results_efficacy_only_with_prediction_interval():
    estimates = frame([
        fit("orr", "overall", "PFT-DL", 8, 0.10848, 0.07919, 0.14128, n=429.0, pi_low=0.0725, pi_high=0.1499,
            tau2=0.0, i2=0.0, q=6.35, q_df=7.0, q_p=0.4995),
        fit("orr", "sts", "PFT-DL", 6, 0.109, 0.07, 0.154),
        fit("median_pfs", "overall", "MEDIAN-DL", 5, 7.3883, 5.2764, 9.5003, n=np.nan, pi_low=0.8897,
            pi_high=13.8869),
        fit("ae_g34:hypertension", "overall", "PFT-DL", 4, 0.079, 0.047, 0.117),
    ])
    main = tables.main_results(estimates, PROPORTION_METHOD)
    assert list(main.columns) == tables.MAIN_COLUMNS
    assert list(main["outcome"]) == ["orr", "median_pfs"]
    assert main.loc[0, "estimate_ci"] == "10.8 (7.9\u201314.1)" and main.loc[0, "pi"] == "7.2\u201315.0"
    assert main.loc[0, "n"] == 429 and main.loc[0, "q_df"] == 7 and main.loc[0, "q_p"] == 0.4995
    assert main.loc[1, "pi"] == "0.89\u201313.89" and pd.isna(main.loc[1, "n"])


# ------------------------------------------------------------------------------------------
# Reproduction
# ------------------------------------------------------------------------------------------

def reproduction_inputs():
    studies = pd.DataFrame([
        study("aaa2018", "sts", "PFS;ORR;AEs"),
        study("bbb2019", "sts", "PFS;AEs>=3"),
        study("ccc2020", "bone", "PFS;ORR"),
        study("ddd2021", "bone", "ORR;AEs", group="bone"),
        study("ddd2021", "sts", "ORR;AEs", group="sts"),
    ])
    coverage = pd.DataFrame([
        dict(outcome="orr", kind="proportion", studies_in_review=4, studies_listing_endpoint=3, studies_with_data=2,
             cohorts_with_data=2, studies_listing_endpoint_without_data="ddd2021"),
        dict(outcome="median_pfs", kind="median", studies_in_review=4, studies_listing_endpoint=3,
             studies_with_data=3, cohorts_with_data=3, studies_listing_endpoint_without_data=np.nan),
        dict(outcome="ae_g34:hypertension", kind="proportion", studies_in_review=4, studies_listing_endpoint=3,
             studies_with_data=1, cohorts_with_data=1, studies_listing_endpoint_without_data="bbb2019;ddd2021"),
    ])
    estimates = frame([
        fit("orr", "overall", "PFT-DL", 2, 0.1, 0.05, 0.16, i2=10.0, q_p=0.3),
        fit("orr", "overall", "PLO-DL", 2, 0.3, 0.2, 0.4),
        fit("orr", "sts", "PFT-DL", 1, 0.0882, 0.04, 0.15),
        fit("median_pfs", "overall", "MEDIAN-DL", 2, 7.0, 5.0, 9.0),
        fit("median_pfs", "overall", "LOGMEDIAN-DL", 2, 99.0, 5.0, 199.0),
        fit("ae_g34:hypertension", "overall", "PFT-DL", 1, 0.2, 0.1, 0.3),
    ])
    published = pd.DataFrame([
        dict(outcome="orr", grade=np.nan, subgroup="overall", estimate=8.8, ci_low=6.2, ci_high=11.7, i2=np.nan,
             p_heterogeneity=np.nan, unit="percent", source="text"),
        dict(outcome="orr", grade=np.nan, subgroup="sts", estimate=9.0, ci_low=5.4, ci_high=13.4, i2=38.0,
             p_heterogeneity="0.12", unit="percent", source="Table 5"),
        dict(outcome="orr", grade=np.nan, subgroup="bone", estimate=9.6, ci_low=4.5, ci_high=16.2, i2=0.0,
             p_heterogeneity="0.96", unit="percent", source="Table 5"),
        dict(outcome="median_pfs", grade=np.nan, subgroup="overall", estimate=6.68, ci_low=5.37, ci_high=7.98,
             i2=np.nan, p_heterogeneity=np.nan, unit="months", source="text"),
        dict(outcome="median_pfs", grade=np.nan, subgroup="bone", estimate=5.7, ci_low=1.2, ci_high=10.3,
             i2=96.2, p_heterogeneity="<0.01", unit="months", source="Table 5"),
        dict(outcome="pfs_rate_9m", grade=np.nan, subgroup="overall", estimate=32.0, ci_low=np.nan, ci_high=np.nan,
             i2=np.nan, p_heterogeneity=np.nan, unit="percent", source="text"),
        dict(outcome="hypertension", grade="g34", subgroup="overall", estimate=7.9, ci_low=4.7, ci_high=11.7,
             i2=57.0, p_heterogeneity="<0.01", unit="percent", source="Table 4"),
        dict(outcome="hypertension", grade="all", subgroup="overall", estimate=32.4, ci_low=21.8, ci_high=44.0,
             i2=88.0, p_heterogeneity="<0.01", unit="percent", source="Table 4"),
    ])
    return published, estimates, coverage, studies


def test_published_outcome_maps_adverse_events_by_grade():
    assert reproduction.published_outcome("hypertension", "g34") == "ae_g34:hypertension"
    assert reproduction.published_outcome("hypertension", "all") == "ae_all:hypertension"
    assert reproduction.published_outcome("orr", np.nan) == "orr"
    assert reproduction.published_outcome("orr", "") == "orr"


def test_reproduction_rows_columns_and_difference_on_fractions():
    published, estimates, coverage, studies = reproduction_inputs()
    rep = reproduction.reproduction(published, estimates, coverage, studies, PROPORTION_METHOD)
    assert list(rep.columns[:1]) == ["outcome"]
    required = ["outcome", "grade", "subgroup", "label", "unit", "published_estimate", "published_ci_low",
                "published_ci_high", "method", "our_estimate", "our_ci_low", "our_ci_high", "difference", "k_ours",
                "k_review", "reason"]
    assert set(required) <= set(rep.columns)
    assert list(rep["outcome"]) == ["orr", "orr", "orr", "median_pfs", "median_pfs", "pfs_rate_9m",
                                    "ae_g34:hypertension", "ae_all:hypertension"]
    orr = rep.iloc[0]
    assert orr["published_estimate"] == 0.088 and orr["published_ci_high"] == 0.117
    assert orr["method"] == "PFT-DL" and orr["our_estimate"] == 0.1 and orr["k_ours"] == 2
    assert orr["difference"] == pytest.approx(0.1 - 0.088, abs=1e-15)
    assert "ours is 1.2 percentage points higher" in orr["reason"]
    med = rep.iloc[3]
    assert med["method"] == "MEDIAN-DL" and med["our_estimate"] == 7.0
    assert med["difference"] == pytest.approx(0.32, abs=1e-12)
    assert med["published_estimate"] == 6.68


def test_reproduction_k_review_from_endpoints_and_subgroup():
    published, estimates, coverage, studies = reproduction_inputs()
    rep = reproduction.reproduction(published, estimates, coverage, studies, PROPORTION_METHOD)
    k = dict(zip(zip(rep["outcome"], rep["subgroup"]), rep["k_review"]))
    assert k[("orr", "overall")] == 3          # aaa, ccc, ddd (ddd once though it has two cohorts)
    assert k[("orr", "sts")] == 2              # aaa and ddd's sts cohort
    assert k[("orr", "bone")] == 2             # ccc and ddd's bone cohort
    assert k[("median_pfs", "overall")] == 3   # PFS: aaa, bbb, ccc
    assert k[("ae_g34:hypertension", "overall")] == 3  # AEs or AEs>=3: aaa, bbb, ddd
    assert k[("ae_all:hypertension", "overall")] == 2  # any grade needs AEs: aaa, ddd
    ae = rep[rep["outcome"] == "ae_g34:hypertension"].iloc[0]
    assert "upper bound" in ae["k_review_basis"] and "upper bound" in ae["reason"]
    assert "2 of the 3 studies listing AEs" in ae["reason"] and "bbb2019, ddd2021" in ae["reason"]


def test_reproduction_reasons_and_blanks_where_we_have_no_estimate():
    published, estimates, coverage, studies = reproduction_inputs()
    rep = reproduction.reproduction(published, estimates, coverage, studies, PROPORTION_METHOD)
    by = {(o, s): r for o, s, r in zip(rep["outcome"], rep["subgroup"], rep.to_dict("records"))}
    none = by[("pfs_rate_9m", "overall")]
    for col in ("our_estimate", "our_ci_low", "our_ci_high", "difference"):
        assert pd.isna(none[col])
    assert pd.isna(none["k_ours"])
    assert none["reason"].startswith("not estimable: no study")
    bone = by[("orr", "bone")]
    # ccc2020 (bone) has ORR data per the coverage table, yet the pooled results hold no bone row
    assert pd.isna(bone["our_estimate"]) and "no PFT-DL estimate (bone) in the pooled results" in bone["reason"]
    assert "all 2 bone studies listing ORR" not in bone["reason"]  # ccc has data: only ddd lacks it
    assert "1 of the 2 bone studies listing ORR have no ORR data" in bone["reason"]
    sts = by[("orr", "sts")]
    assert "matches within 0.5 percentage points" in sts["reason"]
    assert "k = 1: a single study" in sts["reason"]
    med = by[("median_pfs", "overall")]
    assert "medians pooled only from studies printing a 95% CI (2 of 3 in the sheet)" in med["reason"]
    assert "ours is 0.32 months higher" in med["reason"]
    assert by[("ae_all:hypertension", "overall")]["reason"].startswith("not estimable")
    # ccc2020, the bone study with a median PFS, prints no CI (no MEDIAN-DL bone row)
    assert by[("median_pfs", "bone")]["reason"].startswith(
        "not estimable: the one study in the sheet reporting this median (bone) prints no 95% CI")
    assert pd.isna(by[("median_pfs", "bone")]["difference"])


def test_reproduction_rejects_unknown_outcome_and_wrong_unit():
    published, estimates, coverage, studies = reproduction_inputs()
    bad = published.copy()
    bad.loc[5, "outcome"] = "hypertension"  # an AE name without a grade
    with pytest.raises(DataError, match=r"row 7, column 'outcome'"):
        reproduction.reproduction(bad, estimates, coverage, studies, PROPORTION_METHOD)
    bad = published.copy()
    bad.loc[3, "unit"] = "percent"
    with pytest.raises(DataError, match=r"row 5, column 'unit'.*months"):
        reproduction.reproduction(bad, estimates, coverage, studies, PROPORTION_METHOD)


def test_reproduction_summary_text():
    published, estimates, coverage, studies = reproduction_inputs()
    summary = reproduction.reproduction_summary(
        reproduction.reproduction(published, estimates, coverage, studies, PROPORTION_METHOD))
    assert list(summary.columns) == reproduction.REPRODUCTION_SUMMARY_COLUMNS
    assert summary.loc[0, "published"] == "8.8 (6.2\u201311.7)"
    assert summary.loc[0, "ours"] == "10.0 (5.0\u201316.0)"
    assert summary.loc[0, "difference"] == "+1.2 pp"
    assert summary.loc[3, "difference"] == "+0.32 months"
    assert summary.loc[5, "published"] == "32.0" and pd.isna(summary.loc[5, "ours"])


# ------------------------------------------------------------------------------------------
# Markdown
# ------------------------------------------------------------------------------------------

def test_to_markdown_layout_stamp_escaping_and_number_formats():
    df = pd.DataFrame({"label": ["a|b", "line\nbreak", "c"], "k": [3, 12, 1],
                       "q_p": [0.0004, 0.5, np.nan], "i2": [12.345, 0.0, np.nan]})
    stamp = "singlearm 0.1.0 \u00b7 60a2f4c \u00b7 inputs 1a2b3c4d5e6f"
    md = tables.to_markdown(df, "Table X", stamp, caption="Caption with | pipe")
    lines = md.splitlines()
    assert lines[0] == "**Table X**"
    assert lines[-1] == f"_{stamp}_" and md.endswith("\n")
    assert "Caption with \\| pipe" in md
    rows = table_rows(md)
    assert len(rows) == len(df) + 2
    assert all(len(cells(r)) == 4 for r in rows)
    assert cells(rows[1]) == ["---", "---:", "---:", "---:"]
    assert cells(rows[2]) == ["a\\|b", "3", "<0.001", "12.3"]
    assert cells(rows[3])[0] == "line break"
    assert cells(rows[4]) == ["c", "1", "\u2013", "\u2013"]
    assert cells(rows[0]) == ["Outcome", "k", "p (Q)", "I² (%)"]
    assert tables.to_markdown(df, "Table X", stamp, caption="Caption with | pipe") == md
    assert "| NA |" in tables.to_markdown(df, "T", stamp, na="NA")


def test_to_markdown_without_caption_and_with_own_headers():
    md = tables.to_markdown(pd.DataFrame({"x": [1.23456]}), "T", "s", headers={"x": "Ex"})
    assert md.splitlines()[:3] == ["**T**", "", "| Ex |"]
    assert cells(table_rows(md)[2]) == ["1.23"]


# ------------------------------------------------------------------------------------------
# The real files
# ------------------------------------------------------------------------------------------

def test_reproduction_on_the_test_review(review_tables):
    # the test review's session build (conftest.review_tables); its "published" sheet is invented
    run = review_tables.parents[1]
    published = pd.read_csv(run / "data" / "raw" / "published_estimates.csv")
    estimates = pd.read_csv(review_tables / "pooled_estimates.csv")
    coverage = pd.read_csv(run / "data" / "processed" / "outcome_coverage.csv")
    studies = pd.read_csv(run / "data" / "raw" / "study_characteristics.csv")
    rep = reproduction.reproduction(published, estimates, coverage, studies, PROPORTION_METHOD)
    assert len(rep) == len(published)
    assert rep["reason"].str.len().gt(0).all()
    orr = rep[(rep["outcome"] == "orr") & (rep["subgroup"] == "overall")]
    ours = estimates[(estimates["outcome"] == "orr") & (estimates["subgroup"] == "overall")
                     & (estimates["method"] == "PFT-DL")]
    assert len(orr) == 1 and len(ours) == 1
    assert orr["our_estimate"].iloc[0] == ours["estimate"].iloc[0]
    assert orr["published_estimate"].iloc[0] == pytest.approx(0.35)   # the sheet's 35.0 percent, as a fraction
    assert orr["k_review"].iloc[0] == 4 == orr["k_ours"].iloc[0]       # the four Miller cohorts list ORR
    # the sheet's dcr row has no outcome in the extraction: nothing of ours is shown for it
    (dcr,) = rep[rep["outcome"] == "dcr"].itertuples()
    assert pd.isna(dcr.our_estimate) and pd.isna(dcr.difference) and pd.isna(dcr.k_ours)
    # no number where there is no estimate
    blank = rep["our_estimate"].isna()
    assert rep.loc[blank, "difference"].isna().all() and rep.loc[blank, "k_ours"].isna().all()
