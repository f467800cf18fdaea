"""Influence of single studies: leave-one-out forest and Baujat plot."""

import math
from itertools import combinations

import numpy as np
import pandas as pd
from matplotlib import rc_context
from matplotlib.figure import Figure

from .. import formatting as fmt
from .layout import (
    _AXIS_H,
    _diamond,
    _estimate_axis,
    _extent,
    _hbar,
    _notes_height,
    _require,
    _RowFrame,
    _style_axes,
    _text,
    _title,
    _title_height,
    _width,
    _wrap,
)
from .style import STYLE, _rc


def _is_flag(x):
    return isinstance(x, str) and x.strip() != ""


def _one_row(full, fn):
    if isinstance(full, pd.DataFrame):
        if len(full) != 1:
            raise ValueError(f"{fn}: full must be one row of estimates, got {len(full)} rows")
        full = full.iloc[0]
    if isinstance(full, dict):
        full = pd.Series(full)
    if not isinstance(full, pd.Series):
        raise ValueError(f"{fn}: full must be a one-row DataFrame, a Series or a dict, got {type(full).__name__}")
    missing = [c for c in ("estimate", "ci_low", "ci_high") if c not in full.index]
    if missing:
        raise ValueError(f"{fn}: full lacks {', '.join(missing)}")
    return full


