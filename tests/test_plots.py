"""Tests of singlearm.plots: every figure from small synthetic tables and from the test review's result tables.

The figures are checked through their artists (texts, collections and patches, found by gid), so
the tests say what a reader must see: one label per study, a zero-event study at 0, the
prediction interval, red for a MINORS score of 0, hollow markers for imputed studies only.
save_figure is checked for both files, the 300 dpi PNG and byte-identical output across processes.
"""

import subprocess
import sys
import textwrap
from itertools import combinations

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex, to_rgba

from conftest import RAW, ROOT
from singlearm import plots

RED, AMBER, GREEN = plots.STYLE.vermillion, plots.STYLE.orange, plots.STYLE.green


# ---------------------------------------------------------------------------------------------
# Helpers and synthetic tables
# ---------------------------------------------------------------------------------------------

def texts(fig):
    """Every string on the figure: figure and axes texts, legends, tick and axis labels."""
    return [t.get_text() for t in fig.findobj(matplotlib.text.Text)]


def by_gid(fig, gid):
    """Artists of the figure with this gid (any kind)."""
    return [a for a in fig.findobj(lambda a: a.get_gid() == gid)]


def text_objs(fig, s):
    return [t for t in fig.findobj(matplotlib.text.Text) if t.get_text() == s]


def real_table(tables, name):
    """A result table of the test review's session build (conftest.review_tables)."""
    return pd.read_csv(tables / name)


def study_rows():
    """Four ORR studies in two subgroups (one zero-event study) and a median outcome."""
    cols = ["outcome", "subgroup", "cohort_id", "study_id", "events", "total", "estimate", "ci_low", "ci_high",
            "ci_method", "has_ci", "weight_overall", "weight_subgroup"]
    rows = [
        ["orr", "sts", "a2020", "a2020", 10, 50, 0.20, 0.10, 0.34, "clopper-pearson", True, 40.0, 50.0],
        ["orr", "sts", "b2021", "b2021", 0, 30, 0.00, 0.00, 0.116, "clopper-pearson", True, 20.0, 50.0],
        ["orr", "bone", "c2022", "c2022", 6, 40, 0.15, 0.057, 0.30, "clopper-pearson", True, 40.0, 100.0],
        ["median_pfs", "sts", "a2020", "a2020", np.nan, 50, 6.0, 4.0, 8.0, "reported", True, 60.0, 60.0],
        ["median_pfs", "sts", "b2021", "b2021", np.nan, np.nan, 5.5, np.nan, np.nan, np.nan, False, np.nan, np.nan],
        ["median_pfs", "bone", "c2022", "c2022", np.nan, np.nan, 4.0, 3.0, 5.5, "reported", True, 40.0, 100.0],
    ]
    return pd.DataFrame(rows, columns=cols)


def estimate_rows():
    cols = ["outcome", "subgroup", "method", "k", "n", "estimate", "ci_low", "ci_high", "pi_low", "pi_high",
            "tau2", "i2", "q", "q_df", "q_p"]
    nan = np.nan
    rows = [
        ["orr", "overall", "PFT-DL", 3, 120, 0.12, 0.05, 0.21, 0.01, 0.40, 0.01, 35.0, 3.1, 2, 0.21],
        ["orr", "sts", "PFT-DL", 2, 80, 0.09, 0.0, 0.30, nan, nan, 0.02, 60.0, 2.5, 1, 0.11],
        ["orr", "bone", "PFT-DL", 1, 40, 0.15, 0.06, 0.27, nan, nan, nan, nan, nan, nan, nan],
        ["orr", "overall", "PLO-DL", 3, 120, 0.5, 0.4, 0.6, nan, nan, 0.0, 0.0, 1.0, 2, 0.6],
        ["median_pfs", "overall", "MEDIAN-DL", 2, nan, 5.2, 3.1, 7.3, -1.0, 11.0, 1.0, 50.0, 2.0, 1, 0.15],
        ["median_pfs", "sts", "MEDIAN-DL", 1, nan, 6.0, 4.0, 8.0, nan, nan, nan, nan, nan, nan, nan],
        ["median_pfs", "bone", "MEDIAN-DL", 1, nan, 4.0, 3.0, 5.5, nan, nan, nan, nan, nan, nan, nan],
    ]
    return pd.DataFrame(rows, columns=cols)


def subgroup_test_rows():
    return pd.DataFrame({"outcome": ["orr"], "method": ["PFT-DL"], "subgroups": [2], "q_between": [0.0759],
                         "df": [1], "p_value": [0.7830], "levels": ["sts:k=2;bone:k=1"]})


def orr_forest(**kw):
    args = dict(outcome="orr", method="PFT-DL", label="Objective response rate", proportion=True)
    args.update(kw)
    return plots.forest_plot(study_rows(), estimate_rows(), subgroup_test_rows(), **args)


# ---------------------------------------------------------------------------------------------
# Style
# ---------------------------------------------------------------------------------------------

def test_figures_leave_global_rcparams_alone():
    before = dict(matplotlib.rcParams)
    orr_forest()
    plots.quality_grid(pd.DataFrame({"study_id": ["a"], "A": [0]}), None)
    after = dict(matplotlib.rcParams)
    assert {k for k in before if before[k] != after[k]} == set()


