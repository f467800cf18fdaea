"""Leave-one-out, influence diagnostics and Baujat coordinates against metafor 3.8-1.

Reference values: tests/reference/metafor_values.csv, written by tests/reference/make_reference.R
(``write_sensitivity``), for every proportion data set with k >= 3 pooled as PFT-DL (and PLO-DL
for pritz1997). The R calls, with ``res <- rma(yi, vi, method="DL",
control=list(threshold=1e-12, tol=1e-12, maxiter=1000))``:

    l   <- leave1out(res)        # LOO-*:    loo_b, loo_se, loo_ci_lb, loo_ci_ub, loo_tau2, loo_i2, loo_q
                                 #           loo_*_bt back-transformed with ni[-i] (the k-1 pooled n)
    inf <- influence(res)$inf    # INF-*:    rstudent, dffits, cook.d, cov.r, tau2.del, QE.del, hat, weight
    bj  <- baujat(res)           # BAUJAT-*: x, y
"""


import numpy as np
import pandas as pd
import pytest

from singlearm import fit, sensitivity
from singlearm.effects import proportion_effects
from singlearm.transforms import ilogit, ipft_hm

from reference_data import proportion_inputs, reference_table
from conftest import TOL_CLOSED, TOL_ITERATIVE


# ---------------------------------------------------------------------------------------------
# reference data
# ---------------------------------------------------------------------------------------------



REF = reference_table()
INPUTS = proportion_inputs()

LOO_MAP = {"loo_b": "b", "loo_se": "se", "loo_ci_lb": "ci_lb", "loo_ci_ub": "ci_ub", "loo_tau2": "tau2",
           "loo_i2": "i2", "loo_q": "q"}
LOO_BT = {"loo_est_bt": "b", "loo_ci_lb_bt": "ci_lb", "loo_ci_ub_bt": "ci_ub"}
INF_MAP = {"rstudent": "rstudent", "dffits": "dffits", "cook_d": "cook_d", "cov_r": "cov_r",
           "tau2_del": "tau2_del", "qe_del": "qe_del", "hat": "hat", "weight": "weight"}
BAUJAT_MAP = {"baujat_x": "x", "baujat_y": "y"}
FIT_PREFIXES = {"LOO": {**LOO_MAP, **LOO_BT}, "INF": INF_MAP, "BAUJAT": BAUJAT_MAP}

OURS = REF[REF.fit.str.match(r"^(LOO|INF|BAUJAT)-")]
GROUPS = [(key, rows) for key, rows in OURS.groupby(["dataset", "outcome", "subgroup", "fit", "quantity"],
                                                    sort=False)]
# Every study of every k >= 3 data set times 7 + 3 + 8 + 2 quantities; far above this floor.
MIN_COMPARED = 2000


def _effects(key, measure):
    d = INPUTS[key]
    yi, vi = proportion_effects(d.events.to_numpy(), d.total.to_numpy(), measure)
    return d, yi, vi


_CACHE = {}


def _ours(key, fit_id):
    """Our leave-one-out / influence / Baujat frame for a reference fit id like 'LOO-PFT-DL'."""
    if (key, fit_id) not in _CACHE:
        kind, measure, method = fit_id.split("-")
        d, yi, vi = _effects(key, measure)
        func = {"LOO": sensitivity.leave_one_out, "INF": sensitivity.influence, "BAUJAT": sensitivity.baujat}[kind]
        _CACHE[(key, fit_id)] = (d, func(yi, vi, method=method, labels=d.study))
    return _CACHE[(key, fit_id)]


def _assert_close(ours, ref, tol, what):
    ours = np.asarray(ours, dtype=float)
    ref = np.asarray(ref, dtype=float)
    both_nan = np.isnan(ours) & np.isnan(ref)
    dev = np.where(both_nan, 0.0, np.abs(ours - ref))
    bound = tol * np.fmax(1.0, np.abs(ref))
    assert np.all(both_nan | (dev <= bound)), \
        f"{what}: max deviation {np.nanmax(dev):.3g} (tolerance {tol:g}); ours {ours}, metafor {ref}"
    return float(np.nanmax(dev)) if dev.size else 0.0


# ---------------------------------------------------------------------------------------------
# every reference value
# ---------------------------------------------------------------------------------------------


def test_reference_is_complete_and_fully_mapped():
    """No value can be skipped silently: each reference quantity has a mapping, and the
    parametrised comparisons below cover every row."""
    assert len(OURS) >= MIN_COMPARED, f"only {len(OURS)} reference values for LOO/INF/BAUJAT"
    assert sum(len(rows) for _, rows in GROUPS) == len(OURS)
    for (_, _, _, fit_id, quantity), _ in GROUPS:
        assert quantity in FIT_PREFIXES[fit_id.split("-")[0]], f"unmapped reference quantity {fit_id}/{quantity}"
    assert set(OURS.fit) == {"LOO-PFT-DL", "INF-PFT-DL", "BAUJAT-PFT-DL", "LOO-PLO-DL", "INF-PLO-DL",
                             "BAUJAT-PLO-DL"}


