"""Prediction-interval df, the Hartung-Knapp ad hoc rules and the I^2 convention against metafor.

Reference: tests/reference/make_reference_engine.R (``analyse_props``): ``predict(res, pi.type =
"t" | "riley")``, ``rma(test = "adhoc")``, and, where metafor has no option, the formula of the
meta documentation applied to metafor's fits (IQWiG's wider CI; I^2 from Q). Tolerances: closed
forms (DL) 1e-8, iterative (REML) 1e-6.
"""

import math

import numpy as np
import pytest

from singlearm import effects, fit

from engine_reference import load_engine_reference
from reference_data import proportion_datasets
from conftest import TOL_CLOSED, TOL_ITERATIVE

REF = load_engine_reference()
CASES = [c for c in proportion_datasets() if len(c[3]) >= 2]
PI = {"k-1": "k1", "k-2": "k2", "z": "z"}


def close(ours, theirs, tol):
    if math.isnan(theirs):
        return math.isnan(ours)
    return math.isclose(ours, theirs, rel_tol=tol, abs_tol=tol)


def check(res, base, tol, quantities=("b", "se", "ci_lb", "ci_ub", "zval", "pval", "tau2")):
    attrs = {"zval": "stat"}
    n = 0
    for q in quantities:
        ours = getattr(res, attrs.get(q, q))
        assert close(ours, REF[(*base, q, "")], tol), (base, q, ours, REF[(*base, q, "")])
        n += 1
    return n


@pytest.mark.parametrize("dataset,outcome,subgroup,studies", CASES, ids=[f"{d}-{o}-{s}" for d, o, s, _ in CASES])
def test_conventions_match_metafor(dataset, outcome, subgroup, studies):
    compared = 0
    k = len(studies)
    for measure in ("PFT", "PLO"):
        yi, vi = effects.proportion_effects(studies.events, studies.total, measure)
        for method in ("DL", "REML"):
            tol = TOL_CLOSED if method == "DL" else TOL_ITERATIVE
            for suffix, test, adhoc in (("", "z", "none"), ("-HKSJ", "knha", "none"), ("-HKSJ-SE", "knha", "se"),
                                        ("-HKSJ-CI", "knha", "ci")):
                base = (dataset, outcome, subgroup, f"{measure}-{method}{suffix}")
                for pdf, tag in PI.items():
                    r = fit.rma(yi, vi, method, test, prediction_df=pdf, hksj_adhoc=adhoc)
                    if pdf == "k-2":
                        compared += check(r, base, tol)
                    for side, attr in (("lb", "pi_lb"), ("ub", "pi_ub")):
                        key = (*base, f"pi_{side}_{tag}", "")
                        if key in REF:
                            assert close(getattr(r, attr), REF[key], tol), (key, getattr(r, attr), REF[key])
                            compared += 1
                        elif suffix != "-HKSJ-CI":   # (the IQWiG reference has the k-1 PI only)
                            # metafor would clamp the df to 1; we give no interval
                            assert pdf == "k-2" and k == 2 and math.isnan(getattr(r, attr))
                if adhoc != "none":
                    assert r.adhoc_changed == bool(REF[(*base, "changed", "")]), base
                    compared += 1
            r = fit.rma(yi, vi, method, i2="q")
            base = (dataset, outcome, subgroup, f"{measure}-{method}")
            assert close(r.i2, REF[(*base, "i2_q", "")], tol) and close(r.h2, REF[(*base, "h2_q", "")], tol)
            r = fit.rma(yi, vi, method)
            assert close(r.i2, REF[(*base, "i2", "")], tol) and close(r.h2, REF[(*base, "h2", "")], tol)
            compared += 4
    assert compared >= 100


def test_some_reference_fits_are_changed_by_each_ad_hoc_rule():
    # the comparison above is only a check of the rule if metafor's data include both outcomes
    for rule in ("SE", "CI"):
        changed = {v for k, v in REF.items() if k[3].endswith(f"HKSJ-{rule}") and k[4] == "changed"}
        assert changed == {0.0, 1.0}, rule


# ---- hand checks ----