def leave_one_out_plot(loo, full, *, label, proportion=True):
    """Forest of leave-one-out estimates against the full-data estimate and its CI.

    Parameters
    ----------
    loo : pandas.DataFrame
        Columns ``omitted, estimate, ci_low, ci_high`` (back-transformed, proportions 0-1 or
        months), optionally ``k``, ``i2`` (printed) and ``flag`` (non-empty text = a row to
        highlight, the text is listed under the plot); ``outcome, subgroup, method, tau2, q``
        may be present and are not used.
    full : pandas.DataFrame (one row), pandas.Series or dict
        The full-data result: ``estimate, ci_low, ci_high``, optionally ``k``.
    label : str
        Outcome name for the title.
    proportion : bool
        True for proportions (percent axis), False for medians (months).

    Returns
    -------
    matplotlib.figure.Figure
        One row per omitted study, "Omitting <id>", with the estimate and CI as text; the
        full-data CI is a shaded band (gid ``full-ci-band``) and its estimate a vertical line
        (gid ``full-estimate``); a last row shows the full result as a diamond. Flagged rows are
        drawn in vermillion. Markers have gid ``loo-markers`` (row order).

    Raises
    ------
    ValueError
        If ``loo`` has no rows or lacks a column.

    Notes
    -----
    R equivalent: ``meta::metainf(m, pooled="random")`` or ``metafor::leave1out``.
    """
    fn = "leave_one_out_plot"
    style = STYLE
    _require(loo, ("omitted", "estimate", "ci_low", "ci_high"), "loo", fn)
    if loo.empty:
        raise ValueError(f"{fn}: the leave-one-out table has no rows")
    full = _one_row(full, fn)
    scale = 100.0 if proportion else 1.0
    flags = [_is_flag(f) for f in (loo["flag"] if "flag" in loo.columns else [None] * len(loo))]
    labels = [f"Omitting {o}" for o in loo["omitted"]]
    k_full = full.get("k", np.nan)
    full_label = f"All studies (k = {fmt.count(k_full)})" if fmt.finite(k_full) else "All studies"
    est_texts = [fmt.bracket_interval(e * scale, lo * scale, hi * scale)
                 for e, lo, hi in zip(loo["estimate"], loo["ci_low"], loo["ci_high"])]
    full_text = fmt.bracket_interval(full["estimate"] * scale, full["ci_low"] * scale, full["ci_high"] * scale)
    i2_texts = ([fmt.percent(x) for x in loo["i2"]] if "i2" in loo.columns else None)
    est_header = "Proportion, % (95% CI)" if proportion else "Median, months (95% CI)"

    label_w = max(_width(labels), _width([full_label], weight="bold"), _width(["Study omitted"], weight="bold"))
    est_w = max(_width(est_texts + [full_text], weight="bold"), _width([est_header], weight="bold"))
    i2_w = max(_width(i2_texts), _width(["I\u00b2"], weight="bold")) if i2_texts else 0.0
    text_w = 2 * style.margin + label_w + est_w + i2_w + (4 if i2_texts else 3) * style.gap
    width = style.single_width if text_w + 1.3 <= style.single_width else max(style.double_width, text_w + 1.3)
    plot_w = width - text_w
    x_label = style.margin
    x_plot = x_label + label_w + style.gap
    x_est = x_plot + plot_w + style.gap + est_w
    x_i2 = x_est + style.gap + i2_w

    notes = [f"{lab}: {f.strip()}" for lab, f, on in
             zip(labels, loo["flag"] if "flag" in loo.columns else [None] * len(loo), flags) if on]
    notes = [_wrap(x, width - 2 * style.margin) for x in notes]
    notes.append("Band: 95% CI of all studies; line: their pooled estimate.")
    n = len(loo) + 2
    title = f"Leave-one-out analysis: {label}"
    title_h = _title_height(title, width)
    with rc_context(_rc()):
        frame = _RowFrame(n, width, x_plot, plot_w, title_h, 0.22, _AXIS_H, _notes_height(notes, width))
        fig, ax = frame.fig, frame.ax
        _title(fig, title, width, frame.height)
        values = list(loo["ci_low"] * scale) + list(loo["ci_high"] * scale) + list(loo["estimate"] * scale)
        values += [full["ci_low"] * scale, full["ci_high"] * scale, full["estimate"] * scale]
        xlim = _estimate_axis(ax, values, proportion)
        frame.header(x_label, "Study omitted", ha="left")
        frame.header(x_est, est_header, ha="right")
        if i2_texts:
            frame.header(x_i2, "I\u00b2", ha="right")
        frame.rule(frame.top + 0.02)
        if fmt.finite(full["ci_low"]) and fmt.finite(full["ci_high"]):
            ax.axvspan(max(full["ci_low"] * scale, xlim[0]), min(full["ci_high"] * scale, xlim[1]),
                       color=style.sky_blue, alpha=0.25, linewidth=0, zorder=0, gid="full-ci-band")
        if fmt.finite(full["estimate"]):
            ax.axvline(full["estimate"] * scale, color=style.blue, linewidth=style.line_width, zorder=1,
                       gid="full-estimate")
        xs, ys, colours = [], [], []
        for i, (e, lo, hi) in enumerate(zip(loo["estimate"], loo["ci_low"], loo["ci_high"])):
            colour = style.vermillion if flags[i] else style.black
            weight = "bold" if flags[i] else "normal"
            frame.text(x_label, i, labels[i], ha="left", color=colour, fontweight=weight)
            frame.text(x_est, i, est_texts[i], ha="right", color=colour, fontweight=weight)
            if i2_texts:
                frame.text(x_i2, i, i2_texts[i], ha="right", color=colour)
            if fmt.finite(e):
                _hbar(ax, i, lo * scale, hi * scale, xlim, color=colour, lw=style.line_width)
                xs.append(e * scale)
                ys.append(i)
                colours.append(colour)
        ax.scatter(xs, ys, s=14, marker="s", c=colours, edgecolors="none", zorder=3, gid="loo-markers",
                   clip_on=False)
        i = n - 1
        frame.text(x_label, i, full_label, ha="left", fontweight="bold")
        frame.text(x_est, i, full_text, ha="right", fontweight="bold")
        _diamond(ax, i, full["estimate"] * scale, full["ci_low"] * scale, full["ci_high"] * scale, xlim,
                 color=style.black, edge=style.black, gid="full-diamond")
        frame.notes(notes)
    return fig


def _crosses(p1, p2, q1, q2):
    """Whether segments p1-p2 and q1-q2 cross (proper intersection, shared ends excluded)."""
    def orient(a, b, c):
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
    d1, d2 = orient(q1, q2, p1), orient(q1, q2, p2)
    d3, d4 = orient(p1, p2, q1), orient(p1, p2, q2)
    return d1 * d2 < 0 and d3 * d4 < 0


