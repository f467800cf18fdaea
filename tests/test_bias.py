"""Egger's and Begg's tests and trim-and-fill against metafor 3.8-1, hand formulas and edge cases.

Reference values: tests/reference/metafor_values.csv, written by tests/reference/make_reference.R
(``write_sensitivity``) for every proportion data set with k >= 3 pooled as PFT-DL (and PLO-DL
for pritz1997). The R calls, with ``res <- rma(yi, vi, method="DL",
control=list(threshold=1e-12, tol=1e-12, maxiter=1000))``:

    regtest(res, model="lm", predictor="sei")   # EGGER-*:    zval, pval, dfs, est
    ranktest(res)                               # BEGG-*:     tau, pval
    trimfill(res)                               # TRIMFILL-*: k0, side (-1 left, 1 right), b, se, ci_lb,
                                                #   ci_ub, tau2, est_bt/ci_*_bt (back-transformed with the
                                                #   observed studies' n), yi/vi of study filled1..filledk0
"""

import numpy as np
import pandas as pd
import pytest

from singlearm import bias
from singlearm.effects import proportion_effects
from singlearm.transforms import ilogit, ipft_hm

from conftest import TOL_CLOSED, TOL_ITERATIVE
from reference_data import proportion_inputs, reference_table


# ---------------------------------------------------------------------------------------------
# reference data (same construction as make_reference.R)
# ---------------------------------------------------------------------------------------------



REF = reference_table()
INPUTS = proportion_inputs()
OURS = REF[REF.fit.str.match(r"^(EGGER|BEGG|TRIMFILL)-")]
GROUPS = [(key, rows) for key, rows in OURS.groupby(["dataset", "outcome", "subgroup", "fit", "quantity"],
                                                    sort=False)]
MIN_COMPARED = 250  # 21 data sets x (4 Egger + 2 Begg + >= 10 trim-and-fill) values, less tau0's failures

EGGER_MAP = {"zval": "stat", "pval": "pval", "dfs": "df", "est": "est"}
BEGG_MAP = {"tau": "tau", "pval": "pval"}
TF_MAP = {"k0": "k0", "b": "b", "se": "se", "ci_lb": "ci_lb", "ci_ub": "ci_ub", "tau2": "tau2"}
TF_BT = {"est_bt": "b", "ci_lb_bt": "ci_lb", "ci_ub_bt": "ci_ub"}
KNOWN = {"EGGER": set(EGGER_MAP), "BEGG": set(BEGG_MAP),
         "TRIMFILL": set(TF_MAP) | set(TF_BT) | {"side", "yi", "vi"}}
TOLERANCE = {"EGGER": TOL_CLOSED, "BEGG": TOL_CLOSED, "TRIMFILL": TOL_ITERATIVE}

_CACHE = {}


def _effects(key, measure):
    d = INPUTS[key]
    yi, vi = proportion_effects(d.events.to_numpy(), d.total.to_numpy(), measure)
    return d, yi, vi


def _ours(key, fit_id):
    if (key, fit_id) not in _CACHE:
        kind, measure, method = fit_id.split("-")
        d, yi, vi = _effects(key, measure)
        if kind == "EGGER":
            res = bias.egger_test(yi, vi)
        elif kind == "BEGG":
            res = bias.begg_test(yi, vi)
        else:
            res = bias.trim_and_fill(yi, vi, method=method)
        _CACHE[(key, fit_id)] = (d, res)
    return _CACHE[(key, fit_id)]


def _assert_close(ours, ref, tol, what):
    ours = np.atleast_1d(np.asarray(ours, dtype=float))
    ref = np.atleast_1d(np.asarray(ref, dtype=float))
    assert ours.shape == ref.shape, f"{what}: {ours.shape} values, metafor has {ref.shape}"
    both_nan = np.isnan(ours) & np.isnan(ref)
    dev = np.where(both_nan, 0.0, np.abs(ours - ref))
    assert np.all(both_nan | (dev <= tol * np.fmax(1.0, np.abs(ref)))), \
        f"{what}: max deviation {np.nanmax(dev):.3g} (tolerance {tol:g}); ours {ours}, metafor {ref}"


