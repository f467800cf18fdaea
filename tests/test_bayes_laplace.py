"""The Laplace approximation of the binomial-normal posterior (large k) against the exact grid.

Where both are computable (k = 60) the Laplace posterior must agree with the exact grid posterior
(:func:`singlearm.bayes.exact.exact_bn`, itself checked against a brute-force grid in
test_bayes_exact.py) on every reported number, under the main prior and every sensitivity set.

Tolerance, and why: the Laplace step replaces mu | tau by a normal, whose error in a quantile is of
the order of mu's conditional skewness times its SD, O(SD / sqrt(k)): at k = 60 with a posterior SD
of the pooled rate of about 0.011 that bound is about 1.4e-3. Observed: at most 7e-5. TOL_RATE =
2.5e-4 keeps a margin of 3 over the observed error and is a quarter of the 0.1 percentage point the
tables print. A tail probability P(rate > t) two SDs out is where the normal conditional's skewness
error shows most (observed 2.5e-4 at P = 0.015): TOL_PROB = 1e-3, the last digit the tables print.
tau's posterior is integrated by quadrature in both, so its quantiles agree far closer
(observed 1e-5 relative; TOL_TAU = 1e-3 relative).
"""

import numpy as np
import pandas as pd
import pytest

from singlearm.bayes import exact, laplace, priors, stage
from singlearm.bayes import summaries as S

TOL_RATE = 2.5e-4   # reporting scale (rates), see the module docs
TOL_TAU = 1e-3      # relative, tau quantiles
TOL_PROB = 1e-3     # P(rate > t | data), see the module docs
TOL_DERIV = 1e-5    # relative, quadrature derivatives against central differences
EXPIT = priors.back_transform("expit")
MAIN = priors.PriorSet("main", priors.Normal(0.0, 2.5), priors.HalfNormal(1.0))


def simulated(k, seed):
    rng = np.random.default_rng(seed)
    n = rng.integers(15, 120, k)
    x = rng.binomial(n, 1 / (1 + np.exp(-(-1.2 + 0.5 * rng.standard_normal(k)))))
    return x, n


@pytest.fixture(scope="module")
def k60():
    x, n = simulated(60, 1)
    centre = float(np.log((x.sum() + 0.5) / (n.sum() - x.sum() + 0.5)))
    sets = priors.sensitivity_sets(MAIN, centre=centre)
    return sets, exact.exact_bn(x, n, sets), laplace.laplace_bn(x, n, sets)


RATE_FIELDS = ["estimate", "mean", "ci_low", "ci_high", "hpd_low", "hpd_high", "pi_low", "pi_high",
               "pop_median", "pop_mean", "pop_low", "pop_high"]


def test_laplace_matches_the_exact_grid_at_k60(k60):
    sets, ex, la = k60
    for prior, e, a in zip(sets, ex, la):
        se = S.summarise_exact(e, EXPIT, population=True, thresholds=[0.2, 0.25])
        sa = S.summarise_exact(a, EXPIT, population=True, thresholds=[0.2, 0.25])
        for f in RATE_FIELDS:
            assert getattr(sa, f) == pytest.approx(getattr(se, f), abs=TOL_RATE), (prior.label, f)
        for f in ("tau_low", "tau_median", "tau_high"):
            assert getattr(sa, f) == pytest.approx(getattr(se, f), rel=TOL_TAU), (prior.label, f)
        for t in se.probabilities:
            assert sa.probabilities[t] == pytest.approx(se.probabilities[t], abs=TOL_PROB), (prior.label, t)


def test_tau_overlap_matches_the_exact_grid(k60):
    _, ex, la = k60
    for e, a in zip(ex, la):
        assert a.tau_prior_overlap() == pytest.approx(e.tau_prior_overlap(), abs=5e-3)


def test_tau_overlap_uses_the_prior_as_it_is_on_a_window():
    """At k = 1,000 the u grid spans only tau's posterior window, which holds a sliver of tau's
    prior: the overlap cannot exceed the prior's mass there (renormalising the prior on the window
    would make it nearly 1 - the total variation between two near-uniform densities)."""
    x, n = simulated(1000, 2)
    post = laplace.laplace_bn(x, n, MAIN)
    assert post.u[0] > 0
    window_mass = MAIN.tau.cdf(post.tau[-1]) - MAIN.tau.cdf(post.tau[0])
    assert window_mass < 0.2
    assert 0 < post.tau_prior_overlap() <= window_mass


def test_quadrature_derivatives_match_central_differences():
    """dl/dmu and d2l/dmu2 against central differences of the exact grid's own likelihood, with
    zero-event and all-event studies on both sides of tau = 1 (the step-integral branch)."""
    x = np.array([0, 3, 12, 20, 0, 7])
    n = np.array([25, 40, 30, 20, 8, 60])
    mu = np.array([-2.0, -1.0, 0.5, -0.3, 1.2])
    tau = np.array([0.3, 0.8, 1.5, 2.5, 0.0])
    ll, d1, d2 = laplace.loglik_derivatives(x, n, mu, tau)
    h = 1e-4
    f = [exact.log_lik_bn(x, n, mu + s * h, tau) for s in (-1, 0, 1)]
    assert ll == pytest.approx(f[1], rel=1e-10)
    assert d1 == pytest.approx((f[2] - f[0]) / (2 * h), rel=TOL_DERIV, abs=1e-6)
    assert d2 == pytest.approx((f[2] - 2 * f[1] + f[0]) / h**2, rel=TOL_DERIV * 100, abs=1e-4)