def test_style_is_the_house_style():
    s = plots.STYLE
    assert (s.single_width, s.double_width, s.body_pt, s.title_pt, s.stamp_pt) == (3.5, 7.2, 7.0, 8.0, 5.0)
    assert s.palette[0] == "#000000" and s.vermillion == "#D55E00" and len(set(s.palette)) == 8
    fig = orr_forest()
    title = text_objs(fig, "Objective response rate")[0]
    assert title.get_fontsize() == 8.0 and title.get_fontname() == "DejaVu Sans"
    assert text_objs(fig, "a2020")[0].get_fontsize() == 7.0


# ---------------------------------------------------------------------------------------------
# 1. Forest plot
# ---------------------------------------------------------------------------------------------

def test_forest_one_label_per_study_and_double_width():
    fig = orr_forest()
    drawn = texts(fig)
    for cohort in ("a2020", "b2021", "c2022"):
        assert drawn.count(cohort) == 1
    assert fig.get_size_inches()[0] == pytest.approx(plots.STYLE.double_width)
    (markers,) = by_gid(fig, "study-markers")
    assert len(markers.get_offsets()) == 3


def test_forest_zero_event_study_drawn_at_zero():
    fig = orr_forest()
    (markers,) = by_gid(fig, "study-markers")
    xy = np.asarray(markers.get_offsets())
    row = text_objs(fig, "b2021")[0].get_position()[1]       # the study's row (data y)
    assert [x for x, y in xy if y == row] == [0.0]
    assert fig.axes[0].get_xlim()[0] == 0.0
    assert "0/30" in texts(fig)


def test_forest_square_area_follows_weight():
    fig = orr_forest()
    (markers,) = by_gid(fig, "study-markers")
    sizes = dict(zip(np.asarray(markers.get_offsets())[:, 1], markers.get_sizes()))
    rows = {c: text_objs(fig, c)[0].get_position()[1] for c in ("a2020", "b2021", "c2022")}
    assert sizes[rows["a2020"]] == pytest.approx(sizes[rows["c2022"]])     # both 40 %
    assert sizes[rows["b2021"]] < sizes[rows["a2020"]]                   # 20 %


def test_forest_prediction_interval_and_diamonds():
    fig = orr_forest()
    (pi,) = by_gid(fig, "prediction-interval")
    assert list(pi.get_xdata()) == pytest.approx([1.0, 40.0])          # percent
    assert "[1.0, 40.0]" in texts(fig)
    (overall,) = by_gid(fig, "overall-diamond")
    xs = overall.get_xy()[:, 0]
    assert (xs.min(), xs.max()) == pytest.approx((5.0, 21.0))
    # bone has one cohort: no subtotal diamond, the plot says "1 study" instead
    assert by_gid(fig, "subtotal-sts") and not by_gid(fig, "subtotal-bone")
    assert "Subtotal: 1 study, not pooled" in texts(fig)


def test_forest_headings_in_estimate_order_and_texts():
    est = estimate_rows()
    # bone before sts in the estimates: bone must be drawn first.
    est = pd.concat([est.iloc[[0, 2, 1]], est.iloc[3:]])
    fig = plots.forest_plot(study_rows(), est, subgroup_test_rows(), outcome="orr", method="PFT-DL", label="ORR")
    # without labels a level is headed by its own value: the package knows no review's names
    assert text_objs(fig, "bone")[0].get_position()[1] < text_objs(fig, "sts")[0].get_position()[1]  # row 0 on top
    assert not text_objs(fig, "Soft-tissue sarcoma")
    drawn = "\n".join(texts(fig))
    assert "Subtotal (k = 2): I\u00b2 = 60.0%, p = 0.110" in drawn
    assert "Subtotal: 1 study, not pooled" in drawn             # k = 1: no I², no diamond
    assert "Overall (k = 3): I\u00b2 = 35.0%, p = 0.210" in drawn
    assert "Test for subgroup differences: Q = 0.08, df = 1, p = 0.783" in drawn
    assert "12.0 [5.0, 21.0]" in drawn


def test_forest_headings_follow_the_subgroup_labels_and_their_order():
    est = estimate_rows()
    est = pd.concat([est.iloc[[0, 2, 1]], est.iloc[3:]])    # bone first in the estimates ...
    labels = {"overall": "Overall", "sts": "Soft-tissue sarcoma", "bone": "Bone sarcoma"}   # ... sts first here
    fig = plots.forest_plot(study_rows(), est, subgroup_test_rows(), outcome="orr", method="PFT-DL", label="ORR",
                            subgroup_labels=labels)
    y_bone = text_objs(fig, "Bone sarcoma")[0].get_position()[1]
    y_sts = text_objs(fig, "Soft-tissue sarcoma")[0].get_position()[1]
    assert y_sts < y_bone                                    # row 0 is the top row
    assert not text_objs(fig, "sts") and not text_objs(fig, "bone")


