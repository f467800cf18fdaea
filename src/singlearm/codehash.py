"""The code a rule runs, as a hash: reruns follow the package modules a rule script imports.

Snakemake reruns a job when its script file changes, but not when a package module that script
imports changes. The workflow gives every rule with a script a ``code`` param, the hash of the
source of every module in the script's import graph (the script, its helper scripts beside it
and the ``singlearm`` modules it reaches, imports inside functions included). Editing
``src/singlearm/pool.py`` then reruns the pooling, editing the Bayesian model reruns only the
Bayesian stage, and a commit that touches only docs or tests reruns nothing.

The graph is read from the source text, without importing anything, so it costs a few
milliseconds at parse time and sees a module whichever environment the job runs in.
"""

import hashlib
import re
from functools import lru_cache
from pathlib import Path

PACKAGE = "singlearm"


def _module_file(src, name):
    """The file of a dotted ``singlearm`` module under ``src`` (module or package), or None."""
    base = Path(src, *name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _package_of(src, path):
    """The dotted package a module file belongs to (``singlearm.bayes`` for bayes/joint.py)."""
    return ".".join(path.relative_to(src).parts[:-1])


# An import statement at the start of a line (at any indent: imports inside functions count).
# A regular expression, not ast.parse: parsing every module costs ~0.2 s at each parse of the
# workflow, no-op reruns included. It can only over-include (an "import x" line inside a docstring),
# which costs a rerun, never a missed one.
IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+(?P<module>\.*[\w.]*)[ \t]+import[ \t]+(?P<names>\([^)]*\)|[^\n#;]*)"
                    r"|import[ \t]+(?P<plain>[^\n#;]*))", re.M)


def _imported(text, src, path):
    """Dotted names a module imports, relative imports resolved, submodules of ``from x import y`` included."""
    package = _package_of(src, path) if path.is_relative_to(src) else ""
    names = []
    for m in IMPORT.finditer(text):
        if m["plain"] is not None:
            names += [part.split()[0] for part in m["plain"].split(",") if part.strip()]
            continue
        module = m["module"]
        level = len(module) - len(module.lstrip("."))
        if level:
            anchor = package.split(".")[: len(package.split(".")) - level + 1]
            base = ".".join(anchor + ([module.lstrip(".")] if module.lstrip(".") else []))
        else:
            base = module
        names.append(base)
        # `from singlearm import pool` imports the module singlearm.pool
        for part in m["names"].strip("()").split(","):
            alias = part.split()[0] if part.split() else ""
            if alias and alias != "*":
                names.append(f"{base}.{alias}")
    return names


@lru_cache(maxsize=None)
def _imports_of(path, src):
    """:func:`_imported` of one file, read once per process (every rule script shares most modules)."""
    return tuple(_imported(path.read_text(encoding="utf-8"), src, path))


def import_graph(script, src):
    """Every source file a script runs: itself, sibling helper scripts and the package modules it reaches.

    Parameters
    ----------
    script : str or Path
        A rule script (``workflow/scripts/pool_outcome.py``).
    src : str or Path
        The directory holding the ``singlearm`` package.

    Returns
    -------
    list of Path
        The files, sorted.

    R equivalent: none (workflow bookkeeping).
    """
    script, src = Path(script).resolve(), Path(src).resolve()
    seen, todo = set(), [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imports_of(path, src):
            top = name.split(".")[0]
            if top == PACKAGE:
                # importing singlearm.a.b runs singlearm/__init__.py and singlearm/a/__init__.py too
                parts = name.split(".")
                found = [_module_file(src, ".".join(parts[: i + 1])) for i in range(len(parts))]
                todo += [f for f in found if f is not None]
            elif "." not in name and (script.parent / f"{name}.py").is_file():
                todo.append(script.parent / f"{name}.py")   # a helper beside the script (_src_path)
    return sorted(seen)


@lru_cache(maxsize=None)
def script_hash(script, src):
    """Short sha256 (12 hex digits) of the source of every file in a script's :func:`import_graph`.

    Each file enters by its path relative to the common root and its bytes, so the hash is the same
    in any checkout of the same code.

    R equivalent: none (workflow bookkeeping).
    """
    files = import_graph(script, src)
    root = Path(src).resolve().parent
    h = hashlib.sha256()
    for path in files:
        name = path.relative_to(root) if path.is_relative_to(root) else Path(path.name)
        h.update(f"{name.as_posix()}\0".encode())
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:12]
