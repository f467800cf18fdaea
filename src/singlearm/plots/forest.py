"""Forest plot of one outcome: studies by subgroup, subtotal and overall diamonds, prediction interval."""

import numpy as np
import pandas as pd
from matplotlib import rc_context
from matplotlib.collections import LineCollection

from .. import formatting as fmt
from .layout import (
    _AXIS_H,
    _diamond,
    _estimate_axis,
    _hbar,
    _notes_height,
    _require,
    _RowFrame,
    _title,
    _title_height,
    _width,
)
from .style import STYLE, _rc

_STUDY_COLUMNS = ("outcome", "subgroup", "cohort_id", "events", "total", "estimate", "ci_low", "ci_high",
                  "has_ci", "weight_overall")
_ESTIMATE_COLUMNS = ("outcome", "subgroup", "method", "k", "estimate", "ci_low", "ci_high", "pi_low",
                     "pi_high", "i2", "q_p")


def _study_text(r, scale, digits, has_ci, open_upper):
    """A study row's estimate column: ``10.8 [7.9, 14.1]``, ``15.2 [10.1, NR]`` (limit not reached) or
    ``7.0 (no CI)``."""
    est, lo, hi = r["estimate"] * scale, r["ci_low"] * scale, r["ci_high"] * scale
    if open_upper:
        return f"{fmt.number(est, digits)} [{fmt.number(lo, digits)}, NR]"
    if has_ci or fmt.finite(r["ci_low"]) or fmt.finite(r["ci_high"]):
        return fmt.bracket_interval(est, lo, hi, digits)
    return f"{fmt.number(est, digits)} (no CI)"


def _heterogeneity(fit):
    """``I² = 45.2%, p = 0.031``: a pooled row's heterogeneity, as its label prints it."""
    return f"I\u00b2 = {fmt.percent(fit['i2'])}, {fmt.p_text(fit['q_p'])}"