def test_forest_k1_overall_prints_one_study_and_draws_no_diamond_or_pi():
    st = study_rows()
    st = st[(st.outcome == "orr") & (st.cohort_id == "c2022")]
    est = estimate_rows()
    est = est[(est.outcome == "orr") & (est.subgroup == "bone")].assign(subgroup="overall")
    fig = plots.forest_plot(st, est, None, outcome="orr", method="PFT-DL", label="ORR")
    assert not by_gid(fig, "prediction-interval")
    assert not by_gid(fig, "overall-diamond")
    drawn = texts(fig)
    assert "Overall: 1 study, not pooled" in drawn and "15.0 [5.7, 30.0]" in drawn
    assert not any("I\u00b2" in t for t in drawn)
    assert not by_gid(fig, "subtotal-bone")


def test_forest_medians_mark_studies_without_ci():
    fig = plots.forest_plot(study_rows(), estimate_rows(), None, outcome="median_pfs", method="MEDIAN-DL",
                            label="Median PFS", proportion=False)
    (open_markers,) = by_gid(fig, "unpooled-markers")
    assert np.asarray(open_markers.get_offsets())[:, 0].tolist() == [5.5]
    assert texts(fig).count("not pooled") == 1
    assert "5.5 (no CI)" in texts(fig)
    assert fig.axes[0].get_xlabel() == "Median (months)"
    # The PI's lower end (-1 month) is clipped to the axis, the printed number is not.
    (pi,) = by_gid(fig, "prediction-interval")
    assert pi.get_xdata()[0] == 0.0 and "[-1.0, 11.0]" in texts(fig)


def test_forest_outcome_without_pooled_rows_draws_studies_and_says_so():
    est = estimate_rows()
    fig = plots.forest_plot(study_rows(), est[est.outcome != "orr"], None, outcome="orr", method="MEDIAN-DL",
                            label="ORR")
    assert not by_gid(fig, "overall-diamond") and not by_gid(fig, "prediction-interval")
    assert len(by_gid(fig, "study-markers")[0].get_offsets()) == 3
    assert any("No pooled estimate of MEDIAN-DL" in t for t in texts(fig))


def test_forest_long_label_is_wrapped_within_width():
    label = "Grade 3 or higher treatment-related adverse events leading to dose interruption or " \
            "permanent discontinuation of anlotinib in previously treated advanced sarcoma"
    fig = orr_forest(label=label)
    (title,) = [t for t in fig.texts if t.get_text().replace("\n", " ") == label]
    assert "\n" in title.get_text()
    renderer = FigureCanvasAgg(fig).get_renderer()
    assert title.get_window_extent(renderer).x1 <= fig.bbox.width


def test_forest_height_grows_with_rows():
    small = orr_forest()
    st = study_rows()
    more = pd.concat([st, st[st.outcome == "orr"].assign(cohort_id=lambda d: d.cohort_id + "x")])
    big = plots.forest_plot(more, estimate_rows(), None, outcome="orr", method="PFT-DL", label="ORR")
    assert big.get_size_inches()[1] == pytest.approx(small.get_size_inches()[1] + 3 * plots.STYLE.row_height,
                                                     abs=0.2)


def test_forest_errors_name_the_problem():
    with pytest.raises(ValueError, match="no study rows of outcome 'dcr'"):
        plots.forest_plot(study_rows(), estimate_rows(), None, outcome="dcr", method="PFT-DL", label="DCR")
    with pytest.raises(ValueError, match="method 'PFT-ML' not in the estimates"):
        plots.forest_plot(study_rows(), estimate_rows(), None, outcome="orr", method="PFT-ML", label="ORR")
    with pytest.raises(ValueError, match="lacks column.*weight_overall"):
        plots.forest_plot(study_rows().drop(columns="weight_overall"), estimate_rows(), None, outcome="orr",
                          method="PFT-DL", label="ORR")


def test_forest_real_tables_every_outcome(review_tables):
    studies = real_table(review_tables, "study_estimates.csv")
    estimates = real_table(review_tables, "pooled_estimates.csv")
    tests = real_table(review_tables, "subgroup_tests.csv")
    for outcome in pd.unique(studies["outcome"]):
        median = outcome.startswith("median_")
        method = "MEDIAN-DL" if median else "PFT-DL"
        fig = plots.forest_plot(studies, estimates, tests, outcome=outcome, method=method, label=outcome,
                                proportion=not median)
        drawn = texts(fig)
        cohorts = studies.loc[studies.outcome == outcome, "cohort_id"]
        for c in cohorts:
            assert drawn.count(c) == (cohorts == c).sum(), (outcome, c)
        markers = by_gid(fig, "study-markers") + by_gid(fig, "unpooled-markers")
        assert sum(len(m.get_offsets()) for m in markers) == len(cohorts), outcome
    # CR has zero-event studies: drawn at 0.
    fig = plots.forest_plot(studies, estimates, tests, outcome="cr", method="PFT-DL", label="CR")
    (markers,) = by_gid(fig, "study-markers")
    assert (np.asarray(markers.get_offsets())[:, 0] == 0).sum() == (studies.query("outcome == 'cr'").events == 0).sum()


# ---------------------------------------------------------------------------------------------
# 2. PRISMA flow diagram
# ---------------------------------------------------------------------------------------------

