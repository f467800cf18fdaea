"""singlearm.formatting: one way to print p-values, intervals, percentages and names, for tables and figures."""

import math

import numpy as np

from singlearm import formatting


def test_format_estimate_percent_and_months():
    assert formatting.format_estimate(0.10848, 0.07919, 0.14128, "proportion") == "10.8 (7.9\u201314.1)"
    assert formatting.format_estimate(0.683, 0.603, 0.745, "survival_rate") == "68.3 (60.3\u201374.5)"
    assert formatting.format_estimate(7.38831, 5.27637, 9.50025, "median") == "7.39 (5.28\u20139.50)"
    assert formatting.format_estimate(0.5, np.nan, np.nan, "proportion") == "50.0"
    assert math.isnan(formatting.format_estimate(np.nan, 0.1, 0.2, "proportion"))
    # a negative bound (median prediction interval) must not sit next to an en dash
    assert formatting.format_interval(-1.2076, 17.416, "median") == "-1.21 to 17.42"
    assert formatting.format_interval(-0.00001, 0.2, "proportion") == "0.0 to 20.0"


def test_format_p():
    assert formatting.format_p(0.0004) == "<0.001"
    assert formatting.format_p(0.49954) == "0.500"
    assert formatting.format_p("<0.01") == "<0.01"
    assert math.isnan(formatting.format_p(np.nan))


def test_p_in_running_text_rounds_as_the_tables_do():
    assert formatting.p_text(0.0004) == "p < 0.001"
    assert formatting.p_text(0.49954) == "p = 0.500"
    assert formatting.p_text(0.0015) == "p = 0.002"
    assert formatting.p_text(1.0) == "p = 1.000"
    assert formatting.p_text(np.nan) == "p = NA" and formatting.p_text(None) == "p = NA"


def test_figure_numbers_never_print_a_negative_zero():
    assert formatting.number(-0.04) == "0.0" and formatting.number(-0.06) == "-0.1"
    assert formatting.number(np.inf) == "NA" and formatting.number("x") == "NA"
    assert formatting.bracket_interval(10.848, 7.919, np.nan) == "10.8 [7.9, NA]"
    assert formatting.percent(45.25) == "45.2%" and formatting.percent(np.nan) == "NA"
    assert formatting.count(1234.0) == "1,234" and formatting.count(None) == "NA"


def test_outcome_and_adverse_event_names():
    assert formatting.outcome_label("orr") == "Objective response rate"
    assert formatting.outcome_label("pfs_rate_6m") == "6-month PFS rate"
    assert formatting.outcome_label("pfr_12w") == "Progression-free rate at 12 weeks"
    assert formatting.outcome_label("ae_g34:hand_foot_syndrome") == "Hand foot syndrome (grade \u2265 3)"
    assert formatting.outcome_label("ae_all:hypertension") == "Hypertension (any grade)"
    assert formatting.ae_name("hand_foot_syndrome") == "Hand foot syndrome"
    assert formatting.ae_name("any") == "Any adverse event"
    assert formatting.endpoint_name("median_os") == "median overall survival"
    assert formatting.endpoint_name("pfs_rate_3m") == "3-month PFS rate"
    assert formatting.endpoint_name("dcr") == "DCR"


def test_subgroup_labels_default_to_the_values_in_sheet_order():
    assert formatting.subgroup_labels(["sts", "bone", "sts", "mixed"]) == {
        "overall": "Overall", "sts": "sts", "bone": "bone", "mixed": "mixed"}
    assert list(formatting.subgroup_labels(["sts", "bone", "sts", "mixed"])) == ["overall", "sts", "bone", "mixed"]


def test_subgroup_labels_from_config_set_names_and_order():
    labels = formatting.subgroup_labels(["sts", "bone", "mixed"], {"bone": "Bone sarcoma", "sts": "Soft-tissue"})
    assert list(labels.items()) == [("overall", "Overall"), ("bone", "Bone sarcoma"), ("sts", "Soft-tissue"),
                                    ("mixed", "mixed")]
    assert formatting.subgroup_labels(["a"], {"overall": "All cohorts", "a": "A"})["overall"] == "All cohorts"