# ---------------------------------------------------------------------------------------------
# every reference value
# ---------------------------------------------------------------------------------------------


def test_reference_is_complete_and_fully_mapped():
    assert len(OURS) >= MIN_COMPARED, f"only {len(OURS)} reference values for EGGER/BEGG/TRIMFILL"
    assert sum(len(rows) for _, rows in GROUPS) == len(OURS)
    for (_, _, _, fit_id, quantity), _ in GROUPS:
        assert quantity in KNOWN[fit_id.split("-")[0]], f"unmapped reference quantity {fit_id}/{quantity}"


def test_every_dataset_with_three_studies_has_a_reference():
    """metafor failed only where the test is undefined (tau0: all SEs equal); those cases are
    checked in test_constant_se_is_explained."""
    expected = {key for key, d in INPUTS.items() if len(d) >= 3}
    for kind in ("EGGER", "BEGG", "TRIMFILL"):
        sub = OURS[OURS.fit == f"{kind}-PFT-DL"]
        have = {tuple(k) for k in sub[["dataset", "outcome", "subgroup"]].drop_duplicates().to_numpy()}
        missing = expected - have
        assert missing == (set() if kind == "BEGG" else {("tau0", "orr", "overall")}), (kind, missing)


@pytest.mark.parametrize("group", [rows for _, rows in GROUPS], ids=["/".join(k) for k, _ in GROUPS])
def test_matches_metafor(group):
    dataset, outcome, subgroup, fit_id, quantity = group.iloc[0][["dataset", "outcome", "subgroup", "fit",
                                                                  "quantity"]]
    key = (dataset, outcome, subgroup)
    kind, measure, _ = fit_id.split("-")
    d, res = _ours(key, fit_id)
    what = "/".join([dataset, outcome, subgroup, fit_id, quantity])
    tol = TOLERANCE[kind]
    if kind == "EGGER":
        _assert_close(getattr(res, EGGER_MAP[quantity]), group.value, tol, what)
    elif kind == "BEGG":
        _assert_close(getattr(res, BEGG_MAP[quantity]), group.value, tol, what)
    elif quantity == "side":
        assert res.side == {-1.0: "left", 1.0: "right"}[group.value.iloc[0]], what
    elif quantity == "k0":
        assert res.k0 == group.value.iloc[0], what
    elif quantity in TF_MAP:
        _assert_close(getattr(res, TF_MAP[quantity]), group.value, tol, what)
    elif quantity in TF_BT:
        est = getattr(res, TF_BT[quantity])
        # metafor's script back-transforms the filled fit with the observed studies' n only.
        bt = ipft_hm(est, d.total.to_numpy()) if measure == "PFT" else ilogit(est)
        _assert_close(bt, group.value, tol, what)
    else:  # imputed studies, filled1..filledk0 in metafor's order
        idx = [int(s.removeprefix("filled")) - 1 for s in group.study]
        values = (res.filled_yi if quantity == "yi" else res.filled_vi)[idx]
        assert len(values) == res.k0 == len(group)
        _assert_close(values, group.value, tol, what)


# ---------------------------------------------------------------------------------------------
# hand computations
# ---------------------------------------------------------------------------------------------


def test_egger_by_hand():
    """y/SE = (1, 3, 4) on 1/SE = (1, 2, 3) by ordinary least squares, worked on paper:
    slope on 1/SE (= limit estimate) 3/2, intercept (= slope on SE) -1/3, RSS = 1/6 on 1 df,
    Var(intercept) = (1/6)(1/3 + 2^2/2) = 7/18, so t = -(1/3)/sqrt(7/18) = -sqrt(2/7);
    a t on 1 df is Cauchy: p = 1 - (2/pi) atan(sqrt(2/7)); SE(limit) = sqrt((1/6)/2)."""
    sei = np.array([1.0, 1 / 2, 1 / 3])
    yi = np.array([1.0, 3.0, 4.0]) * sei
    res = bias.egger_test(yi, sei**2)
    _assert_close(res.est, 1.5, 1e-12, "est")
    _assert_close(res.slope, -1 / 3, 1e-12, "slope")
    _assert_close(res.stat, -np.sqrt(2 / 7), 1e-12, "t")
    _assert_close(res.pval, 1 - 2 / np.pi * np.arctan(np.sqrt(2 / 7)), 1e-12, "p")
    _assert_close(res.est_se, np.sqrt(1 / 12), 1e-12, "se(est)")
    assert res.df == 1 and res.note == ""


