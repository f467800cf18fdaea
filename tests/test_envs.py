"""The conda environment files and the pip lock list the same packages at the same versions."""

import re

import yaml

from conftest import ROOT

ENVS = ROOT / "envs"


def lock_pins():
    return dict(re.findall(r"^([a-z0-9_.-]+)==([^ \\\n]+)", (ENVS / "requirements.lock").read_text(), re.M))


def test_conda_envs_pin_the_lock_versions():
    pins = lock_pins()
    seen = set()
    for env in sorted(ENVS.glob("*.yaml")):
        for dep in yaml.safe_load(env.read_text())["dependencies"]:
            name, _, version = dep.partition("=")
            if name == "python":
                assert version == "3.11"
                continue
            assert pins.get(name) == version, f"{env.name}: {dep} but the lock has {name}=={pins.get(name)}"
            seen.add(name)
    top = {line.strip() for line in (ENVS / "requirements.in").read_text().splitlines()
           if line.strip() and not line.startswith("#")}
    # Every runtime dependency is in some stage's env; the workflow engine and the test and lint tools are not.
    assert top - seen == {"snakemake", "pytest", "setuptools", "snakefmt"}


def test_every_rule_names_an_existing_env():
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        for env in re.findall(r'"\.\./\.\./envs/([a-z]+\.yaml)"', smk.read_text()):
            assert (ENVS / env).exists(), (smk.name, env)
