"""Every figure of the workflow, drawn in one style, and the one writer that saves them.

The figure functions are pure: they take the workflow's result tables (pandas DataFrames, columns
listed in each docstring) and return a :class:`matplotlib.figure.Figure`. They never touch pyplot
or the global ``rcParams``: the style below is applied through :func:`matplotlib.rc_context`
inside each function, so importing this module changes nothing for anyone else in the process.

:func:`save_figure` is the only function with side effects. It prints the provenance stamp on
the figure and writes ``<stem>.pdf`` (vector, TrueType fonts embedded) and ``<stem>.png``
(300 dpi) atomically and byte-reproducibly: the same figure and stamp give the same bytes on
every run, so a rebuild that changes nothing changes no figure file either.

Layouts are computed in inches from measured text extents rather than left to a layout engine,
so that a figure keeps its journal column width whatever the labels, and the row height of
every forest-like figure is the same.
"""

import io
import math
import re
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
from cycler import cycler
from fontTools import subset as fontsubset
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch, Polygon
from matplotlib.ticker import FuncFormatter, MaxNLocator
from matplotlib.transforms import blended_transform_factory

from .provenance import write_bytes

__all__ = [
    "MEDIAN_METHODS", "PRISMA_STAGES", "PROPORTION_METHODS", "STYLE", "SUBGROUP_NAMES", "Style",
    "ae_overview", "baujat_plot", "forest_plot", "funnel_plot", "leave_one_out_plot", "method_comparison",
    "prisma_flow", "quality_grid", "save_figure", "subgroup_name",
]


# --------------------------------------------------------------------------------------------
# Style: every size, colour and width of every figure lives here.
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Style:
    """The house style of the figures (journal column widths, DejaVu Sans, Okabe-Ito colours).

    DejaVu Sans ships with matplotlib, so the same glyphs are embedded on every machine and
    the output bytes do not depend on which system fonts happen to be installed.
    """

    single_width: float = 3.5      # inches, one journal column
    double_width: float = 7.2      # inches, full page width
    font: str = "DejaVu Sans"
    body_pt: float = 7.0
    title_pt: float = 8.0
    small_pt: float = 6.0
    stamp_pt: float = 5.0
    line_width: float = 0.6
    spine_width: float = 0.5
    tick_length: float = 2.5
    linespacing: float = 1.2
    dpi: int = 300
    row_height: float = 0.17       # inches per row of a forest-like figure
    margin: float = 0.06           # inches, outer margin on every side
    gap: float = 0.14              # inches between text columns
    stamp_strip: float = 0.14      # inches kept free at the bottom for the provenance stamp
    # Okabe & Ito (2008) colour-blind-safe palette.
    black: str = "#000000"
    orange: str = "#E69F00"
    sky_blue: str = "#56B4E9"
    green: str = "#009E73"
    yellow: str = "#F0E442"
    blue: str = "#0072B2"
    vermillion: str = "#D55E00"
    purple: str = "#CC79A7"
    grey: str = "#808080"
    light_grey: str = "#D9D9D9"
    band_grey: str = "#F2F2F2"

    @property
    def palette(self):
        """The Okabe-Ito colours in their published order."""
        return (self.black, self.orange, self.sky_blue, self.green, self.yellow, self.blue,
                self.vermillion, self.purple)


STYLE = Style()

# Readable headings of the subgroup levels of the default review; other levels print as they are.
SUBGROUP_NAMES = {"sts": "Soft-tissue sarcoma", "bone": "Bone sarcoma", "mixed": "Mixed",
                  "overall": "Overall"}

# Methods drawn by method_comparison, in legend order, with a fixed colour and marker so that a
# method looks the same in every figure; methods not listed get the spare styles in turn.
_METHOD_STYLES = {
    "PFT-DL": (STYLE.black, "o"), "PFT-REML-HKSJ": (STYLE.blue, "s"), "PFT-DL-HKSJ": (STYLE.sky_blue, "s"),
    "GLMM-ML": (STYLE.green, "^"), "BAYES-BN": (STYLE.vermillion, "D"),
    "MEDIAN-DL": (STYLE.black, "o"), "BAYES-NN": (STYLE.vermillion, "D"),
}
_SPARE_STYLES = ((STYLE.orange, "v"), (STYLE.purple, "P"), (STYLE.blue, "<"), (STYLE.sky_blue, ">"),
                 (STYLE.green, "X"), (STYLE.grey, "h"))

# Traffic-light colours of the quality grid (green / amber / red / grey, all Okabe-Ito).
_MINORS_COLOURS = {0: STYLE.vermillion, 1: STYLE.orange, 2: STYLE.green}
_MINORS_MEANING = {0: "0  not reported", 1: "1  reported, inadequate", 2: "2  reported, adequate"}
_JBI_COLOURS = {"Y": STYLE.green, "N": STYLE.vermillion, "U": STYLE.orange, "NA": STYLE.light_grey}
_JBI_MEANING = {"Y": "Yes", "N": "No", "U": "Unclear", "NA": "Not applicable"}
_JBI_ALIASES = {"Y": "Y", "YES": "Y", "N": "N", "NO": "N", "U": "U", "UNCLEAR": "U", "NA": "NA",
                "N/A": "NA", "NOT APPLICABLE": "NA"}
_NOT_ITEMS = {"study_id", "cohort_id", "total", "note", "notes", "comment", "comments"}

# Stage vocabulary of the PRISMA counts sheet, top to bottom; one flow row is (main, side, phase).
PRISMA_STAGES = ("identified", "removed", "screened", "excluded_screening", "sought", "not_retrieved",
                 "full_text", "excluded_full_text", "included")
_PRISMA_ROWS = (("identified", "removed", "Identification"), ("screened", "excluded_screening", "Screening"),
                ("sought", "not_retrieved", "Screening"), ("full_text", "excluded_full_text", "Screening"),
                ("included", None, "Included"))
_PRISMA_TITLES = {
    "identified": "Records identified", "removed": "Records removed before screening",
    "screened": "Records screened", "excluded_screening": "Records excluded",
    "sought": "Reports sought for retrieval", "not_retrieved": "Reports not retrieved",
    "full_text": "Reports assessed for eligibility", "excluded_full_text": "Reports excluded",
    "included": "Studies included in review",
}

_Z = {90: 1.6448536269514722, 95: 1.959963984540054, 99: 2.5758293035489004}


