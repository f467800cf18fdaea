"""The binomial-normal GLMM (random effects, common effect, t tests, moderators, heterogeneity tests,
prediction intervals, marginal proportion) against metafor 3.8-1 / lme4 1.1-31.

Reference: tests/reference/make_reference_engine.R (``analyse_props``, ``subgroup_tests`` and the
meta-regression block): ``rma.glmm(measure = "PLO", xi, ni, method = "ML" | "EE", test = "z" | "t",
mods = ~ ...)``, ``predict(g, pi.type = "t" | "riley")`` and, for the population-averaged
proportion, ``integrate()`` at metafor's estimates with lme4's deviance Hessian.

Tolerances: 1e-5 for the random-effects fits rather than 1e-6, because lme4 stops its optimiser
(bobyqa, then Nelder-Mead) at a looser tolerance than our Newton iteration; the quadrature is the
same (7 adaptive nodes) and our optimum is at least as high on that likelihood (test_fit.py).
tau^2 at twice that. The common-effect logistic regression is iterative too (IRLS, glm's
epsilon = 1e-8 on the deviance): 1e-6.
"""

import math

import numpy as np
import pandas as pd
import pytest

from singlearm import glmm, metareg

from engine_reference import coefficients, debruin2009, load_engine_reference
from reference_data import proportion_datasets
from conftest import TOL_ITERATIVE, TOL_BOUNDARY

# At tau^2 = 0 (boundary) lme4's SE is off by up to 1.4e-6 (sarcoma cr: 1.0036684 where the closed
# form sqrt(1/1 + 1/136) of the tau = 0 model, which is ours, gives 1.0036697). There b and se are
# checked against metafor's common-effect logistic regression instead, and what derives from se
# at TOL_BOUNDARY.
REF = load_engine_reference()
CASES = [c for c in proportion_datasets() if (c[0], c[1], c[2], "GLMM-ML", "b", "") in REF]
IDS = [f"{d}-{o}-{s}" for d, o, s, _ in CASES]
FIT = {"b": "b", "se": "se", "ci_lb": "ci_lb", "ci_ub": "ci_ub", "zval": "stat", "pval": "pval"}


def close(ours, theirs, tol):
    if math.isnan(theirs):
        return math.isnan(ours)
    return math.isclose(ours, theirs, rel_tol=tol, abs_tol=tol)


def compare(res, base, quantities, tol):
    for q, attr in quantities.items():
        ours, theirs = getattr(res, attr), REF[(*base, q, "")]
        assert close(ours, theirs, tol), (base, q, ours, theirs)
    return len(quantities)


@pytest.mark.parametrize("dataset,outcome,subgroup,studies", CASES, ids=IDS)
def test_random_effects_glmm_matches_metafor(dataset, outcome, subgroup, studies):
    base = (dataset, outcome, subgroup, "GLMM-ML")
    boundary = REF[(*base, "tau2", "")] < 1e-10
    tol = TOL_BOUNDARY if boundary else TOL_ITERATIVE
    zero_cell = bool(((studies.events == 0) | (studies.events == studies.total)).any())
    compared = 0
    for pdf, tag in (("k-2", "k2"), ("k-1", "k1"), ("z", "z")):
        g = glmm.glmm(studies.events, studies.total, prediction_df=pdf)
        assert g.converged and g.estimable and g.grad_norm < 1e-4 and g.iterations >= 1
        for side in ("lb", "ub"):
            key = (*base, f"pi_{side}_{tag}", "")
            if key in REF:
                assert close(getattr(g, f"pi_{side}"), REF[key], tol), (key, getattr(g, f"pi_{side}"))
                compared += 1
            else:
                assert pdf == "k-2" and len(studies) == 2 and math.isnan(getattr(g, f"pi_{side}"))
    compared += compare(g, base, {**FIT, "i2": "i2", "h2": "h2", "q_lrt": "q_lrt", "q_lrt_p": "q_lrt_p"}, tol)
    if boundary:
        compared += compare(g, (*base[:3], "GLMM-CE"), {"b": "b", "se": "se"}, TOL_ITERATIVE)
    assert close(g.tau2, REF[(*base, "tau2", "")], 2 * TOL_ITERATIVE)
    if zero_cell:   # metafor's QE.Wld there is an artefact of glm stopping short of an infinite logit
        assert math.isnan(g.q_wald)
    else:
        compared += compare(g, base, {"q_wald": "q_wald", "q_wald_p": "q_wald_p"}, TOL_ITERATIVE)
    assert compared >= 15


