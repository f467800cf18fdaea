"""Shared fixtures: paths of the repository, the raw sheets, CSV editing helpers, the tolerances
of every comparison with a reference (named once, here), and the one session build of the test review."""

import csv
import io
import shutil
import subprocess
import sys
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


# ---- the test review (.test/), built once per session ----------------------------------------

TEST_REVIEW = ROOT / ".test"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
CODE = ("Snakefile", "workflow", "src", "config", "profiles", "envs")


def snakemake(*args, cwd=ROOT, snakefile=ROOT / "Snakefile"):
    return subprocess.run([*SNAKEMAKE, "--snakefile", str(snakefile), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="session")
def code_copy(tmp_path_factory):
    """The workflow's code in a scratch directory: the rerun tests edit it, never the checkout."""
    code = tmp_path_factory.mktemp("code")
    for name in CODE:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, code / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, code / name)
    return code


def miller_sheets(dst):
    """Miller's (1978) four proportions alone, the two required sheets: the test review without the
    rows invented for testing (.test/README.md). Written into ``dst``; returns it."""
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    raw = TEST_REVIEW / "data" / "raw"
    (dst / "study_characteristics.csv").write_bytes((raw / "study_characteristics.csv").read_bytes())
    lines = (raw / "extraction.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    (dst / "extraction.csv").write_text("".join(line for line in lines if ",invented for testing," not in line),
                                        encoding="utf-8")
    return dst


@pytest.fixture(scope="session")
def miller(tmp_path_factory):
    """A folder holding Miller's two sheets (:func:`miller_sheets`), shared by the session; read only."""
    return miller_sheets(tmp_path_factory.mktemp("miller_sheets"))


class ReviewRun:
    """A run directory of the test review: its sheets copied into ``run/data/raw`` (tests may edit
    them there, never in the repository) and its config pointing at the copies.

    ``build(*targets)`` runs snakemake for those targets (every output when none is named) and returns
    the run directory. Every test module shares this one directory, so each job runs once per session:
    a module that needs only the frequentist tables asks for them and gets no MCMC, and the end-to-end
    tests' full build then runs only what is still missing. Snakemake allows one run per directory, so
    builds are never concurrent (pytest runs tests one at a time).
    """

    def __init__(self, run, code):
        self.run, self.code = run, code
        raw = run / "data" / "raw"
        raw.mkdir(parents=True)
        for sheet in sorted((TEST_REVIEW / "data" / "raw").glob("*.csv")):
            (raw / sheet.name).write_bytes(sheet.read_bytes())
        # the test review's config, its sheet paths pointing at the run's copy (relative to the config file)
        self.config = run / "config.yaml"
        self.config.write_text((TEST_REVIEW / "config" / "config.yaml").read_text().replace("../data/raw/", "data/raw/"))

    def build(self, *targets):
        # targets first: --configfile takes every word after it
        done = snakemake(*targets, "--cores", "2", "--configfile", str(self.config), "--directory", str(self.run),
                         snakefile=self.code / "Snakefile")
        assert done.returncode == 0, done.stderr[-3000:]
        return self.run


@pytest.fixture(scope="session")
def review_run(tmp_path_factory, code_copy):
    """The session's run directory of the test review (nothing built until a test asks)."""
    return ReviewRun(tmp_path_factory.mktemp("miller"), code_copy)


# What the tests of the figures, tables and audit read: the frequentist tables (no Bayesian sampling).
FREQUENTIST_TABLES = ("results/tables/pooled_estimates.csv", "results/tables/leave_one_out.csv")


@pytest.fixture(scope="session")
def review_tables(review_run):
    """The test review's frequentist result tables (results/tables of the session's run)."""
    return review_run.build(*FREQUENTIST_TABLES) / "results" / "tables"
