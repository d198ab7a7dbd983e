"""Unit tests: no model, no Dagster run (make test-fast runs these and the other fast ones)."""
