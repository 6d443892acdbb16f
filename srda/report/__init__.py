"""Tables, figures and report. This module itself imports nothing heavy (the Snakefile uses it)."""

#: Table II: the SRDA ablations in the paper's order, with the paper's row names.
ABLATIONS = {
    "srda_base": "SR",
    "srda_dconv": "SR+Dconv",
    "srda_dconv_diag": "SR+Dconv+Diag",
    "srda": "SR+Dconv+Diag+Atten",
}
