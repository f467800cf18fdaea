"""Meta-regression (rma with moderators) against metafor 3.8-1, hand formulas and bad moderators.

Reference: tests/reference/make_reference_engine.R (``metareg``): ``rma(yi, vi, mods = ~ scq +
ethnicity | ~ scq, method = "DL" | "REML" | "EE", test = "z" | "knha")`` on metadat's
dat.debruin2009 (logit and Freeman-Tukey proportions) and ``~ ablat + alloc`` on dat.bcg (log risk
ratios); ``tau2_null`` is ``rma(yi, vi, method = ...)$tau2``. Tolerances: DL / EE closed forms 1e-8,
REML 1e-6.
"""

import math

import numpy as np
import pandas as pd
import pytest

from singlearm import effects, fit, metareg

from engine_reference import bcg, coefficients, debruin2009, load_engine_reference
from conftest import TOL_CLOSED, TOL_ITERATIVE

REF = load_engine_reference()
COEF = {"b": "estimate", "se": "se", "zval": "stat", "pval": "pval", "ci_lb": "ci_lb", "ci_ub": "ci_ub"}
MODEL = ("qm", "qm_df", "qm_p", "qe", "qe_df", "qe_p", "tau2", "tau2_null", "r2", "i2", "h2")


def _cases():
    deb = debruin2009()
    out = []
    for measure in ("PLO", "PFT"):
        yi, vi = effects.proportion_effects(deb.events, deb.total, measure)
        out.append(("debruin2009", measure, "scq+ethnicity", yi, vi, deb, ["scq", "ethnicity"]))
        out.append(("debruin2009", measure, "scq", yi, vi, deb, ["scq"]))
    b = bcg()
    out.append(("bcg", "RR", "ablat+alloc", b.yi.to_numpy(), b.vi.to_numpy(), b, ["ablat", "alloc"]))
    return out


CASES = [(c, method, test) for c in _cases() for method in ("DL", "REML", "EE") for test in ("z", "knha")]


@pytest.mark.parametrize("case,method,test", CASES, ids=[f"{c[0]}-{c[1]}-{c[2]}-{m}-{t}" for c, m, t in CASES])
def test_meta_regression_matches_metafor(case, method, test):
    dataset, outcome, mods, yi, vi, data, columns = case
    tol = TOL_ITERATIVE if method == "REML" else TOL_CLOSED
    res = metareg.meta_regression(yi, vi, metareg.design(data, columns), method, test)
    fit_id = f"METAREG-{method}" + ("-HKSJ" if test == "knha" else "")
    base = (dataset, outcome, mods, fit_id)
    names, _ = coefficients(REF, *base, "b")
    assert len(names) == len(res.coefficients) >= 2
    compared = 0
    for q, col in COEF.items():
        _, theirs = coefficients(REF, *base, q)
        np.testing.assert_allclose(res.coefficients[col], theirs, rtol=tol, atol=tol, err_msg=f"{base} {q}")
        compared += len(theirs)
    for q in MODEL:
        theirs = REF[(*base, q, "")]
        assert math.isclose(getattr(res, q), theirs, rel_tol=tol, abs_tol=tol), (base, q, getattr(res, q), theirs)
        compared += 1
    assert compared >= 6 * 2 + len(MODEL)


def test_reference_level_names_follow_the_data():
    deb = debruin2009()
    d = metareg.design(deb, ["scq", "ethnicity"])
    assert d.names == ("intrcpt", "scq", "ethnicity=other") and d.reference == {"ethnicity": "caucasian"}
    d = metareg.design(deb, ["ethnicity"], reference={"ethnicity": "other"})
    assert d.names == ("intrcpt", "ethnicity=caucasian")
    np.testing.assert_array_equal(d.x[:, 1], (deb.ethnicity == "caucasian").to_numpy(float))


def test_one_binary_moderator_by_hand():
    # EE meta-regression on one indicator = two separate common-effect means; QM is their Wald test
    yi, vi = np.array([0.1, 0.3, 0.6, 0.8]), np.array([0.01, 0.02, 0.04, 0.02])
    g = pd.DataFrame({"arm": ["a", "a", "b", "b"]})
    res = metareg.meta_regression(yi, vi, metareg.design(g, ["arm"]), "EE")
    a, b = fit.rma(yi[:2], vi[:2], "EE"), fit.rma(yi[2:], vi[2:], "EE")
    assert res.coefficients.estimate.tolist() == pytest.approx([a.b, b.b - a.b], abs=1e-14)
    assert res.qm == pytest.approx((b.b - a.b) ** 2 / (a.se**2 + b.se**2), abs=1e-12)
    assert res.qe == pytest.approx(a.q + b.q, abs=1e-12)


@pytest.mark.parametrize("frame,columns,message", [
    (pd.DataFrame({"x": [1.0, 1.0, 1.0]}), ["x"], r"'x' is constant within the data \(value 1 in all 3"),
    (pd.DataFrame({"g": ["a", "a", "a"]}), ["g"], r"'g' is constant within the data \(level 'a'"),
    (pd.DataFrame({"x": [1.0, 2.0, 3.0]}), ["y"], r"'y' is not a column of the study table"),
    (pd.DataFrame({"x": [1.0, None, 3.0]}), ["x"], r"'x' of the study table has missing values at rows \[1\]"),
    (pd.DataFrame({"x": [1.0, 2.0, 3.0], "z": [2.0, 4.0, 6.0]}), ["x", "z"], r"collinear"),
])
def test_bad_moderators_stop_with_one_clear_message(frame, columns, message):
    with pytest.raises(ValueError, match=message):
        metareg.design(frame, columns)


def test_unknown_reference_level_names_the_levels():
    with pytest.raises(ValueError, match=r"reference level 'c' of moderator 'g'.*'a', 'b'"):
        metareg.design(pd.DataFrame({"g": ["a", "b", "a"]}), ["g"], reference={"g": "c"})


def test_too_few_studies_for_the_coefficients():
    d = metareg.design(pd.DataFrame({"x": [1.0, 2.0]}), ["x"])
    with pytest.raises(ValueError, match="needs at least 3 studies"):
        metareg.meta_regression([0.1, 0.2], [0.01, 0.01], d)


def test_r2_is_zero_without_heterogeneity_to_explain():
    yi, vi = effects.proportion_effects([10, 11, 9, 10], [50, 50, 50, 50], "PFT")
    res = metareg.meta_regression(yi, vi, metareg.design(pd.DataFrame({"x": [1.0, 2, 3, 4]}), ["x"]), "DL")
    assert res.tau2_null == 0.0 and res.r2 == 0.0 and res.tau2 == 0.0
