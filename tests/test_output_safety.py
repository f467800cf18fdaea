"""Outputs a user can trust and open safely (issue 14, items 12-15): formula-safe CSV text, GLMM
blanks that say why, a stamp independent of where the review sits, an audit listing each raw row
once, and provenance that reads git without writing to it."""

import io
import os
import shutil
import subprocess

import pandas as pd
import pytest

from singlearm import audit, cleaning, pool, provenance, sheets

from conftest import SCHEMAS, edit_csv



def read(path, name):
    return sheets.read_sheet(path, sheets.load_schema(SCHEMAS / f"{name}.schema.yaml"))


# 12. A text cell a spreadsheet would run as a formula.
@pytest.mark.parametrize("text, written", [("=HYPERLINK(\"http://x\",\"p\")", "'=HYPERLINK(\"http://x\",\"p\")"),
                                           ("+1 table", "'+1 table"), ("-see notes", "'-see notes"),
                                           ("@SUM(A1)", "'@SUM(A1)"), ("Table 2", "Table 2"), ("-0.25", "-0.25")])
def test_formula_like_text_is_neutralised_in_output_csvs(tmp_path, miller, text, written):
    raw = tmp_path / "extraction.csv"
    edit_csv(miller / "extraction.csv", raw, 2, "location", text)
    before = raw.read_bytes()
    result = cleaning.clean(read(raw, "extraction"), read(miller / "study_characteristics.csv", "studies"))
    provenance.write_csv(result.analysis, tmp_path / "analysis_data.csv")
    out = pd.read_csv(tmp_path / "analysis_data.csv", dtype=str, keep_default_na=False)
    assert out.loc[0, "location"] == written
    assert out.loc[0, "events"] == "3"    # numbers untouched
    assert raw.read_bytes() == before     # the raw sheet too
    assert result.analysis.loc[0, "location"] == text   # and the frame the caller holds


# 13. GLMM rows left blank say why.
@pytest.mark.parametrize("events, reason", [(0, "no"), (None, "every")])
def test_blank_glmm_rows_carry_the_reason(miller, events, reason):
    analysis = cleaning.clean(read(miller / "extraction.csv", "extraction"),
                              read(miller / "study_characteristics.csv", "studies")).analysis
    analysis["events"] = analysis["total"] if events is None else events
    details = pool.pool_outcome(analysis, "orr").details
    glmm = details[details.method == "GLMM-ML"]
    assert list(glmm.subgroup) == ["overall", "sts", "bone"]
    assert set(glmm["flags"]) == {f"left blank: {reason} patient had the event, so the GLMM likelihood has no "
                               "finite maximum"}
    assert details[details.method == "PFT-DL"]["flags"].map(lambda f: "left blank" not in str(f)).all()


# 14. The stamp: the same sheets and settings give the same digest from any directory.
def test_stamp_digest_does_not_depend_on_where_the_sheets_are(tmp_path, miller):
    digests = []
    for place in ("a", "b/c"):
        folder = tmp_path / place
        folder.mkdir(parents=True)
        inputs = {}
        for key, name in (("studies", "study_characteristics.csv"), ("extraction", "extraction.csv")):
            shutil.copy(miller / name, folder / name)
            inputs[key] = str(folder / name)
        config = {"data": inputs, "primary_method": "PFT-DL", "seed": 1}
        digests.append(provenance.inputs_digest(inputs, config))
    assert digests[0] == digests[1]
    assert provenance.inputs_digest(inputs, {**config, "seed": 2}) != digests[1]   # settings still count
    edit_csv(folder / "extraction.csv", folder / "extraction.csv", 2, "events", "4")
    assert provenance.inputs_digest(inputs, config) != digests[1]                  # and so does the data


def test_audit_lists_each_raw_row_once():
    # The frequentist rows and the Bayesian data (fewer fields) both reach a comparison table.
    full = {"cohort_id": "miller1", "outcome": "orr", "events": 3, "total": 11, "source_row": 2,
            "source_url": "https://doi.org/x", "location": "Table 1", "derivation": "reported"}
    bayes = {"study": "miller1", "outcome": "orr", "events": 3, "total": 11, "source_row": 2, "subgroup": "overall"}
    other = {**full, "cohort_id": "miller2", "source_row": 3}
    rows = audit._unique_rows([bayes, other, full, bayes])
    assert [(r["source_row"], r["cohort_id"], r["location"]) for r in rows] == [(2, "miller1", "Table 1"),
                                                                                 (3, "miller2", "Table 1")]


# 15. Provenance reads the commit and dirty state without writing .git/index.
def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}).stdout


def test_workflow_version_does_not_write_the_git_index(tmp_path):
    git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("one\n")
    git(tmp_path, "add", "a.txt")
    git(tmp_path, "commit", "-qm", "a")
    index = tmp_path / ".git" / "index"
    # Stale stat data in the index (same content, new mtime) is what makes `git status` rewrite it.
    os.utime(tmp_path / "a.txt", (1, 1))
    before = index.read_bytes(), index.stat().st_mtime_ns
    version = provenance.workflow_version(tmp_path)
    assert version["git_commit"] == git(tmp_path, "rev-parse", "HEAD").strip() and version["git_dirty"] is False
    assert (index.read_bytes(), index.stat().st_mtime_ns) == before
    (tmp_path / "a.txt").write_text("two\n")
    assert provenance.workflow_version(tmp_path)["git_dirty"] is True
    assert (index.read_bytes(), index.stat().st_mtime_ns) == before
