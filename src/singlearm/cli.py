"""The ``singlearm`` command: run the workflow, audit a result's provenance, or write the manifest of a run.

``singlearm run ARGS`` is ``snakemake ARGS`` after reading each ``--configfile`` once, because
Snakemake reports a YAML syntax error there without naming the file or the line.

Exit codes are a contract for scripts and CI:

- 0: the audited file and everything it was made from match their recorded sha256;
- 1: something is tampered, stale, missing or circular (the report lists each problem);
- 2: usage error, or the file has no (readable) provenance sidecar, so there is nothing to audit.
"""

import argparse
import os
import sys
from pathlib import Path

from . import __version__
from .audit import audit, format_report, manifest
from .configcheck import ConfigError, load_yaml
from .provenance import write_csv


def _parser():
    parser = argparse.ArgumentParser(prog="singlearm", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"singlearm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="snakemake with the same arguments, after checking the config files' syntax")
    r.add_argument("args", nargs=argparse.REMAINDER, help="snakemake's arguments, e.g. --cores 4 --configfile my.yaml")
    a = sub.add_parser("audit", help="trace an output back to the raw rows and check every sha256")
    a.add_argument("path", help="an output with a .prov.json sidecar, e.g. results/tables/pooled_estimates.csv")
    a.add_argument("--root", help="directory the sidecars' paths are relative to (default: the one holding "
                                  "the file's results/ or data/ folder)")
    a.add_argument("--quiet", action="store_true", help="print only the verdict and any problems")
    m = sub.add_parser("manifest", help="write path, sha256, bytes, rule, version of each file as CSV")
    m.add_argument("out", help="the CSV to write, e.g. results/MANIFEST.csv")
    m.add_argument("files", nargs="+", help="the output files (sidecars are skipped)")
    m.add_argument("--root", default=".", help="directory the paths are relative to (default: .)")
    return parser


def config_files(args):
    """The files named by ``--configfile``/``--configfiles`` in a Snakemake command line."""
    files, taking = [], False
    for arg in args:
        if arg.startswith("-"):
            name, _, value = arg.partition("=")
            taking = name in ("--configfile", "--configfiles")
            if taking and value:
                files.append(value)
        elif taking:
            files.append(arg)
    return files


def run(args):
    """Check the syntax of the command's config files, then become ``python -m snakemake ARGS``."""
    for path in config_files(args):
        try:
            load_yaml(path)
        except ConfigError as err:
            print(f"singlearm: {err}", file=sys.stderr)
            return 2
    os.execv(sys.executable, [sys.executable, "-m", "snakemake", *args])


def main(argv=None):
    """Run the command line; return the exit code (see the module docstring)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["run"]:  # everything after 'run' is Snakemake's, options included
        return run(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    if args.root is not None and not Path(args.root).is_dir():
        parser.error(f"--root {args.root} is not a directory")
    if args.command == "manifest":
        try:
            frame = manifest(args.files, args.root)
        except FileNotFoundError as err:
            print(f"singlearm: {err}", file=sys.stderr)
            return 2
        write_csv(frame, args.out)
        return 0
    result = audit(args.path, args.root)
    if not result.target.sidecar:  # no sidecar: nothing was checked, which is not a pass or a finding
        print(f"singlearm: {result.problems[0]}", file=sys.stderr)
        return 2
    print(format_report(result, quiet=args.quiet), end="")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
