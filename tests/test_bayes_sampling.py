"""Per-fit PyMC sampling and its certification against the exact posterior.

The certification tests use stand-in samplers (iid draws from the exact posterior, or draws of a
deliberately wrong one), so they need no MCMC. The PyMC runs are marked slow and run a reduced
form by default (SINGLEARM_FULL=1: full settings).
"""

import os

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from singlearm.bayes import priors as P, sampling, stage
from singlearm.bayes.summaries import summarise_exact

FULL = os.environ.get("SINGLEARM_FULL") == "1"
MAIN = stage.main_priors({"proportion": {"mu": {"dist": "normal", "mu": 0.0, "sigma": 2.5},
                                         "tau": {"dist": "halfnormal", "sigma": 1.0}},
                          "median": {"mu": {"dist": "normal", "mu": 0.0, "sigma": 100.0},
                                     "tau": {"dist": "halfnormal", "sigma": 5.0}}})


def bn_fit(events, total, outcome="orr", subgroup="overall"):
    return stage.FitData(outcome, subgroup, P.BN, tuple(f"c{i}" for i in range(len(events))),
                         np.asarray(events, float), np.asarray(total, float), None, None, P.back_transform("expit"))


def nn_fit(yi, vi, back="exp_neg_exp", kind="survival_rate", outcome="os_2y"):
    return stage.FitData(outcome, "overall", P.NN, tuple(f"c{i}" for i in range(len(yi))), None, None,
                         np.asarray(yi, float), np.asarray(vi, float), P.back_transform(back), kind)


def exact_of(fit):
    post = fit.posterior([MAIN[fit.kind]])[0]
    return post, summarise_exact(post, fit.back, population=fit.model == P.BN)


class ExactDraws:
    """A stand-in sampler: iid draws from the exact posterior (``shift`` > 0 mis-specifies it)."""

    name = "stand-in"

    def __init__(self, post, shift=0.0):
        self.post, self.shift, self.calls = post, shift, 0

    def sample(self, key, data, *, seed, chains, draws, tune, target_accept):
        self.calls += 1
        rng = np.random.default_rng(seed)
        u = rng.uniform(size=(chains, draws))
        mu = np.asarray(self.post.mu_quantile(u.ravel())).reshape(u.shape) + self.shift
        tau = np.asarray(self.post.tau_quantile(rng.uniform(size=u.size))).reshape(u.shape)
        size = key[2]
        theta = mu[..., None] + tau[..., None] * rng.normal(size=(chains, draws, size))
        ds = xr.Dataset({"mu": (("chain", "draw"), mu), "tau": (("chain", "draw"), tau),
                         "theta": (("chain", "draw", "theta_dim_0"), theta),
                         "theta_new": (("chain", "draw"), mu + tau * rng.normal(size=u.shape))},
                        coords={"chain": np.arange(chains), "draw": np.arange(draws)})
        return ds, np.zeros((chains, draws), bool)


SETTINGS = sampling.Settings(draws=1000, tune=1000)


def test_certification_passes_draws_from_the_exact_posterior():
    fit = bn_fit([3, 10, 7], [30, 50, 40])
    post, ex = exact_of(fit)
    s = sampling.sample_fit(fit, MAIN["proportion"], ex, SETTINGS, ExactDraws(post), seed=1)
    assert s.certified and s.diagnostics["attempts"] == 1 and s.diagnostics["reported_from"] == "PyMC"
    for q in ("estimate", "ci_low", "ci_high"):
        assert abs(s.diagnostics[q] - s.diagnostics[f"exact_{q}"]) <= 3 * s.diagnostics[f"mcse_{q}"]


def test_certification_catches_a_mis_specified_sampler_retries_once_and_falls_back_to_exact():
    fit = bn_fit([3, 10, 7], [30, 50, 40])
    post, ex = exact_of(fit)
    wrong = ExactDraws(post, shift=0.15)  # a sampler of the wrong posterior: mu off by 0.15 on the logit
    s = sampling.sample_fit(fit, MAIN["proportion"], ex, SETTINGS, wrong, seed=1)
    assert not s.certified and wrong.calls == 2 and s.diagnostics["attempts"] == 2
    assert s.diagnostics["reported_from"] == "exact" and "3 MCSE" in s.diagnostics["note"]
    diag = pd.DataFrame([s.diagnostics], columns=sampling.DIAGNOSTIC_COLUMNS)
    exact_table = stage.run_exact([fit], MAIN).summary
    est = sampling.estimates_table([fit], [s], diag, exact_table)
    row = est[est["method"] == "BAYES-BN"].iloc[0]
    main = exact_table[exact_table["prior"] == "main"].iloc[0]
    assert row["estimate"] == main["estimate"] and "from the exact posterior" in row["flags"]