def _rc(style=STYLE):
    """The rcParams of the house style, for :func:`matplotlib.rc_context` (never set globally)."""
    return {
        "font.family": "sans-serif",
        "font.sans-serif": [style.font],
        "font.size": style.body_pt,
        "axes.titlesize": style.title_pt,
        "axes.labelsize": style.body_pt,
        "axes.linewidth": style.spine_width,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.edgecolor": style.black,
        "axes.prop_cycle": cycler(color=list(style.palette)),
        "axes.unicode_minus": True,
        "xtick.labelsize": style.body_pt,
        "ytick.labelsize": style.body_pt,
        "xtick.major.width": style.spine_width,
        "ytick.major.width": style.spine_width,
        "xtick.major.size": style.tick_length,
        "ytick.major.size": style.tick_length,
        "xtick.major.pad": 2.0,
        "ytick.major.pad": 2.0,
        "legend.fontsize": style.body_pt,
        "legend.frameon": False,
        "lines.linewidth": style.line_width,
        "patch.linewidth": style.line_width,
        "mathtext.fontset": "dejavusans",
        "text.usetex": False,
        "figure.dpi": 100,
        "savefig.dpi": style.dpi,
        "savefig.facecolor": "white",
        "savefig.bbox": None,
        # TrueType (Type 42) fonts keep the PDF text selectable and editable in a journal's tools.
        "pdf.fonttype": 42,
        "ps.fonttype": 42,
        "pdf.compression": 6,
        "svg.fonttype": "none",
        # A fixed salt makes SVG element ids reproducible should an SVG ever be written.
        "svg.hashsalt": "singlearm",
        "path.simplify": True,
    }


# --------------------------------------------------------------------------------------------
# Small helpers: text measurement, wrapping, number formats, validation.
# --------------------------------------------------------------------------------------------

