"""The method registry: every pooling method id with what it pools, how, and on which scale.

One entry per id used anywhere in the workflow's tables and figures. ``scale`` is the analysis
scale the model is fitted on (also the ``scale`` column of ``pooled_details.csv``); ``back(b, n)``
maps a value on that scale to the reporting scale (a proportion, a survival probability or
months), given the sizes ``n`` of the studies that were pooled (only the Freeman-Tukey inverse
uses them: the harmonic mean of exactly those n, Miller 1978).
"""

from dataclasses import dataclass

import numpy as np

from . import effects, transforms
from .outcomes import MEDIAN, PROPORTION, SURVIVAL_RATE

# Analysis scales (one spelling each).
PFT, LOGIT, RAW, MONTHS, LOG, CLOGLOG = "pft", "logit", "raw", "months", "log", "cloglog"


def _identity(b, n=None):
    return np.asarray(b, dtype=float)


def _ilogit(b, n=None):
    return transforms.ilogit(b)


def _exp(b, n=None):
    return np.exp(np.asarray(b, dtype=float))


def _icloglog(b, n=None):
    return effects.icloglog(b)


BACK = {PFT: transforms.ipft_hm, LOGIT: _ilogit, RAW: _identity, MONTHS: _identity, LOG: _exp,
        CLOGLOG: _icloglog}


@dataclass(frozen=True)
class Method:
    """One pooling method.

    ``estimator`` is the tau^2 estimator of an inverse-variance fit (``EE`` common effect, ``DL``,
    ``REML``), ``ML`` for the binomial-normal GLMM, or ``MM`` / ``WM`` for the (weighted) median of
    the reported medians; ``test`` is ``z`` or ``knha`` (Hartung-Knapp-Sidik-Jonkman).
    """

    id: str
    kind: str
    scale: str
    estimator: str
    test: str
    label: str

    def back(self, b, n=None):
        """The analysis-scale value(s) ``b`` on the reporting scale."""
        return BACK[self.scale](b, n)

    @property
    def increasing(self):
        """Whether the back-transform preserves order (the complementary log-log reverses it)."""
        return self.scale != CLOGLOG

    @property
    def inverse_variance(self):
        """Whether the method is a ``yi, vi`` fit by :func:`singlearm.fit.rma`."""
        return self.estimator in ("EE", "DL", "REML", "PM")


REGISTRY = {m.id: m for m in [
    Method("PFT-DL", PROPORTION, PFT, "DL", "z", "Freeman-Tukey, DerSimonian-Laird"),
    Method("PFT-REML", PROPORTION, PFT, "REML", "z", "Freeman-Tukey, REML"),
    Method("PLO-DL", PROPORTION, LOGIT, "DL", "z", "Logit, DerSimonian-Laird"),
    Method("PLO-REML", PROPORTION, LOGIT, "REML", "z", "Logit, REML"),
    Method("PFT-DL-HKSJ", PROPORTION, PFT, "DL", "knha", "Freeman-Tukey, DerSimonian-Laird, Hartung-Knapp"),
    Method("PFT-REML-HKSJ", PROPORTION, PFT, "REML", "knha", "Freeman-Tukey, REML, Hartung-Knapp"),
    Method("PLO-REML-HKSJ", PROPORTION, LOGIT, "REML", "knha", "Logit, REML, Hartung-Knapp"),
    Method("GLMM-ML", PROPORTION, LOGIT, "ML", "z", "Binomial-normal GLMM (ML)"),
    Method("COMMON-PFT", PROPORTION, PFT, "EE", "z", "Freeman-Tukey, common effect"),
    Method("SURV-DL", SURVIVAL_RATE, CLOGLOG, "DL", "z", "Complementary log-log, DerSimonian-Laird"),
    Method("SURV-REML", SURVIVAL_RATE, CLOGLOG, "REML", "z", "Complementary log-log, REML"),
    Method("SURV-REML-HKSJ", SURVIVAL_RATE, CLOGLOG, "REML", "knha", "Complementary log-log, REML, Hartung-Knapp"),
    Method("MEDIAN-DL", MEDIAN, MONTHS, "DL", "z", "Months, DerSimonian-Laird"),
    Method("LOGMEDIAN-DL", MEDIAN, LOG, "DL", "z", "Log months, DerSimonian-Laird"),
    Method("LOGMEDIAN-REML", MEDIAN, LOG, "REML", "z", "Log months, REML"),
    Method("MEDIAN-MM", MEDIAN, MONTHS, "MM", "z", "Median of the reported medians"),
    Method("MEDIAN-WM", MEDIAN, MONTHS, "WM", "z", "Median of the reported medians weighted by n"),
]}

# Defaults for a review whose config names no primary method (the sarcoma config reproduces the
# review instead: PFT-DL and MEDIAN-DL).
DEFAULT_PRIMARY = {PROPORTION: "PFT-DL", SURVIVAL_RATE: "SURV-DL", MEDIAN: "LOGMEDIAN-DL"}


def get(method_id):
    """The :class:`Method` of an id; a clear error for an unknown one."""
    try:
        return REGISTRY[method_id]
    except KeyError:
        raise ValueError(f"unknown method {method_id!r}; expected one of {', '.join(REGISTRY)}") from None


def of_kind(kind):
    """Method ids that pool an outcome kind, in reporting order."""
    return [m.id for m in REGISTRY.values() if m.kind == kind]
