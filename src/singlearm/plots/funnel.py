"""Funnel plot (small-study effects), with trim-and-fill studies and contours."""

import numpy as np
from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Polygon

from .. import formatting as fmt
from .layout import _AXIS_H, _draw_foot_note, _foot_note, _style_axes, _title, _title_height
from .style import STYLE, _rc

_Z = {90: 1.6448536269514722, 95: 1.959963984540054, 99: 2.5758293035489004}


def funnel_plot(yi, sei, b, *, filled_yi=(), filled_sei=(), label, scale_label, note="", refline=None,
                refline_label=None):
    """Contour-enhanced funnel plot, with trim-and-fill studies.

    Without ``refline`` the contours are pseudo-confidence limits around the pooled estimate
    (the legend says so); with a benchmark ``refline`` (``bias.p0`` on the analysis scale) they
    are true significance contours of a test of each study against it (Peters et al. 2008),
    and the pooled estimate is a dashed line.

    Parameters
    ----------
    yi, sei : array-like
        Observed effects on the analysis scale and their standard errors (same length; pairs
        with a non-finite value are left out).
    b : float
        Pooled estimate on the same scale; the funnel's centre line.
    filled_yi, filled_sei : array-like
        Studies imputed by trim-and-fill (:func:`singlearm.bias.trim_and_fill`), drawn hollow.
    label : str
        Outcome name; the title is "Funnel plot: <label>".
    scale_label : str
        x-axis label, e.g. ``"Freeman-Tukey double arcsine"``.
    note : str
        Printed, wrapped, under the legend: e.g. the Cochrane Handbook's caution that asymmetry
        tests have too little power with fewer than 10 studies.
    refline : float, optional
        Benchmark on the analysis scale around which the contours are drawn.
    refline_label : str, optional
        How the benchmark reads, e.g. ``"p0 = 0.1"``.

    Returns
    -------
    matplotlib.figure.Figure
        Single-column width. Standard error on the inverted y axis (0 at the top). Pseudo-
        confidence regions ``b ± z·se`` at 90, 95 and 99 % are shaded (inside 90 % white,
        90-95 % darker grey, 95-99 % lighter grey, as metafor's ``funnel(level=c(90, 95, 99),
        refline=b)``). Observed studies are filled black (gid ``observed``), imputed studies
        hollow (gid ``imputed``).

    Raises
    ------
    ValueError
        If no observed study has finite ``yi`` and positive finite ``sei``, lengths differ, or
        ``b`` is not finite.

    Notes
    -----
    Peters et al. (2008) J Clin Epidemiol 61:991. R equivalent:
    ``metafor::funnel(trimfill(res), level=c(90, 95, 99), shade=..., refline=res$b, yaxis="sei")``.
    """
    fn = "funnel_plot"
    style = STYLE

    def pairs(y, s, what):
        y = np.asarray(y, dtype=float).ravel()
        s = np.asarray(s, dtype=float).ravel()
        if y.shape != s.shape:
            raise ValueError(f"{fn}: {what} has {y.size} effects but {s.size} standard errors")
        if (np.isfinite(s) & (s <= 0)).any():
            raise ValueError(f"{fn}: {what} standard errors must be positive, got {s[s <= 0][0]!r}")
        ok = np.isfinite(y) & np.isfinite(s)
        return y[ok], s[ok]

    y, s = pairs(yi, sei, "observed")
    fy, fs = pairs(filled_yi, filled_sei, "filled")
    if y.size == 0:
        raise ValueError(f"{fn}: no observed study with a finite effect and standard error")
    if not fmt.finite(b):
        raise ValueError(f"{fn}: the pooled estimate b is {b!r}; expected a finite number")
    b = float(b)
    pooled = b
    if refline is not None:
        if not fmt.finite(refline):
            raise ValueError(f"{fn}: refline is {refline!r}; expected a finite number or None")
        b = float(refline)   # the contours' centre

    width = style.single_width
    title = f"Funnel plot: {label}"
    title_h = _title_height(title, width)
    plot_h, legend_h = 2.1, 0.36
    what = ("Shaded: pseudo-confidence limits (90/95/99%) around the pooled estimate, not significance contours."
            if refline is None else
            f"Shaded: significance contours (two-sided p = 0.10/0.05/0.01) of each study against "
            f"{refline_label or 'the benchmark'}; dashed: pooled estimate.")
    note = f"{what} {note}".strip()
    left, right = 0.5, 0.12
    note, note_h = _foot_note(note, width, style)
    height = style.margin + title_h + plot_h + _AXIS_H + legend_h + note_h + style.stamp_strip
    with rc_context(_rc()):
        fig = Figure(figsize=(width, height))
        _title(fig, title, width, height)
        _draw_foot_note(fig, note, note_h, width, height, style)
        bottom = style.stamp_strip + note_h + legend_h + _AXIS_H
        ax = fig.add_axes([left / width, bottom / height, (width - left - right) / width, plot_h / height])
        _style_axes(ax, style)
        se_max = float(max(s.max(), fs.max() if fs.size else 0.0)) * 1.1
        half = _Z[99] * se_max
        xs = np.concatenate([y, fy, [b - half, b + half, pooled]])
        pad = 0.04 * (xs.max() - xs.min())
        ax.set_xlim(xs.min() - pad, xs.max() + pad)
        ax.set_ylim(se_max, 0.0)
        shades = {99: "#DBDBDB", 95: "#B3B3B3", 90: "white"}
        for level in (99, 95, 90):
            w = _Z[level] * se_max
            ax.add_patch(Polygon([(b, 0.0), (b - w, se_max), (b + w, se_max)], closed=True,
                                 facecolor=shades[level], edgecolor=style.grey, linewidth=0.3, zorder=0,
                                 gid=f"region-{level}"))
        if refline is None:
            ax.plot([b, b], [0, se_max], color=style.black, linewidth=style.line_width, zorder=1, gid="pooled-line")
        else:
            ax.plot([b, b], [0, se_max], color=style.black, linewidth=style.line_width, zorder=1, gid="refline")
            ax.plot([pooled, pooled], [0, se_max], color=style.black, linewidth=style.line_width, linestyle="--",
                    zorder=1, gid="pooled-line")
        ax.scatter(y, s, s=14, color=style.black, edgecolors=style.black, linewidths=style.line_width,
                   zorder=3, gid="observed", clip_on=False)
        if fy.size:
            ax.scatter(fy, fs, s=14, facecolors="white", edgecolors=style.black, linewidths=style.line_width,
                       zorder=3, gid="imputed", clip_on=False)
        ax.set_xlabel(scale_label)
        ax.set_ylabel("Standard error")
        # Legend filled column by column: markers on the first row, the shaded regions on the second.
        blank = Line2D([], [], linestyle="none", label=" ")
        centre = (Line2D([], [], color=style.black, linewidth=style.line_width, label="Pooled estimate")
                  if refline is None else
                  Line2D([], [], color=style.black, linewidth=style.line_width,
                         label=refline_label or "Benchmark"))
        imputed = (Line2D([], [], marker="o", linestyle="none", markersize=4, markerfacecolor="white",
                          markeredgecolor=style.black, label=f"Imputed by trim and fill ({fy.size})")
                   if fy.size else blank)
        handles = [Line2D([], [], marker="o", linestyle="none", markersize=4, color=style.black,
                          label=f"Observed (k = {y.size})"),
                   Patch(facecolor="white", edgecolor=style.grey, linewidth=0.3, label="Inside 90%"),
                   imputed,
                   Patch(facecolor=shades[95], edgecolor=style.grey, linewidth=0.3, label="90\u201395%"),
                   centre,
                   Patch(facecolor=shades[99], edgecolor=style.grey, linewidth=0.3, label="95\u201399%")]
        fig.legend(handles=handles, loc="upper left", ncol=3, frameon=False, borderaxespad=0,
                   bbox_to_anchor=(style.margin / width, (style.stamp_strip + note_h + legend_h) / height),
                   handlelength=1.2, handletextpad=0.4, columnspacing=0.8,
                   prop={"family": style.font, "size": style.small_pt})
    return fig