@lru_cache(maxsize=8192)
def _extent(text, size, weight="normal", style="normal"):
    """Width and height in inches of ``text`` (may hold newlines) set in the house font.

    Measured by the Agg renderer at the PNG's resolution (font hinting makes text a little wider
    there than at screen resolution), so column widths fit the text they hold instead of
    guessing a width per character.
    """
    if not text:
        return 0.0, 0.0
    dpi = STYLE.dpi
    fig = Figure(figsize=(1, 1), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    t = fig.text(0, 0, text, fontsize=size, fontweight=weight, fontstyle=style, family=STYLE.font,
                 linespacing=STYLE.linespacing, parse_math=False)
    bb = t.get_window_extent(canvas.get_renderer())
    return bb.width / dpi, bb.height / dpi


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


def _finite(x):
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _num(x, digits=1):
    return f"{float(x):.{digits}f}" if _finite(x) else "NA"


def _count(x):
    return f"{int(round(float(x))):,}" if _finite(x) else "NA"


def _p_text(p):
    """``p = 0.500`` or ``p < 0.001`` or ``p = NA``."""
    if not _finite(p):
        return "p = NA"
    return "p < 0.001" if float(p) < 0.001 else f"p = {float(p):.3f}"


def _pct_text(x):
    return f"{float(x):.1f}%" if _finite(x) else "NA"


def _interval_text(est, lo, hi, digits=1):
    """``10.8 [7.9, 14.1]``; a missing bound prints as NA."""
    return f"{_num(est, digits)} [{_num(lo, digits)}, {_num(hi, digits)}]"


def _as_bool(x):
    if isinstance(x, str):
        return x.strip().lower() in ("true", "1", "yes")
    return bool(x) if not (isinstance(x, float) and math.isnan(x)) else False


def _is_flag(x):
    return isinstance(x, str) and x.strip() != ""


def subgroup_name(level):
    """A reader's heading for a subgroup level (``sts`` -> ``Soft-tissue sarcoma``)."""
    return SUBGROUP_NAMES.get(str(level), str(level))


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
    v = np.asarray([x for x in values if _finite(x)], dtype=float)
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


# --------------------------------------------------------------------------------------------
# Writing.
# --------------------------------------------------------------------------------------------

_STAMP_GID = "provenance-stamp"


@contextmanager
def _lean_font_subsets():
    """Embed TrueType subsets without the OpenType layout tables (GSUB, GPOS, GDEF).

    A PDF places every glyph itself (Matplotlib has already laid the text out), so a viewer never
    reads these tables; subsetting them was half of the figure stage's CPU time (fontTools
    decompiles all of DejaVu's kerning and substitution lookups for every PDF). Matplotlib builds
    its fontTools options inside one function, so the option is set for the duration of a save.
    """
    original = fontsubset.Options

    class Lean(original):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.drop_tables = [*self.drop_tables, "GSUB", "GPOS", "GDEF"]

    fontsubset.Options = Lean
    try:
        yield
    finally:
        fontsubset.Options = original


def save_figure(fig, stem, stamp):
    """Print the provenance stamp on ``fig`` and write ``<stem>.pdf`` and ``<stem>.png``.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        A figure from one of this module's functions (any figure works; those leave a strip of
        :attr:`Style.stamp_strip` inches free at the bottom for the stamp).
    stem : str or pathlib.Path
        Output path without extension (``results/figures/forest_orr``); ``.pdf`` and ``.png``
        are appended, so a stem containing dots keeps them. Parent folders are created.
    stamp : str
        Provenance line, e.g. ``singlearm 0.1.0 · 60a2f4c · inputs 1a2b3c4d5e6f`` from
        :func:`singlearm.provenance.stamp`; drawn in 5 pt grey at the bottom-right corner.
        Saving the same figure again replaces the stamp rather than adding a second one.

    Returns
    -------
    list of pathlib.Path
        The PDF and PNG paths, in that order.

    Notes
    -----
    The output is byte-reproducible: the PDF carries no creation or modification date and no
    producer string (``Creator`` is ``singlearm``), fonts are embedded as TrueType subsets
    (``pdf.fonttype`` 42), the PNG carries no ``Software`` text chunk, and the 300 dpi raster
    is produced by Agg, which is deterministic. Each file is written to a temporary name in its
    final folder and then renamed with :func:`os.replace`, so a crash never leaves a truncated
    figure under the final name.

    R equivalent: ``ggplot2::ggsave`` of a PDF and a PNG, with the date stripped.
    """
    if not isinstance(fig, Figure):
        raise ValueError(f"save_figure: expected a matplotlib Figure, got {type(fig).__name__}")
    if not isinstance(stamp, str) or not stamp.strip():
        raise ValueError("save_figure: the provenance stamp is empty; pass singlearm.provenance.stamp(inputs)")
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    with rc_context(_rc()):
        old = [t for t in fig.texts if t.get_gid() == _STAMP_GID]
        for t in old:
            t.remove()
        w, h = fig.get_size_inches()
        fig.text(1 - STYLE.margin / w, 0.035 / h, stamp, fontsize=STYLE.stamp_pt, color=STYLE.grey,
                 ha="right", va="bottom", gid=_STAMP_GID, parse_math=False, family=STYLE.font)
        targets = [
            (Path(f"{stem}.pdf"), "pdf", {"CreationDate": None, "ModDate": None, "Producer": None,
                                          "Creator": "singlearm"}),
            (Path(f"{stem}.png"), "png", {"Software": None}),
        ]
        written = []
        for path, fmt, metadata in targets:
            buffer = io.BytesIO()
            with _lean_font_subsets():
                fig.savefig(buffer, format=fmt, dpi=STYLE.dpi, metadata=metadata, facecolor="white")
            write_bytes(path, buffer.getvalue())
            written.append(path)
    return written


# --------------------------------------------------------------------------------------------
# Forest-like figures share one frame: text columns left and right of one plot column.
# --------------------------------------------------------------------------------------------

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
    if not (_finite(lo) and _finite(hi)):
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
    if not _finite(est):
        return None
    if _finite(lo) and _finite(hi):
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


# --------------------------------------------------------------------------------------------
# 1. Forest plot.
# --------------------------------------------------------------------------------------------

_STUDY_COLUMNS = ("outcome", "subgroup", "cohort_id", "events", "total", "estimate", "ci_low", "ci_high",
                  "has_ci", "weight_overall")
_ESTIMATE_COLUMNS = ("outcome", "subgroup", "method", "k", "estimate", "ci_low", "ci_high", "pi_low",
                     "pi_high", "i2", "q_p")


def forest_plot(studies, estimates, subgroup_tests=None, *, outcome, method, label, proportion=True,
                value_header=None, footnotes=()):
    """Forest plot of one outcome: studies by subgroup, subgroup and overall diamonds, PI.

    Parameters
    ----------
    studies : pandas.DataFrame
        ``results/tables/study_estimates.csv``: columns ``outcome, subgroup, cohort_id, events,
        total, estimate, ci_low, ci_high, has_ci, weight_overall`` (``study_id, ci_method,
        weight_subgroup`` may be present and are not used). Rows of other outcomes are ignored.
        A row with ``has_ci`` False is drawn as an open grey square without whiskers and marked
        "no CI"/"not pooled".
    estimates : pandas.DataFrame
        ``results/tables/pooled_estimates.csv``: columns ``outcome, subgroup, method, k,
        estimate, ci_low, ci_high, pi_low, pi_high, i2, q_p`` (``tau2, q, q_df`` are printed
        when present). Rows of other outcomes and methods are ignored; subgroup ``overall``
        gives the overall diamond, the other levels the subtotal diamonds. An outcome without
        pooled rows (nothing poolable) is drawn with its studies only and a note; a method the
        table does not hold at all is an error.
    subgroup_tests : pandas.DataFrame or None
        ``results/tables/subgroup_tests.csv``: columns ``outcome, method, q_between, df,
        p_value``; the matching row, if any, is printed under the plot.
    outcome, method : str
        Which rows to draw (``"orr"``, ``"PFT-DL"``).
    label : str
        Reader's name of the outcome, the title (wrapped to the figure width).
    proportion : bool
        True for a proportion or survival rate (axis and text in percent), False for a median
        (months).
    value_header : str, optional
        Header of the estimate column (default by ``proportion``).
    footnotes : sequence of str
        Extra notes under the plot (e.g. the Freeman-Tukey flags of the pooled fit).

    Returns
    -------
    matplotlib.figure.Figure
        Double-column width (wider only if the text columns leave the plot under 2 in); the
        height grows with the number of rows. Artists tests and readers may look up by gid:
        ``study-markers`` (squares, area proportional to overall weight, in study-row order),
        ``unpooled-markers``, ``overall-diamond``, ``subtotal-<level>``, ``prediction-interval``.

    Notes
    -----
    Subgroups are listed in their order of first appearance in ``estimates`` after ``overall``,
    then any level only the study table has. Subtotal diamonds are drawn only when there are at
    least two levels (with one level the subtotal is the overall result). Whiskers or intervals
    beyond the axis end in an arrowhead at the axis limit; the printed numbers are never clipped.

    R equivalent: ``meta::forest(metaprop(..., sm="PFT", subgroup=histology, prediction=TRUE))``.
    """
    fn = "forest_plot"
    style = STYLE
    _require(studies, _STUDY_COLUMNS, "studies", fn)
    _require(estimates, _ESTIMATE_COLUMNS, "estimates", fn)
    st = studies[studies["outcome"] == outcome]
    if st.empty:
        have = ", ".join(map(str, pd.unique(studies["outcome"]))) or "none"
        raise ValueError(f"{fn}: no study rows of outcome {outcome!r} (outcomes present: {have})")
    if len(estimates) and not (estimates["method"] == method).any():
        have = ", ".join(map(str, pd.unique(estimates["method"])))
        raise ValueError(f"{fn}: method {method!r} not in the estimates (methods present: {have})")
    est = estimates[(estimates["outcome"] == outcome) & (estimates["method"] == method)]
    dup = est["subgroup"][est["subgroup"].duplicated()]
    if len(dup):
        raise ValueError(f"{fn}: estimates hold {len(dup) + 1} rows for outcome {outcome!r}, method "
                         f"{method!r}, subgroup {dup.iloc[0]!r}; expected one")
    pooled = {r["subgroup"]: r for _, r in est.iterrows()}
    test = None
    if subgroup_tests is not None and len(subgroup_tests):
        _require(subgroup_tests, ("outcome", "method", "q_between", "df", "p_value"), "subgroup_tests", fn)
        t = subgroup_tests[(subgroup_tests["outcome"] == outcome) & (subgroup_tests["method"] == method)]
        if len(t):
            test = t.iloc[0]

    scale = 100.0 if proportion else 1.0
    digits = 1
    levels = [s for s in pd.unique(est["subgroup"]) if s != "overall"]
    levels += [s for s in pd.unique(st["subgroup"]) if s not in levels]
    multi = len([lv for lv in levels if (st["subgroup"] == lv).any()]) > 1

    # Rows: each a dict of what the text columns print and what the plot column draws.
    rows = []
    for lv in levels:
        members = st[st["subgroup"] == lv]
        if members.empty and lv not in pooled:
            continue
        rows.append({"kind": "heading", "label": subgroup_name(lv)})
        for _, r in members.iterrows():
            has_ci = _as_bool(r["has_ci"]) and _finite(r["ci_low"])
            open_upper = has_ci and not _finite(r["ci_high"])   # upper limit not reached
            w = r["weight_overall"]
            events = (f"{_count(r['events'])}/{_count(r['total'])}" if _finite(r["events"])
                      else (_count(r["total"]) if _finite(r["total"]) else "\u2013"))
            rows.append({
                "kind": "study", "label": str(r["cohort_id"]), "events": events,
                "est": r["estimate"] * scale if _finite(r["estimate"]) else np.nan,
                "lo": r["ci_low"] * scale if has_ci else np.nan,
                "hi": (np.inf if open_upper else r["ci_high"] * scale) if has_ci else np.nan,
                "has_ci": has_ci, "weight": float(w) if _finite(w) and has_ci else np.nan,
                "est_text": (f"{_num(r['estimate'] * scale, digits)} [{_num(r['ci_low'] * scale, digits)}, NR]"
                             if open_upper else
                             _interval_text(r["estimate"] * scale, r["ci_low"] * scale, r["ci_high"] * scale,
                                            digits) if has_ci or _finite(r["ci_low"]) or _finite(r["ci_high"])
                             else f"{_num(r['estimate'] * scale, digits)} (no CI)"),
                "weight_text": (f"{float(w):.1f}" if _finite(w) and has_ci
                                else ("not pooled" if not has_ci else "\u2013")),
            })
        if multi and lv in pooled and _count(pooled[lv]["k"]) == "1":
            rows.append({"kind": "single", "label": "Subtotal: 1 study, not pooled", "est_text": "", "weight_text": ""})
        elif multi and lv in pooled:
            p = pooled[lv]
            wsum = members["weight_overall"][members["has_ci"].map(_as_bool)].astype(float)
            wsum = wsum[np.isfinite(wsum)]
            rows.append({
                "kind": "subtotal", "level": lv,
                "label": f"Subtotal (k = {_count(p['k'])}): I\u00b2 = {_pct_text(p['i2'])}, {_p_text(p['q_p'])}",
                "est": p["estimate"] * scale, "lo": p["ci_low"] * scale, "hi": p["ci_high"] * scale,
                "est_text": _interval_text(p["estimate"] * scale, p["ci_low"] * scale, p["ci_high"] * scale, digits),
                "weight_text": f"{wsum.sum():.1f}" if len(wsum) else "\u2013",
            })
        rows.append({"kind": "blank"})
    overall = pooled.get("overall")
    single = overall is not None and _count(overall["k"]) == "1"
    if single:
        rows.append({"kind": "single", "label": "Overall: 1 study, not pooled", "est_text": "", "weight_text": ""})
        overall = None
    if overall is not None:
        o = overall
        rows.append({
            "kind": "overall",
            "label": f"Overall (k = {_count(o['k'])}): I\u00b2 = {_pct_text(o['i2'])}, {_p_text(o['q_p'])}",
            "est": o["estimate"] * scale, "lo": o["ci_low"] * scale, "hi": o["ci_high"] * scale,
            "est_text": _interval_text(o["estimate"] * scale, o["ci_low"] * scale, o["ci_high"] * scale, digits),
            "weight_text": "100.0",
        })
        has_pi = _finite(o["pi_low"]) and _finite(o["pi_high"])
        rows.append({
            "kind": "pi", "label": "Prediction interval",
            "lo": o["pi_low"] * scale if has_pi else np.nan, "hi": o["pi_high"] * scale if has_pi else np.nan,
            "est_text": (f"[{_num(o['pi_low'] * scale, digits)}, {_num(o['pi_high'] * scale, digits)}]"
                         if has_pi else "NA"),
            "weight_text": "",
        })
    elif rows and rows[-1]["kind"] == "blank":
        rows.pop()

    # Notes under the plot.
    notes = []
    if overall is not None:
        het = [f"\u03c4\u00b2 = {_num(overall.get('tau2', np.nan), 4)}"]
        if "q" in overall and "q_df" in overall:
            het.append(f"Q = {_num(overall['q'], 2)}, df = {_count(overall['q_df'])}, {_p_text(overall['q_p'])}")
        het.append(f"I\u00b2 = {_pct_text(overall['i2'])}")
        notes.append("Heterogeneity (overall): " + "; ".join(het))
    elif single:
        notes.append("1 study: its own estimate and CI are shown; there is nothing to pool.")
    else:
        notes.append(f"No pooled estimate of {method} for this outcome.")
    if test is not None:
        notes.append(f"Test for subgroup differences: Q = {_num(test['q_between'], 2)}, "
                     f"df = {_count(test['df'])}, {_p_text(test['p_value'])}")
    notes.append("Square area proportional to the study's weight in the overall analysis.")
    if any(r["kind"] == "study" and not r["has_ci"] for r in rows):
        notes.append("Open grey squares: no 95% CI reported; shown, not pooled.")
    if any(r["kind"] == "study" and r["has_ci"] and r["hi"] == np.inf for r in rows):
        notes.append("NR: upper confidence limit not reached (one-sided CI, arrow to the axis end).")
    notes += list(footnotes)

    # Column widths from the text they hold.
    indent = 0.1
    labels = [r["label"] for r in rows if r["kind"] == "study"]
    heads = [r["label"] for r in rows if r["kind"] == "heading"]
    events_header = "Events/N" if proportion and st["events"].notna().any() else "N"
    axis_label = {"Kaplan-Meier rate, % (95% CI)": "Kaplan-Meier rate (%)"}.get(value_header)
    est_header = value_header or ("Proportion, % (95% CI)" if proportion else "Median, months (95% CI)")
    label_w = max(_width(labels) + indent, _width(heads, weight="bold"), _width(["Prediction interval"]),
                  _width(["Study"], weight="bold"))
    events_w = max(_width([r.get("events", "") for r in rows]), _width([events_header], weight="bold"))
    spans = max(_width([r["label"] for r in rows if r["kind"] == "subtotal"]),
                _width([r["label"] for r in rows if r["kind"] == "overall"], weight="bold"))
    label_w = max(label_w, spans - style.gap - events_w)
    est_w = max(_width([r.get("est_text", "") for r in rows]), _width([est_header], weight="bold"))
    weight_w = max(_width([r.get("weight_text", "") for r in rows]), _width(["Weight, %"], weight="bold"))
    text_w = (2 * style.margin + label_w + events_w + est_w + weight_w + 5 * style.gap)
    width = max(style.double_width, text_w + 2.0)
    plot_w = width - text_w

    x_label = style.margin
    x_events = x_label + label_w + style.gap + events_w           # right edge
    x_plot = x_events + style.gap
    x_est = x_plot + plot_w + style.gap + est_w                     # right edge
    x_weight = x_est + style.gap + weight_w                         # right edge

    subtitle = f"Pooled with {method}"
    title_h = _title_height(label, width, subtitle)
    header_h = 0.22
    notes_h = _notes_height(notes, width)
    with rc_context(_rc()):
        frame = _RowFrame(len(rows), width, x_plot, plot_w, title_h, header_h, _AXIS_H, notes_h)
        fig, ax = frame.fig, frame.ax
        _title(fig, label, width, frame.height, subtitle=subtitle)
        # Axis limits: every number drawn, on round ticks, within the scale's natural range.
        values = []
        for r in rows:
            if r["kind"] != "pi":
                values += [v for v in (r.get("est"), r.get("lo"), r.get("hi")) if v is None or v != np.inf]
        # A prediction interval from few studies can run to thousands of months: it widens the
        # axis only up to twice the span of everything else, beyond that it ends in an arrow.
        span = max([abs(float(v)) for v in values if _finite(v)], default=1.0)
        values += [v for r in rows if r["kind"] == "pi" for v in (r["lo"], r["hi"]) if _finite(v) and abs(v) <= 2 * span]
        xlim = _estimate_axis(ax, values, proportion, axis_label)

        frame.header(x_label, "Study", ha="left")
        frame.header(x_events, events_header, ha="right")
        frame.header(x_est, est_header, ha="right")
        frame.header(x_weight, "Weight, %", ha="right")
        frame.rule(frame.top + 0.02)

        study_xy, study_s, open_xy, segments = [], [], [], []
        w_max = max([r["weight"] for r in rows if r["kind"] == "study" and _finite(r["weight"])], default=1.0)
        for i, r in enumerate(rows):
            kind = r["kind"]
            if kind == "heading":
                frame.text(x_label, i, r["label"], ha="left", fontweight="bold")
            elif kind == "study":
                frame.text(x_label + indent, i, r["label"], ha="left")
                frame.text(x_events, i, r["events"], ha="right")
                frame.text(x_est, i, r["est_text"], ha="right")
                frame.text(x_weight, i, r["weight_text"], ha="right",
                           color=style.black if r["has_ci"] else style.grey)
                if not _finite(r["est"]):
                    continue
                if r["has_ci"]:
                    lo, hi = max(r["lo"], xlim[0]), min(r["hi"], xlim[1])
                    segments.append([(lo, i), (hi, i)])
                    if r["lo"] < xlim[0]:
                        ax.plot([xlim[0]], [i], marker="<", markersize=3, color=style.black, clip_on=False)
                    if r["hi"] > xlim[1]:
                        ax.plot([xlim[1]], [i], marker=">", markersize=3, color=style.black, clip_on=False)
                    study_xy.append((r["est"], i))
                    w = r["weight"] if _finite(r["weight"]) else 0.0
                    study_s.append(6.0 + 50.0 * w / w_max)   # area in pt^2, proportional to weight
                else:
                    open_xy.append((r["est"], i))
            elif kind in ("subtotal", "overall"):
                bold = "bold" if kind == "overall" else "normal"
                frame.text(x_label, i, r["label"], ha="left", fontweight=bold)
                frame.text(x_est, i, r["est_text"], ha="right", fontweight=bold)
                frame.text(x_weight, i, r["weight_text"], ha="right", fontweight=bold)
                if kind == "overall":
                    _diamond(ax, i, r["est"], r["lo"], r["hi"], xlim, color=style.black, edge=style.black,
                             gid="overall-diamond")
                else:
                    _diamond(ax, i, r["est"], r["lo"], r["hi"], xlim, color=style.sky_blue, edge=style.blue,
                             gid=f"subtotal-{r['level']}")
            elif kind == "single":
                frame.text(x_label, i, r["label"], ha="left", fontweight="bold")
            elif kind == "pi":
                frame.text(x_label, i, r["label"], ha="left")
                frame.text(x_est, i, r["est_text"], ha="right")
                _hbar(ax, i, r["lo"], r["hi"], xlim, color=style.vermillion, lw=2.2, gid="prediction-interval")

        if segments:
            ax.add_collection(LineCollection(segments, colors=style.black, linewidths=style.line_width,
                                             gid="study-ci", zorder=2))
        if study_xy:
            xy = np.asarray(study_xy)
            ax.scatter(xy[:, 0], xy[:, 1], s=study_s, marker="s", color=style.blue, edgecolors="none",
                       gid="study-markers", zorder=3, clip_on=False)
        if open_xy:
            xy = np.asarray(open_xy)
            ax.scatter(xy[:, 0], xy[:, 1], s=16, marker="s", facecolors="white", edgecolors=style.grey,
                       linewidths=style.line_width, gid="unpooled-markers", zorder=3, clip_on=False)
        if overall is not None and _finite(overall["estimate"]):
            x = float(overall["estimate"]) * scale
            first = next((i for i, r in enumerate(rows) if r["kind"] == "study"), 0)
            last = next(i for i, r in enumerate(rows) if r["kind"] == "overall")
            ax.plot([x, x], [first - 0.5, last], color=style.grey, linestyle=(0, (2, 2)),
                    linewidth=style.line_width, gid="overall-line", zorder=1)
        frame.notes(notes)
    return fig


# --------------------------------------------------------------------------------------------
# 2. PRISMA flow diagram.
# --------------------------------------------------------------------------------------------

def _prisma_text(stage, rows):
    """Text of one PRISMA box: a title line with n, then one line per source or reason."""
    counts = pd.to_numeric(rows["count"], errors="coerce")
    total = counts.sum(min_count=1)
    labels = [str(x).strip() for x in rows["label"]]
    if stage in ("identified", "removed") or len(rows) > 1:
        lines = [f"{_PRISMA_TITLES[stage]} (n = {_count(total)}):"]
        lines += [f"{lab} (n = {_count(c)})" for lab, c in zip(labels, counts)]
        return lines
    # One row: its own label; reasons given in parentheses, "a; b; c", become a list.
    lab = labels[0]
    m = re.match(r"^(.*?)\s*\(([^()]*;[^()]*)\)\s*$", lab)
    if m:
        return [f"{m.group(1)} (n = {_count(total)}):"] + [f"\u2022 {x.strip()}" for x in m.group(2).split(";")]
    return [f"{lab} (n = {_count(total)})"]


def prisma_flow(counts):
    """PRISMA 2020 flow diagram of study selection.

    Parameters
    ----------
    counts : pandas.DataFrame
        ``data/raw/prisma_counts.csv``: columns ``stage, label, count``; ``stage`` from
        :data:`PRISMA_STAGES` (``identified`` one row per database or source, ``removed`` one
        row per reason such as duplicates, ``screened``, ``excluded_screening``, ``sought``,
        ``not_retrieved``, ``full_text``, ``excluded_full_text`` either one row per reason or one
        row whose label lists the reasons in parentheses separated by ``;``, ``included``).

    Returns
    -------
    matplotlib.figure.Figure
        Double-column width. Main boxes down the left, exclusions in side boxes on the right,
        phase labels (Identification, Screening, Included) in the margin. A stage absent from
        ``counts`` has no box; the arrows join the boxes that are drawn.

    Raises
    ------
    ValueError
        If ``counts`` is empty or a row's stage is outside the vocabulary.

    Notes
    -----
    Page et al. (2021) BMJ 372:n71, Figure 1 (the template for new reviews, databases only).
    R equivalent: ``PRISMA2020::PRISMA_flowdiagram``.
    """
    fn = "prisma_flow"
    style = STYLE
    _require(counts, ("stage", "label", "count"), "counts", fn)
    if counts.empty:
        raise ValueError(f"{fn}: the PRISMA counts table has no rows")
    stages = counts["stage"].astype(str).str.strip()
    bad = ~stages.isin(PRISMA_STAGES)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"{fn}: row {i + 2} of the PRISMA counts has stage {stages.iloc[i]!r}; "
                         f"expected one of {', '.join(PRISMA_STAGES)}")

    width = style.double_width
    phase_w, gap_x = 0.22, 0.35
    x_phase = style.margin
    x_main = x_phase + phase_w + 0.14
    box_w = (width - style.margin - x_main - gap_x) / 2
    x_side = x_main + box_w + gap_x
    pad, gap_y = 0.07, 0.28

    def box_lines(stage):
        rows = counts[stages == stage]
        if rows.empty:
            return None
        lines = _prisma_text(stage, rows)
        return "\n".join(_wrap(line, box_w - 2 * pad) for line in lines)

    layout = []  # (main stage, side stage, main text, side text, phase, row height)
    for main, side, phase in _PRISMA_ROWS:
        mt = box_lines(main)
        sd = box_lines(side) if side else None
        if mt is None and sd is None:
            continue
        h = max(_extent(t, style.body_pt)[1] + 2 * pad for t in (mt, sd) if t is not None)
        layout.append((main, side, mt, sd, phase, h))
    # A phase band must be tall enough for its rotated name: pad the phase's last row if not.
    for phase in dict.fromkeys(r[4] for r in layout):
        idx = [i for i, r in enumerate(layout) if r[4] == phase]
        extent = sum(layout[i][5] for i in idx) + gap_y * (len(idx) - 1)
        need = _extent(phase, style.body_pt, "bold")[0] + 0.12
        if extent < need:
            i = idx[-1]
            layout[i] = layout[i][:5] + (layout[i][5] + need - extent,)

    title = "Study selection (PRISMA 2020 flow diagram)"
    title_h = _title_height(title, width)
    body_h = sum(r[5] for r in layout) + gap_y * (len(layout) - 1)
    height = style.margin + title_h + body_h + style.margin + style.stamp_strip

    with rc_context(_rc()):
        fig = Figure(figsize=(width, height))
        _title(fig, title, width, height)
        ax = fig.add_axes([0, 0, 1, 1])
        ax.set_xlim(0, width)
        ax.set_ylim(0, height)
        ax.set_axis_off()

        def draw_box(x, y_top, h, text, gid, fill="white"):
            ax.add_patch(FancyBboxPatch((x, y_top - h), box_w, h, boxstyle="round,pad=0,rounding_size=0.04",
                                        facecolor=fill, edgecolor=style.black, linewidth=style.line_width,
                                        gid=gid))
            _text(ax, x + pad, y_top - pad, text, ha="left", va="top", linespacing=style.linespacing, gid=gid)

        def arrow(p, q):
            ax.add_patch(FancyArrowPatch(p, q, arrowstyle="-|>", mutation_scale=7, shrinkA=0, shrinkB=0,
                                         color=style.black, linewidth=style.line_width))

        y = height - style.margin - title_h
        phases = {}
        prev_main = None   # (x centre, bottom y) of the last main box drawn
        for main, side, mt, sd, phase, h in layout:
            centre = y - h / 2
            if mt is not None:
                mh = _extent(mt, style.body_pt)[1] + 2 * pad
                top = centre + mh / 2
                draw_box(x_main, top, mh, mt, gid=f"prisma-{main}")
                if prev_main is not None:
                    arrow((prev_main[0], prev_main[1]), (x_main + box_w / 2, top))
                prev_main = (x_main + box_w / 2, top - mh)
            if sd is not None:
                sh = _extent(sd, style.body_pt)[1] + 2 * pad
                draw_box(x_side, centre + sh / 2, sh, sd, gid=f"prisma-{side}")
                if mt is not None:
                    arrow((x_main + box_w, centre), (x_side, centre))
            lo, hi = phases.get(phase, (y - h, y))
            phases[phase] = (min(lo, y - h), max(hi, y))
            y -= h + gap_y
        for phase, (lo, hi) in phases.items():
            ax.add_patch(FancyBboxPatch((x_phase, lo), phase_w, hi - lo,
                                        boxstyle="round,pad=0,rounding_size=0.05", facecolor=style.sky_blue,
                                        edgecolor="none", alpha=0.45))
            _text(ax, x_phase + phase_w / 2, (lo + hi) / 2, phase, ha="center", va="center", rotation=90,
                  fontweight="bold")
    return fig


