"""Subgroup tests (separate tau^2, common tau^2, GLMM) against metafor 3.8-1 and on edge cases.

Reference: tests/reference/make_reference_engine.R (``subgroup_tests``):
``rma(yi, vi, mods = ~ grp, method = "DL" | "REML")`` and ``rma.glmm(measure = "PLO", xi, ni,
mods = ~ grp, method = "ML")``; the separate-tau^2 test from make_reference.R (``subgroup_test``).
Tolerances: DL 1e-8, REML 1e-6, GLMM 1e-6 (tight lme4 settings in the R script).
"""

import math

import pandas as pd
import pytest

from singlearm import effects, subgroups

from engine_reference import load_engine_reference
from reference_data import REF as REF_DIR, load_reference
from conftest import TOL_CLOSED, TOL_ITERATIVE

REF = load_engine_reference()
REF_OLD = load_reference()
SARCOMA = pd.read_csv(REF_DIR / "inputs" / "sarcoma_proportions.csv")
MILLER = pd.read_csv(REF_DIR / "inputs" / "miller1978.csv").assign(
    subgroup=lambda d: ["A" if s in ("miller1", "miller2") else "B" for s in d.study])
CASES = [("miller1978", "orr", MILLER)] + [("sarcoma", o, p) for o, p in SARCOMA.groupby("outcome")
                                            if p.subgroup.nunique() >= 2]
IDS = [f"{d}-{o}" for d, o, _ in CASES]


def close(ours, theirs, tol):
    return math.isclose(ours, theirs, rel_tol=tol, abs_tol=tol)


@pytest.mark.parametrize("dataset,outcome,part", CASES, ids=IDS)
def test_common_tau2_subgroup_test_matches_metafor(dataset, outcome, part):
    for measure in ("PFT", "PLO"):
        yi, vi = effects.proportion_effects(part.events, part.total, measure)
        for method in ("DL", "REML"):
            t = subgroups.subgroup_test_common(yi, vi, part.subgroup, method)
            base = (dataset, outcome, "overall", f"SUBGROUP-COMMON-{measure}-{method}")
            if (*base, "qm", "") not in REF:   # metafor: more parameters than observations
                assert not t.run and "no residual degrees of freedom" in t.note and math.isnan(t.q)
                continue
            tol = TOL_CLOSED if method == "DL" else TOL_ITERATIVE
            assert t.run and t.model == "common"
            for ours, q in ((t.q, "qm"), (t.df, "qm_df"), (t.p, "qm_p"), (t.tau2, "tau2")):
                assert close(ours, REF[(*base, q, "")], tol), (base, q, ours)


@pytest.mark.parametrize("dataset,outcome,part", CASES, ids=IDS)
def test_glmm_subgroup_test_matches_metafor(dataset, outcome, part):
    t = subgroups.subgroup_test_glmm(part.events, part.total, part.subgroup)
    base = (dataset, outcome, "overall", "SUBGROUP-GLMM")
    if not t.run:   # more parameters than studies, or a subgroup without events (metafor: nonsense)
        assert t.note.startswith("not run: not estimable")
        return
    for ours, q in ((t.q, "qm"), (t.df, "qm_df"), (t.p, "qm_p"), (t.tau2, "tau2")):
        assert close(ours, REF[(*base, q, "")], TOL_ITERATIVE), (base, q, ours)


@pytest.mark.parametrize("dataset,outcome,part", CASES, ids=IDS)
def test_separate_tau2_subgroup_test_matches_metafor(dataset, outcome, part):
    for measure in ("PFT", "PLO"):
        yi, vi = effects.proportion_effects(part.events, part.total, measure)
        t = subgroups.subgroup_test_separate(yi, vi, part.subgroup, "DL")
        base = (dataset, outcome, "overall", f"SUBGROUP-{measure}-DL")
        assert close(t.q, REF_OLD[(*base, "q_between", "")], TOL_CLOSED)
        assert close(t.p, REF_OLD[(*base, "q_between_p", "")], TOL_CLOSED)
        assert t.df == REF_OLD[(*base, "q_between_df", "")]


def test_every_reference_model_was_compared_somewhere():
    ran = [o for _, o, p in CASES if subgroups.subgroup_test_glmm(p.events, p.total, p.subgroup).run]
    assert len(ran) >= 4


# ---- edge cases ----

def test_a_subgroup_with_one_study_is_named_and_flagged():
    sd = SARCOMA[SARCOMA.outcome == "sd"]            # sts 3, bone 2, mixed 1
    yi, vi = effects.proportion_effects(sd.events, sd.total, "PFT")
    for t in (subgroups.subgroup_test_common(yi, vi, sd.subgroup), subgroups.subgroup_test_separate(yi, vi, sd.subgroup),
              subgroups.subgroup_test_glmm(sd.events, sd.total, sd.subgroup)):
        assert t.run and t.flagged and t.small_levels == ("mixed",) and "mixed (k = 1)" in t.note
        row = t.summary_frame().iloc[0]
        assert row["levels"] == "bone (k = 2), mixed (k = 1), sts (k = 3)" and row["small_levels"] == "mixed"


def test_one_subgroup_is_not_a_test():
    orr = SARCOMA[(SARCOMA.outcome == "orr") & (SARCOMA.subgroup == "sts")]
    yi, vi = effects.proportion_effects(orr.events, orr.total, "PFT")
    for t in (subgroups.subgroup_test_common(yi, vi, orr.subgroup), subgroups.subgroup_test_separate(yi, vi, orr.subgroup),
              subgroups.subgroup_test_glmm(orr.events, orr.total, orr.subgroup)):
        assert not t.run and not t.flagged and math.isnan(t.q) and t.note == "not run: fewer than 2 subgroups"


def test_two_studies_in_two_subgroups_leave_no_df_for_a_common_tau2():
    t = subgroups.subgroup_test_common([0.1, 0.4], [0.01, 0.02], ["a", "b"])
    assert not t.run and "no residual degrees of freedom" in t.note


def test_separate_test_with_zero_se_is_not_run():
    # two cohorts both at 50% under Hartung-Knapp: SE 0 in subgroup a
    yi, vi = effects.proportion_effects([20, 11, 5, 9], [40, 22, 30, 25], "PFT")
    t = subgroups.subgroup_test_separate(yi, vi, ["a", "a", "b", "b"], "DL", "knha")
    assert not t.run and "standard error of 0" in t.note
