# Read the default config once before Snakemake does, so a YAML syntax error names file and line.

import sys

sys.path.insert(0, f"{workflow.basedir}/src")

from singlearm import configcheck  # noqa: E402

try:
    configcheck.load_yaml(f"{workflow.basedir}/config/config.yaml")
except configcheck.ConfigError as err:
    sys.exit(f"singlearm: {err}")
