"""Config problems (issue 14, items 9-11): one line naming file, key and the closest valid key,
checked when the workflow starts; sheet paths relative to the config file."""

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from singlearm import cleaning, configcheck, sheets
from singlearm.configcheck import ConfigError

from conftest import ROOT, SCHEMAS, miller_sheets

SCHEMA = sheets.load_schema(SCHEMAS / "config.schema.yaml")


def problem(tmp_path, text):
    path = tmp_path / "my.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        configcheck.check_config(configcheck.load_yaml(path), SCHEMA, [path], cleaning.ANALYSIS_COLUMNS)
    return str(info.value).replace(str(path), "my.yaml")


DATA = "data: {studies: s.csv, extraction: e.csv}\n"


def test_a_misspelt_top_level_key(tmp_path):
    assert problem(tmp_path, DATA + "primary_methd: PFT-DL\n") == (
        "my.yaml: unknown key 'primary_methd' (did you mean 'primary_method'?); valid keys at the top: bayes, "
        "bias, data, frequentist, meta_regression, moderators, outcomes, primary_median_method, primary_method, primary_survival_method, seed, sensitivity, subgroup_column, "
        "subgroup_levels")


def test_a_misspelt_nested_key(tmp_path):
    assert problem(tmp_path, DATA + "bayes: {sampler: {draw: 500}}\n") == (
        "my.yaml: unknown key 'bayes.sampler.draw' (did you mean 'draws'?); valid keys under 'bayes.sampler': "
        "backend, chains, draws, retry_target_accept, target_accept, tune")


def test_a_misspelt_key_in_a_list_item(tmp_path):
    assert problem(tmp_path, DATA + "sensitivity: {scenarios: [{id: a, description: b, kep: {}}]}\n") == (
        "my.yaml: unknown key 'sensitivity.scenarios.0.kep' (did you mean 'keep'?); valid keys under "
        "'sensitivity.scenarios.0': all_methods, description, drop, drop_matching, id, keep")


def test_a_misspelt_value(tmp_path):
    assert problem(tmp_path, DATA + "primary_method: PFT-D\n") == (
        "my.yaml: key 'primary_method': value 'PFT-D': expected one of PFT-DL, PFT-REML, PLO-DL, PLO-REML, PFT-DL-HKSJ, PFT-REML-HKSJ, PLO-REML-HKSJ "
        "(did you mean 'PFT-DL'?)")


def test_a_value_out_of_range(tmp_path):
    assert problem(tmp_path, DATA + "frequentist: {level: 95}\n") == (
        "my.yaml: key 'frequentist.level': value 95 is greater than or equal to the maximum of 1 "
        "(Confidence level of every interval.)")


def test_the_key_is_blamed_on_the_file_that_sets_it(tmp_path):
    base, override = tmp_path / "base.yaml", tmp_path / "override.yaml"
    base.write_text(DATA)
    override.write_text("seed: -1\n")
    config = {**configcheck.load_yaml(base), **configcheck.load_yaml(override)}
    with pytest.raises(ConfigError, match=f"^{override}: key 'seed': value -1 is less than the minimum of 0"):
        configcheck.check_config(config, SCHEMA, [base, override])


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "my.yaml"
    path.write_text("data:\n  studies: s.csv\n   extraction: e.csv\n")
    with pytest.raises(ConfigError) as info:
        configcheck.load_yaml(path)
    assert str(info.value) == f"{path}, line 3, column 14: YAML syntax error: mapping values are not allowed here"


# 10. Values a job would only reject minutes later.
def test_a_prior_family_typo(tmp_path):
    assert problem(tmp_path, DATA + "bayes: {priors: {proportion: {tau: {dist: halfnormall, sigma: 1}}}}\n") == (
        "my.yaml: key 'bayes.priors.proportion.tau.dist': value 'halfnormall': expected a prior family, one of "
        "halfnormal, halfcauchy (did you mean 'halfnormal'?)")


def test_a_prior_parameter_typo_in_a_main_prior(tmp_path):
    text = DATA + "bayes: {priors: {median: {tau: {dist: halfcauchy, sigma: 5}}}}\n"
    assert problem(tmp_path, text) == (
        "my.yaml: key 'bayes.priors.median.tau.sigma': unknown parameter of a halfcauchy prior; it takes beta")


