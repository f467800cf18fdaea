"""Bad input that used to slip through (issue 14): each case stops with one exact message.

Sheets are scratch copies of data/raw/ (the raw_copy fixture); each test breaks one thing.
"""

import csv
import io

import pytest

from singlearm import checks, cleaning, sheets
from singlearm.errors import DataError

from conftest import SCHEMAS, edit_csv


def read(path, name):
    return sheets.read_sheet(path, sheets.load_schema(SCHEMAS / f"{name}.schema.yaml"))


def message(raw, extraction="extraction.csv", studies="study_characteristics.csv"):
    with pytest.raises(DataError) as info:
        cleaning.clean(read(raw / extraction, "extraction"), read(raw / studies, "studies"), "histology",
                       str(raw / extraction), str(raw / studies))
    return str(info.value)


def rows_of(path):
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def write_rows(path, rows):
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")


# 1. A copied column left blank used to win over the real one (ORR 10.85% -> 10.09%, exit 0).
def test_duplicate_column_names_are_refused(raw_copy):
    rows = rows_of(raw_copy / "extraction.csv")
    write_rows(raw_copy / "bad.csv", [rows[0] + ["events"]] + [r + [""] for r in rows[1:]])
    assert message(raw_copy, "bad.csv") == (
        f"{raw_copy / 'bad.csv'}, row 1, column 'events': expected each column name once; 'events' heads "
        "columns 4 (D) and 15 (O): delete the copy")


# 2. 'STS' beside 'sts' used to make a third subgroup (subgroup test p 0.78 -> 0.077).
def test_case_variant_of_a_subgroup_label_is_refused(raw_copy):
    edit_csv(raw_copy / "study_characteristics.csv", raw_copy / "bad.csv", 4, "histology", "STS")
    assert message(raw_copy, studies="bad.csv") == (
        f"{raw_copy / 'bad.csv'}, row 4, column 'histology': value 'STS': expected one spelling per label: "
        "'STS' and 'sts' (row 2) differ only in case or spaces, so they would count as two labels")


def test_case_variant_of_a_study_group_in_the_extraction_is_refused(raw_copy):
    # 'All' would otherwise be a within-study subset label, and the row silently left out.
    edit_csv(raw_copy / "extraction.csv", raw_copy / "bad.csv", 4, "group", "All")
    assert message(raw_copy, "bad.csv") == (
        f"{raw_copy / 'bad.csv'}, row 4, column 'group': value 'All': expected one spelling per label: "
        "'All' and 'all' (row 2 of the study table) differ only in case or spaces, so they would count as "
        "two labels")


# 3. 'inf' passed validation and crashed pooling; 'NaN' was read as blank.
@pytest.mark.parametrize("value", ["inf", "Infinity", "-inf", "1e400"])
def test_infinity_is_not_a_number(raw_copy, value):
    edit_csv(raw_copy / "extraction.csv", raw_copy / "bad.csv", 4, "ci_high", value)
    assert message(raw_copy, "bad.csv") == (
        f"{raw_copy / 'bad.csv'}, row 4, column 'ci_high': value '{value}': expected a number >= 0 (upper 95% "
        "confidence limit, same unit as the estimate), or blank; NaN and infinity are not numbers here (leave "
        "the cell blank for 'not reached' or 'not reported')")


@pytest.mark.parametrize("column", ["estimate", "events"])
def test_nan_is_not_blank(raw_copy, column):
    edit_csv(raw_copy / "extraction.csv", raw_copy / "bad.csv", 6, column, "NaN")
    expected = {"estimate": "a number >= 0 (a percentage 0-100, months, years or a count, as 'unit' says), or blank",
                "events": "a whole number of patients >= 0, or blank"}[column]
    assert message(raw_copy, "bad.csv") == (
        f"{raw_copy / 'bad.csv'}, row 6, column '{column}': value 'NaN': expected {expected}; NaN and infinity "
        "are not numbers here (leave the cell blank for 'not reached' or 'not reported')")


