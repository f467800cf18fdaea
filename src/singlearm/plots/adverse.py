"""Adverse events overview: pooled incidence of every event, any grade beside grade >= 3."""

import pandas as pd
from matplotlib import rc_context
from matplotlib.figure import Figure

from .. import formatting as fmt
from .layout import (
    _AXIS_H,
    _hbar,
    _nice_limits,
    _plain_ticks,
    _require,
    _style_axes,
    _text,
    _title,
    _title_height,
    _width,
)
from .style import STYLE, _rc


def ae_overview(estimates):
    """Pooled incidence of every adverse event, any grade beside grade >= 3.

    Parameters
    ----------
    estimates : pandas.DataFrame
        Rows of ``results/tables/pooled_estimates.csv`` for one method: columns ``outcome, k,
        estimate, ci_low, ci_high`` (``subgroup`` and ``method`` if present: only ``overall``
        rows are used, and more than one method is an error). Outcomes ``ae_all:<name>`` (any
        grade) and ``ae_g34:<name>`` (grade >= 3) are drawn; other outcomes are ignored.

    Returns
    -------
    matplotlib.figure.Figure
        Double-column width, two panels sharing the rows of AE names (``any`` first as
        "Any adverse event", then alphabetical). Each point is the pooled incidence (%) with its
        95% CI and ``k = n`` beside it; an AE reported in only one grade shows "not reported" in
        the other panel. Points carry gids ``ae-all`` and ``ae-g34``.

    Raises
    ------
    ValueError
        If there is no adverse-event row, more than one method, or a duplicated outcome.

    Notes
    -----
    R equivalent: one ``meta::metaprop`` per AE, summarised with ``meta::forest`` of the pooled rows.
    """
    fn = "ae_overview"
    style = STYLE
    _require(estimates, ("outcome", "k", "estimate", "ci_low", "ci_high"), "estimates", fn)
    df = estimates
    if "subgroup" in df.columns:
        df = df[df["subgroup"] == "overall"]
    df = df[df["outcome"].astype(str).str.match(fmt.AE_OUTCOME.pattern)]
    if df.empty:
        raise ValueError(f"{fn}: no adverse-event rows (outcomes ae_all:<name> or ae_g34:<name>, subgroup "
                         "overall) to draw")
    if "method" in df.columns and df["method"].nunique() > 1:
        raise ValueError(f"{fn}: rows of several methods ({', '.join(map(str, pd.unique(df['method'])))}); "
                         "pass the rows of the primary method only")
    dup = df["outcome"][df["outcome"].duplicated()]
    if len(dup):
        raise ValueError(f"{fn}: outcome {dup.iloc[0]!r} appears more than once")
    cells = {}
    for _, r in df.iterrows():
        grade, name = fmt.AE_OUTCOME.match(str(r["outcome"])).groups()
        cells[(grade, name)] = r
    names = sorted({n for _, n in cells}, key=lambda n: (n != "any", fmt.ae_name(n).lower()))
    labels = [fmt.ae_name(n) for n in names]
    n = len(names)

    label_w = _width(labels)
    width = style.double_width
    gap_panels = 0.25
    left = style.margin + label_w + 0.1
    panel_w = (width - left - style.margin - gap_panels) / 2
    title = "Adverse events: pooled incidence"
    method = str(df["method"].iloc[0]) if "method" in df.columns else None
    subtitle = f"Pooled with {method}" if method else None
    title_h = _title_height(title, width, subtitle)
    head_h = 0.2
    rows_h = n * style.row_height * 1.15
    height = style.margin + title_h + head_h + rows_h + _AXIS_H + style.stamp_strip

    with rc_context(_rc()):
        fig = Figure(figsize=(width, height))
        _title(fig, title, width, height, subtitle=subtitle)
        bottom = style.stamp_strip + _AXIS_H
        for p, (grade, heading, colour) in enumerate((("all", "Any grade", style.blue),
                                                      ("g34", "Grade \u2265 3", style.vermillion))):
            x0 = left + p * (panel_w + gap_panels)
            ax = fig.add_axes([x0 / width, bottom / height, panel_w / width, rows_h / height])
            _style_axes(ax, style)
            ax.set_ylim(n - 0.5, -0.5)
            ax.set_yticks(range(n))
            ax.set_yticklabels(labels if p == 0 else [""] * n)
            ax.tick_params(axis="y", length=0)
            ax.spines["left"].set_visible(False)
            for i in range(1, n, 2):
                ax.axhspan(i - 0.5, i + 0.5, color=style.band_grey, zorder=0, linewidth=0)
            present = [cells[(grade, nm)] for nm in names if (grade, nm) in cells]
            hi = max([100 * r["ci_high"] for r in present if fmt.finite(r["ci_high"])]
                     + [100 * r["estimate"] for r in present if fmt.finite(r["estimate"])], default=10.0)
            # Room right of the widest interval for its "k = n" note.
            xlim = _nice_limits([0.0, hi * 1.22], lower=0.0, upper=100.0)
            ax.set_xlim(*xlim)
            ax.set_xlabel("Incidence (%)")
            _plain_ticks(ax)
            _text(ax, 0.0, 1.0 + 0.06 / rows_h, heading, transform=ax.transAxes, ha="left", va="bottom",
                  fontweight="bold")
            xs, ys = [], []
            for i, nm in enumerate(names):
                r = cells.get((grade, nm))
                if r is None:
                    _text(ax, xlim[0] + 0.02 * (xlim[1] - xlim[0]), i, "not reported", ha="left", va="center",
                          color=style.grey, fontstyle="italic", size=style.small_pt)
                    continue
                if not fmt.finite(r["estimate"]):
                    _text(ax, xlim[0] + 0.02 * (xlim[1] - xlim[0]), i, "NA", ha="left", va="center",
                          color=style.grey, size=style.small_pt)
                    continue
                e = 100 * float(r["estimate"])
                _hbar(ax, i, 100 * r["ci_low"], 100 * r["ci_high"], xlim, color=colour, lw=style.line_width * 1.4)
                xs.append(e)
                ys.append(i)
                right = 100 * r["ci_high"] if fmt.finite(r["ci_high"]) else e
                ax.annotate(f"k = {fmt.count(r['k'])}", (min(right, xlim[1]), i), xytext=(3, 0),
                            textcoords="offset points", ha="left", va="center", fontsize=style.small_pt,
                            color=style.grey, annotation_clip=False)
            ax.scatter(xs, ys, s=14, color=colour, edgecolors="none", zorder=3, gid=f"ae-{grade}", clip_on=False)
    return fig