def test_prisma_real_counts_every_number_shown():
    counts = pd.read_csv(RAW / "prisma_counts.csv")
    fig = plots.prisma_flow(counts)
    drawn = "\n".join(texts(fig))
    for _, r in counts.iterrows():
        assert f"(n = {int(r['count']):,})" in drawn, r["label"]
    for phase in ("Identification", "Screening", "Included"):
        assert phase in texts(fig)
    # One box per stage present; identification total = sum of databases.
    stages = set(counts["stage"])
    assert {a.get_gid() for a in fig.findobj(matplotlib.patches.FancyBboxPatch) if a.get_gid()} == \
        {f"prisma-{s}" for s in stages}
    total = counts.loc[counts.stage == "identified", "count"].sum()
    assert f"Records identified (n = {total:,}):" in drawn


def test_prisma_skips_absent_stages_and_lists_reasons():
    counts = pd.DataFrame({"stage": ["identified", "excluded_full_text", "excluded_full_text", "included"],
                           "label": ["MEDLINE", "Wrong population", "No outcome", "Studies included"],
                           "count": [40, 3, 2, 5]})
    fig = plots.prisma_flow(counts)
    gids = {a.get_gid() for a in fig.findobj(matplotlib.patches.FancyBboxPatch) if a.get_gid()}
    assert gids == {"prisma-identified", "prisma-excluded_full_text", "prisma-included"}
    drawn = "\n".join(texts(fig))
    assert "Reports excluded (n = 5):" in drawn and "Wrong population (n = 3)" in drawn
    arrows = fig.findobj(matplotlib.patches.FancyArrowPatch)
    assert len(arrows) == 1                                      # identified -> included only


def test_prisma_rejects_unknown_stage_and_empty():
    bad = pd.DataFrame({"stage": ["identified", "screend"], "label": ["PubMed", "x"], "count": [1, 1]})
    with pytest.raises(ValueError, match="row 3 .*'screend'"):
        plots.prisma_flow(bad)
    with pytest.raises(ValueError, match="no rows"):
        plots.prisma_flow(bad.iloc[:0])


# ---------------------------------------------------------------------------------------------
# 3. Quality grid
# ---------------------------------------------------------------------------------------------

def minors_table():
    return pd.DataFrame({"study_id": ["s1", "s2"], "A": [2, 0], "B": [1, 2], "C": [0, np.nan],
                         "total": [3, np.nan], "note": ["x", ""]})


def test_quality_minors_colours_scores_and_totals():
    fig = plots.quality_grid(minors_table(), None)
    (cells,) = by_gid(fig, "minors-cells")
    faces = [to_hex(c).upper() for c in cells.get_facecolors()]
    # Row-major: s1 = 2, 1, 0; s2 = 0, 2, (not assessed).
    assert faces[:5] == [GREEN, AMBER, RED, RED, GREEN]
    assert faces[5] == "#FFFFFF"
    scores = [t.get_text() for t in by_gid(fig, "minors-score")]
    assert scores == ["2", "1", "0", "0", "2"]
    assert "3/6" in texts(fig) and "2/6" in texts(fig)             # given total; computed when empty
    assert not by_gid(fig, "jbi-cells")


def test_quality_jbi_answers_and_both_panels():
    jbi = pd.DataFrame({"study_id": ["s1", "s3"], "Q1": ["Y", "N"], "Q2": ["U", np.nan], "Q3": ["NA", "yes"]})
    fig = plots.quality_grid(minors_table(), jbi)
    (cells,) = by_gid(fig, "jbi-cells")
    faces = [to_hex(c).upper() for c in cells.get_facecolors()]
    grey = plots.STYLE.light_grey.upper()
    assert faces == [GREEN, AMBER, grey, RED, grey, GREEN]
    assert by_gid(fig, "minors-cells")
    for name in ("Yes", "No", "Unclear", "Not applicable", "0  not reported"):
        assert name in texts(fig)


def test_quality_errors():
    with pytest.raises(ValueError, match="nothing to draw"):
        plots.quality_grid(None, None)
    bad = minors_table()
    bad.loc[1, "B"] = 3
    with pytest.raises(ValueError, match="study 's2', item 'B' has 3"):
        plots.quality_grid(bad, None)
    with pytest.raises(ValueError, match="item 'Q1' has 'maybe'"):
        plots.quality_grid(None, pd.DataFrame({"study_id": ["s"], "Q1": ["maybe"]}))


def test_quality_real_sheets():
    m, j = pd.read_csv(RAW / "quality_minors.csv"), pd.read_csv(RAW / "quality_jbi.csv")
    fig = plots.quality_grid(m, j)
    (cells,) = by_gid(fig, "minors-cells")
    items = [c for c in m.columns if c not in ("study_id", "total", "note")]
    scores = m[items].to_numpy().ravel()
    faces = np.array([to_hex(c).upper() for c in cells.get_facecolors()])
    assert (faces[scores == 0] == RED).all() and (scores == 0).any()
    assert len(by_gid(fig, "jbi-cells")[0].get_offsets()) == j.shape[0] * (j.shape[1] - 1)
    assert fig.get_size_inches()[0] == pytest.approx(plots.STYLE.single_width)


# ---------------------------------------------------------------------------------------------
# 4. Adverse events overview
# ---------------------------------------------------------------------------------------------