# 4. 0.086 typed for 8.6% used to exclude the row silently (reason only in cleaning_log.csv).
def test_fraction_typed_in_a_percent_column_is_refused(raw_copy):
    edit_csv(raw_copy / "extraction.csv", raw_copy / "bad.csv", 102, "estimate", "0.086")
    assert message(raw_copy, "bad.csv") == (
        f"{raw_copy / 'bad.csv'}, row 102, column 'estimate': value '0.086': expected a percentage (0-100) that "
        "some count out of 35 rounds to; the smallest non-zero one is 2.86%, so 0.086 looks like a fraction: "
        "write 8.6 for 8.6%")


def test_a_small_percentage_that_fits_a_count_is_kept(raw_copy):
    # 0.4% of 250 is one patient: a real percentage below 1, not a fraction.
    edit_csv(raw_copy / "extraction.csv", raw_copy / "ok.csv", 102, "total", "250")
    edit_csv(raw_copy / "ok.csv", raw_copy / "ok.csv", 102, "estimate", "0.4")
    res = cleaning.clean(read(raw_copy / "ok.csv", "extraction"), read(raw_copy / "study_characteristics.csv",
                         "studies"), "histology")
    row = res.analysis[(res.analysis.study_id == "zhang2022") & (res.analysis.outcome == "orr")].iloc[0]
    assert (row.events, row.total) == (1, 250)


# 8. A ';'- or tab-separated export used to be reported as a missing 'study_id' column.
@pytest.mark.parametrize("delimiter, name", [(";", "';' (European spreadsheet export)"),
                                             ("\t", "tabs (tab-separated text)")])
def test_other_delimiters_are_named(raw_copy, delimiter, name):
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerows(rows_of(raw_copy / "extraction.csv"))
    (raw_copy / "bad.csv").write_text(out.getvalue(), encoding="utf-8")
    assert message(raw_copy, "bad.csv") == (
        f"{raw_copy / 'bad.csv'}, row 1: expected comma-separated cells; this file is separated by {name}: save "
        "it as CSV with commas")


# 11. Odd paths and sizes.
def test_a_directory_given_as_a_sheet(raw_copy):
    (raw_copy / "folder.csv").mkdir()
    assert message(raw_copy, "folder.csv") == f"{raw_copy / 'folder.csv'}: expected a CSV file, not a directory"


def test_an_over_long_cell_names_file_row_and_column(raw_copy):
    edit_csv(raw_copy / "extraction.csv", raw_copy / "bad.csv", 5, "note", "x" * 131_073)
    assert message(raw_copy, "bad.csv") == (
        f"{raw_copy / 'bad.csv'}, row 5, column 'note': value 'xxxxxxxxxxxxxxxxxxxx...': expected a cell of at "
        "most 131,072 characters (this one has 131,073)")


def test_a_cell_of_the_limit_is_read(raw_copy):
    edit_csv(raw_copy / "extraction.csv", raw_copy / "ok.csv", 5, "note", "x" * 131_072)
    assert read(raw_copy / "ok.csv", "extraction").loc[3, "note"] == "x" * 131_072


def test_an_outcome_id_too_long_for_a_file_name(raw_copy):
    long_id = "ae_all:" + "a" * 94   # 101 characters
    edit_csv(raw_copy / "extraction.csv", raw_copy / "bad.csv", 5, "outcome", long_id)
    assert message(raw_copy, "bad.csv").startswith(
        f"{raw_copy / 'bad.csv'}, row 5, column 'outcome': value '{long_id}': expected a known outcome id")
    assert message(raw_copy, "bad.csv").endswith("(lower case, underscores; at most 100 characters)")


def test_exclusions_that_change_what_is_pooled_are_listed(raw_copy):
    # zhang2022's ORR (row 102) loses its percentage; deliberate exclusions (exclude_reason, subsets,
    # descriptive fields) are not listed, and neither is anything kept.
    edit_csv(raw_copy / "extraction.csv", raw_copy / "ok.csv", 102, "estimate", "")
    log = cleaning.clean(read(raw_copy / "ok.csv", "extraction"), read(raw_copy / "study_characteristics.csv",
                         "studies")).log
    assert checks.pooling_exclusions(log) == [
        "median_os | xu2023 | no numeric median (e.g. not reached) (extraction row 32)",
        "orr | zhang2022 | neither a count nor a percentage to rebuild it from (extraction row 102)"]
    assert (log["reason"].str.startswith("exclude_reason:")).sum() > 0
