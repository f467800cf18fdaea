"""Every figure of the workflow, drawn in one style, and the one writer that saves them.

One module per figure family: :mod:`.forest`, :mod:`.funnel` (small-study effects),
:mod:`.bubble` (meta-regression), :mod:`.influence` (leave-one-out, Baujat), :mod:`.comparison`
(frequentist beside Bayesian), :mod:`.adverse`, :mod:`.prisma` and :mod:`.quality`; their shared
parts are :mod:`.style`, :mod:`.layout` and :mod:`.save`. Numbers and names are written by
:mod:`singlearm.formatting`, as in the tables.

The figure functions are pure: they take the workflow's result tables (pandas DataFrames, columns
listed in each docstring) and return a :class:`matplotlib.figure.Figure`. They never touch pyplot
or the global ``rcParams``: the house style is applied through :func:`matplotlib.rc_context`
inside each function, so importing this package changes nothing for anyone else in the process.

:func:`save_figure` is the only function with side effects. It prints the provenance stamp on
the figure and writes ``<stem>.pdf`` (vector, TrueType fonts embedded) and ``<stem>.png``
(300 dpi) atomically and byte-reproducibly: the same figure and stamp give the same bytes on
every run, so a rebuild that changes nothing changes no figure file either.

Layouts are computed in inches from measured text extents rather than left to a layout engine,
so that a figure keeps its journal column width whatever the labels, and the row height of
every forest-like figure is the same.
"""

from .adverse import ae_overview
from .bubble import bubble_plot
from .comparison import MEDIAN_METHODS, PROPORTION_METHODS, method_comparison
from .forest import forest_plot
from .funnel import funnel_plot
from .influence import baujat_plot, leave_one_out_plot
from .prisma import PRISMA_STAGES, prisma_flow
from .quality import quality_grid
from .save import save_figure
from .style import STYLE, Style

__all__ = [
    "MEDIAN_METHODS", "PRISMA_STAGES", "PROPORTION_METHODS", "STYLE", "Style",
    "ae_overview", "baujat_plot", "bubble_plot", "forest_plot", "funnel_plot", "leave_one_out_plot",
    "method_comparison", "prisma_flow", "quality_grid", "save_figure",
]
