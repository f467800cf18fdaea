"""Check a result against its provenance, back to the spreadsheet rows it came from.

Every file the workflow writes has a ``<file>.prov.json`` sidecar (see :mod:`singlearm.provenance`)
recording its own sha256 and the sha256 of every input at the time it was made. :func:`audit`
follows those sidecars from one output down to the raw sheets and re-hashes every file on the way:

- an output whose bytes differ from its own sidecar was edited by hand after the workflow made it
  (*tampered*);
- an input whose bytes differ from what a later rule recorded changed after that rule ran, so the
  later file no longer describes the current data (*stale*);
- a recorded file that is gone is *missing*.

:func:`format_report` prints the lineage and the raw rows (sheet row, URL, location, derivation)
behind the numbers; :func:`manifest` lists what a run wrote, for ``results/MANIFEST.csv``.
"""

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pandas as pd

from .provenance import SUFFIX, sha256, sidecar_path

MANIFEST_COLUMNS = ["path", "sha256", "bytes", "rule", "version"]


@dataclass(frozen=True)
class Problem:
    """One failed check. ``kind`` is tampered, stale, missing, cycle, no-sidecar or bad-sidecar."""

    kind: str
    path: str
    message: str

    def __str__(self):
        return self.message


@dataclass(frozen=True)
class Input:
    """One recorded input of a node: its name in the rule, the sha256 recorded then, and its status now."""

    name: str
    path: str
    recorded_sha256: str
    status: str  # ok, stale, missing or cycle
    node: "Node | None"  # None only for a cycle, which is not followed


@dataclass(frozen=True)
class Node:
    """A file in the lineage: an output with a sidecar, or a source file (raw sheet) without one."""

    path: str
    sidecar: bool  # False for raw sheets, and for a sidecar that cannot be read
    sha256: str | None  # now; None when the file is missing
    rule: str | None
    version: str | None
    command: str | None
    status: str  # ok, tampered, missing or source
    inputs: tuple = ()
    rows: tuple = ()


@dataclass(frozen=True)
class AuditResult:
    """What :func:`audit` found: the lineage tree, the raw rows used, and every problem."""

    target: Node
    root: Path
    rows: tuple
    problems: tuple
    files_checked: int

    @property
    def ok(self):
        """True when every file matches its recorded sha256 and nothing is missing."""
        return not self.problems


def version_of(workflow):
    """``<package>+<short commit>[-dirty]`` from a sidecar's ``workflow`` block, e.g. ``0.1.0+f1064a9``."""
    commit = workflow.get("git_commit")
    text = f"{workflow.get('package')}+{commit[:7] if commit else 'no-git'}"
    return text + "-dirty" if workflow.get("git_dirty") else text


def _read_sidecar(path):
    with open(sidecar_path(path), encoding="utf-8") as f:
        return json.load(f)


def _default_root(path):
    """The directory the sidecar paths are relative to (the Snakemake working directory)."""
    full = Path(os.path.abspath(path))
    try:  # Best: strip the output path the rule recorded from the file's absolute path.
        recorded = PurePosixPath(_read_sidecar(full)["output"]["path"]).parts
        if recorded and not PurePosixPath(recorded[0]).is_absolute() and full.parts[-len(recorded):] == recorded:
            return Path(*full.parts[:-len(recorded)])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    for parent in full.parents:
        if parent.name in ("results", "data"):
            return parent.parent
    return Path.cwd()


def _short(digest):
    return f"{digest[:12]}\u2026" if digest else "none"


