"""The house style of every figure: sizes, colours and the rcParams applied inside each drawing function."""

from dataclasses import dataclass

from cycler import cycler


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