def ae_rows():
    return pd.DataFrame({
        "outcome": ["ae_all:hand_foot_syndrome", "ae_g34:hand_foot_syndrome", "ae_g34:any", "orr",
                    "ae_g34:any"],
        "subgroup": ["overall", "overall", "overall", "overall", "sts"],
        "method": ["PFT-DL"] * 5,
        "k": [3, 2, 5, 8, 4], "estimate": [0.4, 0.06, 0.3, 0.1, 0.2],
        "ci_low": [0.3, 0.02, 0.2, 0.08, 0.1], "ci_high": [0.5, 0.12, 0.4, 0.14, 0.3],
    })


def test_ae_overview_two_grades_side_by_side():
    fig = plots.ae_overview(ae_rows())
    (all_grade,) = by_gid(fig, "ae-all")
    (g34,) = by_gid(fig, "ae-g34")
    assert np.asarray(all_grade.get_offsets())[:, 0].tolist() == pytest.approx([40.0])
    assert sorted(np.asarray(g34.get_offsets())[:, 0].tolist()) == pytest.approx([6.0, 30.0])
    drawn = texts(fig)
    assert drawn.count("not reported") == 1                   # "any" has no any-grade row
    assert {"k = 3", "k = 2", "k = 5"} <= set(drawn)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["Any adverse event", "Hand foot syndrome"]
    assert "Grade \u2265 3" in drawn and "Any grade" in drawn


def test_ae_overview_errors():
    with pytest.raises(ValueError, match="no adverse-event rows"):
        plots.ae_overview(ae_rows()[lambda d: d.outcome == "orr"])
    two = pd.concat([ae_rows(), ae_rows().assign(method="GLMM-ML")])
    with pytest.raises(ValueError, match="several methods"):
        plots.ae_overview(two)


def test_ae_overview_real_table(review_tables):
    est = real_table(review_tables, "pooled_estimates.csv")
    est = est[est.method == "PFT-DL"]
    fig = plots.ae_overview(est)
    ae = est[(est.subgroup == "overall") & est.outcome.str.startswith("ae_")]
    n_all = ae.outcome.str.startswith("ae_all:").sum()
    n_g34 = ae.outcome.str.startswith("ae_g34:").sum()
    assert len(by_gid(fig, "ae-all")[0].get_offsets()) == n_all
    assert len(by_gid(fig, "ae-g34")[0].get_offsets()) == n_g34
    names = {o.split(":", 1)[1] for o in ae.outcome}
    assert texts(fig).count("not reported") == 2 * len(names) - n_all - n_g34


# ---------------------------------------------------------------------------------------------
# 5. Funnel plot
# ---------------------------------------------------------------------------------------------

def test_funnel_hollow_markers_exactly_for_filled_studies():
    yi, sei = [0.2, 0.35, 0.5, np.nan], [0.05, 0.1, 0.15, 0.1]
    fig = plots.funnel_plot(yi, sei, 0.3, filled_yi=[0.1, 0.05], filled_sei=[0.1, 0.15], label="ORR",
                            scale_label="Freeman-Tukey")
    (obs,) = by_gid(fig, "observed")
    (imp,) = by_gid(fig, "imputed")
    assert len(obs.get_offsets()) == 3 and len(imp.get_offsets()) == 2       # the NaN pair left out
    assert all(to_rgba(c) == to_rgba("black") for c in obs.get_facecolors())
    assert all(to_rgba(c) == to_rgba("white") for c in imp.get_facecolors())
    assert all(to_rgba(c) == to_rgba("black") for c in imp.get_edgecolors())
    ax = fig.axes[0]
    assert ax.get_ylim()[1] == 0.0 and ax.get_ylim()[0] > 0.15                 # inverted, 0 on top
    (region,) = by_gid(fig, "region-95")
    xy = region.get_xy()
    se_max = ax.get_ylim()[0]
    assert xy[:, 0].min() == pytest.approx(0.3 - 1.959964 * se_max)
    assert xy[:, 0].max() == pytest.approx(0.3 + 1.959964 * se_max)
    assert fig.get_size_inches()[0] == pytest.approx(plots.STYLE.single_width)


def test_funnel_without_filled_has_no_hollow_markers():
    fig = plots.funnel_plot([0.1, 0.2], [0.05, 0.08], 0.15, label="x", scale_label="logit")
    assert not by_gid(fig, "imputed")
    assert len(by_gid(fig, "observed")[0].get_offsets()) == 2


def test_funnel_prints_the_underpowered_note_and_grows_to_hold_it():
    from singlearm import bias

    plain = plots.funnel_plot([0.1, 0.2, 0.3], [0.05, 0.08, 0.1], 0.15, label="x", scale_label="logit")
    noted = plots.funnel_plot([0.1, 0.2, 0.3], [0.05, 0.08, 0.1], 0.15, label="x", scale_label="logit",
                              note=bias.underpowered_note(3))
    (text,) = by_gid(noted, "note")
    # after the sentence saying what the shading is (pseudo-confidence limits without bias.p0)
    assert "not significance contours. Fewer than 10 studies" in text.get_text().replace("\n", " ")
    (only,) = by_gid(plain, "note")
    assert "Fewer than 10" not in only.get_text()
    assert noted.get_size_inches()[1] > plain.get_size_inches()[1]