# --------------------------------------------------------------------------------------------
# 3. Quality grid.
# --------------------------------------------------------------------------------------------

def _minors_frame(minors):
    fn = "quality_grid"
    _require(minors, ("study_id",), "minors", fn)
    items = [c for c in minors.columns if str(c).strip().lower() not in _NOT_ITEMS]
    if not items:
        raise ValueError(f"{fn}: the MINORS table has no item columns besides {', '.join(minors.columns)}")
    scores = np.full((len(minors), len(items)), np.nan)
    for j, item in enumerate(items):
        for i, v in enumerate(minors[item]):
            if v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip()):
                continue
            try:
                x = float(v)
            except (TypeError, ValueError):
                x = np.nan
            if x not in (0.0, 1.0, 2.0):
                raise ValueError(f"{fn}: MINORS study {minors['study_id'].iloc[i]!r}, item {item!r} has "
                                 f"{v!r}; expected 0, 1 or 2 (or empty when not assessed)")
            scores[i, j] = x
    if "total" in minors.columns:
        totals = [t if _finite(t) else (np.nansum(s) if np.isfinite(s).any() else np.nan)
                  for t, s in zip(minors["total"], scores)]
    else:
        totals = [np.nansum(s) if np.isfinite(s).any() else np.nan for s in scores]
    return items, scores, totals


