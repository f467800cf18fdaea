"""Interrupted and concurrent runs (issue 14, items 5-7): one run per directory, no orphans after
``kill -9``, and the plain command resumes.

The runs are Miller's (1978) example in a scratch directory, stopped in the Bayesian job (the
longest one), so each costs one model compilation and part of one sampling run.
"""

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from conftest import ROOT, miller_sheets

pytestmark = pytest.mark.workflow
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
BAYES = "results/tables/bayes_estimates.csv"


def wait_for(condition, timeout, what):
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` after ``timeout`` s."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = condition()
        if got:
            return got
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def cmdline_of(process):
    try:
        return " ".join(process.cmdline())
    except psutil.Error:   # ended (or a zombie) meanwhile
        return ""


def tree(pid):
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def test_snakemake_alone_deletes_the_locks_of_a_running_run(tmp_path):
    # The fault the guard exists for, in a two-rule workflow without it: a second invocation that
    # finds nothing to do removes the running one's locks, so a third could run its jobs again. If a
    # Snakemake release fixes this, this test fails and the note in singlearm.runguard can go.
    (tmp_path / "Snakefile").write_text(
        'rule slow:\n    output: "slow.txt"\n    shell: "sleep 60; touch {output}"\n\n'
        'rule quick:\n    output: "quick.txt"\n    shell: "touch {output}"\n')
    run = [*SNAKEMAKE, "--cores", "1", "--directory", str(tmp_path), "--snakefile", str(tmp_path / "Snakefile")]
    subprocess.run([*run, "quick.txt"], check=True, capture_output=True, timeout=120)
    first = subprocess.Popen([*run, "slow.txt"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        locks = tmp_path / ".snakemake" / "locks"
        wait_for(lambda: list(locks.glob("*.lock")), 60, "the first run's locks")
        second = subprocess.run([*run, "quick.txt"], capture_output=True, text=True, timeout=120)
        assert "Nothing to be done" in second.stdout + second.stderr
        assert first.poll() is None and not locks.exists()
    finally:
        for p in tree(first.pid):
            p.kill()
        first.kill()
        first.wait()


@pytest.fixture
def miller_dir(tmp_path):
    raw = miller_sheets(tmp_path / "data" / "raw")
    # A DCR of 37.5% of 11 patients fits no whole count: the row is not pooled, and the run says so.
    with open(raw / "extraction.csv", "a") as f:
        f.write("miller1,all,dcr,,11,37.5,,,percent,reported,,https://doi.org/10.1080/00031305.1978.10479283,x,\n")
    config = tmp_path / "config.yaml"
    config.write_text(f"data:\n  studies: {raw / 'study_characteristics.csv'}\n"
                      f"  extraction: {raw / 'extraction.csv'}\n")
    return tmp_path, [*SNAKEMAKE, "--snakefile", str(ROOT / "Snakefile"), "--cores", "2", "--configfile",
                      str(config), "--directory", str(tmp_path)]


def test_second_run_is_refused_kill_leaves_no_orphans_and_the_plain_command_resumes(miller_dir):
    run_dir, command = miller_dir
    first = subprocess.Popen([*command, BAYES], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        script = wait_for(lambda: [p for p in tree(first.pid) if "fit_bayes" in cmdline_of(p)], 300,
                          "the Bayesian job to start")[0]
        # 5. A second invocation, with nothing to do for its own target, is refused and leaves the
        #    running run's locks in place.
        second = subprocess.run([*command, "data/processed/analysis_data.csv"], cwd=ROOT, capture_output=True,
                                text=True, timeout=300)
        assert second.returncode == 1
        assert f"another run is using {run_dir.resolve()}: wait for it to finish" in second.stderr
        assert list((run_dir / ".snakemake" / "locks").glob("*.lock"))
        # 6. kill -9 once the sampler is being compiled: the job (and any worker processes) end with
        #    the run. The BlackJAX back end compiles and samples on threads of the job's own process.
        log = run_dir / "results" / "logs" / "fit_bayes.log"
        wait_for(lambda: log.exists() and "compiling" in log.read_text(), 300, "the sampler to start")
        workers = tree(first.pid)
        first.send_signal(signal.SIGKILL)
        first.wait()
        wait_for(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in workers), 60,
                 f"the orphaned job processes {[p.pid for p in workers]} to end")
    finally:
        for p in tree(first.pid):
            p.kill()
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert not (run_dir / BAYES).exists()
    # 7. The same command resumes: no --unlock, no --rerun-incomplete.
    again = subprocess.run([*command, BAYES], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "left by an interrupted run" in again.stderr
    # 4. Exclusions that change what is pooled are listed at the end of the run.
    assert (
        "Not pooled: 1 extraction row(s) the workflow could not use (outcome | cohort | reason; all in "
        "data/processed/cleaning_log.csv):\n  dcr | miller1 | no unique count fits 37.5% of 11 (integers that "
        "round to it: none) (extraction row 6)\n") in again.stderr
    assert (run_dir / BAYES).exists()