def test_stage_flags_laplace_fits_and_keeps_others_exact():
    x, n = simulated(8, 3)
    rows = [{"fit": "orr|overall", "outcome": "orr", "subgroup": "overall", "kind": "proportion", "study": f"s{i}",
             "events": x[i], "total": n[i], "yi": np.nan, "sei": np.nan} for i in range(8)]
    rows += [{"fit": "orr|one", "outcome": "orr", "subgroup": "one", "kind": "proportion", "study": "s0",
              "events": x[0], "total": n[0], "yi": np.nan, "sei": np.nan}]
    rows += [{"fit": "median_pfs|overall", "outcome": "median_pfs", "subgroup": "overall", "kind": "median",
              "study": f"s{i}", "events": np.nan, "total": np.nan, "yi": 1.8 + 0.1 * i, "sei": 0.2}
             for i in range(8)]
    fits = stage.fits_from_frame(pd.DataFrame(rows), "log")
    pri = {"proportion": {"mu": {"dist": "normal", "mu": 0.0, "sigma": 2.5},
                          "tau": {"dist": "halfnormal", "sigma": 1.0}},
           "median": {"mu": {"dist": "normal", "mu": 2.0, "sigma": 2.0}, "tau": {"dist": "halfnormal", "sigma": 1.0}}}
    res = stage.run_exact(fits, stage.main_priors(pri), thresholds={"orr": [0.2]}, exact_max_k=5)
    t = res.summary.set_index(["outcome", "subgroup", "prior"]).sort_index()
    big = t.loc[("orr", "overall")]
    assert set(big["method"]) == {"BAYES-BN-LAPLACE"} and len(big) == 6  # main and every sensitivity set
    assert big["flags"].str.contains("Laplace approximation, k = 8 > exact_max_k = 5", regex=False).all()
    assert t.loc[("orr", "one", "single study"), "method"] == "BAYES-BN-EXACT"  # k = 1 stays the study's own
    assert set(t.loc[("median_pfs", "overall")]["method"]) == {"BAYES-NN-EXACT"}  # normal-normal: exact at any k
    assert not t.loc[("median_pfs", "overall")]["flags"].str.contains("Laplace").any()
    est = res.estimates.set_index(["outcome", "subgroup"])
    assert est.loc[("orr", "overall"), "method"] == "BAYES-BN-LAPLACE"
    assert set(res.probabilities["method"]) == {"BAYES-BN-LAPLACE"}  # thresholds given for orr only
    # the default keeps every fit of this size exact
    default = stage.run_exact(fits, stage.main_priors(pri)).summary
    assert "BAYES-BN-LAPLACE" not in set(default["method"])


def test_normality_gap_accepts_k60_and_rejects_a_half_line_likelihood(k60):
    sets, _, la = k60
    x, n = simulated(60, 1)
    assert laplace.normality_gap(x, n, la[0], sets[0]) < laplace.MAX_GAP
    zero = np.zeros(60, int)  # no events anywhere: mu's likelihood is a half-line
    post = laplace.laplace_bn(zero, n, MAIN)
    assert laplace.normality_gap(zero, n, post, MAIN) > 10 * laplace.MAX_GAP


def test_stage_keeps_the_exact_grid_where_laplace_would_be_poor():
    n = np.array([12, 30, 25, 8, 40, 16, 22, 10])
    fit = stage.FitData("orr", "overall", priors.BN, tuple(f"s{i}" for i in range(8)), np.zeros(8), n.astype(float),
                        None, None, EXPIT)
    res = stage.run_exact([fit], {"proportion": MAIN}, exact_max_k=5)
    assert set(res.summary["method"]) == {"BAYES-BN-EXACT"}
    assert res.summary["flags"].str.contains("exact grid although k = 8 > exact_max_k = 5", regex=False).all()


def test_laplace_does_not_depend_on_study_order():
    """Studies are grouped by distinct (x, n): the same studies in another order give the same bytes."""
    x, n = simulated(300, 4)
    order = np.random.default_rng(0).permutation(300)
    a = S.summarise_exact(laplace.laplace_bn(x, n, MAIN), EXPIT, population=True).record()
    b = S.summarise_exact(laplace.laplace_bn(x[order], n[order], MAIN), EXPIT, population=True).record()
    assert a == b


def test_exact_likelihood_counts_duplicate_studies():
    """The exact grid's likelihood computes each distinct (x, n) once: against a study-by-study sum."""
    x = np.array([3, 5, 3, 0, 3, 0, 9])
    n = np.array([20, 30, 20, 15, 20, 15, 12])
    mu, tau = np.array([-1.0, 0.2, -2.5]), np.array([0.4, 1.6, 0.0])
    one_by_one = sum(exact.log_lik_bn([xi], [ni], mu, tau) for xi, ni in zip(x, n))
    assert exact.log_lik_bn(x, n, mu, tau) == pytest.approx(one_by_one, rel=1e-13)