def _jbi_frame(jbi):
    fn = "quality_grid"
    _require(jbi, ("study_id",), "jbi", fn)
    items = [c for c in jbi.columns if str(c).strip().lower() not in _NOT_ITEMS]
    if not items:
        raise ValueError(f"{fn}: the JBI table has no item columns besides {', '.join(jbi.columns)}")
    answers = []
    for i in range(len(jbi)):
        row = []
        for item in items:
            v = jbi[item].iloc[i]
            # pandas reads the literal "NA" as missing by default, so missing means "not applicable".
            if v is None or (isinstance(v, float) and math.isnan(v)):
                row.append("NA")
                continue
            key = _JBI_ALIASES.get(str(v).strip().upper())
            if key is None:
                raise ValueError(f"{fn}: JBI study {jbi['study_id'].iloc[i]!r}, item {item!r} has {v!r}; "
                                 "expected Y, N, U or NA")
            row.append(key)
        answers.append(row)
    return items, answers


def quality_grid(minors=None, jbi=None):
    """Traffic-light grid of risk-of-bias appraisals: MINORS scores and JBI checklist answers.

    Parameters
    ----------
    minors : pandas.DataFrame or None
        ``data/raw/quality_minors.csv``: ``study_id``, one column per item scored 0, 1 or 2 (empty
        = not assessed, drawn as an open circle), optionally ``total`` (printed; computed as the
        item sum when absent or empty) and ``note`` (ignored).
    jbi : pandas.DataFrame or None
        ``data/raw/quality_jbi.csv``: ``study_id`` and one column per question answered Y, N, U
        or NA (also Yes/No/Unclear/Not applicable, any case). A missing cell counts as NA,
        because pandas reads the literal ``NA`` as missing unless ``keep_default_na=False``.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per table given (MINORS above JBI), rows = studies, columns = items; circles
        coloured green / amber / red (MINORS 2 / 1 / 0; JBI Y / U / N) or grey (JBI NA), the score
        or answer printed inside so the grid reads without colour. The MINORS panel has a
        "Total" column (``13/16``: total over twice the number of items). Single-column width
        unless the items need more. Circle collections have gids ``minors-cells`` and
        ``jbi-cells`` (row-major order).

    Raises
    ------
    ValueError
        If both tables are None or empty, or a cell holds a value outside the scale.

    Notes
    -----
    Slim et al. (2003) ANZ J Surg 73:712 (MINORS); Munn et al. (2020) JBI Evid Synth 18:2127
    (JBI checklist for case series). R equivalent: ``robvis::rob_traffic_light``.
    """
    fn = "quality_grid"
    style = STYLE
    panels = []
    if minors is not None and len(minors):
        items, scores, totals = _minors_frame(minors)
        panels.append(("minors", "MINORS", [str(s) for s in minors["study_id"]], items, scores, totals))
    if jbi is not None and len(jbi):
        items, answers = _jbi_frame(jbi)
        panels.append(("jbi", "JBI critical appraisal checklist", [str(s) for s in jbi["study_id"]], items,
                       answers, None))
    if not panels:
        raise ValueError(f"{fn}: nothing to draw; pass a MINORS table, a JBI table or both")

    pitch = 0.2                   # inches between cell centres
    total_w = 0.42
    label_w = _width([s for p in panels for s in p[2]])

    def item_font(items):
        """Size, rotation and height of a panel's item names: they must fit between two circles."""
        names = [str(it) for it in items]
        size = style.body_pt if _width(names) <= pitch - 0.01 else style.small_pt
        rotation = 0 if _width(names, size) <= pitch - 0.01 else 90
        return size, rotation, (_width(names, size) if rotation else _extent("Q", size)[1]) + 0.08

    item_fonts = [item_font(p[3]) for p in panels]

    def legend_entries(kind, cells):
        # The whole scale is always shown, so every grid of the review has the same key.
        if kind == "minors":
            ent = [(_MINORS_COLOURS[v], _MINORS_MEANING[v]) for v in (2, 1, 0)]
            if np.isnan(np.asarray(cells, dtype=float)).any():
                ent.append(("white", "not assessed"))
            return ent
        return [(_JBI_COLOURS[a], _JBI_MEANING[a]) for a in ("Y", "U", "N", "NA")]

    def legend_columns(entries, room):
        """Most columns whose entries fit ``room`` inches (entry = marker + text + spacing)."""
        widths = [_width([t]) + 0.3 for _, t in entries]
        for ncol in range(len(entries), 0, -1):
            nrow = math.ceil(len(entries) / ncol)
            cols = [max(widths[c * nrow:(c + 1) * nrow], default=0.0) for c in range(ncol)]
            if sum(cols) <= room or ncol == 1:
                return ncol, nrow, sum(cols)
        return 1, len(entries), max(widths)

    grid_ws = [label_w + 0.1 + pitch * len(p[3]) + (total_w if p[0] == "minors" else 0.0) for p in panels]
    title_ws = [_width([p[1]], style.title_pt, "bold") for p in panels]
    width = max(style.single_width, max(grid_ws + title_ws) + 2 * style.margin)
    legends = [legend_columns(legend_entries(p[0], p[4]), width - 2 * style.margin) for p in panels]

    title_h, gap_h, legend_row = 0.2, 0.12, 0.15
    heights = [title_h + f[2] + pitch * len(p[2]) + 0.1 + legend_row * lg[1]
               for p, lg, f in zip(panels, legends, item_fonts)]
    height = style.margin + sum(heights) + gap_h * (len(panels) - 1) + style.stamp_strip

    with rc_context(_rc()):
        fig = Figure(figsize=(width, height))
        y_top = height - style.margin
        for (kind, title, studies, items, cells, totals), ph, (ncol, _, _), (item_pt, item_rot, item_h) in zip(
                panels, heights, legends, item_fonts):
            n_rows, n_items = len(studies), len(items)
            extra = total_w if kind == "minors" else 0.0
            ax_w = pitch * n_items + extra
            ax_h = pitch * n_rows
            x0 = style.margin + label_w + 0.1
            y0 = y_top - title_h - item_h - ax_h
            ax = fig.add_axes([x0 / width, y0 / height, ax_w / width, ax_h / height])
            _style_axes(ax, style)
            ax.set_xlim(-0.5, n_items - 0.5 + extra / pitch)
            ax.set_ylim(n_rows - 0.5, -0.5)
            ax.set_axis_off()
            _text(fig, style.margin / width, (y_top - 0.02) / height, title, size=style.title_pt,
                  fontweight="bold", ha="left", va="top")
            for j, it in enumerate(items):
                _text(ax, j, -0.5 - 0.06 / pitch, str(it), size=item_pt, ha="center", va="bottom",
                      rotation=item_rot)
            for i, name in enumerate(studies):
                _text(ax, -0.5 - 0.1 / pitch, i, name, ha="right", va="center")
            xs, ys, faces, edges, texts = [], [], [], [], []
            for i in range(n_rows):
                for j in range(n_items):
                    if kind == "minors":
                        v = cells[i, j]
                        face = _MINORS_COLOURS[int(v)] if np.isfinite(v) else "white"
                        txt = f"{int(v)}" if np.isfinite(v) else ""
                    else:
                        v = cells[i][j]
                        face = _JBI_COLOURS[v]
                        txt = v
                    xs.append(j)
                    ys.append(i)
                    faces.append(face)
                    edges.append(style.grey if face == "white" else face)
                    texts.append(txt)
            d_pt = (pitch - 0.03) * 72.0
            ax.scatter(xs, ys, s=d_pt ** 2, c=faces, edgecolors=edges, linewidths=style.line_width,
                       gid=f"{kind}-cells", zorder=2, clip_on=False)
            for x, yv, f, t in zip(xs, ys, faces, texts):
                if t:
                    # Black on the light fills (amber, grey), white on the dark ones, for contrast.
                    colour = style.black if f in (style.orange, style.light_grey) else "white"
                    _text(ax, x, yv, t, size=5.0 if len(t) > 1 else style.small_pt, ha="center", va="center",
                          color=colour, fontweight="bold", zorder=3, gid=f"{kind}-score")
            if kind == "minors":
                xt = n_items - 0.5 + extra / pitch / 2
                _text(ax, xt, -0.5 - 0.06 / pitch, "Total", ha="center", va="bottom", fontweight="bold")
                for i, t in enumerate(totals):
                    _text(ax, xt, i, f"{_count(t)}/{2 * n_items}", ha="center", va="center")
            entries = legend_entries(kind, cells)
            handles = [Line2D([], [], marker="o", linestyle="none", markersize=6, markerfacecolor=c,
                              markeredgecolor=style.grey if c in ("white", style.light_grey) else c)
                       for c, _ in entries]
            fig.legend(handles, [t for _, t in entries], loc="upper left", ncol=ncol, frameon=False,
                       bbox_to_anchor=(style.margin / width, (y0 - 0.08) / height), borderaxespad=0,
                       handletextpad=0.3, columnspacing=1.0, handlelength=1.0, labelspacing=0.25,
                       prop={"family": style.font, "size": style.body_pt})
            y_top -= ph + gap_h
    return fig