def test_begg_exact_p_by_hand():
    """Perfect discordance among 4 studies: 1 of 4! orderings per tail, so p = 2/24."""
    res = bias.begg_test([0.4, 0.3, 0.2, 0.1], [0.01, 0.02, 0.03, 0.04])
    assert res.p_method == "exact"
    _assert_close(res.tau, -1.0, 1e-15, "tau")
    _assert_close(res.pval, 1 / 12, 1e-14, "p")


def test_begg_exact_for_k_at_least_50():
    """metafor passes exact=TRUE to cor.test, so untied data get an exact p even for k >= 50.
    R: i <- 1:60; yi <- sin(i)/2 + 0.3*sqrt(0.01 + (i %% 17)/200);
       vi <- 0.01 + (i %% 17)/200 + i/1e5; ranktest(yi, vi)
       ranktest(yi, sei=round(sqrt(vi), 2))       # ties: normal approximation"""
    i = np.arange(1, 61)
    vi = 0.01 + (i % 17) / 200 + i / 1e5
    yi = np.sin(i) / 2 + 0.3 * np.sqrt(0.01 + (i % 17) / 200)
    res = bias.begg_test(yi, vi)
    assert res.p_method == "exact"
    _assert_close([res.tau, res.pval], [-0.0045197740112994352, 0.96454984614241557], TOL_CLOSED, "exact")
    tied = bias.begg_test(yi, np.round(np.sqrt(vi), 2) ** 2)
    assert tied.p_method == "normal"
    _assert_close([tied.tau, tied.pval], [-0.0011570633601755494, 0.98979834057002836], TOL_CLOSED, "ties")


def test_begg_exact_distribution_sums_to_one_for_large_k():
    """R's exact p is NaN from k = 171 (n! overflows); the probability recursion is not."""
    pmf = bias._kendall_pmf(200)
    assert len(pmf) == 200 * 199 // 2 + 1
    _assert_close(pmf.sum(), 1.0, 1e-12, "total mass")
    _assert_close(pmf, pmf[::-1], 1e-12, "symmetry")


def test_trim_and_fill_symmetric_funnel_fills_nothing():
    yi = np.array([-0.2, 0.2, -0.1, 0.1, 0.0])
    vi = np.array([0.04, 0.04, 0.02, 0.02, 0.01])
    res = bias.trim_and_fill(yi, vi)
    assert res.k0 == 0 and res.filled_yi.size == 0
    _assert_close(res.b, 0.0, 1e-15, "b")


def test_trim_and_fill_mirrors_about_the_trimmed_estimate():
    d, yi, vi = _effects(("pritz1997", "orr", "overall"), "PLO")
    res = bias.trim_and_fill(yi, vi)
    assert res.side == "left" and res.k0 == 6
    # The imputed studies are reflections of the k0 largest effects about the trimmed estimate.
    largest = np.sort(yi)[::-1][: int(res.k0)][::-1]
    centre = (res.filled_yi + largest) / 2
    _assert_close(centre, np.full(6, centre[0]), 1e-12, "common centre")
    assert res.fit.k == len(yi) + 6


