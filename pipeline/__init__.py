"""docthemes pure pipeline: text and ML logic with no Dagster imports.

One module per stage: `ingest`, `segment`, `claims`, `embed`, `themes`; plus `schemas` (the
table contract), `storage` (atomic Parquet) and `ids` (content-derived identifiers).
"""