def _place_labels(points, texts, to_in, box_in, size):
    """Choose for each point a label box that overlaps no other label or point.

    First pass, isolated points first: the label goes right beside its point, trying twelve
    directions (right and left first). Second pass, for the points too crowded for that: the
    label moves out along 24 directions at growing distances, joined to its point by a leader
    that may pass neither another point nor a label; if even that fails, the labels are stacked
    in a column beside the crowd. Deterministic, and fast for the dozens of studies a review
    has. Works in inches on the axes (``to_in`` maps data to inches, ``box_in`` is the axes'
    width and height). Returns ``{i: (box, far)}`` with ``box = (x0, y0, x1, y1)`` and ``far``
    True when the label sits away from its point and needs a leader line.
    """
    pts = [to_in(p) for p in points]
    sizes = [_extent(t, size) for t in texts]
    placed, leaders, chosen = [], [], {}
    margin = 0.03

    def free(box):
        if box[0] < 0 or box[1] < 0 or box[2] > box_in[0] or box[3] > box_in[1]:
            return False
        if any(not (box[2] < o[0] or box[0] > o[2] or box[3] < o[1] or box[1] > o[3]) for o in placed):
            return False
        if any(box[0] - 0.01 <= sx <= box[2] + 0.01 and box[1] - 0.01 <= sy <= box[3] + 0.01
               for seg in leaders for sx, sy in seg):
            return False
        return not any(box[0] - margin < px < box[2] + margin and box[1] - margin < py < box[3] + margin
                       for px, py in pts)

    def leader(i, box):
        """Sample points of the leader from point i to ``box``, or None if it hits a point or label."""
        x, y = pts[i]
        qx, qy = min(max(x, box[0]), box[2]), min(max(y, box[1]), box[3])
        seg = [(x + t * (qx - x), y + t * (qy - y)) for t in np.linspace(0.0, 1.0, 24)]
        seg, ends = seg[1:-1], (seg[0], seg[-1])
        for j, (px, py) in enumerate(pts):
            if j != i and any(math.hypot(sx - px, sy - py) < 0.04 for sx, sy in seg):
                return None
        if any(o[0] <= sx <= o[2] and o[1] <= sy <= o[3] for o in placed for sx, sy in seg):
            return None
        if any(_crosses(ends[0], ends[1], other[0], other[-1]) for other in leaders):
            return None
        return [ends[0], *seg, ends[1]]

    def box_at(i, r, a):
        (x, y), (w, h) = pts[i], sizes[i]
        c, sn = math.cos(a), math.sin(a)
        ax_, ay_ = x + r * c, y + r * sn
        bx0 = ax_ if c > 0.3 else (ax_ - w if c < -0.3 else ax_ - w / 2)
        by0 = ay_ if sn > 0.3 else (ay_ - h if sn < -0.3 else ay_ - h / 2)
        return (bx0, by0, bx0 + w, by0 + h)

    def crowd(i):
        return sum(math.hypot(pts[i][0] - px, pts[i][1] - py) < 0.3 for px, py in pts) - 1

    deferred = []
    near = np.deg2rad([0, 180, 90, 270, 30, 150, 330, 210, 60, 120, 300, 240])
    for i in sorted(range(len(pts)), key=lambda i: (crowd(i), -pts[i][1], pts[i][0])):
        for a in near:
            box = box_at(i, 0.05, a)
            if free(box):
                placed.append(box)
                chosen[i] = (box, False)
                break
        else:
            deferred.append(i)

    far = np.deg2rad([0, 30, 60, 15, 45, 75, 90, 330, 345, 315, 300, 105, 120, 150, 135, 180, 165, 195, 210,
                      225, 240, 255, 270, 285])
    column = []
    for i in sorted(deferred, key=lambda i: (pts[i][1], pts[i][0])):
        done = False
        for r in (0.15, 0.25, 0.35, 0.5, 0.65, 0.8, 1.0, 1.2):
            for a in far:
                box = box_at(i, r, a)
                if not free(box):
                    continue
                seg = leader(i, box)
                if seg is None:
                    continue
                placed.append(box)
                leaders.append(seg)
                chosen[i] = (box, True)
                done = True
                break
            if done:
                break
        if not done:
            column.append(i)

    if column:
        right = max(pts[i][0] for i in column) + 0.2
        on_right = right + max(sizes[i][0] for i in column) <= box_in[0]
        edge = right if on_right else min(pts[i][0] for i in column) - 0.2
        floor = 0.0
        for i in column:
            (x, y), (w, h) = pts[i], sizes[i]
            x0 = edge if on_right else edge - w
            y0 = max(y - h / 2, floor)
            box = (x0, y0, x0 + w, y0 + h)
            while not free(box) and y0 + h < box_in[1]:
                y0 += 0.02
                box = (x0, y0, x0 + w, y0 + h)
            if not free(box):
                box = (x + 0.05, y - h / 2, x + 0.05 + w, y + h / 2)   # no room anywhere: beside it
            placed.append(box)
            chosen[i] = (box, True)
            floor = box[3] + 0.01

        # Untangle: swap the slots of two column labels whose leaders cross. Each swap shortens
        # the total leader length, so this ends; the cap only guards against float ties.
        def ends(i):
            (x, y), b = pts[i], chosen[i][0]
            return (x, y), (min(max(x, b[0]), b[2]), min(max(y, b[1]), b[3]))

        for _ in range(len(column) ** 2):
            pair = next(((i, j) for i, j in combinations(column, 2) if _crosses(*ends(i), *ends(j))), None)
            if pair is None:
                break
            i, j = pair
            bi, bj = chosen[i][0], chosen[j][0]
            chosen[i] = ((bi[0], bj[1], bi[2], bj[1] + (bi[3] - bi[1])), True)
            chosen[j] = ((bj[0], bi[1], bj[2], bi[1] + (bj[3] - bj[1])), True)
    return chosen