def audit(path, root=None):
    """Check ``path`` and everything it was made from against their provenance sidecars.

    Parameters
    ----------
    path : str or Path
        An output of the workflow (it must have a ``.prov.json`` sidecar).
    root : str or Path, optional
        The directory the sidecars' paths are relative to (the Snakemake working directory).
        Default: the directory holding the ``results/`` or ``data/`` folder ``path`` sits in
        (worked out from the output path its sidecar records, when it can be), else the cwd.

    Returns
    -------
    AuditResult
        The lineage tree (each file visited once, shared inputs shared), the raw rows used by
        any output in it, sorted by sheet row, and the problems found (empty when all is well).
    """
    path = Path(path)
    if root is not None and not path.is_absolute() and not path.exists():
        path = Path(root) / path
    root = Path(root) if root is not None else _default_root(path)
    hashes, nodes, on_path, problems, rows = {}, {}, set(), [], []

    def problem(kind, where, message):
        if not any(p.message == message for p in problems):
            problems.append(Problem(kind, where, message))

    def digest(full):
        if full not in hashes:
            hashes[full] = sha256(full) if full.is_file() else None
        return hashes[full]

    def visit(shown, full):
        key = Path(os.path.abspath(full))
        if key in nodes:
            return nodes[key]
        on_path.add(key)
        now = digest(key)
        try:
            record = _read_sidecar(key)
        except FileNotFoundError:
            record = None
        except (OSError, ValueError) as err:
            problem("bad-sidecar", shown, f"bad-sidecar: {shown}{SUFFIX} cannot be read ({err})")
            record = None
        if record is None:
            node = Node(shown, False, now, None, None, None, "missing" if now is None else "source")
        else:
            recorded = record.get("output", {}).get("sha256")
            status = "missing" if now is None else "tampered" if now != recorded else "ok"
            if status == "tampered":
                problem("tampered", shown, f"tampered: {shown} was edited after it was made "
                                           f"(sha256 recorded {_short(recorded)}, now {_short(now)})")
            inputs = tuple(check_input(shown, name, f) for name, files in sorted(record.get("inputs", {}).items())
                           for f in files)
            outcome = (record.get("config") or {}).get("outcome")
            node_rows = tuple({**r, "outcome": r.get("outcome") or outcome} for r in record.get("rows") or ())
            rows.extend(node_rows)  # after the inputs': deepest rows (with their outcome) come first
            node = Node(shown, True, now, record.get("rule"), version_of(record.get("workflow") or {}),
                        record.get("command"), status, inputs, node_rows)
        on_path.discard(key)
        nodes[key] = node
        return node

    def check_input(parent, name, entry):
        shown, recorded = entry["path"], entry.get("sha256")
        full = root / shown
        if Path(os.path.abspath(full)) in on_path:
            problem("cycle", shown, f"cycle: {shown} is recorded as an input of {parent}, which it was made from")
            return Input(name, shown, recorded, "cycle", None)
        node = visit(shown, full)
        if node.sha256 is None:
            problem("missing", shown, f"missing: input {shown} of {parent} does not exist")
            status = "missing"
        elif node.sha256 != recorded:
            problem("stale", shown, f"stale: input {shown} changed after {parent} was made "
                                    f"(sha256 recorded {_short(recorded)}, now {_short(node.sha256)})")
            status = "stale"
        else:
            status = "ok"
        return Input(name, shown, recorded, status, node)

    try:
        shown = Path(os.path.abspath(path)).relative_to(os.path.abspath(root)).as_posix()
    except ValueError:
        shown = str(path)
    target = visit(shown, path)
    if not target.sidecar and not problems:
        problem("no-sidecar", shown, f"no-sidecar: {shown} has no {path.name}{SUFFIX} beside it, so there is "
                                     "no record of how it was made (is it a workflow output?)")
    elif target.status == "missing":
        problem("missing", shown, f"missing: {shown} does not exist (only its sidecar does)")
    return AuditResult(target, root, _unique_rows(rows), tuple(problems),
                       sum(h is not None for h in hashes.values()))


def _unique_rows(rows):
    # A raw row reaches a summary table through several outputs, some recording fewer of its fields
    # (the Bayesian data have no cohort id or source); show it once, in sheet order, with every field.
    seen = {}
    for r in rows:
        key = (r.get("source_sheet") or "extraction.csv", r["source_row"]) if r.get("source_row") is not None \
            else json.dumps(r, sort_keys=True, default=str)
        have = seen.setdefault(key, dict(r))
        have.update({k: v for k, v in r.items() if have.get(k) is None and v is not None})
    return tuple(sorted(seen.values(), key=lambda r: (r.get("source_row") is None, r.get("source_row") or 0)))


