"""Shared drawing helpers of the figure modules: text measurement and wrapping, axes, titles, notes,
the row frame of forest-like figures, interval bars and diamonds.

Names with a leading underscore are private to :mod:`singlearm.plots`; its figure modules import them.
"""

from functools import lru_cache

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Polygon
from matplotlib.ticker import FuncFormatter, MaxNLocator
from matplotlib.transforms import blended_transform_factory

from .. import formatting as fmt
from .style import STYLE


@lru_cache(maxsize=8192)
def _extent(text, size, weight="normal", style="normal"):
    """Width and height in inches of ``text`` (may hold newlines) set in the house font.

    Measured by the Agg renderer at the PNG's resolution (font hinting makes text a little wider
    there than at screen resolution), so column widths fit the text they hold instead of
    guessing a width per character.
    """
    if not text:
        return 0.0, 0.0
    fig, renderer = _measuring_canvas()
    t = fig.text(0, 0, text, fontsize=size, fontweight=weight, fontstyle=style, family=STYLE.font,
                 linespacing=STYLE.linespacing, parse_math=False)
    try:
        bb = t.get_window_extent(renderer)
    finally:
        t.remove()
    return bb.width / STYLE.dpi, bb.height / STYLE.dpi


@lru_cache(maxsize=1)
def _measuring_canvas():
    """One scratch figure and Agg renderer for :func:`_extent`: a new figure per measured text cost
    more than the measuring (a figure stage measures some thousands of texts)."""
    fig = Figure(figsize=(1, 1), dpi=STYLE.dpi)
    return fig, FigureCanvasAgg(fig).get_renderer()


def _width(texts, size=STYLE.body_pt, weight="normal", style="normal"):
    """The widest of ``texts`` in inches (0 for none)."""
    return max((_extent(str(t), size, weight, style)[0] for t in texts), default=0.0)


def _wrap(text, width_in, size=STYLE.body_pt, weight="normal"):
    """Greedy word wrap of ``text`` so that every line fits ``width_in`` inches."""
    lines = []
    for paragraph in str(text).split("\n"):
        line = ""
        for word in paragraph.split(" "):
            trial = f"{line} {word}" if line else word
            if line and _extent(trial, size, weight)[0] > width_in:
                lines.append(line)
                line = word
            else:
                line = trial
        lines.append(line)
    return "\n".join(lines)


def _require(df, columns, what, function):
    """Raise a ValueError naming the missing columns of ``df`` (None or not a DataFrame too)."""
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"{function}: {what} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{function}: {what} lacks column(s) {', '.join(missing)}; "
                         f"expected {', '.join(columns)} (has {', '.join(map(str, df.columns))})")


def _nice_limits(values, lower=None, upper=None, snap_zero=True):
    """Axis limits on round ticks covering the finite ``values``, clipped to [lower, upper].

    When the data start near zero (below a quarter of the upper limit) the axis starts at zero,
    the natural origin of a rate or a duration.
    """
    v = np.asarray([x for x in values if fmt.finite(x)], dtype=float)
    if v.size == 0:
        lo, hi = (lower if lower is not None else 0.0), (upper if upper is not None else 1.0)
        return float(lo), float(hi)
    lo, hi = float(v.min()), float(v.max())
    if lower is not None:
        lo = max(lo, lower)
    if upper is not None:
        hi = min(hi, upper)
    if hi <= lo:
        pad = abs(hi) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    ticks = MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
    lo, hi = float(ticks[0]), float(ticks[-1])
    if lower is not None:
        lo = max(lo, lower)
    if upper is not None:
        hi = min(hi, upper)
    if snap_zero and lo > 0 and lo < 0.25 * hi:
        lo = 0.0
    return lo, hi


def _style_axes(ax, style=STYLE):
    """Tick settings stored on the axes, so ticks created at draw time keep the house style."""
    ax.tick_params(labelsize=style.body_pt, labelfontfamily=style.font, width=style.spine_width,
                   length=style.tick_length, pad=2.0)
    for spine in ax.spines.values():
        spine.set_linewidth(style.spine_width)


def _text(target, x, y, s, *, size=STYLE.body_pt, **kwargs):
    """``target.text`` with the house font and mathtext off (labels come from data: a '$' stays a '$')."""
    kwargs.setdefault("clip_on", False)
    return target.text(x, y, s, fontsize=size, parse_math=False, **kwargs)


def _title(fig, text, width, height, *, subtitle=None, style=STYLE):
    """Bold title (wrapped to the figure width) at the top left; returns the inches it takes."""
    wrapped = _wrap(text, width - 2 * style.margin, style.title_pt, "bold")
    _text(fig, style.margin / width, 1 - style.margin / height, wrapped, size=style.title_pt,
          fontweight="bold", ha="left", va="top", linespacing=style.linespacing)
    used = _extent(wrapped, style.title_pt, "bold")[1]
    if subtitle:
        sub = _wrap(subtitle, width - 2 * style.margin)
        _text(fig, style.margin / width, 1 - (style.margin + used + 0.03) / height, sub,
              ha="left", va="top", color=style.grey, linespacing=style.linespacing)
        used += 0.03 + _extent(sub, style.body_pt)[1]
    return used + 0.1


def _title_height(text, width, subtitle=None, style=STYLE):
    """Inches :func:`_title` will take, needed before the figure exists to size it."""
    used = _extent(_wrap(text, width - 2 * style.margin, style.title_pt, "bold"), style.title_pt, "bold")[1]
    if subtitle:
        used += 0.03 + _extent(_wrap(subtitle, width - 2 * style.margin), style.body_pt)[1]
    return used + 0.1