def test_funnel_errors():
    with pytest.raises(ValueError, match="no observed study"):
        plots.funnel_plot([np.nan], [0.1], 0.0, label="x", scale_label="y")
    with pytest.raises(ValueError, match="2 effects but 1 standard errors"):
        plots.funnel_plot([0.1, 0.2], [0.1], 0.0, label="x", scale_label="y")
    with pytest.raises(ValueError, match="pooled estimate b"):
        plots.funnel_plot([0.1], [0.1], np.nan, label="x", scale_label="y")
    with pytest.raises(ValueError, match="must be positive"):
        plots.funnel_plot([0.1], [0.0], 0.1, label="x", scale_label="y")


def test_funnel_real_study_table(review_tables):
    studies = real_table(review_tables, "study_estimates.csv")
    s = studies[studies.outcome == "orr"]
    x, n = s.events.to_numpy(), s.total.to_numpy()
    # metafor's PFT (Freeman-Tukey double arcsine) and its variance, written out here on purpose.
    yi = 0.5 * (np.arcsin(np.sqrt(x / (n + 1))) + np.arcsin(np.sqrt((x + 1) / (n + 1))))
    sei = np.sqrt(1 / (4 * n + 2))
    fig = plots.funnel_plot(yi, sei, float(np.average(yi, weights=1 / sei**2)), filled_yi=yi[:1] - 0.1,
                            filled_sei=sei[:1], label="ORR", scale_label="Freeman-Tukey")
    assert len(by_gid(fig, "observed")[0].get_offsets()) == len(s)
    assert len(by_gid(fig, "imputed")[0].get_offsets()) == 1


# ---------------------------------------------------------------------------------------------
# 6. Leave-one-out
# ---------------------------------------------------------------------------------------------

def loo_rows():
    return pd.DataFrame({"outcome": "orr", "subgroup": "overall", "method": "PFT-DL",
                         "omitted": ["a2020", "b2021", "c2022"], "k": 2,
                         "estimate": [0.10, 0.16, 0.11], "ci_low": [0.05, 0.10, 0.06],
                         "ci_high": [0.17, 0.23, 0.18], "tau2": 0.0, "i2": [0.0, 12.5, np.nan], "q": 1.0,
                         "flag": ["", "CI excludes full estimate", np.nan]})


def full_row():
    return pd.DataFrame({"estimate": [0.12], "ci_low": [0.08], "ci_high": [0.17], "k": [3]})


def test_leave_one_out_rows_flags_band_and_line():
    fig = plots.leave_one_out_plot(loo_rows(), full_row(), label="ORR")
    drawn = texts(fig)
    for c in ("a2020", "b2021", "c2022"):
        assert drawn.count(f"Omitting {c}") == 1
    assert "All studies (k = 3)" in drawn and "12.0 [8.0, 17.0]" in drawn
    (markers,) = by_gid(fig, "loo-markers")
    colours = [to_hex(c).upper() for c in markers.get_facecolors()]
    assert colours == ["#000000", RED, "#000000"]               # only the flagged row stands out
    assert text_objs(fig, "Omitting b2021")[0].get_color() == RED
    assert any("Omitting b2021: CI excludes full estimate" in t for t in drawn)
    (band,) = by_gid(fig, "full-ci-band")
    assert (band.get_x(), band.get_x() + band.get_width()) == pytest.approx((8.0, 17.0))
    (line,) = by_gid(fig, "full-estimate")
    assert line.get_xdata()[0] == pytest.approx(12.0)
    assert "NA" in drawn                                         # the NaN I² of the last row


def test_leave_one_out_accepts_series_and_medians():
    full = full_row().iloc[0] * pd.Series({"estimate": 50, "ci_low": 50, "ci_high": 50, "k": 1})
    loo = loo_rows().assign(estimate=lambda d: d.estimate * 50, ci_low=lambda d: d.ci_low * 50,
                            ci_high=lambda d: d.ci_high * 50)
    fig = plots.leave_one_out_plot(loo, full, label="Median PFS", proportion=False)
    assert fig.axes[0].get_xlabel() == "Median (months)"
    assert "6.0 [4.0, 8.5]" in texts(fig)


def test_leave_one_out_errors():
    with pytest.raises(ValueError, match="no rows"):
        plots.leave_one_out_plot(loo_rows().iloc[:0], full_row(), label="x")
    with pytest.raises(ValueError, match="one row of estimates, got 2 rows"):
        plots.leave_one_out_plot(loo_rows(), pd.concat([full_row(), full_row()]), label="x")


def test_leave_one_out_real_table(review_tables):
    loo = real_table(review_tables, "leave_one_out.csv")
    first = loo[(loo.outcome == loo.outcome.iloc[0]) & (loo.subgroup == loo.subgroup.iloc[0])
                & (loo.method == loo.method.iloc[0])]
    est = real_table(review_tables, "pooled_estimates.csv")
    full = est[(est.outcome == first.outcome.iloc[0]) & (est.subgroup == first.subgroup.iloc[0])
               & (est.method == first.method.iloc[0])]
    fig = plots.leave_one_out_plot(first, full, label=first.outcome.iloc[0],
                                   proportion=not first.outcome.iloc[0].startswith("median_"))
    assert len(by_gid(fig, "loo-markers")[0].get_offsets()) == first.estimate.notna().sum()


