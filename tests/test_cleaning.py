"""Cleaning of the extraction sheet: every raw row accounted for, derivations flagged, bad data refused."""

import pandas as pd
import pytest

from singlearm import cleaning, sheets
from singlearm.errors import DataError

from conftest import RAW, SCHEMAS, edit_csv


def read(path, name):
    return sheets.read_sheet(path, sheets.load_schema(SCHEMAS / f"{name}.schema.yaml"))


def run_clean(extraction=RAW / "extraction.csv", studies=RAW / "study_characteristics.csv"):
    return cleaning.clean(read(extraction, "extraction"), read(studies, "studies"), "histology",
                          str(extraction), str(studies))


@pytest.fixture(scope="module")
def result():
    return run_clean()


def row_of(df, study, outcome, group="all"):
    hit = df[(df.study_id == study) & (df.outcome == outcome) & (df.group == group)]
    assert len(hit) == 1, (study, outcome)
    return hit.iloc[0]


def test_log_accounts_for_every_raw_row(result):
    assert len(result.log) == 104
    assert list(result.log.source_row) == list(range(2, 106))
    assert set(result.log.status) == {"kept", "derived", "excluded"}
    assert (result.log.reason.str.len() > 0).all()


def test_exclude_reason_rows_never_reach_the_analysis(result):
    assert "pang2023" not in set(result.analysis.study_id)
    pang = result.log[result.log.study_id == "pang2023"]
    assert len(pang) == 10 and (pang.status == "excluded").all()
    assert pang.reason.str.startswith("exclude_reason: candidate publication").all()


def test_within_study_subsets_are_logged_not_pooled(result):
    subsets = result.log[result.log.group.isin(["osteosarcoma", "chondrosarcoma"])]
    assert len(subsets) == 4 and (subsets.status == "excluded").all()
    assert not result.analysis.group.isin(["osteosarcoma", "chondrosarcoma"]).any()


def test_kaplan_meier_rates_are_never_rebuilt_as_counts(result):
    # chi2018 PFR at 12 weeks: 68% of 166 is a KM estimate, not 113/166: kept as printed, SE from n.
    r = row_of(result.analysis, "chi2018", "pfr_12w")
    assert (r.kind, r.estimate, r.total, r.se_source, r.total_source) == (
        "survival_rate", 0.68, 166, "binomial_approximation", "reported")
    assert pd.isna(r.events) and r.events_source == ""
    log = row_of(result.log, "chi2018", "pfr_12w")
    assert (log.status, log.reason) == ("kept", "Kaplan-Meier estimate; no CI: SE by the binomial approximation "
                                                "from n (a lower bound under censoring)")
    kinds = result.analysis[result.analysis.outcome.str.match(r"^(pfr_|pfs_rate_|os_rate_)")]
    assert set(kinds.kind) == {"survival_rate"} and kinds.events.isna().all()
    # liu2021a has no denominator: the cohort's enrolled n (row 71) is its n, flagged.
    r = row_of(result.analysis, "liu2021a", "pfs_rate_6m")
    assert (r.estimate, r.total, r.total_source) == (0.354, 48, "enrolled_n")


def test_missing_denominator_takes_enrolled_n_and_is_flagged(result):
    # zhang2022 ORR 8.6% with no denominator: enrolled n = 35 (row 100), 3/35 = 8.57%.
    r = row_of(result.analysis, "zhang2022", "orr")
    assert (r.events, r.total, r.events_source) == (3, 35, "rebuilt_from_percent")
    assert r.total_source == "enrolled_n"
    assert row_of(result.log, "zhang2022", "orr").reason == (
        "count rebuilt from the printed percentage; denominator = cohort's enrolled n (row 100)")


def test_no_unique_count_excludes_the_row(raw_copy):
    # 13% of 166: both 21 (12.65%) and 22 (13.25%) round to 13.
    path = edit_csv(raw_copy / "extraction.csv", raw_copy / "extraction.csv", 4, "events", "")
    res = run_clean(path, raw_copy / "study_characteristics.csv")
    entry = row_of(res.log, "chi2018", "orr")
    assert entry.status == "excluded"
    assert entry.reason == "no unique count fits 13% of 166 (integers that round to it: 21, 22)"
    assert "chi2018" not in set(res.analysis[res.analysis.outcome == "orr"].study_id)


