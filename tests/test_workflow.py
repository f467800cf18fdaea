"""End to end: the workflow runs from a config alone, refuses bad data cleanly, lints clean, records
where every output came from, audits, rebuilds to the same bytes, and reruns exactly what a change
can affect.

The reduced run is the repository's own test review (.test/: Miller's (1978) four proportions and a
few invented rows and sheets), copied into the run's own data/raw/ so the audit tests can edit a raw
value without touching the repository. The workflow runs from a scratch copy of the code, so the
rerun tests can edit a module or a setting and ask `snakemake -n` what it would rerun. Both come from
conftest.py, whose session build the figure, table and audit tests share.
"""

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, TEST_REVIEW, TOL_CLOSED, edit_csv, snakemake

pytestmark = pytest.mark.workflow


def tree_hashes(folder):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


MILLER = TEST_REVIEW / "data" / "raw"


@pytest.fixture(scope="module")
def miller_run(review_run):
    """Every output of the test review, in the session's run directory (conftest.review_run), which
    other test modules may already have partly built (the frequentist tables): this build adds the rest."""
    run, raw = review_run.run, review_run.run / "data" / "raw"
    before = tree_hashes(ROOT / "data" / "raw"), tree_hashes(MILLER), tree_hashes(raw)
    review_run.build()
    assert (tree_hashes(ROOT / "data" / "raw"), tree_hashes(MILLER), tree_hashes(raw)) == before
    return run, review_run.config


def test_miller_example_runs_from_a_config_alone(miller_run):
    miller_run, _ = miller_run
    est = pd.read_csv(miller_run / "results" / "tables" / "pooled_estimates.csv")
    (row,) = est[(est.outcome == "orr") & (est.subgroup == "overall") & (est.method == "PFT-DL")].itertuples()
    assert row.k == 4 and row.n == 55
    assert row.estimate == pytest.approx(0.35952171975730907, abs=TOL_CLOSED)   # metafor, tests/reference
    assert set(est.subgroup) == {"overall", "sts", "bone"}
    # the invented outcomes of every kind (.test/README.md): CR, a median, adverse events
    assert {"orr", "cr", "median_pfs", "ae_all:fatigue", "ae_g34:fatigue", "ae_g34:hypertension"} <= set(est.outcome)
    assert (miller_run / "data" / "processed" / "analysis_data.csv").exists()


def scheduled(run, config, code):
    """The rules `snakemake -n` would run (rule names), from the code in ``code``."""
    done = snakemake("--cores", "2", "-n", "--quiet", "rules", "--configfile", str(config), "--directory", str(run),
                     snakefile=code / "Snakefile")
    assert done.returncode == 0, done.stderr[-3000:]
    if "Nothing to be done" in done.stdout + done.stderr:
        return set()
    rows = re.findall(r"^(\w+)\s+\d+$", done.stdout, flags=re.M)
    assert rows, done.stdout[-3000:]
    return set(rows) - {"total", "all", "write_manifest"}


def test_outputs_keep_the_contract_and_rerun_is_a_no_op(miller_run, code_copy):
    miller_run, config = miller_run
    checker = ROOT.parent / "shared" / "tools" / "check_outputs.py"   # the shared output contract, when beside us
    if checker.exists():
        check = subprocess.run([sys.executable, str(checker), str(miller_run)], capture_output=True, text=True)
        assert " 0 errors" in check.stdout, check.stdout
    assert scheduled(miller_run, config, code_copy) == set()


