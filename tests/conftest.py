"""Shared fixtures: paths of the repository, the raw sheets, and CSV editing helpers."""

import csv
import io
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RAW = ROOT / "data" / "raw"
SCHEMAS = ROOT / "workflow" / "schemas"
SHARED = ROOT.parent / "shared"


def edit_csv(src, dst, row, column, value):
    """Copy a CSV, setting one cell; ``row`` counts as a spreadsheet does (header = 1)."""
    rows = list(csv.reader(io.StringIO(Path(src).read_text(encoding="utf-8"), newline="")))
    rows[row - 1][rows[0].index(column)] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    Path(dst).write_text(out.getvalue(), encoding="utf-8")
    return Path(dst)


@pytest.fixture
def raw_copy(tmp_path):
    """A scratch copy of data/raw/ (tests edit the copy, never the original)."""
    dst = tmp_path / "raw"
    shutil.copytree(RAW, dst)
    return dst
