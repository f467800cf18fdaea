"""Bayesian random-effects meta-analysis: exact posteriors beside per-fit PyMC sampling.

Modules: :mod:`~singlearm.bayes.priors` (priors, citations, back-transforms), :mod:`~singlearm.bayes.exact`
(posteriors by quadrature), :mod:`~singlearm.bayes.summaries` (what is reported of a posterior),
:mod:`~singlearm.bayes.stage` (every fit's exact posterior and prior sensitivity) and
:mod:`~singlearm.bayes.sampling` (per-fit PyMC sampling certified against the exact posterior).
"""