def test_bad_input_stops_before_any_output(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    src = MILLER
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


# Rule files other branches were editing when snakefmt came in: the lead runs `make fmt` after merging
# them and empties this set (formatting them earlier would turn every merge into a conflict).
FORMAT_PENDING = set()


def test_snakefmt_is_clean():
    snakefmt = Path(sys.executable).parent / "snakefmt"
    if not snakefmt.exists():
        pytest.skip("snakefmt not installed (make installs it from envs/requirements.lock)")
    files = ["Snakefile", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "workflow" / "rules").glob("*.smk")
                                  if p.name not in FORMAT_PENDING)]
    done = subprocess.run([str(snakefmt), "--check", *files], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


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


def test_report_has_a_caption_with_method_and_stamp(miller_run, code_copy):
    run, config = miller_run
    report = run / "results" / "report.html"
    done = snakemake("--configfile", str(config), "--directory", str(run), "--report", str(report),
                     snakefile=code_copy / "Snakefile")
    assert done.returncode == 0, done.stderr[-2000:]
    html = report.read_text()
    assert "Provenance stamp: singlearm" in html and "PFT-DL" in html
    report.unlink()


# No table records timings (they go to Snakemake benchmark: files); only the manifest may differ.
TIMED = {"results/MANIFEST.csv"}


def test_forced_rebuild_gives_identical_bytes(miller_run, code_copy):
    run, config = miller_run
    files = [p for p in outputs(run) if not p.is_relative_to(run / "data")] + [run / "results" / "MANIFEST.csv"]
    before = {p: p.read_bytes() for p in files}
    done = snakemake("--cores", "2", "--forceall", "--configfile", str(config), "--directory", str(run),
                     snakefile=code_copy / "Snakefile")
    assert done.returncode == 0, done.stderr[-3000:]
    changed = [str(p.relative_to(run)) for p in files if p.read_bytes() != before[p]]
    assert set(changed) <= TIMED, changed


# ---- reruns follow what changed (singlearm.codehash; no git commit in any param) ----

FREQUENTIST = {"clean_extraction", "pool_outcome", "gather_pooled", "analyse_robustness", "gather_robustness",
               "plot_figures", "make_tables"}


def test_a_docs_and_tests_commit_reruns_nothing(miller_run, code_copy, tmp_path):
    run, config = miller_run
    # a commit in the code's repository that touches only docs and tests
    git = ["git", "-C", str(code_copy), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (code_copy / "README.md").write_text("docs\n")
    (code_copy / "tests").mkdir(exist_ok=True)
    (code_copy / "tests" / "test_x.py").write_text("def test_x():\n    pass\n")
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "docs"], check=True)
    assert scheduled(run, config, code_copy) == set()


def edited(path, old, new):
    """Context: ``path`` with ``old`` replaced by ``new``, restored afterwards."""
    class Edit:
        def __enter__(self):
            self.text = path.read_text()
            assert old in self.text
            path.write_text(self.text.replace(old, new, 1))

        def __exit__(self, *exc):
            path.write_text(self.text)
    return Edit()


def test_editing_the_pooling_module_reruns_the_pooled_table(miller_run, code_copy):
    run, config = miller_run
    pool = code_copy / "src" / "singlearm" / "pool.py"
    with edited(pool, "import numpy as np\n", "import numpy as np  # an edit\n"):
        jobs = scheduled(run, config, code_copy)
    assert {"pool_outcome", "gather_pooled", "plot_figures"} <= jobs
    assert "clean_extraction" not in jobs   # cleaning does not import the pooling module
    assert scheduled(run, config, code_copy) == set()


def test_bayesian_settings_rerun_no_frequentist_job(miller_run, code_copy, tmp_path):
    run, config = miller_run
    sampler = config.parent / "sampler.yaml"   # beside the config: the same relative sheet paths
    sampler.write_text(config.read_text().replace("draws: 500, tune: 500, target_accept: 0.9, retry_target_accept: 0.95",
                                                  "draws: 400, tune: 500, target_accept: 0.9, retry_target_accept: 0.95"))
    jobs = scheduled(run, sampler, code_copy)
    assert "fit_bayes" in jobs
    assert not jobs & FREQUENTIST, jobs & FREQUENTIST


def test_frequentist_settings_rerun_no_bayesian_job(miller_run, code_copy, tmp_path):
    run, config = miller_run
    level = config.parent / "level.yaml"
    level.write_text(config.read_text() + "frequentist:\n  ft_glmm_logit_margin: 0.25\n")
    jobs = scheduled(run, level, code_copy)
    assert "pool_outcome" in jobs
    assert not jobs & {"fit_bayes", "fit_bayes_prior_sensitivity"}, jobs


def test_config_readme_lists_every_key_and_column_of_the_schemas():
    done = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, 'config'); import make_readme as m; "
                           "sys.stdout.write(m.render(m.README.read_text()))"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (ROOT / "config" / "README.md").read_text(), "run config/make_readme.py"
    assert "| `bayes.sampler.draws` |" in done.stdout and "| `events` | yes |" in done.stdout
