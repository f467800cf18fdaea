"""The frequentist engine against R metafor (committed reference values) and hand computations.

Reference: tests/reference/make_reference.R (metafor's rma with tight control; exact calls beside
each block). Tolerances are named per kind of quantity: closed forms agree to 1e-8, iterative
estimators (REML, PM, Q-profile roots) to 1e-6.
"""

import math

import numpy as np
import pandas as pd
import pytest

from singlearm import effects, fit, pool, transforms

from reference_data import REF, load_reference, median_datasets, proportion_datasets
from conftest import TOL_CLOSED, TOL_ITERATIVE


REFERENCE = load_reference()
RMA_FITS = {  # fit id in the reference -> (measure, method, test)
    "PFT-DL": ("PFT", "DL", "z"), "PFT-REML": ("PFT", "REML", "z"), "PFT-PM": ("PFT", "PM", "z"),
    "PLO-DL": ("PLO", "DL", "z"), "PLO-REML": ("PLO", "REML", "z"), "PLO-PM": ("PLO", "PM", "z"),
    "PRAW-DL": ("PRAW", "DL", "z"), "PFT-DL-HKSJ": ("PFT", "DL", "knha"),
    "PFT-REML-HKSJ": ("PFT", "REML", "knha"), "PLO-REML-HKSJ": ("PLO", "REML", "knha"),
    "COMMON-PFT": ("PFT", "EE", "z"), "COMMON-PLO": ("PLO", "EE", "z"),
}
SCALAR = {"b": "b", "se": "se", "ci_lb": "ci_lb", "ci_ub": "ci_ub", "zval": "stat", "pval": "pval", "tau2": "tau2",
          "i2": "i2", "h2": "h2", "q": "q", "q_df": "q_df", "q_p": "q_p", "k": "k", "pi_lb": "pi_lb", "pi_ub": "pi_ub"}
CONFINT = ("tau2_lb", "tau2_ub", "i2_lb", "i2_ub", "h2_lb", "h2_ub")


def close(ours, theirs, tol):
    return math.isclose(ours, theirs, rel_tol=tol, abs_tol=tol)


def tolerance(method, quantity):
    if method in ("REML", "PM") or quantity in CONFINT:
        return TOL_ITERATIVE
    return TOL_CLOSED


def _back(measure, y, n):
    if measure == "PFT":
        return transforms.ipft_hm(y, n)
    if measure == "PLO":
        return transforms.ilogit(y)
    return y


CASES = proportion_datasets()
IDS = [f"{d}-{o}-{s}" for d, o, s, _ in CASES]


@pytest.mark.parametrize("dataset,outcome,subgroup,studies", CASES, ids=IDS)
def test_effect_sizes_match_escalc(dataset, outcome, subgroup, studies):
    compared = 0
    for measure in ("PFT", "PLO", "PRAW"):
        yi, vi = effects.proportion_effects(studies.events, studies.total, measure)
        for study, y, v in zip(studies.study, yi, vi):
            for q, ours in (("yi", y), ("vi", v)):
                key = (dataset, outcome, subgroup, f"ESCALC-{measure}", q, str(study))
                assert close(ours, REFERENCE[key], TOL_CLOSED), (key, ours, REFERENCE[key])
                compared += 1
    assert compared == 6 * len(studies)