@pytest.mark.parametrize("method,expected,tol", [
    # R: res <- rma(yi, vi, method="REML", control=ctl) on escalc("PLO", pritz1997); trimfill(res)
    # metafor's trimfill refits without 'control', so its REML stops at a 1e-5 change and its
    # PM at uniroot's tol = 1.2e-4: the agreement is only as good as those defaults.
    ("REML", (4, "left", 0.88907456962671194, 0.24207979570091515, 0.45826717035259945), 1e-5),
    ("PM", (6, "left", 0.69674027212327538, 0.3069492153991184, 1.1822091760057434), 1e-4),
])
def test_trim_and_fill_iterative_methods(method, expected, tol):
    d, yi, vi = _effects(("pritz1997", "orr", "overall"), "PLO")
    res = bias.trim_and_fill(yi, vi, method=method)
    assert (res.k0, res.side) == expected[:2]
    _assert_close([res.b, res.se, res.tau2], expected[2:], tol, method)


# ---------------------------------------------------------------------------------------------
# edge cases
# ---------------------------------------------------------------------------------------------


def test_constant_se_is_explained():
    """tau0: equal n, so every PFT SE is equal. Egger's slope on SE and the trim-and-fill side
    are undefined (metafor stops with an error) and Begg's tau is NA (cor.test on a constant)."""
    d, yi, vi = _effects(("tau0", "orr", "overall"), "PFT")
    eg = bias.egger_test(yi, vi)
    assert np.isnan(eg.stat) and np.isnan(eg.pval) and "same standard error" in eg.note
    bg = bias.begg_test(yi, vi)
    assert np.isnan(bg.tau) and "same sampling variance" in bg.note
    tf = bias.trim_and_fill(yi, vi)
    assert np.isnan(tf.b) and "side='left' or 'right'" in tf.note
    given = bias.trim_and_fill(yi, vi, side="left")
    assert given.note == "" and np.isfinite(given.b)


def test_k3_edge():
    """k = 3: Egger on 1 df, exact Begg over 3! orderings, trim-and-fill still runs."""
    d = INPUTS[("sarcoma", "cr", "sts")]
    assert len(d) == 3
    yi, vi = proportion_effects(d.events, d.total, "PFT")
    eg = bias.egger_test(yi, vi)
    assert eg.df == 1 and np.isfinite(eg.pval)
    bg = bias.begg_test(yi, vi)
    assert bg.pval in (pytest.approx(1.0), pytest.approx(1 / 3))  # |tau| = 1/3 or 1 with 3 studies
    tf = bias.trim_and_fill(yi, vi)
    assert tf.note == "" and tf.k0 >= 0


def test_too_few_studies():
    eg = bias.egger_test([0.1, 0.2], [0.01, 0.02])
    assert np.isnan(eg.stat) and "at least 3" in eg.note
    tf = bias.trim_and_fill([0.1, 0.2], [0.01, 0.02])
    assert np.isnan(tf.b) and "k = 2" in tf.note
    assert "at least 2" in bias.begg_test([0.1], [0.01]).note


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="vi <= 0"):
        bias.egger_test([0.1, 0.2, 0.3], [0.01, -0.02, 0.03])
    with pytest.raises(ValueError, match="side must be"):
        bias.trim_and_fill([0.1, 0.2, 0.3], [0.01, 0.02, 0.03], side="both")


def test_underpowered_note():
    assert "13.3.5.4" in bias.underpowered_note(9) and "10 studies" in bias.underpowered_note(3)
    assert bias.underpowered_note(10) == ""


def test_summary_frames():
    d, yi, vi = _effects(("miller1978", "orr", "overall"), "PFT")
    for res in (bias.egger_test(yi, vi), bias.begg_test(yi, vi), bias.trim_and_fill(yi, vi)):
        frame = res.summary_frame()
        assert len(frame) == 1 and "note" in frame.columns


# ---------------------------------------------------------------------------------------------
# Peters' sample-size test and the other regression predictors (issue 11)
# Reference: tests/reference/make_reference_engine.R:
#   regtest(rma(yi, vi, method = "DL"), ni = ni, model = "lm", predictor = "ninv" | "ni")
# ---------------------------------------------------------------------------------------------

from engine_reference import load_engine_reference

ENGINE = load_engine_reference()
REGTEST_CASES = sorted({k[:4] for k in ENGINE if k[3].startswith("REGTEST-")})


