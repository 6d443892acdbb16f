"""SRDA benchmark suite: data stage, SR methods, evaluation and tables.

Importing the package is cheap (no torch): the Snakefile imports ``srda.config``.
"""

__version__ = "0.1.0"