def test_survival_rates_are_certified_on_the_decreasing_back_transform():
    yi = np.log(-np.log([0.6, 0.45, 0.7]))
    fit = nn_fit(yi, [0.04, 0.02, 0.05])
    post, ex = exact_of(fit)
    assert ex.ci_low < ex.estimate < ex.ci_high  # limits ordered on the rate scale
    s = sampling.sample_fit(fit, MAIN["survival_rate"], ex, SETTINGS, ExactDraws(post), seed=3)
    assert s.certified
    p = s.posterior["p_pooled"].values.ravel()
    np.testing.assert_allclose(p, np.exp(-np.exp(s.posterior["mu"].values.ravel())), rtol=0, atol=1e-12)


def test_k1_gets_no_pooled_row_and_k_above_max_k_skips_nuts():
    one, many = bn_fit([4], [20], subgroup="bone"), bn_fit([3, 10, 7], [30, 50, 40])
    exact_table = stage.run_exact([one, many], MAIN).summary
    ex = {k: r for k, r in exact_table[exact_table["prior"] == "main"].set_index(["outcome", "subgroup"]).iterrows()}
    settings = sampling.Settings(max_k=2)
    sampled, diag = sampling.run_sampling([one, many], MAIN, ex, settings, seed=1, sampler=ExactDraws(None))
    assert sampled == [] and diag["subgroup"].tolist() == ["overall"]  # k = 1 not sampled at all
    assert diag.loc[0, "reported_from"] == "exact" and "bayes.max_k" in diag.loc[0, "note"]
    est = sampling.estimates_table([one, many], sampled, diag, exact_table)
    assert est[est["subgroup"] == "bone"]["method"].tolist() == ["single study"]
    assert est[est["subgroup"] == "overall"]["method"].tolist() == ["BAYES-BN", "BAYES-BN-EXACT"]


def test_a_fit_above_max_k_and_exact_max_k_says_it_is_reported_from_the_laplace_posterior():
    rng = np.random.default_rng(4)
    total = rng.integers(20, 60, 12)
    big = bn_fit(rng.binomial(total, 0.3), total)
    table = stage.run_exact([big], MAIN, exact_max_k=10).summary
    main = table[table["prior"] == "main"]
    assert main["method"].tolist() == ["BAYES-BN-LAPLACE"]
    ex = {k: r for k, r in main.set_index(["outcome", "subgroup"]).iterrows()}
    sampled, diag = sampling.run_sampling([big], MAIN, ex, sampling.Settings(max_k=10), seed=1,
                                          sampler=ExactDraws(None))
    assert sampled == [] and diag.loc[0, "reported_from"] == "laplace"
    assert diag.loc[0, "note"] == "k = 12 > bayes.max_k = 10: NUTS skipped, reported from the laplace posterior"
    est = sampling.estimates_table([big], sampled, diag, table)
    row = est[est["method"] == "BAYES-BN"].iloc[0]
    assert "from the laplace posterior" in row["flags"]


def test_a_fits_seed_depends_on_its_name_not_its_position():
    assert sampling.fit_seed(1, "orr", "overall") == sampling.fit_seed(1, "orr", "overall")
    assert sampling.fit_seed(1, "orr", "overall") != sampling.fit_seed(1, "orr", "sts")


# ---- The real samplers (slow: reduced form unless SINGLEARM_FULL=1) ----------------------------

def real_settings(backend):
    return sampling.Settings(draws=1000 if FULL else 300, tune=1000 if FULL else 300,
                             ess_bulk_min=400 if FULL else 100, ess_tail_min=400 if FULL else 100, backend=backend)


