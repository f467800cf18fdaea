"""Provenance sidecars: ``<output>.prov.json`` beside every file a rule writes.

A sidecar records what made the file (rule, command line, workflow version and git state), from
what (every input with its sha256), with which settings (the config values the rule used, the
seed) and library versions. It holds no timestamps, so a rebuild from the same inputs and commit
writes the same bytes.
"""

import hashlib
import json
import os
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import pandas as pd

from . import __version__

LIBRARIES = ("singlearm", "numpy", "scipy", "pandas", "matplotlib", "pymc", "pytensor",
             "arviz", "snakemake", "jsonschema")
SUFFIX = ".prov.json"


def sha256(path):
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sidecar_path(path):
    """The sidecar's path for an output path."""
    return Path(str(path) + SUFFIX)


def workflow_version(repo=None):
    """Package version, git commit and whether the work tree had uncommitted changes."""
    repo = Path(repo or Path(__file__).resolve().parents[2])

    def git(*args):
        # Read-only: a plain `git status` refreshes and rewrites .git/index on every job, racing other
        # git commands in the checkout; --no-optional-locks keeps the refresh in memory.
        try:
            return subprocess.run(["git", "--no-optional-locks", "-c", "core.fsmonitor=false", "-C", str(repo),
                                   *args], capture_output=True, text=True, timeout=10, check=True,
                                  env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"}).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"package": __version__, "git_commit": commit, "git_dirty": bool(status) if commit else None}


def library_versions():
    """Installed versions of the libraries the analysis depends on (None where absent)."""
    return dict(_library_versions())


@lru_cache(maxsize=1)
def _library_versions():
    # Looked up once per process: the lookups scan sys.path (~17 ms for the list), and a job that
    # writes a hundred sidecars runs with one set of installed libraries.
    out = []
    for name in LIBRARIES:
        try:
            out.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            out.append((name, None))
    return tuple(out)


ROW_FIELDS = ["cohort_id", "outcome", "events", "total", "estimate", "ci_low", "ci_high", "source_row", "source_url",
              "location", "derivation", "events_source", "total_source"]


def analysis_rows(rows):
    """The cleaned analysis rows behind an output, as sidecar records (every number with its source).

    Parameters
    ----------
    rows : pandas.DataFrame
        Rows of ``analysis_data.csv``.

    Returns
    -------
    list of dict
        ``ROW_FIELDS`` of each row, missing values as None.
    """
    return records(rows[[c for c in ROW_FIELDS if c in rows.columns]])


def records(frame):
    """A DataFrame as JSON-ready records, missing values as None."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _inputs(inputs):
    listed = {}
    for name, paths in sorted(inputs.items()):
        for p in [paths] if isinstance(paths, (str, os.PathLike)) else paths:
            listed.setdefault(name, []).append({"path": str(p), "sha256": sha256(p)})
    return listed


def write_sidecar(output, *, rule, inputs, config, seed=None, rows=None, extra=None, workflow=None):
    """Write ``<output>.prov.json`` describing how ``output`` was made.

    Parameters
    ----------
    output : str or Path
        The file just written.
    rule : str
        The Snakemake rule (or command) that wrote it.
    inputs : dict
        Input name -> path or list of paths; each is hashed.
    config : dict
        The config values the rule used.
    seed : int, optional
        The random seed, for stochastic outputs.
    rows : list of dict, optional
        The analysis rows behind the output (cohort, numbers, source row, URL, location, derivation).
    extra : dict, optional
        Anything else worth recording.
    workflow : dict, optional
        :func:`workflow_version`, for a job writing many sidecars at one git state (it runs git
        twice); looked up here when not given.
    """
    record = {
        "output": {"path": str(output), "sha256": sha256(output), "bytes": os.path.getsize(output)},
        "rule": rule,
        "command": os.environ.get("SINGLEARM_COMMAND"),
        "workflow": workflow or workflow_version(),
        "inputs": _inputs(inputs),
        "config": config,
        "seed": seed,
        "libraries": library_versions(),
    }
    if rows is not None:
        record["rows"] = rows
    if extra:
        record["extra"] = extra
    text = json.dumps(record, indent=2, sort_keys=True, default=str, ensure_ascii=False) + "\n"
    write_text(sidecar_path(output), text)


def inputs_digest(inputs, config=None):
    """Short hash (12 hex digits) of every input's name and sha256, and of the config.

    Paths are left out (the input paths and the config's ``data`` section), so the same data and
    config give the same digest from any directory.
    """
    h = hashlib.sha256()
    for name, files in _inputs(inputs).items():
        for f in files:
            h.update(f"{name}\0{f['sha256']}\n".encode())
    # The sheets are hashed by content above; their paths (config "data") would make the digest
    # depend on where the review sits.
    if isinstance(config, dict):
        config = {k: v for k, v in config.items() if k != "data"}
    h.update(json.dumps(config, sort_keys=True, default=str).encode())
    return h.hexdigest()[:12]


def stamp(inputs, config=None):
    """The provenance stamp printed on figures and under Markdown tables, without the code hash.

    ``singlearm 0.1.0 · inputs 1a2b3c4d5e6f``: package version and :func:`inputs_digest` of the
    run's raw sheets and config. :func:`code_stamp` adds the hash of the code that drew the output;
    every result is a function of these, so equal stamps mean results made by the same code from
    the same data and settings. The git commit and dirty flag are in the sidecars, not here: a
    commit touching only docs must not change (and so redraw) every figure.
    """
    return f"singlearm {__version__} \u00b7 inputs {inputs_digest(inputs, config)}"


def code_stamp(stamp_text, code):
    """A :func:`stamp` with the hash of the rule's code (:mod:`singlearm.codehash`) before the inputs.

    ``singlearm 0.1.0 · code 0a1b2c3d4e5f · inputs 1a2b3c4d5e6f``.
    """
    version, _, inputs = stamp_text.partition(" \u00b7 ")
    return f"{version} \u00b7 code {code} \u00b7 {inputs}"


def write_bytes(path, data):
    """Write bytes atomically (a reader never sees a half-written file), with the usual 0644 mode."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_text(path, text):
    """Write UTF-8 text with "\\n" line ends atomically."""
    write_bytes(path, text.encode("utf-8"))


# A spreadsheet runs a cell starting with one of these as a formula ("CSV injection", OWASP).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    """A text value safe to open in a spreadsheet: prefixed with ``'`` if it would start a formula.

    Numbers written as text (``-0.25``) are left alone: a spreadsheet reads them as numbers.
    """
    if not isinstance(value, str) or not value.startswith(FORMULA_START):
        return value
    try:
        float(value)
        return value
    except ValueError:
        return "'" + value


def write_csv(df, path):
    """Write a DataFrame as UTF-8 CSV atomically, with stable formatting and formula-safe text cells."""
    df = df.copy()
    for column in df.columns[df.dtypes.map(lambda t: t == object or pd.api.types.is_string_dtype(t))]:
        df[column] = df[column].map(neutralise, na_action="ignore")
    write_text(path, df.to_csv(index=False, lineterminator="\n"))