def test_every_dataset_with_three_studies_has_a_reference():
    expected = {key for key, d in INPUTS.items() if len(d) >= 3}
    referenced = {tuple(k) for k in OURS[["dataset", "outcome", "subgroup"]].drop_duplicates().to_numpy()}
    assert referenced == expected
    assert {"miller1978", "pritz1997", "zero_event", "all_event", "tau0", "sarcoma"} <= {k[0] for k in referenced}


@pytest.mark.parametrize("group", [rows for _, rows in GROUPS], ids=["/".join(k) for k, _ in GROUPS])
def test_matches_metafor(group):
    dataset, outcome, subgroup, fit_id, quantity = group.iloc[0][["dataset", "outcome", "subgroup", "fit",
                                                                  "quantity"]]
    key = (dataset, outcome, subgroup)
    d, frame = _ours(key, fit_id)
    kind, measure, _ = fit_id.split("-")
    assert len(group) == len(d), "one reference value per study"
    col = FIT_PREFIXES[kind][quantity]
    values = frame.loc[group.study, col].to_numpy()
    if quantity in LOO_BT:
        # Row i pooled the k - 1 studies other than i: back-transform with their n.
        pos = [d.index[d.study == s][0] for s in group.study]
        if measure == "PFT":
            values = np.array([float(ipft_hm(v, np.delete(d.total.to_numpy(), i))) for v, i in zip(values, pos)])
        else:
            values = ilogit(values)
    _assert_close(values, group.value, TOL_CLOSED, "/".join([dataset, outcome, subgroup, fit_id, quantity]))


# ---------------------------------------------------------------------------------------------
# against the package's own fit, and hand formulas
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method,tol", [("DL", TOL_CLOSED), ("EE", TOL_CLOSED), ("REML", TOL_ITERATIVE),
                                        ("PM", TOL_ITERATIVE)])
@pytest.mark.parametrize("test", ["z", "knha"])
def test_equals_k_separate_fits(method, tol, test):
    d, yi, vi = _effects(("pritz1997", "orr", "overall"), "PLO")
    loo = sensitivity.leave_one_out(yi, vi, method=method, test=test)
    for i in range(len(yi)):
        r = fit.rma(np.delete(yi, i), np.delete(vi, i), method=method, test=test)
        for col in ("b", "se", "ci_lb", "ci_ub", "tau2", "q", "i2", "h2", "pval"):
            _assert_close(loo[col].iloc[i], getattr(r, col), tol, f"{method} {col} {i}")


def test_influence_hand_formulas():
    """rstudent, dffits, cook.d, cov.r from the deletion fits by the textbook formulas."""
    d, yi, vi = _effects(("miller1978", "orr", "overall"), "PFT")
    full = fit.rma(yi, vi)
    inf = sensitivity.influence(yi, vi)
    for i in range(len(yi)):
        r = fit.rma(np.delete(yi, i), np.delete(vi, i))
        h = (1 / (vi[i] + full.tau2)) / (1 / (vi + full.tau2)).sum()
        _assert_close(inf.rstudent[i], (yi[i] - r.b) / np.sqrt(vi[i] + r.tau2 + r.se**2), TOL_CLOSED, "rstudent")
        _assert_close(inf.dffits[i], (full.b - r.b) / np.sqrt(h * (vi[i] + r.tau2)), TOL_CLOSED, "dffits")
        _assert_close(inf.cook_d[i], (full.b - r.b) ** 2 / full.se**2, TOL_CLOSED, "cook_d")
        _assert_close(inf.cov_r[i], r.se**2 / full.se**2, TOL_CLOSED, "cov_r")
        _assert_close(inf.weight[i], 100 * h, TOL_CLOSED, "weight")


def test_loo_back_transform_uses_the_remaining_studies_harmonic_mean():
    """loo_est_bt in metafor's reference is ipft_hm(b_(-i), n_(-i)); with all k n it is not."""
    key = ("miller1978", "orr", "overall")
    d, yi, vi = _effects(key, "PFT")
    loo = sensitivity.leave_one_out(yi, vi, labels=d.study)
    ref = REF[(REF.dataset == key[0]) & (REF.fit == "LOO-PFT-DL") & (REF.quantity == "loo_est_bt")]
    n = d.total.to_numpy()
    k_minus_1 = [float(ipft_hm(loo.b.iloc[i], np.delete(n, i))) for i in range(len(n))]
    all_k = [float(ipft_hm(loo.b.iloc[i], n)) for i in range(len(n))]
    _assert_close(k_minus_1, ref.value, TOL_CLOSED, "loo_est_bt with k-1 n")
    assert np.max(np.abs(np.array(all_k) - ref.value.to_numpy())) > 1e-4, "all-k harmonic mean should differ"