# ---------------------------------------------------------------------------------------------
# 7. Baujat plot
# ---------------------------------------------------------------------------------------------

# The ORR studies of the review (metafor's baujat on PFT-DL): a crowd near the origin.
BAUJAT = pd.DataFrame({
    "cohort_id": ["chi2018", "li2024", "liu2018", "xu2023", "tang2022", "liu2021a", "liu2021b", "zhang2022"],
    "baujat_x": [0.1737, 4.2024, 0.3267, 1.0847, 0.0813, 0.0175, 0.2948, 0.1688],
    "baujat_y": [0.1070, 0.4336, 0.0230, 0.1400, 0.0047, 0.0002, 0.0165, 0.0114],
})


def test_baujat_every_point_labelled_without_overlap():
    fig = plots.baujat_plot(BAUJAT, label="ORR")
    (points,) = by_gid(fig, "baujat-points")
    assert np.asarray(points.get_offsets()).tolist() == pytest.approx(BAUJAT[["baujat_x", "baujat_y"]].values)
    labels = by_gid(fig, "baujat-label")
    assert sorted(t.get_text() for t in labels) == sorted(BAUJAT.cohort_id)
    renderer = FigureCanvasAgg(fig).get_renderer()
    boxes = [t.get_window_extent(renderer) for t in labels]
    for a, b in combinations(boxes, 2):
        assert not a.overlaps(b)
    ax_box = fig.axes[0].get_window_extent(renderer)
    assert all(ax_box.x0 - 1 <= b.x0 and b.x1 <= ax_box.x1 + 1 for b in boxes)


def test_baujat_drops_nan_and_rejects_empty():
    df = pd.concat([BAUJAT, pd.DataFrame({"cohort_id": ["nan1"], "baujat_x": [np.nan], "baujat_y": [1.0]})])
    fig = plots.baujat_plot(df, label="ORR")
    assert "nan1" not in texts(fig)
    with pytest.raises(ValueError, match="no study with finite Baujat"):
        plots.baujat_plot(df.iloc[-1:], label="ORR")


# ---------------------------------------------------------------------------------------------
# 8. Method comparison
# ---------------------------------------------------------------------------------------------

def comparison_rows():
    rows = []
    for method, shift in (("BAYES-BN", 0.01), ("PFT-DL", 0.0), ("GLMM-ML", 0.005), ("PFT-REML-HKSJ", -0.005)):
        for sub in ("overall", "sts"):
            rows.append(["orr", sub, "Objective response rate", method, 0.12 + shift, 0.08, 0.17, True])
    rows.append(["median_pfs", "overall", "Median PFS", "MEDIAN-DL", 7.4, 5.3, 9.5, True])
    rows.append(["median_pfs", "overall", "Median PFS", "BAYES-NN", 7.1, 4.9, 9.8, True])
    df = pd.DataFrame(rows, columns=["outcome", "subgroup", "label", "method", "estimate", "ci_low", "ci_high",
                                     "proportion"])
    df.loc[df.outcome == "median_pfs", "proportion"] = False
    return df


def test_method_comparison_two_panels_fixed_method_order():
    fig = plots.method_comparison(comparison_rows(), subgroup_labels={"sts": "Soft-tissue sarcoma"})
    assert len(fig.axes) == 2
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["PFT-DL", "PFT-REML-HKSJ", "GLMM-ML", "BAYES-BN"]
    assert [t.get_text() for t in fig.axes[1].get_legend().get_texts()] == ["MEDIAN-DL", "BAYES-NN"]
    (pft,) = by_gid(fig, "method-PFT-DL")
    assert np.asarray(pft.get_offsets())[:, 0].tolist() == pytest.approx([12.0, 12.0])   # percent
    (bayes_nn,) = by_gid(fig, "method-BAYES-NN")
    assert np.asarray(bayes_nn.get_offsets())[:, 0].tolist() == pytest.approx([7.1])     # months
    drawn = texts(fig)
    assert "Objective response rate \u2014 overall" in drawn
    assert "Objective response rate \u2014 Soft-tissue sarcoma" in drawn
    # Methods of one block sit on distinct rows.
    ys = [np.asarray(c.get_offsets())[0, 1] for m in ("PFT-DL", "GLMM-ML", "BAYES-BN", "PFT-REML-HKSJ")
          for c in by_gid(fig, f"method-{m}")]
    assert len(set(ys)) == 4


def test_method_comparison_omits_empty_panel_and_reads_csv_booleans():
    df = comparison_rows()
    df = df[df.outcome == "orr"].assign(proportion="True")
    fig = plots.method_comparison(df)
    assert len(fig.axes) == 1 and fig.axes[0].get_xlabel() == "Proportion (%)"
    with pytest.raises(ValueError, match="no row with a finite estimate"):
        plots.method_comparison(df.assign(estimate=np.nan))


def test_method_comparison_accepts_the_comparison_table_layout():
    df = comparison_rows()
    df = df.assign(kind=np.where(df.proportion, "proportion", "median")).drop(columns=["proportion", "label"])
    fig = plots.method_comparison(df)
    assert len(fig.axes) == 2
    assert "orr \u2014 overall" in texts(fig) and "median_pfs \u2014 overall" in texts(fig)
    with pytest.raises(ValueError, match="'proportion' .* or 'kind'"):
        plots.method_comparison(df.drop(columns="kind"))


