"""Adapter for rule clean_extraction: read the sheets, clean, write the tables and their provenance."""

import sys

import _src_path  # noqa: F401  (src/ importable in any environment, e.g. --sdm conda)
from pathlib import Path

from singlearm import cleaning, provenance, sheets

sys.stderr = open(snakemake.log[0], "w")
schemas = Path(snakemake.scriptdir).parent / "schemas"
inputs = dict(snakemake.input.items())
extraction = sheets.read_sheet(inputs["extraction"], sheets.load_schema(schemas / "extraction.schema.yaml"))
studies = sheets.read_sheet(inputs["studies"], sheets.load_schema(schemas / "studies.schema.yaml"))
result = cleaning.clean(extraction, studies, snakemake.params.subgroup_column, inputs["extraction"], inputs["studies"])

for key, table in [("analysis", result.analysis), ("log_table", result.log), ("coverage", result.coverage)]:
    path = snakemake.output[key]
    provenance.write_csv(table, path)
    provenance.write_sidecar(path, rule=snakemake.rule, inputs=inputs,
                             config={"subgroup_column": snakemake.params.subgroup_column})