@pytest.fixture(scope="module")
def blackjax(tmp_path_factory):
    """One BlackJAX back end for the module (one compilation), its XLA cache in a scratch directory."""
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield sampling.backend("blackjax")
    if before is None:
        os.environ.pop("XDG_CACHE_HOME")
    else:
        os.environ["XDG_CACHE_HOME"] = before


def assert_certified_or_retried(s):
    assert s.diagnostics["divergences"] == 0
    for q in ("estimate", "ci_low", "ci_high"):
        assert abs(s.diagnostics[q] - s.diagnostics[f"exact_{q}"]) <= 3 * s.diagnostics[f"mcse_{q}"] or \
            s.diagnostics["attempts"] == 2


@pytest.mark.slow
@pytest.mark.parametrize("events,total", [([0, 0], [20, 35]), ([12, 30], [12, 30])], ids=["zero", "all"])
def test_blackjax_k2_zero_and_all_events_are_certified(blackjax, events, total):
    fit = bn_fit(events, total)
    _, ex = exact_of(fit)
    s = sampling.sample_fit(fit, MAIN["proportion"], ex, real_settings("blackjax"), blackjax, seed=5)
    assert s.diagnostics["backend"] == "blackjax"
    assert_certified_or_retried(s)


@pytest.mark.slow
def test_pymc_backend_k2_zero_events_is_certified():
    fit = bn_fit([0, 0], [20, 35])
    _, ex = exact_of(fit)
    s = sampling.sample_fit(fit, MAIN["proportion"], ex, real_settings("pymc"), sampling.backend("pymc"), seed=5)
    assert s.diagnostics["backend"] == "pymc"
    assert_certified_or_retried(s)


@pytest.mark.slow
def test_blackjax_survival_rate_on_the_normal_normal_model_is_certified(blackjax):
    fit = nn_fit(np.log(-np.log([0.6, 0.45, 0.7])), [0.04, 0.02, 0.05])
    _, ex = exact_of(fit)
    s = sampling.sample_fit(fit, MAIN["survival_rate"], ex, real_settings("blackjax"), blackjax, seed=2)
    assert_certified_or_retried(s)


@pytest.mark.slow
def test_a_fits_draws_depend_on_its_own_seed_and_data_only(blackjax):
    """Not on the other fits of the run, their order, or the number of threads sampling them."""
    a, b = bn_fit([3, 10, 7], [30, 50, 40]), bn_fit([1, 4, 9, 2, 5], [20, 30, 40, 25, 33], subgroup="sts")
    fits = [a, b]
    table = stage.run_exact(fits, MAIN).summary
    ex = {k: r for k, r in table[table["prior"] == "main"].set_index(["outcome", "subgroup"]).iterrows()}
    alone, _ = sampling.run_sampling([a], MAIN, ex, real_settings("blackjax"), seed=11, sampler=blackjax)
    both, _ = sampling.run_sampling([b, a], MAIN, ex, real_settings("blackjax"), seed=11, sampler=blackjax,
                                    threads=2)
    mu_alone = alone[0].posterior["mu"].values
    mu_both = [s for s in both if s.fit.subgroup == "overall"][0].posterior["mu"].values
    np.testing.assert_array_equal(mu_alone, mu_both)


@pytest.mark.slow
def test_same_seed_same_bytes_whether_compiled_afresh_or_from_the_cache(blackjax, tmp_path):
    fit = bn_fit([3, 10, 7], [30, 50, 40])
    _, ex = exact_of(fit)
    paths = []
    # the module's back end compiled afresh; a new one loads the compiled code from the cache
    for i, sampler in enumerate((blackjax, sampling.backend("blackjax"))):
        s = sampling.sample_fit(fit, MAIN["proportion"], ex, real_settings("blackjax"), sampler, seed=9)
        path = tmp_path / f"run{i}.nc"
        sampling.to_inference_data(s, "blackjax").to_netcdf(path)
        paths.append(path)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    idata = sampling.to_inference_data(s, "blackjax")
    assert idata.posterior["p_pooled"].dims == ("chain", "draw", "outcome", "subgroup")
    assert list(idata.posterior["cohort"].values) == ["c0", "c1", "c2"]
    assert "blackjax" in idata.posterior.attrs["sampler_version"]
