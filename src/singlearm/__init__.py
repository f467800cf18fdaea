"""singlearm: meta-analysis of single-arm clinical studies.

The package mirrors the method: ``sheets`` reads and validates the review's CSV sheets,
``cleaning`` turns the extraction sheet into analysis rows, ``effects`` turns counts or
medians into effect sizes ``yi, vi``, ``fit`` pools them, ``transforms`` back-transforms
only when reporting, and ``provenance`` records where every output came from.
"""

__version__ = "0.1.0"
