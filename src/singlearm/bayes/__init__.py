"""Bayesian random-effects meta-analysis: exact posteriors beside per-fit PyMC sampling.

Modules: :mod:`~singlearm.bayes.priors` (priors, citations, back-transforms), :mod:`~singlearm.bayes.exact`
(posteriors by quadrature), :mod:`~singlearm.bayes.summaries` (what is reported of a posterior).
"""

from .joint import *  # noqa: F401,F403  (the joint PyMC model, until per-fit sampling replaces it)
from .joint import __all__  # noqa: F401
