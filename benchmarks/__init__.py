"""Benchmark scripts: run with `.venv/bin/python -m benchmarks.<name>`; they print figures."""
