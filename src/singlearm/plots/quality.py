"""Traffic-light grid of the quality appraisals (MINORS scores, JBI checklist answers)."""

import math

import numpy as np
from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .. import formatting as fmt
from .layout import _extent, _require, _style_axes, _text, _width
from .style import STYLE, _rc

# Traffic-light colours of the quality grid (green / amber / red / grey, all Okabe-Ito).
_MINORS_COLOURS = {0: STYLE.vermillion, 1: STYLE.orange, 2: STYLE.green}
_MINORS_MEANING = {0: "0  not reported", 1: "1  reported, inadequate", 2: "2  reported, adequate"}
_JBI_COLOURS = {"Y": STYLE.green, "N": STYLE.vermillion, "U": STYLE.orange, "NA": STYLE.light_grey}
_JBI_MEANING = {"Y": "Yes", "N": "No", "U": "Unclear", "NA": "Not applicable"}
_JBI_ALIASES = {"Y": "Y", "YES": "Y", "N": "N", "NO": "N", "U": "U", "UNCLEAR": "U", "NA": "NA",
                "N/A": "NA", "NOT APPLICABLE": "NA"}
_NOT_ITEMS = {"study_id", "cohort_id", "total", "note", "notes", "comment", "comments"}


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
        totals = [t if fmt.finite(t) else (np.nansum(s) if np.isfinite(s).any() else np.nan)
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
                    _text(ax, xt, i, f"{fmt.count(t)}/{2 * n_items}", ha="center", va="center")
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
