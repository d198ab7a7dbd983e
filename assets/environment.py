"""The embedder's DOCTHEMES_* environment variables, read without importing Dagster.

The CLI reads them before Dagster is imported (to start loading the model early); the embedder
resource reads the same ones, so both always ask for the same model.
"""

import os

from pipeline.embed import DEFAULT_MODEL


def embedder_env() -> dict[str, str | None]:
    """Model, weights pin and backend from DOCTHEMES_EMBEDDING_MODEL / _MODEL_SHA256 / _BACKEND."""
    return {
        "model": os.environ.get("DOCTHEMES_EMBEDDING_MODEL") or DEFAULT_MODEL,
        "expected_sha256": os.environ.get("DOCTHEMES_MODEL_SHA256") or None,
        "backend": os.environ.get("DOCTHEMES_EMBEDDING_BACKEND") or "torch",
    }
