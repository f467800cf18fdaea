"""Audit and manifest: a tiny hand-made run (raw sheet -> pooled rows -> table -> figure) audited
fresh, after a raw value is edited (stale), after the figure is edited (tampered), and without a
sidecar; the manifest's columns and hashes; the console script; and the test review's results
(.test/, built once per session by conftest.review_tables)."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from singlearm import audit as au
from singlearm.cli import main
from singlearm.provenance import sidecar_path, write_sidecar


URL = "https://example.org/abc2020"
RAW_CSV = "study_id,outcome,events,total\nabc2020,orr,3,10\nxyz2021,orr,5,20\n"
ROWS = [{"cohort_id": "abc2020", "events": 3.0, "total": 10.0, "estimate": 0.3, "ci_low": 0.07, "ci_high": 0.65,
         "source_row": 2, "source_url": URL, "location": "Table 2", "derivation": "reported"}]
RAW, POOLED = "data/raw/extraction.csv", "results/pooled/orr/estimates.csv"
TABLE, FIGURE = "results/tables/pooled_estimates.csv", "results/figures/forest_orr.png"


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


@pytest.fixture
def run(tmp_path, monkeypatch):
    """The fake run, made as Snakemake would: from its working directory, with relative paths."""
    monkeypatch.chdir(tmp_path)
    write(tmp_path / RAW, RAW_CSV)
    write(tmp_path / POOLED, "outcome,estimate\norr,0.3\n")
    write_sidecar(POOLED, rule="pool_outcome", inputs={"analysis": RAW}, config={"outcome": "orr"}, rows=ROWS)
    write(tmp_path / TABLE, "outcome,estimate\norr,0.3\n")
    write_sidecar(TABLE, rule="gather_pooled", inputs={"estimates": [POOLED]}, config={}, rows=ROWS)
    write(tmp_path / FIGURE, b"\x89PNG fake figure bytes")
    write_sidecar(FIGURE, rule="plot_forest", inputs={"table": TABLE}, config={})
    return tmp_path


def test_fresh_build_passes_and_shows_the_raw_row(run, tmp_path_factory, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))  # the root must be found from the path alone
    assert main(["audit", str(run / FIGURE)]) == 0
    out = capsys.readouterr().out
    assert "extraction.csv row 2" in out and URL in out and "Table 2" in out and "3/10" in out
    assert "| orr |" in out  # the outcome comes from the pooling rule's config
    assert out.rstrip().endswith("OK: all 4 files match their recorded sha256")
    result = au.audit(run / FIGURE)
    assert result.ok and result.root == run and [r["source_row"] for r in result.rows] == [2]
    assert result.target.inputs[0].node.inputs[0].node.inputs[0].node.path == RAW


def test_edited_raw_value_is_stale(run, capsys):
    (run / RAW).write_text(RAW_CSV.replace("abc2020,orr,3,10", "abc2020,orr,4,10"))
    assert main(["audit", FIGURE]) == 1
    out = capsys.readouterr().out
    assert f"stale: input {RAW} changed after {POOLED} was made" in out and "FAILED" in out
    assert "tampered" not in out


def test_edited_figure_byte_is_tampered(run, capsys):
    data = bytearray((run / FIGURE).read_bytes())
    data[5] ^= 1
    (run / FIGURE).write_bytes(bytes(data))
    assert main(["audit", FIGURE, "--quiet"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAILED: 1 problem") and f"tampered: {FIGURE} was edited after it was made" in out


def test_missing_sidecar_is_a_usage_error(run, capsys):
    sidecar_path(run / FIGURE).unlink()
    assert main(["audit", FIGURE]) == 2
    assert "no-sidecar" in capsys.readouterr().err
    assert main(["audit", "does/not/exist.csv"]) == 2


def test_missing_input_and_cycle(run, capsys):
    (run / RAW).unlink()
    assert main(["audit", TABLE]) == 1
    assert f"missing: input {RAW} of {POOLED} does not exist" in capsys.readouterr().out
    write_sidecar(POOLED, rule="pool_outcome", inputs={"self": POOLED}, config={})
    result = au.audit(TABLE, root=run)
    assert [p.kind for p in result.problems] == ["cycle"]


def test_manifest_columns_and_hashes(run):
    files = [FIGURE, TABLE, sidecar_path(TABLE), RAW]
    frame = au.manifest(files, run)
    assert list(frame.columns) == ["path", "sha256", "bytes", "rule", "version"]
    assert list(frame.path) == sorted([FIGURE, TABLE, RAW])  # sidecars are not rows
    for row in frame.itertuples():
        data = (run / row.path).read_bytes()
        assert row.sha256 == hashlib.sha256(data).hexdigest() and row.bytes == len(data)
    assert frame.set_index("path").loc[TABLE, "rule"] == "gather_pooled"
    assert frame.set_index("path").loc[TABLE, "version"].startswith("0.1.0+")
    assert main(["manifest", "results/MANIFEST.csv", FIGURE, TABLE, RAW]) == 0
    written = (run / "results/MANIFEST.csv").read_bytes()
    assert written.startswith(b"path,sha256,bytes,rule,version\n") and b"\r" not in written
    assert pd.read_csv(run / "results/MANIFEST.csv", keep_default_na=False).equals(frame)


# The console script beside the interpreter running the tests: `make test` runs .venv/bin/python, whose
# bin/ holds it once `pip install -e .` has run (the Makefile's venv step), so under `make test` this
# cannot skip; it skips only for an interpreter the package was never installed into.
CONSOLE = Path(sys.executable).parent / "singlearm"


@pytest.mark.skipif(not CONSOLE.exists(), reason="console script not installed (pip install -e .)")
def test_console_script(run):
    ok = subprocess.run([str(CONSOLE), "audit", FIGURE], capture_output=True, text=True, cwd=run)
    assert ok.returncode == 0, ok.stderr
    (run / RAW).write_text(RAW_CSV + "new,orr,1,2\n")
    stale = subprocess.run([sys.executable, "-m", "singlearm.cli", "audit", FIGURE], capture_output=True,
                           text=True, cwd=run)
    assert stale.returncode == 1 and "stale" in stale.stdout


def test_test_review_results_pass(review_tables, monkeypatch, capsys):
    # the test review's session build (conftest.review_tables): sidecars hold run-relative paths
    monkeypatch.chdir(review_tables.parents[1])
    real = review_tables / "pooled_estimates.csv"
    assert main(["audit", str(real), "--quiet"]) == 0, capsys.readouterr().out
    assert json.loads(sidecar_path(real).read_text())["rows"]
    assert au.audit(real).rows
