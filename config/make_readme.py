"""Write the reference half of config/README.md from the schemas, so it cannot drift from them.

    .venv/bin/python config/make_readme.py

Everything above the line ``<!-- generated from workflow/schemas: do not edit below -->`` is
written by hand and kept; everything below is regenerated: every config key (with its default)
and every column of every sheet (required or optional, and what a valid value is).
tests/test_workflow.py checks that the committed README equals what this script writes.
"""

import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "workflow" / "schemas"
README = ROOT / "config" / "README.md"
MARK = "<!-- generated from workflow/schemas: do not edit below -->"
SHEETS = [("studies", "data.studies"), ("extraction", "data.extraction"), ("quality_minors", "data.quality_minors"),
          ("quality_jbi", "data.quality_jbi"), ("prisma", "data.prisma"), ("published", "data.published")]


def cell(text):
    return " ".join(str(text).split()).replace("|", "\\|")


def default(spec):
    if "default" not in spec:
        return ""
    text = json.dumps(spec["default"], ensure_ascii=False)
    return f"`{text}`" if len(text) <= 60 else "see the schema"


def kind(spec):
    if "enum" in spec:
        return "one of " + ", ".join(f"`{v}`" for v in spec["enum"])
    t = spec.get("type", "")
    return " or ".join(t) if isinstance(t, list) else t


def config_rows(props, prefix=""):
    for key, spec in props.items():
        name = f"{prefix}{key}"
        yield f"| `{name}` | {cell(kind(spec))} | {default(spec)} | {cell(spec.get('description', ''))} |"
        if "properties" in spec:
            yield from config_rows(spec["properties"], f"{name}.")
        if "properties" in spec.get("items", {}):
            yield from config_rows(spec["items"]["properties"], f"{name}[].")


def sheet_section(name, key):
    schema = yaml.safe_load((SCHEMAS / f"{name}.schema.yaml").read_text())
    item = schema.get("items", schema)
    required = set(item.get("required", []))
    lines = [f"### `{key}` ({name}.schema.yaml)", "", cell(schema.get("description", "")), "",
             "| column | required | valid value |", "|---|---|---|"]
    for column, spec in item.get("properties", {}).items():
        lines.append(f"| `{column}` | {'yes' if column in required else 'no'} | {cell(spec.get('description', ''))} |")
    return lines


def generated():
    config = yaml.safe_load((SCHEMAS / "config.schema.yaml").read_text())
    lines = [MARK, "", "## Every config key", "", cell(config.get("description", "")), "",
             "| key | type | default | meaning |", "|---|---|---|---|", *config_rows(config["properties"]), "",
             "## Every sheet and column", ""]
    for name, key in SHEETS:
        lines += [*sheet_section(name, key), ""]
    return "\n".join(lines)


def render(current):
    head = current.split(MARK)[0].rstrip("\n")
    return f"{head}\n\n{generated()}"


if __name__ == "__main__":
    README.write_text(render(README.read_text()))
    sys.exit(0)