def test_medians_without_ci_are_kept_but_marked(result):
    chi = row_of(result.analysis, "chi2018", "median_pfs")
    li = row_of(result.analysis, "li2024", "median_pfs")
    assert (chi.has_ci, li.has_ci) == (False, True)
    assert (li.estimate, li.ci_low, li.ci_high) == (6.83, 4.17, 8.71)
    assert row_of(result.log, "xu2023", "median_os").reason == "no numeric median (e.g. not reached)"


def test_proportions_are_fractions_with_subgroups_from_the_study_table(result):
    r = row_of(result.analysis, "tang2022", "orr")
    assert (r.events, r.total, r.subgroup, r.design) == (4, 42, "bone", "prospective")
    assert r.estimate == pytest.approx(4 / 42, abs=1e-15)
    assert set(result.analysis.subgroup) == {"sts", "bone", "mixed"}


def test_coverage_counts_the_reviews_studies(result):
    orr = result.coverage.set_index("outcome").loc["orr"]
    assert orr.studies_in_review == 16
    assert orr.studies_listing_endpoint == 16
    assert orr.studies_with_data == 8
    assert orr.studies_listing_endpoint_without_data == "lu2025;zheng2024;pang2023;yan2023;li2021;li2023;gan2022;tian2020"


def test_tian2020_is_two_cohorts(tmp_path, raw_copy):
    # Add ORR rows for both Tian 2020 cohorts: they become two cohorts in two subgroups.
    path = raw_copy / "extraction.csv"
    url = "https://example.org/tian2020"
    with path.open("a", encoding="utf-8") as f:
        f.write(f"tian2020,bone,orr,1,13,,,,count,reported,,{url},Abstract,\n")
        f.write(f"tian2020,sts,orr,3,29,,,,count,reported,,{url},Abstract,\n")
    res = run_clean(path, raw_copy / "study_characteristics.csv")
    tian = res.analysis[res.analysis.study_id == "tian2020"].set_index("cohort_id")
    assert tian.loc["tian2020_bone", "subgroup"] == "bone"
    assert tian.loc["tian2020_sts", "subgroup"] == "sts"


def test_requested_outcome_without_data_is_refused(result):
    with pytest.raises(ValueError, match="os_rate_24m"):
        cleaning.analysed_outcomes(result.analysis, ["orr", "os_rate_24m"])
    assert cleaning.analysed_outcomes(result.analysis, ["dcr"]) == ["dcr"]
    assert cleaning.analysed_outcomes(result.analysis)[:3] == ["orr", "dcr", "cr"]


# ---- bad input: one message naming file, row, column, value and what was expected ----

def expect_error(match, extraction=RAW / "extraction.csv", studies=RAW / "study_characteristics.csv"):
    with pytest.raises(DataError) as info:
        run_clean(extraction, studies)
    assert match in str(info.value), str(info.value)
    return info.value


def bad_extraction(raw_copy, row, column, value):
    return edit_csv(raw_copy / "extraction.csv", raw_copy / "bad.csv", row, column, value)


def test_missing_file(tmp_path):
    err = expect_error("expected an existing CSV file (file not found)", extraction=tmp_path / "nope.csv")
    assert err.path == tmp_path / "nope.csv"


def test_missing_column(raw_copy):
    text = (raw_copy / "extraction.csv").read_text().replace("study_id,group,outcome,events,", "study_id,group,outcome,", 1)
    (raw_copy / "bad.csv").write_text(text)
    # The header lost a column, so 'events' is missing.
    expect_error(f"{raw_copy / 'bad.csv'}, row 1, column 'events': expected a header column named 'events'",
                 extraction=raw_copy / "bad.csv")


def test_misspelt_column(raw_copy):
    text = (raw_copy / "extraction.csv").read_text().replace(",events,", ",evnets,", 1)
    (raw_copy / "bad.csv").write_text(text)
    expect_error("row 1, column 'events': expected a header column named 'events' (found 'evnets': misspelt?)",
                 extraction=raw_copy / "bad.csv")


def test_non_numeric_value(raw_copy):
    expect_error("bad.csv, row 12, column 'events': value 'one': expected a whole number of patients >= 0, or blank",
                 extraction=bad_extraction(raw_copy, 12, "events", "one"))


def test_events_above_total(raw_copy):
    expect_error("bad.csv, row 15, column 'events': value '41': expected a count <= total (40)",
                 extraction=bad_extraction(raw_copy, 15, "events", "41"))


