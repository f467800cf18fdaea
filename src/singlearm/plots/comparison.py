"""Every outcome's estimate and interval by method, frequentist beside Bayesian, on one axis."""

import numpy as np
import pandas as pd
from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.transforms import blended_transform_factory

from .. import formatting as fmt
from .layout import (
    _AXIS_H,
    _extent,
    _hbar,
    _nice_limits,
    _plain_ticks,
    _require,
    _style_axes,
    _text,
    _title,
    _title_height,
    _width,
    _wrap,
)
from .style import STYLE, _rc

# Methods drawn by method_comparison, in legend order, with a fixed colour and marker so that a
# method looks the same in every figure; methods not listed get the spare styles in turn.
_METHOD_STYLES = {
    "PFT-DL": (STYLE.black, "o"), "PFT-REML-HKSJ": (STYLE.blue, "s"), "PFT-DL-HKSJ": (STYLE.sky_blue, "s"),
    "GLMM-ML": (STYLE.green, "^"), "BAYES-BN": (STYLE.vermillion, "D"),
    "MEDIAN-DL": (STYLE.black, "o"), "BAYES-NN": (STYLE.vermillion, "D"),
}
_SPARE_STYLES = ((STYLE.orange, "v"), (STYLE.purple, "P"), (STYLE.blue, "<"), (STYLE.sky_blue, ">"),
                 (STYLE.green, "X"), (STYLE.grey, "h"))


PROPORTION_METHODS = ("PFT-DL", "PFT-REML-HKSJ", "GLMM-ML", "BAYES-BN")
MEDIAN_METHODS = ("MEDIAN-DL", "BAYES-NN")


def _method_styles(methods):
    """Colour and marker per method: fixed for the known methods, spare styles in turn for others."""
    out, spare = {}, iter(_SPARE_STYLES * 4)
    used = {(_METHOD_STYLES[m]) for m in methods if m in _METHOD_STYLES}
    for m in methods:
        if m in _METHOD_STYLES:
            out[m] = _METHOD_STYLES[m]
        else:
            st = next(spare)
            while st in used:
                st = next(spare)
            used.add(st)
            out[m] = st
    return out


