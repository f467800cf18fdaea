"""Adapter for rule write_manifest: path, sha256, bytes, rule and version of every output."""

import sys

import _src_path  # noqa: F401  (src/ importable in any environment, e.g. --sdm conda)

from singlearm import audit, provenance

sys.stderr = open(snakemake.log[0], "w")
provenance.write_csv(audit.manifest(list(snakemake.input), "."), snakemake.output[0])