@pytest.mark.parametrize("dataset,outcome,subgroup,studies", CASES, ids=IDS)
def test_rma_matches_metafor(dataset, outcome, subgroup, studies):
    compared = 0
    n = studies.total.to_numpy(float)
    for fit_id, (measure, method, test) in RMA_FITS.items():
        base = (dataset, outcome, subgroup, fit_id)
        if (*base, "b", "") not in REFERENCE:
            assert len(studies) == 1 and test == "knha"   # metafor skips HKSJ at k = 1 only
            continue
        yi, vi = effects.proportion_effects(studies.events, studies.total, measure)
        r = fit.rma(yi, vi, method, test)
        for q, attr in SCALAR.items():
            if (*base, q, "") in REFERENCE:
                assert close(getattr(r, attr), REFERENCE[(*base, q, "")], tolerance(method, q)), (base, q, getattr(r, attr))
                compared += 1
            elif len(studies) >= 3 and method != "EE" and q in ("pi_lb", "pi_ub"):
                pytest.fail(f"reference lacks {q} for {base}")
        if method != "EE" and len(studies) >= 2:
            ci = fit.confint_tau2(yi, vi)
            for q in CONFINT:
                assert close(getattr(ci, q), REFERENCE[(*base, q, "")], TOL_ITERATIVE), (base, q, getattr(ci, q))
                compared += 1
        for q, y in (("est_bt", r.b), ("ci_lb_bt", r.ci_lb), ("ci_ub_bt", r.ci_ub), ("pi_lb_bt", r.pi_lb),
                     ("pi_ub_bt", r.pi_ub)):
            if (*base, q, "") in REFERENCE:
                assert close(float(_back(measure, y, n)), REFERENCE[(*base, q, "")], tolerance(method, q)), (base, q)
                compared += 1
    assert compared >= 60 if len(studies) >= 3 else compared >= 30


GLMM_CASES = [c for c in CASES if (c[0], c[1], c[2], "GLMM-ML", "b", "") in REFERENCE]


@pytest.mark.parametrize("dataset,outcome,subgroup,studies", GLMM_CASES, ids=[f"{d}-{o}-{s}" for d, o, s, _ in GLMM_CASES])
def test_glmm_matches_metafor(dataset, outcome, subgroup, studies):
    # 1e-5 rather than 1e-6: lme4 stops its optimiser (bobyqa, then Nelder-Mead) at a looser
    # tolerance than our Newton iteration; the quadrature itself is the same (7 adaptive nodes).
    # The second assertion shows our optimum is at least as high on the same likelihood.
    from singlearm import glmm

    tol_glmm = 1e-5
    g = glmm.glmm_ml(studies.events, studies.total)
    base = (dataset, outcome, subgroup, "GLMM-ML")
    for q in ("b", "se", "ci_lb", "ci_ub"):
        assert close(getattr(g, q), REFERENCE[(*base, q, "")], tol_glmm), (base, q, getattr(g, q))
    assert close(g.tau2, REFERENCE[(*base, "tau2", "")], 2 * tol_glmm)
    assert close(float(transforms.ilogit(g.b)), REFERENCE[(*base, "est_bt", "")], tol_glmm)
    like = glmm._Likelihood(studies.events, studies.total, 7)
    theirs = like(REFERENCE[(*base, "b", "")], math.sqrt(REFERENCE[(*base, "tau2", "")]))
    assert g.loglik >= theirs - 1e-9


def test_glmm_needs_two_studies():
    from singlearm import glmm

    with pytest.raises(ValueError, match="at least two"):
        glmm.glmm_ml([3], [10])


MEDIAN_CASES = median_datasets()


@pytest.mark.parametrize("outcome,subgroup,rows", MEDIAN_CASES, ids=[f"{o}-{s}" for o, s, _ in MEDIAN_CASES])
def test_median_pooling_matches_metafor(outcome, subgroup, rows):
    with_ci = rows.dropna(subset=["ci_low", "ci_high"])
    compared = 0
    for fit_id, scale, method in (("MEDIAN-DL", "months", "DL"), ("MEDIAN-REML", "months", "REML"),
                                  ("LOGMEDIAN-DL", "log", "DL")):
        base = ("sarcoma", outcome, subgroup, fit_id)
        if with_ci.empty:
            assert (*base, "b", "") not in REFERENCE
            continue
        yi, vi = effects.median_effects(with_ci.estimate, with_ci.ci_low, with_ci.ci_high, scale)
        r = fit.rma(yi, vi, method)
        for q, attr in SCALAR.items():
            if (*base, q, "") in REFERENCE:
                assert close(getattr(r, attr), REFERENCE[(*base, q, "")], tolerance(method, q)), (base, q)
                compared += 1
        if scale == "log":
            assert close(math.exp(r.b), REFERENCE[(*base, "est_bt", "")], TOL_CLOSED)
    desc = ("sarcoma", outcome, subgroup, "MEDIAN-DESC")
    summary = pool._median_summary(rows.assign(kind="median", se_source=np.where(rows.ci_low.notna(), "reported_ci", ""),
                                               cohort_id=rows.study), outcome, subgroup)
    for q, ours in (("k", summary["k_reported"]), ("min", summary["min"]), ("max", summary["max"]),
                    ("mean", summary["mean"]), ("sd", summary["sd"])):
        if (*desc, q, "") in REFERENCE:
            assert close(ours, REFERENCE[(*desc, q, "")], TOL_CLOSED), (desc, q)
            compared += 1
    assert compared >= 3


