"""End to end: the workflow runs from a config alone, refuses bad data cleanly, and lints clean."""

import hashlib
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, SHARED, edit_csv

pytestmark = pytest.mark.workflow
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snakemake(*args, cwd=ROOT):
    return subprocess.run([*SNAKEMAKE, "--snakefile", str(ROOT / "Snakefile"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def tree_hashes(folder):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def miller_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("miller")
    before = tree_hashes(ROOT / "data" / "raw")
    done = snakemake("--cores", "2", "--configfile", str(ROOT / "config" / "miller1978.yaml"), "--directory", str(run))
    assert done.returncode == 0, done.stderr[-3000:]
    assert tree_hashes(ROOT / "data" / "raw") == before
    return run


def test_miller_example_runs_from_a_config_alone(miller_run):
    est = pd.read_csv(miller_run / "results" / "tables" / "pooled_estimates.csv")
    row = est[(est.subgroup == "overall") & (est.method == "PFT-DL")].iloc[0]
    assert row.k == 4 and row.n == 55
    assert row.estimate == pytest.approx(0.35952171975730907, abs=1e-12)   # metafor, tests/reference
    assert set(est.subgroup) == {"overall", "sts", "bone"}
    assert (miller_run / "data" / "processed" / "analysis_data.csv").exists()


def test_outputs_keep_the_contract_and_rerun_is_a_no_op(miller_run):
    check = subprocess.run([sys.executable, str(SHARED / "tools" / "check_outputs.py"), str(miller_run)],
                           capture_output=True, text=True)
    assert " 0 errors" in check.stdout, check.stdout
    again = snakemake("--cores", "2", "-n", "--configfile", str(ROOT / "config" / "miller1978.yaml"),
                      "--directory", str(miller_run))
    assert "Nothing to be done" in again.stdout + again.stderr


def test_bad_input_stops_before_any_output(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    src = SHARED / "examples" / "miller1978"
    (raw / "studies.csv").write_bytes((src / "study_characteristics.csv").read_bytes())
    edit_csv(src / "extraction.csv", raw / "extraction.csv", 3, "events", "7x")
    config = tmp_path / "bad.yaml"
    config.write_text(f"data:\n  studies: {raw / 'studies.csv'}\n  extraction: {raw / 'extraction.csv'}\n")
    done = snakemake("--cores", "2", "--configfile", str(config), "--directory", str(tmp_path / "run"))
    assert done.returncode != 0
    message = f"{raw / 'extraction.csv'}, row 3, column 'events': value '7x': expected a whole number of patients >= 0"
    assert message in done.stderr
    written = [p for d in ("results", "data") for p in (tmp_path / "run" / d).rglob("*") if p.is_file()]
    assert written == []


def test_lint_is_clean():
    done = snakemake("--lint")
    assert done.returncode == 0 and "Lints for" not in done.stdout + done.stderr, done.stdout[-3000:]
