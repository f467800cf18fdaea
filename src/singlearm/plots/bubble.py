"""Bubble plot of a meta-regression on one continuous moderator."""

import numpy as np
import pandas as pd
from matplotlib import rc_context
from matplotlib.figure import Figure

from .layout import _AXIS_H, _draw_foot_note, _foot_note, _require, _style_axes, _title, _title_height
from .style import STYLE, _rc


def bubble_plot(studies, line, *, label, moderator, scale_label, note=""):
    """Bubble plot: each study's effect against a moderator, bubble area by weight, with the fitted line.

    Parameters
    ----------
    studies : pandas.DataFrame
        ``x, y, weight`` (percent) per study, on the analysis scale (rows with a non-finite x or
        y are left out); from :func:`singlearm.moderation.meta_regression` (``kind == "study"``).
    line : pandas.DataFrame
        ``x, y, y_low, y_high``: the fitted line and its CI (``kind == "line"``); may be empty
        when the model was not run (``note`` then says why).
    label : str
        Outcome name; the title is "Meta-regression: <label>".
    moderator : str
        x-axis label.
    scale_label : str
        y-axis label (the analysis scale).
    note : str
        Printed, wrapped, under the plot (e.g. what the other moderators are held at).

    Returns
    -------
    matplotlib.figure.Figure
        Single-column width; bubbles (gid ``bubbles``), line (gid ``fit-line``), CI (gid
        ``fit-ci``, dashed).

    Raises
    ------
    ValueError
        If no study has finite x and y.

    Notes
    -----
    R equivalent: ``metafor::regplot(res, mod = moderator)`` (bubble area proportional to the
    weight, ``ci = TRUE``).
    """
    fn = "bubble_plot"
    style = STYLE
    _require(studies, ("x", "y", "weight"), "studies", fn)
    ok = np.isfinite(pd.to_numeric(studies["x"], errors="coerce")) & np.isfinite(pd.to_numeric(studies["y"],
                                                                                               errors="coerce"))
    df = studies[ok]
    if df.empty:
        raise ValueError(f"{fn}: no study with a finite moderator value and effect to draw")
    x, y = df["x"].astype(float).to_numpy(), df["y"].astype(float).to_numpy()
    w = pd.to_numeric(df["weight"], errors="coerce").fillna(0).to_numpy(float)
    width = style.single_width
    title = f"Meta-regression: {label}"
    title_h = _title_height(title, width)
    left, right, plot_h = 0.5, 0.12, 2.2
    note, note_h = _foot_note(note, width, style)
    height = style.margin + title_h + plot_h + _AXIS_H + note_h + style.stamp_strip
    with rc_context(_rc()):
        fig = Figure(figsize=(width, height))
        _title(fig, title, width, height)
        _draw_foot_note(fig, note, note_h, width, height, style)
        bottom = style.stamp_strip + note_h + _AXIS_H
        ax = fig.add_axes([left / width, bottom / height, (width - left - right) / width, plot_h / height])
        _style_axes(ax, style)
        ys = [y]
        if len(line):
            lx = line["x"].astype(float).to_numpy()
            ax.plot(lx, line["y"].astype(float), color=style.blue, linewidth=style.line_width * 1.5, zorder=2,
                    gid="fit-line")
            for c in ("y_low", "y_high"):
                ax.plot(lx, line[c].astype(float), color=style.blue, linewidth=style.line_width, linestyle="--",
                        zorder=2, gid="fit-ci")
                ys.append(line[c].astype(float).to_numpy())
        # bubble area proportional to the weight (the largest study 150 pt^2)
        area = 150 * w / w.max() if w.max() > 0 else np.full(len(w), 30.0)
        ax.scatter(x, y, s=np.maximum(area, 6), facecolors=style.band_grey, edgecolors=style.black,
                   linewidths=style.line_width, zorder=3, gid="bubbles", clip_on=False)
        allx, ally = x, np.concatenate(ys)
        padx = 0.06 * (allx.max() - allx.min() or 1.0)
        pady = 0.08 * (ally.max() - ally.min() or 1.0)
        ax.set_xlim(allx.min() - padx, allx.max() + padx)
        ax.set_ylim(ally.min() - pady, ally.max() + pady)
        ax.set_xlabel(moderator)
        ax.set_ylabel(scale_label)
    return fig