def test_method_comparison_real_table(review_tables):
    est = real_table(review_tables, "pooled_estimates.csv")
    keep = est[est.method.isin(["PFT-DL", "GLMM-ML", "MEDIAN-DL"]) & est.outcome.isin(["orr", "median_pfs"])]
    table = keep.assign(label=keep.outcome, proportion=~keep.outcome.str.startswith("median_"))
    fig = plots.method_comparison(table)
    assert len(fig.axes) == 2
    n = sum(len(c.get_offsets()) for m in ("PFT-DL", "GLMM-ML", "MEDIAN-DL") for c in by_gid(fig, f"method-{m}"))
    assert n == table.estimate.notna().sum()


# ---------------------------------------------------------------------------------------------
# save_figure
# ---------------------------------------------------------------------------------------------

STAMP = "singlearm 0.1.0 \u00b7 60a2f4c \u00b7 inputs 1a2b3c4d5e6f"


def test_save_figure_writes_pdf_and_png_with_stamp(tmp_path):
    PIL = pytest.importorskip("PIL.Image")
    fig = orr_forest()
    paths = plots.save_figure(fig, tmp_path / "deep" / "forest_orr.v1", STAMP)
    assert [p.name for p in paths] == ["forest_orr.v1.pdf", "forest_orr.v1.png"]
    pdf = paths[0].read_bytes()
    assert pdf.startswith(b"%PDF") and b"/Creator (singlearm)" in pdf
    assert b"CreationDate" not in pdf and b"ModDate" not in pdf and b"Producer" not in pdf
    assert b"/FontFile2" in pdf                                  # TrueType embedded (pdf.fonttype 42)
    with PIL.open(paths[1]) as im:
        assert [round(d) for d in im.info["dpi"]] == [300, 300]
        w, h = fig.get_size_inches()
        assert im.size == (round(w * 300), round(h * 300))
        assert "Software" not in im.info
    stamps = [t for t in fig.texts if t.get_gid() == "provenance-stamp"]
    assert [t.get_text() for t in stamps] == [STAMP]
    assert stamps[0].get_fontsize() == 5.0 and stamps[0].get_ha() == "right"
    # Saving again replaces the stamp; no temporary file is left behind.
    plots.save_figure(fig, tmp_path / "deep" / "forest_orr.v1", "other stamp")
    assert [t.get_text() for t in fig.texts if t.get_gid() == "provenance-stamp"] == ["other stamp"]
    assert sorted(p.name for p in (tmp_path / "deep").iterdir()) == ["forest_orr.v1.pdf", "forest_orr.v1.png"]


def test_save_figure_rejects_empty_stamp(tmp_path):
    with pytest.raises(ValueError, match="stamp is empty"):
        plots.save_figure(orr_forest(), tmp_path / "x", " ")
    assert list(tmp_path.iterdir()) == []


_SCRIPT = textwrap.dedent("""
    import sys
    sys.path[:0] = [{src!r}, {tests!r}]
    from test_plots import orr_forest, BAUJAT
    from singlearm import plots
    plots.save_figure(orr_forest(), sys.argv[1] + "/forest", {stamp!r})
    plots.save_figure(plots.baujat_plot(BAUJAT, label="ORR"), sys.argv[1] + "/baujat", {stamp!r})
""")


def test_save_figure_is_byte_reproducible_across_processes(tmp_path):
    script = _SCRIPT.format(src=str(ROOT / "src"), tests=str(ROOT / "tests"), stamp=STAMP)
    outs = []
    for run, seed in (("a", "1"), ("b", "2")):
        out = tmp_path / run
        out.mkdir()
        # Different hash seeds: no output may depend on set or dict ordering of strings.
        env = {"PYTHONHASHSEED": seed, "MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin",
               "MPLCONFIGDIR": str(tmp_path / f"mpl{run}")}
        subprocess.run([sys.executable, "-c", script, str(out)], check=True, env=env, cwd=tmp_path,
                       capture_output=True, timeout=120)
        outs.append(out)
    for name in ("forest.pdf", "forest.png", "baujat.pdf", "baujat.png"):
        a, b = (outs[0] / name).read_bytes(), (outs[1] / name).read_bytes()
        assert len(a) > 1000 and a == b, name


def test_method_comparison_draws_survival_rates_in_percent_with_the_proportions():
    # a comparison table (kind column) with a 12-month OS rate of 0.62: percent, not 0.62 months
    df = pd.DataFrame({"outcome": ["os_rate_12m"] * 2, "subgroup": ["overall"] * 2, "kind": ["survival_rate"] * 2,
                       "method": ["SURV-DL", "BAYES-NN"], "estimate": [0.62, 0.60], "ci_low": [0.5, 0.48],
                       "ci_high": [0.72, 0.71]})
    fig = plots.method_comparison(df)
    assert len(fig.axes) == 1 and fig.axes[0].get_xlabel() == "Proportion (%)"
    (surv,) = by_gid(fig, "method-SURV-DL")
    assert np.asarray(surv.get_offsets())[:, 0].tolist() == pytest.approx([62.0])
