"""Benchmark scripts: run with `.venv/bin/python -m benchmarks.<name>`; they print figures."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # models come from local folders only
os.environ["TRANSFORMERS_OFFLINE"] = "1"
