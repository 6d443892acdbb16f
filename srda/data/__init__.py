"""Data stage: embedded cohort, ingest of real data, slicing, splitting and degradation."""