def test_subgroup_differences_match_metafor():
    compared = 0
    sarcoma = pd.read_csv(REF / "inputs" / "sarcoma_proportions.csv")
    for outcome, part in sarcoma.groupby("outcome"):
        for measure in ("PFT", "PLO"):
            key = ("sarcoma", outcome, "overall", f"SUBGROUP-{measure}-DL", "q_between", "")
            levels = sorted(part.subgroup.unique())
            if len(levels) < 2:
                assert key not in REFERENCE
                continue
            b, se = [], []
            for lv in levels:
                sub = part[part.subgroup == lv]
                r = fit.rma(*effects.proportion_effects(sub.events, sub.total, measure), "DL")
                b.append(r.b)
                se.append(r.se)
            q, df, p = fit.subgroup_test(b, se)
            assert close(q, REFERENCE[key], TOL_CLOSED)
            assert df == REFERENCE[key[:4] + ("q_between_df", "")]
            assert close(p, REFERENCE[key[:4] + ("q_between_p", "")], TOL_CLOSED)
            compared += 1
    assert compared >= 5


def test_pool_outcome_reports_the_reference_values():
    """The output table's PFT-DL / GLMM rows are metafor's back-transformed values (proportions 0-1)."""
    sarcoma = pd.read_csv(REF / "inputs" / "sarcoma_proportions.csv")
    rows = sarcoma.rename(columns={"study": "cohort_id"}).assign(study_id=lambda d: d.cohort_id, kind="proportion")
    # metafor_values.csv has predict(res, pi.type = "riley"): t on k - 2 df
    res = pool.pool_outcome(rows, "dcr", ["sts", "bone"], conventions=pool.Conventions(prediction_df="k-2"))
    est = res.estimates.set_index(["subgroup", "method"])
    for subgroup in ("overall", "sts", "bone"):
        row = est.loc[(subgroup, "PFT-DL")]
        for col, q in (("estimate", "est_bt"), ("ci_low", "ci_lb_bt"), ("ci_high", "ci_ub_bt"), ("tau2", "tau2"),
                       ("i2", "i2"), ("q", "q"), ("q_p", "q_p")):
            assert close(row[col], REFERENCE[("sarcoma", "dcr", subgroup, "PFT-DL", q, "")], TOL_CLOSED), (subgroup, col)
    assert close(est.loc[("overall", "PFT-DL"), "pi_low"], REFERENCE[("sarcoma", "dcr", "overall", "PFT-DL", "pi_lb_bt", "")], TOL_CLOSED)
    assert close(est.loc[("overall", "GLMM-ML"), "estimate"], REFERENCE[("sarcoma", "dcr", "overall", "GLMM-ML", "est_bt", "")], 1e-5)
    assert list(res.estimates.columns) == pool.ESTIMATE_COLUMNS
    tests = res.subgroup_tests.set_index("method")
    assert close(tests.loc["PFT-DL", "q_between"], REFERENCE[("sarcoma", "dcr", "overall", "SUBGROUP-PFT-DL", "q_between", "")], TOL_CLOSED)


# ---- hand computations on tiny examples ----

def test_freeman_tukey_by_hand():
    # 3/11: 0.5 * (asin(sqrt(3/12)) + asin(sqrt(4/12))) = 0.5 * (pi/6 + 0.6154797087)
    yi, vi = effects.proportion_effects([3], [11], "PFT")
    assert yi[0] == pytest.approx(0.5 * (math.pi / 6 + math.asin(math.sqrt(1 / 3))), abs=1e-15)
    assert vi[0] == pytest.approx(1 / 46, abs=1e-15)