@pytest.mark.parametrize("dataset,outcome,subgroup,studies", CASES, ids=IDS)
def test_glmm_with_t_tests_matches_metafor(dataset, outcome, subgroup, studies):
    base = (dataset, outcome, subgroup, "GLMM-ML-T")
    g = glmm.glmm(studies.events, studies.total, test="t", prediction_df="k-1")
    tol = TOL_BOUNDARY if REF[(*base, "tau2", "")] < 1e-10 else TOL_ITERATIVE
    compare(g, base, FIT, tol)
    assert g.df == len(studies) - 1
    assert close(g.pi_lb, REF[(*base, "pi_lb_k1", "")], tol) and close(g.pi_ub, REF[(*base, "pi_ub_k1", "")], tol)


@pytest.mark.parametrize("dataset,outcome,subgroup,studies", CASES, ids=IDS)
def test_common_effect_glmm_matches_metafor(dataset, outcome, subgroup, studies):
    base = (dataset, outcome, subgroup, "GLMM-CE")
    g = glmm.glmm(studies.events, studies.total, method="EE")
    compare(g, base, {**FIT, "q_lrt": "q_lrt", "q_lrt_p": "q_lrt_p", "loglik": "loglik"}, TOL_ITERATIVE)
    assert g.tau2 == 0.0 and math.isnan(g.pi_lb)
    # intercept-only logistic regression in closed form: logit of the pooled proportion
    x, n = studies.events.sum(), studies.total.sum()
    assert g.b == pytest.approx(math.log(x / (n - x)), abs=1e-12)
    assert g.se == pytest.approx(math.sqrt(1 / x + 1 / (n - x)), abs=1e-12)


@pytest.mark.parametrize("dataset,outcome,subgroup,studies", CASES, ids=IDS)
def test_marginal_proportion_matches_integrate_and_lme4_hessian(dataset, outcome, subgroup, studies):
    base = (dataset, outcome, subgroup, "GLMM-ML-MARGINAL")
    m = glmm.marginal_proportion(glmm.glmm(studies.events, studies.total))
    for q in ("est", "ci_lb", "ci_ub"):
        ours = m.estimate if q == "est" else getattr(m, q)
        assert close(ours, REF[(*base, q, "")], TOL_ITERATIVE), (base, q, ours)
    # the SE is a second derivative at an optimum known to ~1e-5 on either side: 1e-4
    assert close(m.logit_se, REF[(*base, "logit_se", "")], 1e-4), (m.logit_se, REF[(*base, "logit_se", "")])


def test_marginal_proportion_is_closer_to_one_half_than_the_conditional_one():
    # Jensen: for a median study below 50%, averaging over tau pulls the mean toward 1/2
    g = glmm.glmm([2, 3, 10, 1, 8], [40, 30, 35, 50, 20])
    m = glmm.marginal_proportion(g)
    assert g.tau2 > 0.1 and m.conditional < m.estimate < 0.5
    assert m.ci_lb < m.estimate < m.ci_ub and m.ci_method.startswith("delta method")


def test_marginal_equals_conditional_without_heterogeneity():
    g = glmm.glmm([10, 11, 9, 10], [50, 50, 50, 50])
    m = glmm.marginal_proportion(g)
    assert g.tau2 < 1e-10 and m.estimate == pytest.approx(m.conditional, abs=1e-9)


SUBGROUP_CASES = [(o, part) for o, part in pd.read_csv(
    __import__("reference_data").REF / "inputs" / "sarcoma_proportions.csv").groupby("outcome")
    if part.subgroup.nunique() >= 2]