# ---------------------------------------------------------------------------------------------
# edge cases
# ---------------------------------------------------------------------------------------------


def test_tau0_constant_se():
    """Equal n: every study has the same SE and tau^2 = 0 in every deletion fit."""
    d, yi, vi = _effects(("tau0", "orr", "overall"), "PFT")
    loo = sensitivity.leave_one_out(yi, vi)
    assert (loo.tau2 == 0).all() and (loo.i2 == 0).all()
    np.testing.assert_allclose(loo.se, np.sqrt(vi[0] / 3), rtol=1e-14)
    inf = sensitivity.influence(yi, vi)
    np.testing.assert_allclose(inf.cov_r, 4 / 3, rtol=1e-12)
    np.testing.assert_allclose(inf.weight, 25, rtol=1e-12)


def test_k3_edge():
    """k = 3: each deletion fit pools two studies (tau^2 on 1 df)."""
    yi, vi = np.array([0.3, 0.6, 0.5]), np.array([0.01, 0.02, 0.03])
    loo = sensitivity.leave_one_out(yi, vi)
    for i in range(3):
        y, v = np.delete(yi, i), np.delete(vi, i)
        w = 1 / v
        q = (w * (y - (w * y).sum() / w.sum()) ** 2).sum()
        tau2 = max(0.0, (q - 1) / (w.sum() - (w**2).sum() / w.sum()))
        wr = 1 / (v + tau2)
        _assert_close(loo.b[i], (wr * y).sum() / wr.sum(), TOL_CLOSED, "b")
        _assert_close(loo.tau2[i], tau2, TOL_CLOSED, "tau2")
        _assert_close(loo.q[i], q, TOL_CLOSED, "q")
    # metafor 3.8-1, influence(rma(c(.3,.6,.5), c(.01,.02,.03), method="DL", test="knha"))$inf
    inf = sensitivity.influence(yi, vi, test="knha")
    _assert_close(inf.rstudent, [-3.9196475, 1.5075567, 0.2324953], 1e-7, "knha rstudent")
    _assert_close(inf.dffits, [-3.97361003, 1.14612376, 0.05860375], 1e-7, "knha dffits")
    _assert_close(inf.cook_d, [1.619959504, 0.922117899, 0.005496789], 1e-8, "knha cook_d")
    _assert_close(inf.cov_r, [0.2713738, 0.8480433, 2.5127208], 1e-7, "knha cov_r")


def test_k2_single_study_deletion_fits():
    """k = 2: each deletion fit is the other study alone; no heterogeneity is estimated."""
    yi, vi = np.array([0.3, 0.6]), np.array([0.01, 0.02])
    loo = sensitivity.leave_one_out(yi, vi)
    _assert_close(loo.b, [0.6, 0.3], 1e-15, "b")
    _assert_close(loo.se, np.sqrt([0.02, 0.01]), 1e-15, "se")
    assert loo.tau2.isna().all() and loo.q.isna().all()
    # metafor: influence(rma(c(.3,.6), c(.01,.02), method="DL"))$inf
    inf = sensitivity.influence(yi, vi)
    _assert_close(inf.rstudent, [-np.sqrt(3), np.sqrt(3)], 1e-12, "rstudent")
    _assert_close(inf.cook_d, [1.25, 0.8], 1e-12, "cook_d")


def test_refuses_bad_input():
    with pytest.raises(ValueError, match="at least 2"):
        sensitivity.leave_one_out([0.1], [0.01])
    with pytest.raises(ValueError, match="vi <= 0"):
        sensitivity.influence([0.1, 0.2, 0.3], [0.01, 0.0, 0.02])
    with pytest.raises(ValueError, match="unknown method"):
        sensitivity.baujat([0.1, 0.2, 0.3], [0.01, 0.01, 0.02], method="ML")


def test_blocked_rows_match_single_block(monkeypatch):
    """Large k is processed in row blocks; the blocks must give the same answer."""
    rng = np.random.default_rng(20240601)
    vi = rng.uniform(0.005, 0.05, 60)
    yi = rng.normal(0.4, np.sqrt(vi + 0.01))
    whole = sensitivity.influence(yi, vi)
    monkeypatch.setattr(sensitivity, "_BLOCK_CELLS", 7 * 60)
    blocked = sensitivity.influence(yi, vi)
    pd.testing.assert_frame_equal(whole, blocked, rtol=1e-13)
