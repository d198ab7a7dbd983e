"""Dagster resources: the embedding model and the pipeline settings."""

from __future__ import annotations

import os
from typing import Any

import dagster as dg
import numpy as np
from pydantic import Field, PrivateAttr

from pipeline.embed import DEFAULT_MODEL, ModelSpec, embed_texts, load_model, resolve_model
from pipeline.ingest import IngestConfig
from pipeline.themes import ThemeCatalog, ThemeConfig, load_catalog


class EmbedderResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Sentence-transformers embedder; the model is verified and loaded once per run."""

    model: str = Field(
        default=DEFAULT_MODEL,
        description="Packaged default, or a local sentence-transformers model directory.",
    )
    expected_sha256: str | None = Field(
        default=None, description="Pin for the weights file (the packaged model is always pinned)."
    )
    batch_size: int = Field(default=64, ge=1, le=4096)
    device: str = "cpu"
    num_threads: int | None = Field(
        default=None, ge=1, description="Torch threads; None = all cores."
    )

    _spec: ModelSpec | None = PrivateAttr(default=None)
    _model: Any = PrivateAttr(default=None)

    @property
    def spec(self) -> ModelSpec:
        """The resolved model (resolving checks the model is installed, without loading it)."""
        if self._spec is None:
            self._spec = resolve_model(self.model, self.expected_sha256)
        return self._spec

    @property
    def model_name(self) -> str:
        """Name written to `claim_embeddings.model`."""
        return self.spec.name

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed texts as L2-normalised float32 vectors of shape ``(len(texts), dim)``."""
        return embed_texts(self._loaded(), texts, batch_size=self.batch_size)

    @property
    def dimension(self) -> int:
        """Embedding dimension of the loaded model."""
        return int(self._loaded().get_embedding_dimension())

    def _loaded(self) -> Any:
        # Loaded lazily so that steps which never embed never pay for importing torch.
        if self._model is None:
            self._model = load_model(self.spec, self.device, self.num_threads)
        return self._model


class PipelineSettings(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Where raw articles live and how they are ingested, split and themed."""

    raw_dir: str = Field(description="Folder of raw articles (DOCTHEMES_RAW_DIR).")
    theme_catalog: str | None = Field(
        default=None, description="Theme catalog YAML (DOCTHEMES_THEME_CATALOG); packaged default."
    )
    extensions: list[str] = Field(default_factory=lambda: [".txt"])
    max_file_bytes: int = Field(default=5_000_000, gt=0)
    legacy_encodings: list[str] = Field(default_factory=lambda: ["cp1252", "latin_1"])
    near_duplicate_threshold: float = Field(default=0.9, gt=0, le=1)
    max_sentence_chars: int = Field(default=1000, ge=50)
    themes: dict[str, Any] = Field(
        default_factory=dict, description="Overrides of ThemeConfig fields (docs/themes.md)."
    )

    def ingest_config(self) -> IngestConfig:
        """Ingestion settings as the pure pipeline takes them."""
        return IngestConfig(
            extensions=tuple(self.extensions),
            max_bytes=self.max_file_bytes,
            legacy_encodings=tuple(self.legacy_encodings),
            near_duplicate_threshold=self.near_duplicate_threshold,
        )

    def catalog(self) -> ThemeCatalog:
        """The validated theme catalog."""
        return load_catalog(self.theme_catalog)

    def theme_config(self) -> ThemeConfig:
        """Validated theme settings (unknown keys and out-of-range values raise)."""
        return ThemeConfig.model_validate(self.themes)


def settings_from_env() -> PipelineSettings:
    """Settings from DOCTHEMES_* environment variables, with documented defaults."""
    return PipelineSettings(
        raw_dir=os.environ.get("DOCTHEMES_RAW_DIR") or "data/raw",
        theme_catalog=os.environ.get("DOCTHEMES_THEME_CATALOG") or None,
    )


def embedder_from_env() -> EmbedderResource:
    """Embedder from DOCTHEMES_EMBEDDING_MODEL / DOCTHEMES_MODEL_SHA256 (packaged default)."""
    return EmbedderResource(
        model=os.environ.get("DOCTHEMES_EMBEDDING_MODEL") or DEFAULT_MODEL,
        expected_sha256=os.environ.get("DOCTHEMES_MODEL_SHA256") or None,
    )