@pytest.mark.parametrize("outcome,part", SUBGROUP_CASES, ids=[o for o, _ in SUBGROUP_CASES])
def test_glmm_with_a_subgroup_moderator_matches_metafor(outcome, part):
    base = ("sarcoma", outcome, "overall", "SUBGROUP-GLMM")
    d = metareg.design(part.reset_index(drop=True), ["subgroup"])
    g = glmm.glmm(part.events, part.total, mods=d)
    if (*base, "qm", "") not in REF:   # metafor: more parameters than studies
        assert not g.estimable and "parameters" in g.note
        return
    empty = part.groupby("subgroup").apply(lambda s: s.events.sum() in (0, s.total.sum()))
    if empty.any():   # separation: metafor returns logits near -25 with SE ~ 400 and a QM near 0
        assert not g.estimable and "separation" in g.note
        assert abs(REF[(*base, "b", "intrcpt")]) > 20 and REF[(*base, "se", "intrcpt")] > 100
        return
    assert g.converged
    for q, col in (("b", "estimate"), ("se", "se")):
        _, theirs = coefficients(REF, *base, q)
        np.testing.assert_allclose(g.coefficients[col], theirs, rtol=TOL_ITERATIVE, atol=TOL_ITERATIVE)
    for q in ("qm", "qm_df", "qm_p", "q_lrt", "q_lrt_p"):
        assert close(getattr(g, q), REF[(*base, q, "")], TOL_ITERATIVE), (q, getattr(g, q), REF[(*base, q, "")])
    assert close(g.tau2, REF[(*base, "tau2", "")], 2 * TOL_ITERATIVE)


@pytest.mark.parametrize("mods", [["scq", "ethnicity"], ["scq"]])
@pytest.mark.parametrize("test", ["z", "t"])
def test_glmm_meta_regression_matches_metafor(mods, test):
    deb = debruin2009()
    base = ("debruin2009", "PLO", "+".join(mods), "METAREG-GLMM" + ("-T" if test == "t" else ""))
    g = glmm.glmm(deb.events, deb.total, mods=metareg.design(deb, mods), test=test)
    assert g.converged
    for q, col in (("b", "estimate"), ("se", "se"), ("zval", "stat"), ("pval", "pval"), ("ci_lb", "ci_lb"),
                   ("ci_ub", "ci_ub")):
        _, theirs = coefficients(REF, *base, q)
        np.testing.assert_allclose(g.coefficients[col], theirs, rtol=TOL_ITERATIVE, atol=TOL_ITERATIVE, err_msg=q)
    for q in ("qm", "qm_df", "qm_p", "i2", "h2", "q_lrt", "q_lrt_p", "q_wald"):
        assert close(getattr(g, q), REF[(*base, q, "")], TOL_ITERATIVE), (q, getattr(g, q), REF[(*base, q, "")])
    assert close(g.tau2, REF[(*base, "tau2", "")], 2 * TOL_ITERATIVE)


# ---- edge cases ----

@pytest.mark.parametrize("events", [[0, 0, 0], [10, 20, 15]])
def test_no_events_or_only_events_are_not_estimable(events):
    # metafor 3.8-1: rma.glmm(measure="PLO", xi=c(0,0,0), ni=c(10,20,15), method="ML")
    #   -> Error: Cannot fit ML model
    for method in ("ML", "EE"):
        g = glmm.glmm(events, [10, 20, 15], method=method)
        assert not g.estimable and not g.converged and math.isnan(g.b) and "not estimable" in g.note
    assert math.isnan(glmm.marginal_proportion(glmm.glmm(events, [10, 20, 15])).estimate)


def test_non_convergence_is_flagged_not_returned_silently():
    g = glmm.glmm([2, 3, 10, 1, 8], [40, 30, 35, 50, 20], max_iter=1)
    assert not g.converged and g.iterations == 1 and "did not converge" in g.note


def test_two_studies_give_a_k1_prediction_interval_only():
    g = glmm.glmm([3, 9], [15, 20], prediction_df="k-1")
    assert np.isfinite(g.pi_lb) and g.pi_df == 1
    assert math.isnan(glmm.glmm([3, 9], [15, 20], prediction_df="k-2").pi_lb)


def test_unknown_glmm_options():
    with pytest.raises(ValueError, match="unknown method 'REML'"):
        glmm.glmm([3, 9], [15, 20], method="REML")
    with pytest.raises(ValueError, match="unknown test 'knha'"):
        glmm.glmm([3, 9], [15, 20], test="knha")
