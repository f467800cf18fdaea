"""singlearm.codehash: a rule's code hash covers exactly the modules its script can run."""

from singlearm import codehash

from conftest import ROOT


def make_tree(tmp_path):
    pkg = tmp_path / "src" / "singlearm"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text('__version__ = "0"\n')
    (pkg / "a.py").write_text("from . import (\n    b,  # a parenthesised list\n)\nfrom .sub import c\n")
    (pkg / "b.py").write_text("import numpy\n")
    (pkg / "unused.py").write_text("x = 1\n")
    (pkg / "sub" / "__init__.py").write_text("from .d import *\n")
    (pkg / "sub" / "c.py").write_text("def f():\n    from .. import lazy  # imported inside a function\n")
    (pkg / "sub" / "d.py").write_text("")
    (pkg / "lazy.py").write_text("")
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "_helper.py").write_text("from singlearm import b\n")
    (scripts / "rule.py").write_text("import _helper\nimport pandas\nfrom singlearm import a\n")
    return tmp_path / "src", scripts / "rule.py"


def test_graph_follows_relative_lazy_and_helper_imports(tmp_path):
    src, script = make_tree(tmp_path)
    names = {str(p.relative_to(tmp_path)) for p in codehash.import_graph(script, src)}
    assert names == {"scripts/rule.py", "scripts/_helper.py", "src/singlearm/__init__.py", "src/singlearm/a.py",
                     "src/singlearm/b.py", "src/singlearm/sub/__init__.py", "src/singlearm/sub/c.py",
                     "src/singlearm/sub/d.py", "src/singlearm/lazy.py"}


def test_hash_changes_with_an_imported_module_only(tmp_path):
    src, script = make_tree(tmp_path)
    before = codehash.script_hash.__wrapped__(script, src)
    (src / "singlearm" / "unused.py").write_text("x = 2\n")
    assert codehash.script_hash.__wrapped__(script, src) == before
    (src / "singlearm" / "sub" / "d.py").write_text("y = 1\n")
    assert codehash.script_hash.__wrapped__(script, src) != before


def test_the_pooling_script_does_not_reach_the_bayesian_model():
    graph = codehash.import_graph(ROOT / "workflow" / "scripts" / "pool_outcome.py", ROOT / "src")
    files = {p.name for p in graph}
    assert {"pool.py", "fit.py", "glmm.py", "_src_path.py", "runguard.py"} <= files
    assert not files & {"joint.py", "tables.py", "reproduction.py"}
    assert not any(part in ("plots", "bayes") for p in graph for part in p.parts)   # the figure and MCMC packages
