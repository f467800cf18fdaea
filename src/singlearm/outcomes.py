"""The outcome vocabulary: which ids are proportions, survival rates, medians or descriptive fields.

A *proportion* is a count over a denominator (responses, adverse events). A *survival rate*
(``pfs_rate_*``, ``os_rate_*``, ``pfr_*``) is a Kaplan-Meier landmark estimate: censoring makes
it something other than x/n, so it is never turned into a count. A *median* is a median
survival time in months. How an outcome reads (its label) is :mod:`singlearm.formatting`.
"""

import re

PROPORTION = "proportion"
MEDIAN = "median"
SURVIVAL_RATE = "survival_rate"
DESCRIPTIVE = "descriptive"

_DESCRIPTIVE = {"evaluable", "n_enrolled", "median_age", "median_followup_months"}
_MEDIANS = {"median_pfs", "median_os"}
_PROPORTION = re.compile(r"^(orr|dcr|cr|pr|sd|pd|ae_(all|g34):[a-z0-9_]+)$")
_SURVIVAL_RATE = re.compile(r"^(pfr_\d+w|pfs_rate_\d+m|os_rate_\d+m)$")

def kind(outcome):
    """Return ``'proportion'``, ``'survival_rate'``, ``'median'`` or ``'descriptive'`` for an outcome id.

    Raises
    ------
    ValueError
        For an id outside the vocabulary (the extraction schema rejects those first).
    """
    if outcome in _DESCRIPTIVE:
        return DESCRIPTIVE
    if outcome in _MEDIANS:
        return MEDIAN
    if _PROPORTION.match(outcome):
        return PROPORTION
    if _SURVIVAL_RATE.match(outcome):
        return SURVIVAL_RATE
    raise ValueError(f"unknown outcome id {outcome!r}")


def endpoint(outcome):
    """The study table's endpoint token (``PFS``, ``ORR``, ``DCR``, ``OS``, ``AEs``) an outcome belongs to."""
    if outcome in {"orr", "cr", "pr", "sd", "pd"}:
        return "ORR"
    if outcome == "dcr":
        return "DCR"
    if outcome == "median_pfs" or outcome.startswith(("pfs_rate_", "pfr_")):
        return "PFS"
    if outcome == "median_os" or outcome.startswith("os_rate_"):
        return "OS"
    if outcome.startswith("ae_"):
        return "AEs"
    return None


def lists_endpoint(endpoints, outcome):
    """Whether a study's ``endpoints`` cell (``PFS;ORR;AEs>=3``) covers ``outcome``."""
    token = endpoint(outcome)
    listed = {e.strip() for e in (endpoints or "").split(";")}
    if token == "AEs":
        return "AEs" in listed or (outcome.startswith("ae_g34:") and "AEs>=3" in listed)
    return token in listed


def slug(outcome):
    """File-name form of an outcome id (``ae_g34:hypertension`` -> ``ae_g34-hypertension``)."""
    return outcome.replace(":", "-")