def forest_plot(studies, estimates, subgroup_tests=None, *, outcome, method, label, proportion=True,
                value_header=None, footnotes=(), subgroup_labels=None):
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
    subgroup_labels : mapping, optional
        Subgroup value -> heading, in display order (:func:`singlearm.formatting.subgroup_labels`
        of the config's ``subgroup_levels``); a level it does not list is headed by its own value.

    Returns
    -------
    matplotlib.figure.Figure
        Double-column width (wider only if the text columns leave the plot under 2 in); the
        height grows with the number of rows. Artists tests and readers may look up by gid:
        ``study-markers`` (squares, area proportional to overall weight, in study-row order),
        ``unpooled-markers``, ``overall-diamond``, ``subtotal-<level>``, ``prediction-interval``.

    Notes
    -----
    Subgroups are listed in the order of ``subgroup_labels``, then any other level in its order of
    first appearance in ``estimates`` after ``overall``, then any level only the study table has.
    Subtotal diamonds are drawn only when there are at least two levels (with one level the
    subtotal is the overall result). Whiskers or intervals beyond the axis end in an arrowhead at
    the axis limit; the printed numbers are never clipped.

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
    labels = dict(subgroup_labels or {})
    order = list(labels)
    levels.sort(key=lambda s: order.index(s) if s in order else len(order))   # stable: the rest keep their order
    multi = len([lv for lv in levels if (st["subgroup"] == lv).any()]) > 1

    # Rows: each a dict of what the text columns print and what the plot column draws.
    rows = []
    for lv in levels:
        members = st[st["subgroup"] == lv]
        if members.empty and lv not in pooled:
            continue
        rows.append({"kind": "heading", "label": labels.get(lv, str(lv))})
        for _, r in members.iterrows():
            has_ci = fmt.to_bool(r["has_ci"]) and fmt.finite(r["ci_low"])
            open_upper = has_ci and not fmt.finite(r["ci_high"])   # upper limit not reached
            w = r["weight_overall"]
            events = (f"{fmt.count(r['events'])}/{fmt.count(r['total'])}" if fmt.finite(r["events"])
                      else (fmt.count(r["total"]) if fmt.finite(r["total"]) else fmt.DASH))
            rows.append({
                "kind": "study", "label": str(r["cohort_id"]), "events": events,
                "est": r["estimate"] * scale if fmt.finite(r["estimate"]) else np.nan,
                "lo": r["ci_low"] * scale if has_ci else np.nan,
                "hi": (np.inf if open_upper else r["ci_high"] * scale) if has_ci else np.nan,
                "has_ci": has_ci, "weight": float(w) if fmt.finite(w) and has_ci else np.nan,
                "est_text": _study_text(r, scale, digits, has_ci, open_upper),
                "weight_text": (fmt.number(w, 1) if fmt.finite(w) and has_ci
                                else ("not pooled" if not has_ci else fmt.DASH)),
            })
        if multi and lv in pooled and fmt.count(pooled[lv]["k"]) == "1":
            rows.append({"kind": "single", "label": "Subtotal: 1 study, not pooled", "est_text": "", "weight_text": ""})
        elif multi and lv in pooled:
            p = pooled[lv]
            wsum = members["weight_overall"][members["has_ci"].map(fmt.to_bool)].astype(float)
            wsum = wsum[np.isfinite(wsum)]
            rows.append({
                "kind": "subtotal", "level": lv,
                "label": f"Subtotal (k = {fmt.count(p['k'])}): {_heterogeneity(p)}",
                "est": p["estimate"] * scale, "lo": p["ci_low"] * scale, "hi": p["ci_high"] * scale,
                "est_text": fmt.bracket_interval(p["estimate"] * scale, p["ci_low"] * scale, p["ci_high"] * scale,
                                                 digits),
                "weight_text": fmt.number(wsum.sum(), 1) if len(wsum) else fmt.DASH,
            })
        rows.append({"kind": "blank"})
    overall = pooled.get("overall")
    single = overall is not None and fmt.count(overall["k"]) == "1"
    if single:
        rows.append({"kind": "single", "label": "Overall: 1 study, not pooled", "est_text": "", "weight_text": ""})
        overall = None
    if overall is not None:
        o = overall
        rows.append({
            "kind": "overall",
            "label": f"Overall (k = {fmt.count(o['k'])}): {_heterogeneity(o)}",
            "est": o["estimate"] * scale, "lo": o["ci_low"] * scale, "hi": o["ci_high"] * scale,
            "est_text": fmt.bracket_interval(o["estimate"] * scale, o["ci_low"] * scale, o["ci_high"] * scale, digits),
            "weight_text": "100.0",
        })
        has_pi = fmt.finite(o["pi_low"]) and fmt.finite(o["pi_high"])
        rows.append({
            "kind": "pi", "label": "Prediction interval",
            "lo": o["pi_low"] * scale if has_pi else np.nan, "hi": o["pi_high"] * scale if has_pi else np.nan,
            "est_text": (f"[{fmt.number(o['pi_low'] * scale, digits)}, {fmt.number(o['pi_high'] * scale, digits)}]"
                         if has_pi else "NA"),
            "weight_text": "",
        })
    elif rows and rows[-1]["kind"] == "blank":
        rows.pop()

    # Notes under the plot.
    notes = []
    if overall is not None:
        het = [f"\u03c4\u00b2 = {fmt.number(overall.get('tau2', np.nan), 4)}"]
        if "q" in overall and "q_df" in overall:
            het.append(f"Q = {fmt.number(overall['q'], 2)}, df = {fmt.count(overall['q_df'])}, "
                       f"{fmt.p_text(overall['q_p'])}")
        het.append(f"I\u00b2 = {fmt.percent(overall['i2'])}")
        notes.append("Heterogeneity (overall): " + "; ".join(het))
    elif single:
        notes.append("1 study: its own estimate and CI are shown; there is nothing to pool.")
    else:
        notes.append(f"No pooled estimate of {method} for this outcome.")
    if test is not None:
        notes.append(f"Test for subgroup differences: Q = {fmt.number(test['q_between'], 2)}, "
                     f"df = {fmt.count(test['df'])}, {fmt.p_text(test['p_value'])}")
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
        span = max([abs(float(v)) for v in values if fmt.finite(v)], default=1.0)
        values += [v for r in rows if r["kind"] == "pi" for v in (r["lo"], r["hi"])
                   if fmt.finite(v) and abs(v) <= 2 * span]
        xlim = _estimate_axis(ax, values, proportion, axis_label)

        frame.header(x_label, "Study", ha="left")
        frame.header(x_events, events_header, ha="right")
        frame.header(x_est, est_header, ha="right")
        frame.header(x_weight, "Weight, %", ha="right")
        frame.rule(frame.top + 0.02)

        study_xy, study_s, open_xy, segments = [], [], [], []
        w_max = max([r["weight"] for r in rows if r["kind"] == "study" and fmt.finite(r["weight"])], default=1.0)
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
                if not fmt.finite(r["est"]):
                    continue
                if r["has_ci"]:
                    lo, hi = max(r["lo"], xlim[0]), min(r["hi"], xlim[1])
                    segments.append([(lo, i), (hi, i)])
                    if r["lo"] < xlim[0]:
                        ax.plot([xlim[0]], [i], marker="<", markersize=3, color=style.black, clip_on=False)
                    if r["hi"] > xlim[1]:
                        ax.plot([xlim[1]], [i], marker=">", markersize=3, color=style.black, clip_on=False)
                    study_xy.append((r["est"], i))
                    w = r["weight"] if fmt.finite(r["weight"]) else 0.0
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
        if overall is not None and fmt.finite(overall["estimate"]):
            x = float(overall["estimate"]) * scale
            first = next((i for i, r in enumerate(rows) if r["kind"] == "study"), 0)
            last = next(i for i, r in enumerate(rows) if r["kind"] == "overall")
            ax.plot([x, x], [first - 0.5, last], color=style.grey, linestyle=(0, (2, 2)),
                    linewidth=style.line_width, gid="overall-line", zorder=1)
        frame.notes(notes)
    return fig