def method_comparison(table, subgroup_labels=None):
    """Every outcome's estimate and interval by method (frequentist beside Bayesian).

    Parameters
    ----------
    table : pandas.DataFrame
        Long form, one row per outcome x subgroup x method: columns ``outcome, subgroup, label,
        method, estimate, ci_low, ci_high, proportion`` (``label`` the reader's outcome name;
        ``estimate, ci_low, ci_high`` back-transformed, proportions 0-1, medians in months;
        ``proportion`` bool, or the strings true/false of a CSV). The interval is the CI of a
        frequentist method or the credible interval of a Bayesian one. The comparison table of
        :func:`singlearm.comparison.frequentist_vs_bayesian` is accepted too: a ``kind`` column
        (``proportion``/``median``) stands for ``proportion``, and without ``label`` the outcome
        id is printed.
    subgroup_labels : mapping, optional
        Subgroup value -> the name a block label prints (:func:`singlearm.formatting.subgroup_labels`);
        a level it does not list prints its own value, ``overall`` prints "overall".

    Returns
    -------
    matplotlib.figure.Figure
        Double-column width; a panel for proportions (percent) above a panel for medians
        (months), a panel with no rows left out. One block of rows per outcome x subgroup in
        order of first appearance, labelled "Outcome label — subgroup"; within a block one row
        per method (known methods first, in the order of ``PROPORTION_METHODS`` /
        ``MEDIAN_METHODS``), each method with its own colour and marker (legend beside the
        panel). Points have gid ``method-<name>``.

    Raises
    ------
    ValueError
        If ``table`` has no row with a finite estimate.

    Notes
    -----
    R equivalent: ``metafor::forest`` of the estimates of ``rma``, ``rma.glmm`` and a
    ``bayesmeta`` fit, stacked.
    """
    fn = "method_comparison"
    labels = {"overall": "Overall", **(subgroup_labels or {})}
    style = STYLE
    _require(table, ("outcome", "subgroup", "method", "estimate", "ci_low", "ci_high"), "table", fn)
    df = table.copy()
    # The comparison table of singlearm.comparison says "kind" and carries no label; accept it as is.
    if "proportion" in df.columns:
        df["proportion"] = df["proportion"].map(fmt.to_bool)
    elif "kind" in df.columns:
        # Kaplan-Meier rates are back-transformed to 0-1 like proportions: on the months axis of the
        # medians they sat at 0 as if they were medians of a few days
        df["proportion"] = df["kind"].astype(str).str.lower().isin(["proportion", "survival_rate"])
    else:
        raise ValueError(f"{fn}: table needs a 'proportion' (bool) or 'kind' (proportion/median) column")
    if "label" not in df.columns:
        df["label"] = df["outcome"].astype(str)
    df = df[np.isfinite(pd.to_numeric(df["estimate"], errors="coerce"))]
    if df.empty:
        raise ValueError(f"{fn}: no row with a finite estimate to draw")

    panels = []
    for is_prop, known in ((True, PROPORTION_METHODS), (False, MEDIAN_METHODS)):
        part = df[df["proportion"] == is_prop]
        if part.empty:
            continue
        present = list(pd.unique(part["method"]))
        methods = [m for m in known if m in present] + [m for m in present if m not in known]
        blocks = list(dict.fromkeys(zip(part["outcome"], part["subgroup"])))
        panels.append((is_prop, part, methods, blocks))

    def block_label(part, key):
        row = part[(part["outcome"] == key[0]) & (part["subgroup"] == key[1])].iloc[0]
        sub = labels.get(key[1], str(key[1]))
        return f"{row['label']} \u2014 {sub.lower() if key[1] == 'overall' else sub}"

    width = style.double_width
    wrap_w = 2.6
    all_labels = [_wrap(block_label(p[1], key), wrap_w) for p in panels for key in p[3]]
    label_w = _width(all_labels)
    legend_w = max(_width(p[2]) for p in panels) + 0.35
    left = style.margin + label_w + 0.1
    plot_w = width - left - legend_w - style.margin - 0.1
    method_h = 0.085     # inches between the rows of two methods within a block
    block_pad = 0.09

    def block_h(n_methods, text):
        return max(n_methods * method_h + block_pad, _extent(text, style.body_pt)[1] + 0.05)

    title = "Pooled estimates by method"
    title_h = _title_height(title, width)
    panel_title_h = 0.22
    sizes = []
    for is_prop, part, methods, blocks in panels:
        hs = [block_h(len(methods), _wrap(block_label(part, key), wrap_w)) for key in blocks]
        sizes.append(hs)
    height = (style.margin + title_h + sum(panel_title_h + sum(hs) + _AXIS_H for hs in sizes)
              + 0.1 * (len(panels) - 1) + style.stamp_strip)

    with rc_context(_rc()):
        fig = Figure(figsize=(width, height))
        _title(fig, title, width, height)
        y_top = height - style.margin - title_h
        for (is_prop, part, methods, blocks), hs in zip(panels, sizes):
            scale = 100.0 if is_prop else 1.0
            panel_h = sum(hs)
            y0 = y_top - panel_title_h - panel_h
            ax = fig.add_axes([left / width, y0 / height, plot_w / width, panel_h / height])
            _style_axes(ax, style)
            ax.set_ylim(panel_h, 0.0)          # y in inches from the panel top
            ax.set_yticks([])
            ax.spines["left"].set_visible(False)
            styles = _method_styles(methods)
            values = list(part["estimate"] * scale) + list(part["ci_low"] * scale) + list(part["ci_high"] * scale)
            xlim = _nice_limits(values, lower=0.0, upper=100.0 if is_prop else None)
            ax.set_xlim(*xlim)
            _plain_ticks(ax)
            ax.set_xlabel("Proportion (%)" if is_prop else "Median (months)")
            _text(fig, style.margin / width, (y_top - 0.03) / height,
                  "Proportions and survival rates" if is_prop else "Medians", size=style.title_pt, fontweight="bold",
                  ha="left", va="top")
            points = {m: ([], []) for m in methods}
            top = 0.0
            for b, (key, h) in enumerate(zip(blocks, hs)):
                centre = top + h / 2
                if b % 2 == 1:
                    ax.axhspan(top, top + h, color=style.band_grey, linewidth=0, zorder=0)
                _text(ax, -0.1 / plot_w, centre, _wrap(block_label(part, key), wrap_w),
                      transform=blended_transform_factory(ax.transAxes, ax.transData), ha="right", va="center",
                      linespacing=style.linespacing)
                rows = part[(part["outcome"] == key[0]) & (part["subgroup"] == key[1])]
                offsets = (np.arange(len(methods)) - (len(methods) - 1) / 2) * method_h
                for j, m in enumerate(methods):
                    r = rows[rows["method"] == m]
                    if r.empty:
                        continue
                    r = r.iloc[0]
                    yy = centre + offsets[j]
                    colour, marker = styles[m]
                    _hbar(ax, yy, r["ci_low"] * scale, r["ci_high"] * scale, xlim, color=colour,
                          lw=style.line_width)
                    points[m][0].append(float(r["estimate"]) * scale)
                    points[m][1].append(yy)
                top += h
            handles = []
            for m in methods:
                colour, marker = styles[m]
                ax.scatter(points[m][0], points[m][1], s=11, marker=marker, color=colour, edgecolors="none",
                           zorder=3, gid=f"method-{m}", clip_on=False)
                handles.append(Line2D([], [], marker=marker, color=colour, linewidth=style.line_width,
                                      markersize=3.5, label=m))
            ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0 + 0.1 / plot_w, 1.0),
                      borderaxespad=0, frameon=False, handlelength=1.4, handletextpad=0.4,
                      prop={"family": style.font, "size": style.body_pt})
            y_top = y0 - _AXIS_H - 0.1
    return fig