def test_logit_correction_only_for_zero_cells():
    yi, vi = effects.proportion_effects([0, 2, 5], [10, 10, 5], "PLO")
    assert yi[0] == pytest.approx(math.log(0.5 / 10.5)) and vi[0] == pytest.approx(1 / 0.5 + 1 / 10.5)
    assert yi[1] == pytest.approx(math.log(2 / 8)) and vi[1] == pytest.approx(1 / 2 + 1 / 8)
    assert yi[2] == pytest.approx(math.log(5.5 / 0.5))


def test_dersimonian_laird_by_hand():
    yi, vi = np.array([0.1, 0.3, 0.6]), np.array([0.01, 0.02, 0.04])
    w = 1 / vi                                               # 100, 50, 25
    mean = (w * yi).sum() / w.sum()                          # 17/175
    q = (w * (yi - mean) ** 2).sum()
    tau2 = (q - 2) / (w.sum() - (w**2).sum() / w.sum())
    r = fit.rma(yi, vi, "DL")
    assert r.tau2 == pytest.approx(tau2, abs=1e-15)
    ws = 1 / (vi + tau2)
    assert r.b == pytest.approx((ws * yi).sum() / ws.sum(), abs=1e-15)
    assert r.se == pytest.approx(ws.sum() ** -0.5, abs=1e-15)
    assert r.q == pytest.approx(q, abs=1e-13)
    s2 = 2 * w.sum() / (w.sum() ** 2 - (w**2).sum())
    assert r.i2 == pytest.approx(100 * tau2 / (tau2 + s2), abs=1e-12)
    half = 12.706204736174707 * math.sqrt(r.se**2 + tau2)      # t(0.975, df = 1)
    assert (r.pi_lb, r.pi_ub) == pytest.approx((r.b - half, r.b + half), abs=1e-12)


def test_miller_harmonic_mean_back_transform_by_hand():
    n = np.array([11, 17, 21, 6])
    nh = 4 / (1 / n).sum()
    y = 0.6546706453239548                                   # PFT-DL pooled value (metafor)
    s = math.sin(2 * y)
    p = 0.5 * (1 - math.copysign(1, math.cos(2 * y)) * math.sqrt(1 - (s + (s - 1 / s) / nh) ** 2))
    assert transforms.ipft_hm(y, n) == pytest.approx(p, abs=1e-15)
    assert transforms.ipft_hm(-0.1, n) == 0.0 and transforms.ipft_hm(1.6, n) == 1.0


def test_exact_and_wilson_study_cis():
    lo, hi = effects.clopper_pearson([0, 3, 10], [10, 10, 10])
    assert (lo[0], hi[2]) == (0.0, 1.0)
    assert hi[0] == pytest.approx(1 - 0.025 ** (1 / 10), abs=1e-12)    # closed form when x = 0
    assert lo[1] == pytest.approx(0.06673951117773447, abs=1e-12)      # binom.test(3, 10)$conf.int
    assert hi[1] == pytest.approx(0.6524528500599972, abs=1e-12)
    wl, wh = effects.wilson([3], [10])
    assert (wl[0], wh[0]) == pytest.approx((0.10779126740630264, 0.6032218525388546), abs=1e-12)  # prop.test(3,10,correct=FALSE)


# ---- edge cases ----