def test_negative_count(raw_copy):
    expect_error("bad.csv, row 13, column 'events': value '-1': expected a whole number of patients >= 0",
                 extraction=bad_extraction(raw_copy, 13, "events", "-1"))


def test_unknown_outcome(raw_copy):
    expect_error("bad.csv, row 15, column 'outcome': value 'objective_response': expected a known outcome id",
                 extraction=bad_extraction(raw_copy, 15, "outcome", "objective_response"))


def test_unknown_study(raw_copy):
    expect_error("bad.csv, row 3, column 'study_id': value 'chi2019': expected a study id of the study table",
                 extraction=bad_extraction(raw_copy, 3, "study_id", "chi2019"))


def test_duplicate_key(raw_copy):
    # Row 16 (li2024 dcr) relabelled as a second li2024 orr row.
    expect_error("bad.csv, row 16, column 'study_id/group/outcome': value 'li2024/all/orr': expected a unique "
                 "study_id + group + outcome (row 15 has the same)",
                 extraction=bad_extraction(raw_copy, 16, "outcome", "orr"))


def test_ci_not_containing_estimate(raw_copy):
    expect_error("bad.csv, row 17, column 'ci_low': value '7.0': expected a confidence interval that contains "
                 "the estimate 6.83", extraction=bad_extraction(raw_copy, 17, "ci_low", "7.0"))


def test_percentage_count_mismatch(raw_copy):
    expect_error("bad.csv, row 16, column 'estimate': value '68.5': expected 27/40 = 67.5% rounded to the printed "
                 "precision", extraction=bad_extraction(raw_copy, 16, "estimate", "68.5"))


def test_dcr_below_orr(raw_copy):
    path = bad_extraction(raw_copy, 16, "events", "0")   # li2024 DCR 0/40 < ORR 1/40
    path = edit_csv(path, path, 16, "estimate", "0")
    expect_error("bad.csv, row 16, column 'events': value '0': expected a disease control rate >= the objective "
                 "response rate of row 15 (2.5%)", extraction=path)


def test_cr_plus_pr_differs_from_orr(raw_copy):
    path = bad_extraction(raw_copy, 13, "events", "2")   # li2024 PR 2 + CR 0 but ORR 1
    path = edit_csv(path, path, 13, "estimate", "5")
    expect_error("bad.csv, row 15, column 'events': value '1': expected CR + PR = 0 + 2 = 2 (rows 12 and 13)",
                 extraction=path)


def test_wrong_encoding(raw_copy):
    data = (raw_copy / "extraction.csv").read_bytes().replace(b"Abstract (Results)", "Abstract (R\u00e9sults)".encode("latin-1"), 1)
    (raw_copy / "bad.csv").write_bytes(data)
    expect_error("bad.csv, row 2, column 'location': value b'\\xe9sul': expected UTF-8 text",
                 extraction=raw_copy / "bad.csv")


def test_utf16_bom_is_refused(raw_copy):
    (raw_copy / "bad.csv").write_bytes((raw_copy / "extraction.csv").read_text().encode("utf-16"))
    expect_error("bad.csv, row 1: expected UTF-8 text; the file starts with a UTF-16/32 byte-order mark",
                 extraction=raw_copy / "bad.csv")


def test_utf8_bom_is_accepted(raw_copy, result):
    (raw_copy / "bom.csv").write_bytes(b"\xef\xbb\xbf" + (raw_copy / "extraction.csv").read_bytes())
    res = run_clean(raw_copy / "bom.csv")
    assert res.analysis.drop(columns=[]).equals(result.analysis)


def test_empty_file(raw_copy):
    (raw_copy / "bad.csv").write_text("")
    expect_error("bad.csv: expected a CSV file with a header row and data rows (the file is empty)",
                 extraction=raw_copy / "bad.csv")


def test_header_only_file(raw_copy):
    (raw_copy / "bad.csv").write_text((raw_copy / "extraction.csv").read_text().splitlines()[0] + "\n")
    expect_error("bad.csv, row 2: expected at least one data row under the header (found none)",
                 extraction=raw_copy / "bad.csv")


def test_bad_study_table_value(raw_copy):
    path = edit_csv(raw_copy / "study_characteristics.csv", raw_copy / "bad_studies.csv", 3, "design", "cohort")
    expect_error("bad_studies.csv, row 3, column 'design': value 'cohort': expected one of: prospective, "
                 "retrospective", studies=path)