def baujat_plot(influence, *, label):
    """Baujat plot: each study's contribution to heterogeneity against its influence on the result.

    Parameters
    ----------
    influence : pandas.DataFrame
        Columns ``cohort_id, baujat_x, baujat_y`` (other columns ignored); from
        :func:`singlearm.sensitivity.baujat` (its ``x, y``) with the study labels. Rows with a
        non-finite coordinate are left out.
    label : str
        Outcome name for the title.

    Returns
    -------
    matplotlib.figure.Figure
        Single-column width; points (gid ``baujat-points``) labelled with ``cohort_id``, the
        labels placed so as not to overlap each other or the points where possible.

    Raises
    ------
    ValueError
        If no row has finite coordinates.

    Notes
    -----
    Baujat et al. (2002) Stat Med 21:2641. R equivalent: ``metafor::baujat(res)``.
    """
    fn = "baujat_plot"
    style = STYLE
    _require(influence, ("cohort_id", "baujat_x", "baujat_y"), "influence", fn)
    df = influence[np.isfinite(pd.to_numeric(influence["baujat_x"], errors="coerce"))
                   & np.isfinite(pd.to_numeric(influence["baujat_y"], errors="coerce"))]
    if df.empty:
        raise ValueError(f"{fn}: no study with finite Baujat coordinates to draw")
    x = df["baujat_x"].astype(float).to_numpy()
    y = df["baujat_y"].astype(float).to_numpy()
    names = [str(s) for s in df["cohort_id"]]

    width = style.single_width
    title = f"Baujat plot: {label}"
    title_h = _title_height(title, width)
    left, right, plot_h = 0.5, 0.12, 2.4
    plot_w = width - left - right
    height = style.margin + title_h + plot_h + _AXIS_H + style.stamp_strip
    with rc_context(_rc()):
        fig = Figure(figsize=(width, height))
        _title(fig, title, width, height)
        bottom = style.stamp_strip + _AXIS_H
        ax = fig.add_axes([left / width, bottom / height, plot_w / width, plot_h / height])
        _style_axes(ax, style)
        xmax = float(x.max()) if x.max() > 0 else 1.0
        ymax = float(y.max()) if y.max() > 0 else 1.0
        xlim = (min(0.0, float(x.min())) - 0.04 * xmax, xmax * 1.12)
        ylim = (min(0.0, float(y.min())) - 0.04 * ymax, ymax * 1.12)
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.scatter(x, y, s=12, color=style.black, zorder=3, gid="baujat-points", clip_on=False)
        ax.set_xlabel("Contribution to overall heterogeneity")
        ax.set_ylabel("Influence on pooled result")

        def to_in(p):
            return ((p[0] - xlim[0]) / (xlim[1] - xlim[0]) * plot_w, (p[1] - ylim[0]) / (ylim[1] - ylim[0]) * plot_h)

        spots = _place_labels(list(zip(x, y)), names, to_in, (plot_w, plot_h), style.small_pt)
        for i in sorted(spots):
            (bx0, by0, bx1, by1), far = spots[i]
            _text(ax, bx0 / plot_w, (by0 + by1) / 2 / plot_h, names[i], size=style.small_pt,
                  transform=ax.transAxes, ha="left", va="center", gid="baujat-label")
            if far:
                # Leader from the point's centre (under the marker) to the nearest point of the label.
                px, py = to_in((x[i], y[i]))
                qx, qy = min(max(px, bx0), bx1), min(max(py, by0), by1)
                ax.plot([px / plot_w, qx / plot_w], [py / plot_h, qy / plot_h], transform=ax.transAxes,
                        color=style.grey, linewidth=0.4, zorder=2, clip_on=False)
    return fig