def test_k1_returns_the_study_itself():
    r = fit.rma([0.4], [0.01], "DL")
    assert (r.k, r.b, r.se) == (1, 0.4, 0.1)
    assert all(math.isnan(v) for v in (r.tau2, r.i2, r.q, r.pi_lb, r.h2))
    rows = pd.DataFrame(dict(outcome="orr", subgroup="sts", cohort_id="a", study_id="a", events=[4], total=[20],
                             kind="proportion"))
    res = pool.pool_outcome(rows, "orr")
    est = res.estimates
    assert set(est.subgroup) == {"overall", "sts"}
    est = est[est.subgroup == "overall"].set_index("method")
    # every method, the GLMM included, reports the study itself: 4/20 with its exact CI
    # (R: binom.test(4, 20)$conf.int = 0.057333997050032788 0.436614002996668304), never a 0.5-corrected logit.
    assert (est["estimate"] == 0.2).all()
    assert np.allclose(est["ci_low"], 0.057333997050032788, atol=TOL_CLOSED) and np.allclose(est["ci_high"], 0.436614002996668304, atol=TOL_CLOSED)
    assert est[["tau2", "i2", "q", "pi_low", "pi_high"]].isna().all().all()
    flags = res.details.query("subgroup == 'overall'")["flags"]
    assert flags.str.startswith("single study, not pooled").all()
    assert res.studies["ci_low"].iloc[0] == pytest.approx(0.057333997050032788, abs=TOL_CLOSED)


def test_k2_has_no_prediction_interval():
    r = fit.rma(*effects.proportion_effects([3, 9], [15, 20], "PFT"), "DL")
    assert r.k == 2 and math.isnan(r.pi_lb) and not math.isnan(r.tau2)


def test_tau2_zero_when_homogeneous():
    yi, vi = effects.proportion_effects([10, 11, 9, 10], [50, 50, 50, 50], "PFT")
    for method in ("DL", "REML", "PM"):
        assert fit.rma(yi, vi, method).tau2 == 0.0
    assert fit.confint_tau2(yi, vi).tau2_lb == 0.0


def test_zero_events_everywhere_gives_no_glmm_but_other_methods():
    rows = pd.DataFrame(dict(outcome="ae", subgroup="sts", cohort_id=list("abc"), study_id=list("abc"),
                             events=[0, 0, 0], total=[10, 20, 15], kind="proportion"))
    res = pool.pool_outcome(rows, "ae")
    est = res.estimates.set_index(["subgroup", "method"])
    assert math.isnan(est.loc[("overall", "GLMM-ML"), "estimate"])
    flags = res.details.set_index(["subgroup", "method"])["flags"]
    assert flags[("overall", "GLMM-ML")] == ("left blank: no patient had the event, so the GLMM likelihood has no "
                                             "finite maximum")
    assert est.loc[("overall", "PFT-DL"), "estimate"] == 0.0
    assert est.loc[("overall", "PFT-DL"), "ci_high"] > 0
    assert "0.5 continuity correction applied (a;b;c)" in flags[("overall", "PLO-DL")]


def test_reml_scales_linearly():
    rng = np.random.default_rng(1)
    vi = rng.uniform(0.01, 0.1, 10_000)
    yi = rng.normal(0.3, np.sqrt(vi + 0.05))
    r = fit.rma(yi, vi, "REML")
    assert r.tau2 == pytest.approx(0.05, rel=0.1)


def test_hartung_knapp_with_identical_effects_matches_metafor():
    # Two cohorts both at exactly 50% (20/40, 11/22) have the same Freeman-Tukey value, so the
    # Hartung-Knapp factor is 0. metafor 3.8-1:
    #   rma(yi = c(0.78539816, 0.78539816), vi = c(1/(4*40.5), 1/(4*22.5)), method = "DL", test = "knha")
    #   b = 0.7853982, se = 0, zval = Inf, pval = 0, ci.lb = ci.ub = 0.7853982, tau2 = 0
    yi, vi = effects.proportion_effects(np.array([20.0, 11.0]), np.array([40.0, 22.0]), "PFT")
    r = fit.rma(yi, vi, "DL", "knha")
    assert r.b == pytest.approx(np.pi / 4, abs=1e-12) and r.se == 0.0
    assert r.stat == np.inf and r.pval == 0.0 and r.ci_lb == r.ci_ub == r.b and r.tau2 == 0.0


def test_subgroup_test_is_undefined_when_a_subgroup_has_zero_standard_error():
    q, df, p = fit.subgroup_test([0.3, 0.5], [0.1, 0.0])
    assert math.isnan(q) and math.isnan(p) and df == 1
    q, df, p = fit.subgroup_test([0.3, 0.5], [0.1, 0.1])
    assert q == pytest.approx(0.2**2 / (0.01 + 0.01), abs=1e-12) and df == 1