# --------------------------------------------------------------------------------------------
# 4. Adverse events overview.
# --------------------------------------------------------------------------------------------

_AE = re.compile(r"^ae_(all|g34):(.+)$")


def _ae_name(name):
    return "Any adverse event" if name == "any" else name.replace("_", " ").capitalize()


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
    df = df[df["outcome"].astype(str).str.match(_AE.pattern)]
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
        grade, name = _AE.match(str(r["outcome"])).groups()
        cells[(grade, name)] = r
    names = sorted({n for _, n in cells}, key=lambda n: (n != "any", _ae_name(n).lower()))
    labels = [_ae_name(n) for n in names]
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
            hi = max([100 * r["ci_high"] for r in present if _finite(r["ci_high"])]
                     + [100 * r["estimate"] for r in present if _finite(r["estimate"])], default=10.0)
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
                if not _finite(r["estimate"]):
                    _text(ax, xlim[0] + 0.02 * (xlim[1] - xlim[0]), i, "NA", ha="left", va="center",
                          color=style.grey, size=style.small_pt)
                    continue
                e = 100 * float(r["estimate"])
                _hbar(ax, i, 100 * r["ci_low"], 100 * r["ci_high"], xlim, color=colour, lw=style.line_width * 1.4)
                xs.append(e)
                ys.append(i)
                right = 100 * r["ci_high"] if _finite(r["ci_high"]) else e
                ax.annotate(f"k = {_count(r['k'])}", (min(right, xlim[1]), i), xytext=(3, 0),
                            textcoords="offset points", ha="left", va="center", fontsize=style.small_pt,
                            color=style.grey, annotation_clip=False)
            ax.scatter(xs, ys, s=14, color=colour, edgecolors="none", zorder=3, gid=f"ae-{grade}", clip_on=False)
    return fig