def test_one_prior_set_for_every_fit_is_checked_too(tmp_path):
    assert problem(tmp_path, DATA + "bayes: {priors: {mu: {dist: norml, mu: 0, sigma: 1}}}\n") == (
        "my.yaml: key 'bayes.priors.mu.dist': value 'norml': expected a prior family, one of normal "
        "(did you mean 'normal'?)")
    path = tmp_path / "ok.yaml"
    path.write_text(DATA + "bayes: {priors: {mu: {dist: normal, mu: 0, sigma: 1}, tau: {dist: halfcauchy, beta: 1}}}\n")
    configcheck.check_config(configcheck.load_yaml(path), SCHEMA, [path], cleaning.ANALYSIS_COLUMNS)


def test_a_non_positive_prior_scale(tmp_path):
    assert problem(tmp_path, DATA + "bayes: {priors: {median: {mu: {dist: normal, mu: 0, sigma: 0}}}}\n") == (
        "my.yaml: key 'bayes.priors.median.mu.sigma': value 0: expected a finite number > 0")


def test_a_scenario_naming_a_missing_column(tmp_path):
    text = DATA + "sensitivity: {scenarios: [{id: pro, description: P, keep: {desing: [prospective]}}]}\n"
    assert problem(tmp_path, text) == (
        "my.yaml: key 'sensitivity.scenarios.0.keep.desing': scenario 'pro': no column 'desing' in "
        f"analysis_data.csv (did you mean 'design'?); its columns: {', '.join(cleaning.ANALYSIS_COLUMNS)}")


def test_a_scenario_with_a_broken_regular_expression(tmp_path):
    text = DATA + "sensitivity: {scenarios: [{id: x, description: X, drop_matching: {location: 'abstract('}}]}\n"
    assert problem(tmp_path, text) == (
        "my.yaml: key 'sensitivity.scenarios.0.drop_matching.location': scenario 'x': value 'abstract(': expected "
        "a regular expression (missing ), unterminated subpattern at position 8)")


def test_the_shipped_configs_pass():
    for name in ("config.yaml", "miller1978.yaml"):
        path = ROOT / "config" / name
        configcheck.check_config(configcheck.load_yaml(path), SCHEMA, [path], cleaning.ANALYSIS_COLUMNS)
        for key, sheet in configcheck.data_paths(configcheck.load_yaml(path), [path], ROOT).items():
            assert sheet.is_file(), (name, key, sheet)


def levels_problem(tmp_path, levels_yaml):
    """The message check_subgroup_levels gives for a config setting ``subgroup_levels`` over a two-level sheet."""
    path = tmp_path / "my.yaml"
    path.write_text(DATA + "subgroup_column: histology\nsubgroup_levels:\n" + levels_yaml)
    studies = pd.DataFrame({"study_id": ["a", "b", "c"], "histology": ["sts", "bone", "sts"]})
    with pytest.raises(ConfigError) as info:
        configcheck.check_subgroup_levels(configcheck.load_yaml(path), studies, [path], "s.csv")
    return str(info.value).replace(str(path), "my.yaml")


def test_subgroup_levels_must_list_every_value_of_the_study_table(tmp_path):
    assert levels_problem(tmp_path, "  sts: Soft-tissue sarcoma\n  Bone: Bone sarcoma\n") == (
        "my.yaml: key 'subgroup_levels': s.csv has histology 'bone', which it does not list (did you mean 'Bone'?); "
        "list every value (sts, bone) with its display label")


def test_subgroup_levels_may_not_name_a_value_no_cohort_has(tmp_path):
    assert levels_problem(tmp_path, "  sts: Soft-tissue sarcoma\n  bone: Bone sarcoma\n  bones: Bones\n") == (
        "my.yaml: key 'subgroup_levels.bones': no cohort in s.csv has histology 'bones' (did you mean 'bone'?); "
        "its values are sts, bone")


def test_subgroup_levels_give_each_subgroup_its_own_label(tmp_path):
    assert levels_problem(tmp_path, "  sts: Sarcoma\n  bone: Sarcoma\n") == (
        "my.yaml: key 'subgroup_levels': label 'Sarcoma' is given to sts and bone; each subgroup needs its own label")


def test_subgroup_levels_labels_are_text(tmp_path):
    assert problem(tmp_path, DATA + "subgroup_levels: {sts: [a]}\n").startswith(
        "my.yaml: key 'subgroup_levels.sts': value ['a']")