def _estimate_axis(ax, values, proportion, label=None):
    """x axis of a forest-type plot: round limits holding every value, in percent or months."""
    xlim = _nice_limits(values, lower=0.0, upper=100.0 if proportion else None)
    ax.set_xlim(*xlim)
    _plain_ticks(ax)
    ax.set_xlabel(label or ("Proportion (%)" if proportion else "Median (months)"))
    return xlim


def _plain_ticks(ax):
    """x tick labels without trailing zeros (``20`` not ``20.0``; ``2.5`` stays)."""
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


class _RowFrame:
    """A figure of ``n`` rows: text columns placed in inches, one axes for the plot column.

    Row ``i`` sits at data y = i (top row 0). Text in a column is placed with a transform that
    takes x from the figure (inches / width) and y from the axes' data, so text and markers of
    one row always share a baseline.
    """

    def __init__(self, n, width, left, plot_width, title_h, header_h, axis_h, notes_h,
                 style=STYLE):
        self.style = style
        self.n = n
        self.width = width
        rows_h = max(n, 1) * style.row_height
        self.height = (style.margin + title_h + header_h + rows_h + axis_h + notes_h
                       + style.stamp_strip)
        self.fig = Figure(figsize=(width, self.height))
        self.bottom = style.stamp_strip + notes_h + axis_h
        self.top = self.bottom + rows_h
        self.ax = self.fig.add_axes([left / width, self.bottom / self.height, plot_width / width,
                                     rows_h / self.height])
        ax = self.ax
        _style_axes(ax, style)
        ax.set_ylim(max(n, 1) - 0.5, -0.5)
        ax.set_yticks([])
        for side in ("left", "top", "right"):
            ax.spines[side].set_visible(False)
        self.blend = blended_transform_factory(self.fig.transFigure, ax.transData)
        self.notes_top = style.stamp_strip + notes_h

    def text(self, x_in, row, s, **kwargs):
        kwargs.setdefault("va", "center")
        return _text(self.ax, x_in / self.width, row, s, transform=self.blend, **kwargs)

    def header(self, x_in, s, **kwargs):
        return _text(self.fig, x_in / self.width, (self.top + 0.05) / self.height, s,
                     fontweight="bold", va="bottom", **kwargs)

    def rule(self, y_in, x0_in=None, x1_in=None):
        x0 = self.style.margin if x0_in is None else x0_in
        x1 = self.width - self.style.margin if x1_in is None else x1_in
        self.fig.add_artist(Line2D([x0 / self.width, x1 / self.width], [y_in / self.height] * 2,
                                   transform=self.fig.transFigure, color=self.style.black,
                                   linewidth=self.style.spine_width))

    def notes(self, lines):
        if lines:
            _text(self.fig, self.style.margin / self.width, (self.notes_top - 0.02) / self.height,
                  "\n".join(lines), ha="left", va="top", color=self.style.black,
                  linespacing=self.style.linespacing)


def _notes_height(lines, width, style=STYLE):
    return (_extent("\n".join(lines), style.body_pt)[1] + 0.06) if lines else 0.0


_AXIS_H = 0.42  # inches under a plot column: tick labels and the axis label


def _hbar(ax, y, lo, hi, xlim, *, color, lw, gid=None, clip_arrows=True):
    """A horizontal interval at row ``y`` clamped to ``xlim``; a clamped end gets an arrowhead."""
    if not (fmt.finite(lo) and fmt.finite(hi)):
        return None
    a, b = max(float(lo), xlim[0]), min(float(hi), xlim[1])
    if b < a:
        return None
    (line,) = ax.plot([a, b], [y, y], color=color, linewidth=lw, solid_capstyle="butt", gid=gid,
                      clip_on=False, zorder=2)
    if clip_arrows:
        if float(lo) < xlim[0]:
            ax.plot([xlim[0]], [y], marker="<", markersize=3, color=color, clip_on=False, zorder=2)
        if float(hi) > xlim[1]:
            ax.plot([xlim[1]], [y], marker=">", markersize=3, color=color, clip_on=False, zorder=2)
    return line


def _diamond(ax, y, est, lo, hi, xlim, *, color, edge, gid, half_height=0.38):
    """A summary diamond (CI as width); a point diamond marker when the CI is missing."""
    if not fmt.finite(est):
        return None
    if fmt.finite(lo) and fmt.finite(hi):
        lo_c, hi_c = max(float(lo), xlim[0]), min(float(hi), xlim[1])
        est_c = min(max(float(est), xlim[0]), xlim[1])
        verts = [(lo_c, y), (est_c, y - half_height), (hi_c, y), (est_c, y + half_height)]
        patch = Polygon(verts, closed=True, facecolor=color, edgecolor=edge, linewidth=STYLE.line_width,
                        gid=gid, zorder=3, clip_on=False)
        ax.add_patch(patch)
        return patch
    (pt,) = ax.plot([est], [y], marker="D", markersize=4, color=color, markeredgecolor=edge, gid=gid,
                    linestyle="none", zorder=3, clip_on=False)
    return pt


def _foot_note(note, width, style):
    """A note under a single-panel figure, wrapped to its width, and the height it takes (inches)."""
    note = _wrap(note, width - 2 * style.margin, size=style.small_pt) if note else ""
    return note, (_extent(note, style.small_pt)[1] + 0.08) if note else 0.0


def _draw_foot_note(fig, note, note_h, width, height, style):
    """Draw the note of :func:`_foot_note` just above the provenance stamp's strip."""
    if note:
        fig.text(style.margin / width, (style.stamp_strip + note_h - 0.04) / height, note, ha="left", va="top",
                 fontsize=style.small_pt, color=style.black, gid="note")
