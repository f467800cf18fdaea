"""Sensitivity analyses of a pooled result: leave-one-out, influence diagnostics, Baujat coordinates.

Everything here refits the intercept-only model of :func:`singlearm.fit.rma` with one study
omitted at a time, as metafor's ``leave1out``, ``influence`` and ``baujat`` do. For DL and the
common-effect model all k deletion fits are computed at once with array operations on a k x k
mask (row i holds the fit without study i), so k = 16 takes microseconds rather than the
tens of milliseconds of k separate fits; REML and PM need one iterative tau^2 per row.

Results stay on the analysis scale. Back-transform leave-one-out results with the studies that
each row actually pooled: for the Freeman-Tukey transform, the harmonic mean of the n of the
k - 1 remaining studies, not of all k::

    est = [ipft_hm(b, np.delete(n, i)) for i, b in enumerate(loo["b"])]
"""

import numpy as np
import pandas as pd
from scipy import special

from singlearm import fit

# Row blocks of the k x k mask are processed so that one block holds at most this many cells:
# 1000 studies fit in one block, 10^5 studies still run in bounded memory.
_BLOCK_CELLS = 2_000_000

# metafor zeroes deletion residuals below 100 machine epsilons before standardising them
# (influence.rma.uni), so that a study sitting exactly on the pooled estimate gets rstudent = 0.
_RESID_ZERO = 100 * np.finfo(float).eps



def _labels(labels, k):
    if labels is None:
        return pd.RangeIndex(k, name="study")
    labels = list(labels)
    if len(labels) != k:
        raise ValueError(f"{len(labels)} labels for {k} studies")
    return pd.Index(labels, name="study")


def _check(method, test, k):
    if method not in fit.METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(fit.METHODS)}")
    if test not in ("z", "knha"):
        raise ValueError(f"unknown test {test!r}; expected z or knha")
    if k < 2:
        raise ValueError(f"leave-one-out needs at least 2 studies (got k = {k})")


def _deletion_block(yi, vi, rows, method, test, level):
    """The deletion fits omitting each study in ``rows``, as a dict of arrays (one entry per row).

    Row r of the mask keeps every study but ``rows[r]``; sums over kept studies are masked
    row sums, so no per-row Python work is done for DL and EE.
    """
    k = len(yi)
    m = len(rows)
    keep = np.ones((m, k), dtype=bool)
    keep[np.arange(m), rows] = False
    kk = k - 1  # studies in every deletion fit

    w = np.where(keep, 1.0 / vi, 0.0)
    sw = w.sum(axis=1)
    sw2 = (w * w).sum(axis=1)
    b_fe = (w @ yi) / sw
    # Two-pass Q (centre first, then square) so Q stays accurate when it is small relative to
    # sum(w y^2); the one-pass formula loses digits exactly where tau^2 hinges on Q - (k - 1).
    q = (w * (yi[None, :] - b_fe[:, None]) ** 2).sum(axis=1)

    nan = np.full(m, np.nan)
    if kk == 1:
        # A single remaining study: no heterogeneity to estimate (as fit.rma for k = 1); it is
        # pooled with tau^2 = 0, i.e. its own estimate and standard error.
        tau2 = np.zeros(m)
        q_out, i2, h2, q_p = nan, nan, nan, nan
    else:
        if method == "EE":
            tau2 = np.zeros(m)
        elif method == "DL":
            tau2 = np.maximum(0.0, (q - (kk - 1)) / (sw - sw2 / sw))
        else:
            est = fit._ESTIMATORS[method]
            tau2 = np.array([est(np.delete(yi, i), np.delete(vi, i)) for i in rows], dtype=float)
        s2 = (kk - 1) * sw / (sw**2 - sw2)
        if method == "EE":
            with np.errstate(invalid="ignore", divide="ignore"):
                i2 = np.where(q > 0, 100 * np.maximum(0.0, (q - (kk - 1)) / q), 0.0)
            h2 = q / (kk - 1)
        else:
            i2 = 100 * tau2 / (tau2 + s2)
            h2 = (tau2 + s2) / s2
        q_out = q
        q_p = special.chdtrc(kk - 1, q)

    wr = np.where(keep, 1.0 / (vi[None, :] + tau2[:, None]), 0.0)
    swr = wr.sum(axis=1)
    b = (wr @ yi) / swr
    vb = 1.0 / swr
    if test == "knha":
        if kk == 1:
            s2w = nan
        else:
            s2w = (wr * (yi[None, :] - b[:, None]) ** 2).sum(axis=1) / (kk - 1)
        vb = vb * s2w
        crit = fit._t(level, kk - 1) if kk > 1 else np.nan
        se = np.sqrt(vb)
        stat = b / se
        pval = 2 * special.stdtr(kk - 1, -np.abs(stat)) if kk > 1 else nan
    else:
        s2w = np.ones(m)
        crit = fit._z(level)
        se = np.sqrt(vb)
        stat = b / se
        pval = 2 * special.ndtr(-np.abs(stat))
    return {"b": b, "se": se, "vb": vb, "stat": stat, "pval": pval, "ci_lb": b - crit * se,
            "ci_ub": b + crit * se, "tau2": tau2, "q": q_out, "q_p": q_p, "i2": i2, "h2": h2,
            "s2w": s2w, "single": kk == 1}