def test_subgroup_levels_leave_a_missing_subgroup_column_to_the_sheet_check():
    # cleaning.clean names the file and the missing header; a list of "unknown" values would mislead
    config = {"subgroup_column": "tumour", "subgroup_levels": {"sts": "Soft-tissue sarcoma"}}
    configcheck.check_subgroup_levels(config, pd.DataFrame({"study_id": ["a"], "histology": ["sts"]}))


def test_the_shipped_subgroup_levels_fit_the_shipped_study_table():
    path = ROOT / "config" / "config.yaml"
    config = configcheck.load_yaml(path)
    studies = pd.read_csv(configcheck.data_paths(config, [path], ROOT)["studies"])
    configcheck.check_subgroup_levels(config, studies, [path])
    assert list(config["subgroup_levels"]) == list(dict.fromkeys(studies["histology"]))


def test_prior_families_match_the_bayes_module():
    from singlearm.bayes import priors
    assert configcheck.MU_PRIORS == priors.MU_FAMILIES and configcheck.TAU_PRIORS == priors.TAU_FAMILIES


# 11. Sheet paths: relative to the config file, ~ expanded, command-line ones from the Snakefile.
def test_relative_paths_are_taken_from_the_config_files_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = tmp_path / "review" / "my.yaml"
    path.parent.mkdir()
    path.write_text("data: {studies: sheets/s.csv, extraction: ~/e.csv, prisma: /abs/p.csv, published: null}\n")
    config = configcheck.load_yaml(path)
    config["data"]["quality_jbi"] = "q.csv"   # as --config data=... would add it
    assert configcheck.data_paths(config, [path], tmp_path / "snakefile_dir") == {
        "studies": tmp_path / "review" / "sheets" / "s.csv", "extraction": tmp_path / "home" / "e.csv",
        "prisma": Path("/abs/p.csv"), "published": None, "quality_jbi": tmp_path / "snakefile_dir" / "q.csv"}


# The same, as a user meets them.
def snakemake(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(Path(cwd) / "Snakefile"), *args],
                          cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.mark.workflow
def test_workflow_prints_one_line_and_reads_relative_sheet_paths(tmp_path):
    review = tmp_path / "review"
    miller_sheets(review / "sheets")
    config = review / "my.yaml"
    config.write_text("data: {studies: sheets/study_characteristics.csv, extraction: sheets/extraction.csv}\n"
                      "primary_methd: PFT-REML\n")
    bad = snakemake("-n", "--configfile", str(config), "--directory", str(tmp_path / "run"))
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines()[-1] == (
        f"singlearm: {config}: unknown key 'primary_methd' (did you mean 'primary_method'?); valid keys at the "
        "top: bayes, bias, data, frequentist, meta_regression, moderators, outcomes, primary_median_method, primary_method, primary_survival_method, "
        "seed, sensitivity, subgroup_column, subgroup_levels")
    assert len(bad.stderr.strip().splitlines()) <= 2   # the profile's notice, then the message
    config.write_text(config.read_text().replace("primary_methd", "primary_method"))
    good = snakemake("-n", "--configfile", str(config), "--directory", str(tmp_path / "run"))
    assert good.returncode == 0, good.stderr[-2000:]


@pytest.mark.workflow
def test_yaml_syntax_errors_name_file_and_line_for_the_default_and_a_given_config(tmp_path):
    # The default config is read by the Snakefile: check it in a copy of the workflow.
    copy = tmp_path / "repo"
    for part in ("workflow", "config", "src", "profiles"):
        shutil.copytree(ROOT / part, copy / part)
    shutil.copy(ROOT / "Snakefile", copy / "Snakefile")
    default = copy / "config" / "config.yaml"
    default.write_text(default.read_text().replace("subgroup_column: histology", "subgroup_column: [histology"))
    done = snakemake("-n", cwd=copy)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"singlearm: {default}, line 17, column 1: YAML syntax error: expected ',' or ']', but got '?'")
    # A --configfile is read by Snakemake before the workflow: `singlearm run` checks it first.
    mine = tmp_path / "my.yaml"
    mine.write_text("data:\n  studies: s.csv\n  extraction: e.csv\n seed: 3\n")
    run = subprocess.run([sys.executable, "-m", "singlearm.cli", "run", "--cores", "1", "--configfile", str(mine)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr == f"singlearm: {mine}, line 4, column 2: YAML syntax error: expected <block end>, but found '<block mapping start>'\n"