def test_ad_hoc_se_rule_by_hand():
    # Three nearly equal effects: the Hartung-Knapp factor q is far below 1, so the "se" rule
    # uses the classic SE with t on 2 df; "none" keeps the (narrower) HKSJ SE.
    yi, vi = np.array([0.30, 0.31, 0.29]), np.array([0.01, 0.02, 0.015])
    w = 1 / vi                                                # tau2_DL = 0 here
    b = (w * yi).sum() / w.sum()
    se = w.sum() ** -0.5
    q = (w * (yi - b) ** 2).sum() / 2
    assert q < 1
    t2 = 4.3026527297494619                                   # R: qt(0.975, 2)
    plain = fit.rma(yi, vi, "DL", "knha", hksj_adhoc="none")
    assert plain.se == pytest.approx(se * math.sqrt(q), abs=1e-14) and not plain.adhoc_changed
    adhoc = fit.rma(yi, vi, "DL", "knha", hksj_adhoc="se")
    assert adhoc.se == pytest.approx(se, abs=1e-14) and adhoc.adhoc_changed
    assert adhoc.ci_ub == pytest.approx(b + t2 * se, abs=1e-12) and adhoc.df == 2
    # "ci": HK half-width t2 * se * sqrt(q) vs classic 1.96 * se; the classic one wins here
    wider = fit.rma(yi, vi, "DL", "knha", hksj_adhoc="ci")
    assert t2 * math.sqrt(q) < 1.959963984540054 and wider.adhoc_changed
    assert wider.ci_ub == pytest.approx(b + 1.959963984540054 * se, abs=1e-12) and wider.df == math.inf


def test_ad_hoc_rules_leave_heterogeneous_fits_alone():
    yi, vi = np.array([0.1, 0.5, 0.9, 0.2]), np.array([0.01, 0.02, 0.015, 0.01])
    plain = fit.rma(yi, vi, "DL", "knha")
    for rule in ("se", "ci"):
        r = fit.rma(yi, vi, "DL", "knha", hksj_adhoc=rule)
        assert not r.adhoc_changed and (r.se, r.ci_lb, r.pval) == (plain.se, plain.ci_lb, plain.pval)


def test_prediction_df_by_hand():
    yi, vi = np.array([0.1, 0.3, 0.6]), np.array([0.01, 0.02, 0.04])
    r = fit.rma(yi, vi, "DL")
    s = math.sqrt(r.se**2 + r.tau2)
    for pdf, crit, df in (("k-1", 4.3026527297494619, 2), ("k-2", 12.706204736174694, 1),
                          ("z", 1.959963984540054, math.inf)):
        p = fit.rma(yi, vi, "DL", prediction_df=pdf)
        assert (p.pi_lb, p.pi_ub) == pytest.approx((r.b - crit * s, r.b + crit * s), abs=1e-12)
        assert p.pi_df == df and p.prediction_df == pdf


def test_prediction_interval_minimum_k():
    yi, vi = effects.proportion_effects([3, 9], [15, 20], "PFT")
    assert math.isnan(fit.rma(yi, vi, prediction_df="k-2").pi_lb)
    assert not math.isnan(fit.rma(yi, vi, prediction_df="k-1").pi_lb)
    assert not math.isnan(fit.rma(yi, vi, prediction_df="z").pi_lb)
    assert math.isnan(fit.rma([0.2], [0.01], prediction_df="k-1").pi_lb)      # k = 1
    assert math.isnan(fit.rma(yi, vi, "EE", prediction_df="z").pi_lb)         # common effect: no PI


def test_i2_from_q_is_zero_below_df():
    yi, vi = effects.proportion_effects([10, 11, 9, 10], [50, 50, 50, 50], "PFT")
    r = fit.rma(yi, vi, "DL", i2="q")
    assert r.i2 == 0.0 and r.h2 == pytest.approx(r.q / 3, abs=1e-15) and r.i2_method == "q"


@pytest.mark.parametrize("kwargs,name", [(dict(prediction_df="k-3"), "prediction_df"),
                                         (dict(hksj_adhoc="IQWiG"), "hksj_adhoc"), (dict(i2="H"), "i2"),
                                         (dict(test="t"), "test")])
def test_unknown_convention_names_the_option_and_the_choices(kwargs, name):
    with pytest.raises(ValueError, match=rf"unknown {name} .*expected one of"):
        fit.rma([0.1, 0.2], [0.01, 0.01], **kwargs)
