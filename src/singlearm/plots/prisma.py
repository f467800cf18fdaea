"""PRISMA 2020 flow diagram of study selection, from the review's counts sheet."""

import re

import numpy as np
import pandas as pd
from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from .. import formatting as fmt
from .layout import _extent, _require, _text, _title, _title_height, _wrap
from .style import STYLE, _rc

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


def _prisma_text(stage, rows):
    """Text of one PRISMA box: a title line with n, then one line per source or reason."""
    counts = pd.to_numeric(rows["count"], errors="coerce")
    total = counts.sum(min_count=1)
    labels = [str(x).strip() for x in rows["label"]]
    if stage in ("identified", "removed") or len(rows) > 1:
        lines = [f"{_PRISMA_TITLES[stage]} (n = {fmt.count(total)}):"]
        lines += [f"{lab} (n = {fmt.count(c)})" for lab, c in zip(labels, counts)]
        return lines
    # One row: its own label; reasons given in parentheses, "a; b; c", become a list.
    lab = labels[0]
    m = re.match(r"^(.*?)\s*\(([^()]*;[^()]*)\)\s*$", lab)
    if m:
        return [f"{m.group(1)} (n = {fmt.count(total)}):"] + [f"\u2022 {x.strip()}" for x in m.group(2).split(";")]
    return [f"{lab} (n = {fmt.count(total)})"]


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