@pytest.mark.parametrize("dataset,outcome,subgroup,fit_id", REGTEST_CASES, ids=["-".join(c) for c in REGTEST_CASES])
def test_sample_size_regression_tests_match_metafor(dataset, outcome, subgroup, fit_id):
    _, predictor, measure = fit_id.split("-")
    d = INPUTS[(dataset, outcome, subgroup)]
    yi, vi = proportion_effects(d.events.to_numpy(), d.total.to_numpy(), measure)
    res = bias.regression_test(yi, vi, d.total.to_numpy(), predictor)
    base = (dataset, outcome, subgroup, fit_id)
    for q, attr in (("zval", "stat"), ("pval", "pval"), ("dfs", "df"), ("est", "est")):
        _assert_close(getattr(res, attr), ENGINE[(*base, q, "")], TOL_CLOSED, f"{base} {q}")
    if predictor == "ninv":
        peters = bias.peters_test(yi, vi, d.total.to_numpy())
        assert (peters.stat, peters.pval, peters.predictor) == (res.stat, res.pval, "ninv")


def test_regression_tests_cover_enough_reference_sets():
    assert len(REGTEST_CASES) >= 40


def test_equal_sample_sizes_leave_peters_test_undefined():
    # metafor: "Model matrix no longer of full rank after addition of predictor" (tau0: all n = 50)
    yi, vi = proportion_effects(np.array([10, 11, 9, 10]), np.array([50, 50, 50, 50]), "PLO")
    res = bias.peters_test(yi, vi, [50, 50, 50, 50])
    assert np.isnan(res.pval) and "same inverse sample size" in res.note and res.run


def test_peters_by_hand():
    # WLS of y on 1/n with weights 1/v: slope t statistic from the normal equations
    yi, vi, n = np.array([0.1, 0.4, 0.2, 0.7]), np.array([0.02, 0.01, 0.04, 0.05]), np.array([40, 80, 20, 15])
    x = np.column_stack([np.ones(4), 1 / n])
    w = 1 / vi
    a = (x.T * w) @ x
    beta = np.linalg.solve(a, (x.T * w) @ yi)
    s2 = (w * (yi - x @ beta) ** 2).sum() / 2
    t = beta[1] / np.sqrt(s2 * np.linalg.inv(a)[1, 1])
    res = bias.peters_test(yi, vi, n)
    assert res.stat == pytest.approx(t, abs=1e-12) and res.est == pytest.approx(beta[0], abs=1e-12)


def test_ni_predictor_has_no_limit_estimate_and_needs_n():
    yi, vi = np.array([0.1, 0.4, 0.2, 0.7]), np.array([0.02, 0.01, 0.04, 0.05])
    assert np.isnan(bias.regression_test(yi, vi, [40, 80, 20, 15], "ni").est)
    with pytest.raises(ValueError, match="needs the sample sizes"):
        bias.regression_test(yi, vi, None, "ninv")
    with pytest.raises(ValueError, match="unknown predictor 'n'"):
        bias.regression_test(yi, vi, [40, 80, 20, 15], "n")


def test_min_k_skips_every_test_below_it():
    d = INPUTS[("pritz1997", "orr", "overall")]                 # k = 14
    yi, vi = proportion_effects(d.events.to_numpy(), d.total.to_numpy(), "PFT")
    for min_k, runs in ((10, True), (15, False)):
        results = [bias.egger_test(yi, vi, min_k=min_k), bias.peters_test(yi, vi, d.total, min_k=min_k),
                   bias.begg_test(yi, vi, min_k=min_k), bias.trim_and_fill(yi, vi, min_k=min_k)]
        for r in results:
            assert r.run == runs, (min_k, r)
            if not runs:
                assert r.note == "not run: k < 15 (k = 14)" and np.isnan(r.pval if hasattr(r, "pval") else r.b)
    # without min_k (the default) nothing is skipped, as before
    assert bias.egger_test(yi[:4], vi[:4]).run