# --------------------------------------------------------------------------------------------
# 5. Funnel plot.
# --------------------------------------------------------------------------------------------

def _foot_note(note, width, style):
    """A note under a single-panel figure, wrapped to its width, and the height it takes (inches)."""
    note = _wrap(note, width - 2 * style.margin, size=style.small_pt) if note else ""
    return note, (_extent(note, style.small_pt)[1] + 0.08) if note else 0.0


def _draw_foot_note(fig, note, note_h, width, height, style):
    """Draw the note of :func:`_foot_note` just above the provenance stamp's strip."""
    if note:
        fig.text(style.margin / width, (style.stamp_strip + note_h - 0.04) / height, note, ha="left", va="top",
                 fontsize=style.small_pt, color=style.black, gid="note")


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
    if not _finite(b):
        raise ValueError(f"{fn}: the pooled estimate b is {b!r}; expected a finite number")
    b = float(b)
    pooled = b
    if refline is not None:
        if not _finite(refline):
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


# --------------------------------------------------------------------------------------------
# 5b. Bubble plot (meta-regression on one continuous moderator).
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# 6. Leave-one-out.
# --------------------------------------------------------------------------------------------

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
    full_label = f"All studies (k = {_count(k_full)})" if _finite(k_full) else "All studies"
    est_texts = [_interval_text(e * scale, lo * scale, hi * scale)
                 for e, lo, hi in zip(loo["estimate"], loo["ci_low"], loo["ci_high"])]
    full_text = _interval_text(full["estimate"] * scale, full["ci_low"] * scale, full["ci_high"] * scale)
    i2_texts = ([_pct_text(x) for x in loo["i2"]] if "i2" in loo.columns else None)
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
        if _finite(full["ci_low"]) and _finite(full["ci_high"]):
            ax.axvspan(max(full["ci_low"] * scale, xlim[0]), min(full["ci_high"] * scale, xlim[1]),
                       color=style.sky_blue, alpha=0.25, linewidth=0, zorder=0, gid="full-ci-band")
        if _finite(full["estimate"]):
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
            if _finite(e):
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


# --------------------------------------------------------------------------------------------
# 7. Baujat plot.
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# 8. Method comparison.
# --------------------------------------------------------------------------------------------

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


def method_comparison(table):
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
    style = STYLE
    _require(table, ("outcome", "subgroup", "method", "estimate", "ci_low", "ci_high"), "table", fn)
    df = table.copy()
    # The comparison table of singlearm.comparison says "kind" and carries no label; accept it as is.
    if "proportion" in df.columns:
        df["proportion"] = df["proportion"].map(_as_bool)
    elif "kind" in df.columns:
        df["proportion"] = df["kind"].astype(str).str.lower() == "proportion"
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
        sub = subgroup_name(key[1])
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
                  "Proportions" if is_prop else "Medians", size=style.title_pt, fontweight="bold",
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

