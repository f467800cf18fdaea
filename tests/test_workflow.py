"""End to end: the workflow runs from a config alone, refuses bad data cleanly, lints clean, records
where every output came from, audits, and rebuilds to the same bytes.

The reduced run is Miller's (1978) four proportions (../shared/examples/miller1978), copied into
the run's own data/raw/ so the audit tests can edit a raw value without touching the shared copy.
"""

import hashlib
import json
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


MILLER = SHARED / "examples" / "miller1978"


@pytest.fixture(scope="module")
def miller_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("miller")
    raw = run / "data" / "raw"
    raw.mkdir(parents=True)
    for name in ("study_characteristics.csv", "extraction.csv"):
        (raw / name).write_bytes((MILLER / name).read_bytes())
    config = run / "config.yaml"
    config.write_text(f"data:\n  studies: {raw / 'study_characteristics.csv'}\n  extraction: {raw / 'extraction.csv'}\n")
    before = tree_hashes(ROOT / "data" / "raw"), tree_hashes(MILLER), tree_hashes(raw)
    done = snakemake("--cores", "2", "--configfile", str(config), "--directory", str(run))
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tree_hashes(ROOT / "data" / "raw"), tree_hashes(MILLER), tree_hashes(raw)) == before
    return run, config


def test_miller_example_runs_from_a_config_alone(miller_run):
    miller_run, _ = miller_run
    est = pd.read_csv(miller_run / "results" / "tables" / "pooled_estimates.csv")
    row = est[(est.subgroup == "overall") & (est.method == "PFT-DL")].iloc[0]
    assert row.k == 4 and row.n == 55
    assert row.estimate == pytest.approx(0.35952171975730907, abs=1e-12)   # metafor, tests/reference
    assert set(est.subgroup) == {"overall", "sts", "bone"}
    assert (miller_run / "data" / "processed" / "analysis_data.csv").exists()


def test_outputs_keep_the_contract_and_rerun_is_a_no_op(miller_run):
    miller_run, config = miller_run
    check = subprocess.run([sys.executable, str(SHARED / "tools" / "check_outputs.py"), str(miller_run)],
                           capture_output=True, text=True)
    assert " 0 errors" in check.stdout, check.stdout
    again = snakemake("--cores", "2", "-n", "--configfile", str(config), "--directory", str(miller_run))
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


def outputs(run):
    """Every file the run wrote, sidecars and logs aside."""
    return sorted(p for d in ("results/tables", "results/figures", "results/bayes/posterior", "data/processed")
                  for p in (run / d).rglob("*")
                  if p.is_file() and not p.name.endswith(".prov.json"))


def test_every_output_has_a_complete_sidecar(miller_run):
    run, _ = miller_run
    files = outputs(run)
    assert {p.suffix for p in files} >= {".csv", ".md", ".pdf", ".png"}
    for path in files:
        side = json.loads((run / (str(path.relative_to(run)) + ".prov.json")).read_text())
        assert side["output"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest(), path
        assert side["rule"] and side["command"].startswith("snakemake"), path
        assert set(side["workflow"]) == {"package", "git_commit", "git_dirty"}, path
        assert side["libraries"]["numpy"] and side["inputs"], path
        assert all(len(f["sha256"]) == 64 for files_ in side["inputs"].values() for f in files_), path
        assert "config" in side and "seed" in side, path
    # the exact analysis rows behind a result: cohort, numbers, raw row, URL, location, derivation
    forest = json.loads((run / "results" / "figures" / "forest_orr.pdf.prov.json").read_text())
    assert len(forest["rows"]) == 4
    row = forest["rows"][0]
    assert {"cohort_id", "events", "total", "source_row", "source_url", "location", "derivation"} <= set(row)
    assert row["source_row"] == 2 and row["source_url"].startswith("https://doi.org/")


def test_manifest_lists_every_output_with_its_hash(miller_run):
    run, _ = miller_run
    manifest = pd.read_csv(run / "results" / "MANIFEST.csv")
    assert list(manifest.columns) == ["path", "sha256", "bytes", "rule", "version"]
    assert sorted(manifest["path"]) == sorted(str(p.relative_to(run)) for p in outputs(run))
    for r in manifest.itertuples():
        data = (run / r.path).read_bytes()
        assert r.sha256 == hashlib.sha256(data).hexdigest() and r.bytes == len(data)


def audit(path, run):
    return subprocess.run([sys.executable, "-m", "singlearm.cli", "audit", str(path)], cwd=run,
                          capture_output=True, text=True, timeout=120)


def test_audit_passes_then_catches_a_stale_input_and_a_tampered_figure(miller_run):
    run, _ = miller_run
    figure = run / "results" / "figures" / "forest_orr.png"
    ok = audit(figure, run)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "extraction.csv row 2" in ok.stdout and "https://doi.org/10.1080/00031305.1978.10479283" in ok.stdout
    raw = run / "data" / "raw" / "extraction.csv"
    original = raw.read_bytes()
    try:
        edit_csv(raw, raw, 2, "events", "4")
        stale = audit(figure, run)
        assert stale.returncode == 1 and "stale: input data/raw/extraction.csv changed" in stale.stdout, stale.stdout
    finally:
        raw.write_bytes(original)
    image = figure.read_bytes()
    try:
        figure.write_bytes(image[:-1] + bytes([image[-1] ^ 1]))
        tampered = audit(figure, run)
        assert tampered.returncode == 1 and "tampered: results/figures/forest_orr.png" in tampered.stdout
    finally:
        figure.write_bytes(image)
    assert audit(figure, run).returncode == 0


def test_report_has_a_caption_with_method_and_stamp(miller_run):
    run, config = miller_run
    report = run / "results" / "report.html"
    done = snakemake("--configfile", str(config), "--directory", str(run), "--report", str(report))
    assert done.returncode == 0, done.stderr[-2000:]
    html = report.read_text()
    assert "Provenance stamp: singlearm" in html and "PFT-DL" in html
    report.unlink()


# No table records timings (they go to Snakemake benchmark: files); only the manifest may differ.
TIMED = {"results/MANIFEST.csv"}


def test_forced_rebuild_gives_identical_bytes(miller_run):
    run, config = miller_run
    files = [p for p in outputs(run) if not p.is_relative_to(run / "data")] + [run / "results" / "MANIFEST.csv"]
    before = {p: p.read_bytes() for p in files}
    done = snakemake("--cores", "2", "--forceall", "--configfile", str(config), "--directory", str(run))
    assert done.returncode == 0, done.stderr[-3000:]
    changed = [str(p.relative_to(run)) for p in files if p.read_bytes() != before[p]]
    assert set(changed) <= TIMED, changed
