"""Which rows each workflow figure is drawn from (singlearm.figures), on the review's own sheets."""

import pandas as pd

from conftest import RAW
from singlearm import figures, pool


def analysis():
    return pd.DataFrame({"cohort_id": list("abcd") * 2, "study_id": list("abcd") * 2,
                         "outcome": ["ae_g34:hypertension"] * 4 + ["ae_all:hypertension"] * 4,
                         "kind": "proportion", "subgroup": ["sts", "sts", "bone", "bone"] * 2,
                         "events": [3.0, 0.0, 5.0, 2.0, 12.0, 9.0, 20.0, 11.0], "total": [30.0, 25.0, 40.0, 22.0] * 2,
                         "estimate": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "has_ci": False})


def estimates():
    rows = analysis()
    return pd.concat([pool.pool_outcome(rows, o, ["sts", "bone"]).estimates for o in rows["outcome"].unique()])


def test_ae_figure_uses_the_primary_method_and_names_its_outcomes():
    ((stem, fig, outcomes),) = figures.ae_figures(estimates(), "PFT-DL")
    assert stem == "ae_overview" and outcomes == ["ae_g34:hypertension", "ae_all:hypertension"]
    texts = {t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))}
    assert "Hypertension" in texts and "Pooled with PFT-DL" in texts


def test_forest_figures_one_per_outcome_by_its_method():
    est = estimates()
    studies = pd.concat([pool.pool_outcome(analysis(), o, ["sts", "bone"]).studies for o in est["outcome"].unique()])
    tests = pd.concat([pool.pool_outcome(analysis(), o, ["sts", "bone"]).subgroup_tests for o in est["outcome"].unique()])
    details = pd.concat([pool.pool_outcome(analysis(), o, ["sts", "bone"]).details for o in est["outcome"].unique()])
    stems = {"ae_g34:hypertension": "forest_ae_g34-hypertension", "ae_all:hypertension": "forest_ae_all-hypertension"}
    out = figures.forest_figures(studies, est, tests, details, stems, {o: "PFT-DL" for o in stems})
    assert [s for s, _, _ in out] == list(stems.values())
    texts = {t.get_text() for t in out[0][1].findobj(lambda a: hasattr(a, "get_text"))}
    assert "0/25" in texts  # the zero-event cohort is on the plot


def test_sheet_figures_from_the_review_sheets():
    counts = pd.read_csv(RAW / "prisma_counts.csv")
    ((stem, fig, rows),) = figures.prisma_figures(counts)
    assert stem == "prisma_flow" and rows is None
    assert any("1,069" in t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")))
    minors = pd.read_csv(RAW / "quality_minors.csv")
    jbi = pd.read_csv(RAW / "quality_jbi.csv", keep_default_na=False, na_values=[""])
    ((stem, fig, _),) = figures.quality_figures(minors, jbi)
    texts = [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]
    assert stem == "quality" and "chi2018" in texts and "zheng2024" in texts
