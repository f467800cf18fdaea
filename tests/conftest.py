"""Shared fixtures: paths of the repository, the raw sheets, CSV editing helpers, and the tolerances
of every comparison with a reference (named once, here)."""

import csv
import io
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RAW = ROOT / "data" / "raw"
SCHEMAS = ROOT / "workflow" / "schemas"
SHARED = ROOT.parent / "shared"

# Agreement with metafor / R, one tolerance per kind of quantity (the developer guide's standard):
TOL_CLOSED = 1e-8      # closed forms: escalc, DL, common effect, HKSJ, Q, I2, PI, Egger/Begg, back-transforms
TOL_ITERATIVE = 1e-6   # iterative fits: REML, PM, Q-profile limits, GLMM (ML), trim-and-fill
# GLMM at tau^2 = 0 (boundary): lme4's SE comes from a finite-difference Hessian that includes theta
# at the bound and is off by up to 1.4e-6, so what derives from se is checked at 1e-5 (test_glmm.py).
TOL_BOUNDARY = 1e-5


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
