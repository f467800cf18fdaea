"""The one writer of the figures: provenance stamp, then PDF and PNG, byte-reproducible and atomic."""

import io
from contextlib import contextmanager
from pathlib import Path

from fontTools import subset as fontsubset
from matplotlib import rc_context
from matplotlib.figure import Figure

from ..provenance import write_bytes
from .style import STYLE, _rc

_STAMP_GID = "provenance-stamp"


@contextmanager
def _lean_font_subsets():
    """Embed TrueType subsets without the OpenType layout tables (GSUB, GPOS, GDEF).

    A PDF places every glyph itself (Matplotlib has already laid the text out), so a viewer never
    reads these tables. fontTools decompiles all of DejaVu's kerning and substitution lookups before
    it prunes, even for tables it is told to drop (a large part of a PDF's save time), so they
    are deleted from the freshly (lazily) loaded font and never read. fontTools drops the legacy
    "kern" table whenever GPOS is present, so it goes too: the subset is byte for byte the one
    dropping the tables through the subsetter's options gives. Matplotlib loads the font inside
    one function, so the loader is replaced for the duration of a save.
    """
    original = fontsubset.load_font

    def load_font(*args, **kwargs):
        font = original(*args, **kwargs)
        if "GPOS" in font and "kern" in font:
            del font["kern"]
        for tag in ("GSUB", "GPOS", "GDEF"):
            if tag in font:
                del font[tag]
        return font

    fontsubset.load_font = load_font
    try:
        yield
    finally:
        fontsubset.load_font = original


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