def _deletion_fits(yi, vi, method, test, level):
    k = len(yi)
    step = max(1, _BLOCK_CELLS // k)
    blocks = [_deletion_block(yi, vi, np.arange(s, min(k, s + step)), method, test, level)
              for s in range(0, k, step)]
    if len(blocks) == 1:
        return blocks[0]
    out = {key: np.concatenate([bl[key] for bl in blocks]) for key in blocks[0] if key != "single"}
    out["single"] = blocks[0]["single"]
    return out


_LOO_COLUMNS = ["k", "b", "se", "stat", "pval", "ci_lb", "ci_ub", "tau2", "q", "q_p", "i2", "h2"]


def leave_one_out(yi, vi, method="DL", test="z", level=0.95, labels=None):
    """Pool the studies k times, each time omitting one study.

    Row i is :func:`singlearm.fit.rma` on all studies but i, with tau^2 re-estimated:
    for DL, :math:`\\hat\\tau^2_{(-i)} = \\max\\{0, (Q_{(-i)} - (k-2)) / (\\sum_{j\\ne i} w_j -
    \\sum_{j\\ne i} w_j^2 / \\sum_{j\\ne i} w_j)\\}` with :math:`w_j = 1/v_j`, then
    :math:`\\hat\\mu_{(-i)} = \\sum_{j\\ne i} y_j/(v_j+\\hat\\tau^2_{(-i)}) / \\sum_{j\\ne i}
    1/(v_j+\\hat\\tau^2_{(-i)})`. DL and EE are computed for all i at once on a k x k mask;
    REML and PM estimate each row's tau^2 iteratively.

    Parameters
    ----------
    yi, vi : array_like
        Effect sizes and sampling variances on the analysis scale (k >= 2).
    method : {"DL", "REML", "PM", "EE"}
    test : {"z", "knha"}
        As in :func:`singlearm.fit.rma`; Hartung-Knapp uses t on k - 2 df in each row.
    level : float
        Confidence level.
    labels : sequence, optional
        Study labels used as the index (default 0..k-1).

    Returns
    -------
    pandas.DataFrame
        One row per omitted study, indexed by its label, with columns ``k`` (studies pooled,
        k - 1), ``b, se, stat, pval, ci_lb, ci_ub, tau2, q, q_p, i2, h2`` on the analysis scale.
        ``q`` is Cochran's Q of the k - 1 studies (common-effect weights), ``i2`` in percent.
        For k = 2 each row pools a single study: heterogeneity columns are NaN, as in
        :func:`singlearm.fit.rma` for k = 1.

    Notes
    -----
    Back-transform row i with the studies it pooled: for PFT use
    ``transforms.ipft_hm(b_i, np.delete(n, i))``, the harmonic mean of the k - 1 remaining n.

    R equivalent: ``metafor::leave1out(rma(yi, vi, method=method, test=test))`` (columns
    ``estimate, se, zval, pval, ci.lb, ci.ub, Q, Qp, tau2, I2, H2``).
    """
    yi, vi = fit.as_effects(yi, vi)
    k = len(yi)
    _check(method, test, k)
    d = _deletion_fits(yi, vi, method, test, level)
    nan = np.full(k, np.nan)
    cols = {c: d[c] for c in _LOO_COLUMNS[1:]}
    if d["single"]:
        cols["tau2"] = nan
    cols = {"k": np.full(k, k - 1), **cols}
    return pd.DataFrame(cols, index=_labels(labels, k))


def _case_deletion(yi, vi, method, test, level):
    """The checked inputs, the full fit and every deletion fit: what influence and Baujat share."""
    yi, vi = fit.as_effects(yi, vi)
    _check(method, test, len(yi))
    full = fit.rma(yi, vi, method=method, test=test, level=level)
    return yi, vi, full, _deletion_fits(yi, vi, method, test, level)


def influence(yi, vi, method="DL", test="z", level=0.95, labels=None):
    """Case-deletion influence diagnostics of each study (Viechtbauer & Cheung 2010).

    With :math:`\\hat\\mu, \\hat\\tau^2, \\mathrm{Var}(\\hat\\mu)` from the full fit and
    :math:`\\hat\\mu_{(-i)}, \\hat\\tau^2_{(-i)}, \\mathrm{Var}(\\hat\\mu_{(-i)})` from the fit
    without study i (tau^2 re-estimated; see :func:`leave_one_out`):

    * ``rstudent``: :math:`(y_i - \\hat\\mu_{(-i)}) / \\sqrt{v_i + \\hat\\tau^2_{(-i)} +
      \\mathrm{Var}(\\hat\\mu_{(-i)})}` (externally standardised residual);
    * ``dffits``: :math:`(\\hat\\mu - \\hat\\mu_{(-i)}) / \\sqrt{h_i (v_i + \\hat\\tau^2_{(-i)})}`;
    * ``cook_d``: :math:`(\\hat\\mu - \\hat\\mu_{(-i)})^2 / \\mathrm{Var}(\\hat\\mu)`;
    * ``cov_r``: :math:`\\mathrm{Var}(\\hat\\mu_{(-i)}) / \\mathrm{Var}(\\hat\\mu)`;
    * ``tau2_del``, ``qe_del``: tau^2 and Cochran's Q without study i;
    * ``hat``: :math:`h_i = w_i / \\sum w`, :math:`w_i = 1/(v_i + \\hat\\tau^2)`;
    * ``weight``: :math:`100\\, h_i` (percent).

    Under ``test="knha"`` the variances carry the Hartung-Knapp factor :math:`s^2_w` and the
    ``v_i + tau^2`` terms of rstudent and dffits are multiplied by the deletion fit's
    :math:`s^2_w`, as metafor does.

    Parameters
    ----------
    yi, vi, method, test, level, labels
        As in :func:`leave_one_out`.

    Returns
    -------
    pandas.DataFrame
        Columns ``rstudent, dffits, cook_d, cov_r, tau2_del, qe_del, hat, weight``, one row per
        study. ``tau2_del`` and ``qe_del`` are NaN for k = 2 (one study left).

    Notes
    -----
    R equivalent: ``metafor::influence(rma(yi, vi, method=method))$inf`` (columns
    ``rstudent, dffits, cook.d, cov.r, tau2.del, QE.del, hat, weight``).
    """
    yi, vi, full, d = _case_deletion(yi, vi, method, test, level)
    k, vb_full = len(yi), full.se**2
    hat = full.weights
    tau2_del = d["tau2"]
    s2w = d["s2w"]
    resid = yi - d["b"]
    resid = np.where(np.abs(resid) < _RESID_ZERO, 0.0, resid)
    rstudent = resid / np.sqrt(vi * s2w + d["vb"] + tau2_del * s2w)
    diff = full.b - d["b"]
    dffits = diff / np.sqrt(s2w * hat * (tau2_del + vi))
    out = {
        "rstudent": rstudent,
        "dffits": dffits,
        "cook_d": diff**2 / vb_full,
        "cov_r": d["vb"] / vb_full,
        "tau2_del": np.full(k, np.nan) if d["single"] else tau2_del,
        "qe_del": d["q"],
        "hat": hat,
        "weight": 100 * hat,
    }
    return pd.DataFrame(out, index=_labels(labels, k))


def baujat(yi, vi, method="DL", test="z", level=0.95, labels=None):
    """Baujat plot coordinates: contribution to heterogeneity vs influence on the pooled result.

    :math:`x_i = (y_i - \\hat\\mu)^2 / (v_i + \\hat\\tau^2)` (the squared Pearson residual of
    the full fit; for the common-effect model the study's share of Cochran's Q) and
    :math:`y_i = (\\hat\\mu_{(-i)} - \\hat\\mu)^2 / \\mathrm{Var}(\\hat\\mu_{(-i)})`, tau^2
    re-estimated in each deletion fit (Baujat et al. 2002).

    Parameters
    ----------
    yi, vi, method, test, level, labels
        As in :func:`leave_one_out`.

    Returns
    -------
    pandas.DataFrame
        Columns ``x`` and ``y``, one row per study.

    Notes
    -----
    R equivalent: ``metafor::baujat(rma(yi, vi, method=method))`` (its invisible ``x, y``).
    """
    yi, vi, full, d = _case_deletion(yi, vi, method, test, level)
    x = (yi - full.b) ** 2 / (full.tau2 + vi)
    y = (d["b"] - full.b) ** 2 / d["vb"]
    return pd.DataFrame({"x": x, "y": y}, index=_labels(labels, len(yi)))
