"""Put the workflow's own src/ first on sys.path, so rule scripts import the package beside them,
and end the script (and any processes it started) when the Snakemake run that started it is gone.

With `make run` the package is installed in .venv anyway; under `--sdm conda` it is not.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from singlearm import runguard  # noqa: E402

runguard.die_with_run()
