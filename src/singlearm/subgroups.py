"""Tests for subgroup differences: separate tau^2 per subgroup, a common tau^2, or the binomial GLMM.

Three models, one result type. With separate tau^2 each subgroup is pooled on its own and the
pooled estimates are compared by a Wald Q (Borenstein et al. 2009, ch. 19). With a common tau^2
the test is the omnibus QM of a meta-regression on the subgroup (meta's ``tau.common = TRUE``).
For the GLMM it is the QM of a binomial-normal meta-regression on the subgroup, with a common
tau^2 (meta's "subgroup analysis with common tau-squared (GLMM)"), not a Q over separate GLMM fits.

A subgroup with fewer than ``min_level_k`` studies is named in ``small_levels`` and the test is
flagged: its estimate rests on a single study (or on too few to estimate its own tau^2).
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import fit, glmm, metareg

SUBGROUP_MODELS = ("separate", "common", "glmm")


@dataclass(frozen=True)
class SubgroupTest:
    """A test for subgroup differences.

    ``q`` is chi-square on ``df`` df (F on ``df`` and k - G df for a Hartung-Knapp or t test
    of the common-tau^2 models) with p-value ``p``. ``run`` is False, with NaN and a ``note``
    saying why, when the test cannot be computed; ``flagged`` is True when it was computed but
    a subgroup has fewer than ``min_level_k`` studies (named in ``small_levels``). ``tau2`` is
    the common between-study variance (NaN for separate tau^2).
    """

    model: str
    method: str
    test: str
    levels: tuple
    k_levels: tuple
    q: float
    df: int
    p: float
    tau2: float
    small_levels: tuple
    flagged: bool
    run: bool
    note: str = ""

    def summary_frame(self):
        """One row; ``levels`` reads like ``sts (k = 5), bone (k = 2)``."""
        row = {f: getattr(self, f) for f in self.__dataclass_fields__}
        row["levels"] = ", ".join(f"{lv} (k = {k})" for lv, k in zip(self.levels, self.k_levels))
        row["k_levels"] = ", ".join(map(str, self.k_levels))
        row["small_levels"] = ", ".join(self.small_levels)
        return pd.DataFrame([row])


def _levels(groups):
    g = np.asarray(groups).astype(str)
    levels, counts = np.unique(g, return_counts=True)
    return g, tuple(levels.tolist()), tuple(counts.tolist())


def _subgroup_design(g, levels):
    """Intercept and one indicator per subgroup but the first (as metareg.design builds it)."""
    x = np.column_stack([np.ones(len(g))] + [(g == lv).astype(float) for lv in levels[1:]])
    return metareg.Design(x, ("intrcpt",) + tuple(f"subgroup={lv}" for lv in levels[1:]), ("subgroup",),
                          {"subgroup": levels[0]})


def _result(model, method, test, levels, ks, min_level_k, q=np.nan, df=0, p=np.nan, tau2=np.nan, why=""):
    small = tuple(lv for lv, k in zip(levels, ks) if k < min_level_k)
    run = not why
    note = why
    if run and small:
        note = (f"subgroup(s) with fewer than {min_level_k} studies: "
                + ", ".join(f"{lv} (k = {k})" for lv, k in zip(levels, ks) if k < min_level_k)
                + "; their estimate rests on too few studies to read the test as a comparison of subgroups")
    elif not run:
        note = f"not run: {why}"
    return SubgroupTest(model, method, test, levels, ks, float(q) if run else np.nan, int(df),
                        float(p) if run else np.nan, float(tau2) if run else np.nan, small, run and bool(small), run,
                        note)


def subgroup_test_separate(yi, vi, groups, method="DL", test="z", min_level_k=2, **conventions):
    """Subgroup differences with a separate tau^2 per subgroup.

    Each subgroup is pooled by :func:`singlearm.fit.rma` (a single study stands for itself), then
    :math:`Q_b = \\sum_g w_g (\\hat\\mu_g - \\bar\\mu)^2`, :math:`w_g = 1/SE_g^2`, on G - 1 df.

    Returns
    -------
    SubgroupTest

    Notes
    -----
    R equivalent: ``rma(yi = b_g, sei = se_g, method = "EE")$QE`` over the per-subgroup fits
    ``rma(yi, vi, method = method, subset = group == g)``.
    """
    yi, vi = fit.as_effects(yi, vi)
    g, levels, ks = _levels(groups)
    if len(levels) < 2:
        return _result("separate", method, test, levels, ks, min_level_k, why="fewer than 2 subgroups")
    fits = [fit.rma(yi[g == lv], vi[g == lv], method, test, **conventions) for lv in levels]
    q, df, p = fit.subgroup_test([r.b for r in fits], [r.se for r in fits])
    if not np.isfinite(q):
        return _result("separate", method, test, levels, ks, min_level_k,
                       why="a subgroup's pooled estimate has a standard error of 0 (identical effects under "
                           "Hartung-Knapp), so its weight is infinite")
    return _result("separate", method, test, levels, ks, min_level_k, q, df, p)


def subgroup_test_common(yi, vi, groups, method="DL", test="z", min_level_k=2):
    """Subgroup differences with a common tau^2: the QM of a meta-regression on the subgroup.

    Returns
    -------
    SubgroupTest
        Not run when there are fewer than 2 subgroups or no more studies than subgroups (no
        residual degrees of freedom for tau^2).

    Notes
    -----
    R equivalent: ``rma(yi, vi, mods = ~ factor(group), method = method, test = test)`` (its
    ``QM``, ``QMp``, ``tau2``); meta's ``update(m, subgroup = group, tau.common = TRUE)``.
    """
    yi, vi = fit.as_effects(yi, vi)
    g, levels, ks = _levels(groups)
    if len(levels) < 2:
        return _result("common", method, test, levels, ks, min_level_k, why="fewer than 2 subgroups")
    if len(yi) <= len(levels):
        return _result("common", method, test, levels, ks, min_level_k,
                       why=f"k = {len(yi)} studies for {len(levels)} subgroups leaves no residual degrees of freedom")
    r = metareg.meta_regression(yi, vi, _subgroup_design(g, levels), method, test)
    return _result("common", method, test, levels, ks, min_level_k, r.qm, r.qm_df, r.qm_p, r.tau2)


def subgroup_test_glmm(events, total, groups, test="z", min_level_k=2, n_nodes=7):
    """Subgroup differences in the binomial-normal GLMM with a common tau^2.

    The Wald test (QM) of the subgroup indicators in the random-intercept logistic
    meta-regression fitted by ML (:func:`singlearm.glmm.glmm` with the subgroup as moderator).

    Returns
    -------
    SubgroupTest
        Not run when there are fewer than 2 subgroups, more parameters than studies, or no
        finite maximum (a subgroup with no events or only events), or when the fit did not
        converge; the ``note`` says which.

    Notes
    -----
    R equivalent: ``metafor::rma.glmm(measure = "PLO", xi, ni, mods = ~ factor(group),
    method = "ML")`` (its ``QM``, ``QMp``, ``tau2``); meta's ``metaprop(..., method = "GLMM",
    subgroup = group)`` test of subgroup differences with common tau-squared.
    """
    g, levels, ks = _levels(groups)
    if len(levels) < 2:
        return _result("glmm", "ML", test, levels, ks, min_level_k, why="fewer than 2 subgroups")
    r = glmm.glmm(events, total, mods=_subgroup_design(g, levels), test=test, n_nodes=n_nodes)
    if not (r.estimable and r.converged):
        return _result("glmm", "ML", test, levels, ks, min_level_k, why=r.note)
    return _result("glmm", "ML", test, levels, ks, min_level_k, r.qm, r.qm_df, r.qm_p, r.tau2)