def _num(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return f"{value:.4g}" if isinstance(value, (int, float)) else str(value)


def _numbers(r):
    events, total, est, lo, hi = (_num(r.get(k)) for k in ("events", "total", "estimate", "ci_low", "ci_high"))
    parts = [f"{events}/{total}" if events and total else f"n={total}" if total else None,
             f"estimate {est}" if est else None, f"CI {lo} to {hi}" if lo and hi else None]
    return ", ".join(p for p in parts if p) or "no numbers recorded"


def _tree(node, label, depth, seen, lines):
    raw = "raw" in PurePosixPath(node.path).parts
    kind = f"[{node.rule}]" if node.sidecar else "[raw]" if raw else "[no sidecar]"
    flag = {"tampered": "  << TAMPERED", "missing": "  << MISSING"}.get(node.status, "")
    repeat = node.inputs and id(node) in seen
    lines.append(f"{'  ' * depth}{label}{node.path}  {kind}{flag}{'  (inputs shown above)' if repeat else ''}")
    if repeat:
        return
    seen.add(id(node))
    for inp in node.inputs:
        if inp.node is None:
            lines.append(f"{'  ' * (depth + 1)}{inp.name}: {inp.path}  << CYCLE")
            continue
        edge = {"stale": "  << STALE (changed since)", "missing": ""}.get(inp.status, "")
        start = len(lines)
        _tree(inp.node, f"{inp.name}: ", depth + 1, seen, lines)
        lines[start] += edge


def format_report(result, quiet=False):
    """Readable text of an :class:`AuditResult`: header, lineage tree, raw rows used, verdict.

    Parameters
    ----------
    result : AuditResult
    quiet : bool
        Only the verdict and the problems.

    Returns
    -------
    str
        Ends with ``OK: all N files match their recorded sha256`` or ``FAILED: ...`` and one line
        per problem.
    """
    if quiet:
        return "\n".join(_verdict(result)) + "\n"
    t = result.target
    lines = [f"Output:   {t.path}", f"Rule:     {t.rule or '-'}",
             f"Version:  singlearm {t.version}" if t.version else "Version:  -",
             f"Command:  {t.command or '-'}", f"Root:     {result.root}", "", "Lineage:"]
    _tree(t, "", 1, set(), lines)
    if result.rows:
        lines += ["", f"Raw rows used ({len(result.rows)}):"]
    for r in result.rows:
        sheet = r.get("source_sheet") or "extraction.csv"
        lines.append(f"  {r.get('cohort_id')} | {r.get('outcome') or '?'} | {_numbers(r)} | "
                     f"{sheet} row {r.get('source_row')}")
        sources = ", ".join(f"{k.removesuffix('_source')} {r[k]}"
                            for k in ("events_source", "total_source") if r.get(k))
        lines += [f"      location:   {r.get('location') or '-'}", f"      url:        {r.get('source_url') or '-'}",
                  f"      derivation: {r.get('derivation') or '-'}" + (f" ({sources})" if sources else "")]
    lines.append("")
    lines += _verdict(result)
    return "\n".join(lines) + "\n"


def _verdict(result):
    if result.ok:
        return [f"OK: all {result.files_checked} files match their recorded sha256"]
    return [f"FAILED: {len(result.problems)} problem(s)"] + [f"  - {p}" for p in result.problems]


def manifest(paths, root="."):
    """One row per output file: ``path, sha256, bytes, rule, version``, sorted by path.

    Parameters
    ----------
    paths : iterable of str or Path
        Output files; relative paths are relative to ``root``. Sidecars (``*.prov.json``) are
        skipped: they describe the outputs rather than being outputs.
    root : str or Path
        The directory paths are shown relative to (the Snakemake working directory).

    Returns
    -------
    pandas.DataFrame
        ``sha256`` and ``bytes`` are of the file as it is now; ``rule`` and ``version`` come from
        its sidecar (empty when it has none).
    """
    root = Path(os.path.abspath(root))
    out = {}
    for p in map(Path, paths):
        if p.name.endswith(SUFFIX):
            continue
        full = Path(os.path.abspath(root / p))
        if not full.is_file():
            raise FileNotFoundError(f"manifest: {p} is not a file (relative paths are read from {root})")
        shown = full.relative_to(root).as_posix() if full.is_relative_to(root) else full.as_posix()
        try:
            record = _read_sidecar(full)
            rule, version = record.get("rule") or "", version_of(record.get("workflow") or {})
        except FileNotFoundError:
            rule, version = "", ""
        out[shown] = {"path": shown, "sha256": sha256(full), "bytes": full.stat().st_size,
                      "rule": rule, "version": version}
    frame = pd.DataFrame([out[k] for k in sorted(out)], columns=MANIFEST_COLUMNS)
    return frame.astype({"bytes": "int64"})
