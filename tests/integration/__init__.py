"""Integration tests: the real model, real Dagster materializations, Parquet read back."""
