"""Dagster resources: the embedding model, the pipeline settings and the run lock."""

import os
import time
from pathlib import Path
from typing import Any, Literal

import dagster as dg
import numpy as np
from pydantic import Field, PrivateAttr, model_validator

from pipeline.embed import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_DEVICE,
    DEFAULT_MODEL,
    ONNX_INT8,
    TORCH,
    Encoder,
    ModelSpec,
    model_key,
    open_encoder,
    resolve_backend,
    resolve_model,
    verify_weights,
)
from pipeline.embed.workers import EncoderRecipe
from pipeline.ingest import IngestConfig
from pipeline.locations import LocalDir, Location, is_remote, normalise, work_dir
from pipeline.matching import MatchConfig
from pipeline.objectstore.lease import DEFAULT_TTL_S
from pipeline.objectstore.mirror import MirrorReport, mirror_objects
from pipeline.objectstore.tables import open_store
from pipeline.snapshots import DEFAULT_KEEP_SNAPSHOTS, TableStore
from pipeline.storage import remove_stale_temporaries
from pipeline.themes import ThemeCatalog, ThemeConfig, load_catalog
from pipeline.themes.feedback import labels_sha256

DEFAULT_RAW_DIR = "data/raw"
DEFAULT_PROCESSED_DIR = "data/processed"


class EmbedderResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The embedding model, verified and loaded once per run, when first needed."""

    model: str = Field(
        default=DEFAULT_MODEL,
        description="Packaged default, or a local sentence-transformers model directory.",
    )
    expected_sha256: str | None = Field(
        default=None, description="Pin for the weights file (the packaged model is always pinned)."
    )
    batch_size: int = Field(default=DEFAULT_BATCH_SIZE, ge=1, le=4096)
    device: str = DEFAULT_DEVICE
    num_threads: int | None = Field(
        default=None, ge=1, description="Torch or ONNX Runtime threads; None = all cores."
    )
    backend: Literal["auto", "torch", "onnx", "onnx-int8"] = Field(
        default="auto",
        description=(
            "auto (default): the model exported to ONNX when its vectors match torch's "
            "(checked once per export, then by its hash), else torch. torch: "
            "sentence-transformers. onnx: the ONNX export without the check. onnx-int8: "
            "quantised, faster, cosine ~0.99 to torch (docs/performance.md)."
        ),
    )
    onnx_dir: LocalDir = Field(
        default=f"{DEFAULT_PROCESSED_DIR}/_cache/onnx",
        description="Where the exported ONNX model is kept (one subfolder per model and weights).",
    )

    _spec: ModelSpec | None = PrivateAttr(default=None)
    _backend: str | None = PrivateAttr(default=None)
    _encoder: Encoder | None = PrivateAttr(default=None)
    _load_seconds: float = PrivateAttr(default=0.0)

    @property
    def spec(self) -> ModelSpec:
        """The resolved model (resolving checks the model is installed, without loading it)."""
        if self._spec is None:
            self._spec = resolve_model(self.model, self.expected_sha256)
        return self._spec

    @property
    def running_backend(self) -> str:
        """The backend this run embeds with: ``backend``, or for auto onnx or torch."""
        if self._backend is None:
            self._backend = resolve_backend(
                self.spec, self.backend, self.onnx_dir, device=self.device
            )
        return self._backend

    @property
    def model_name(self) -> str:
        """Name written to `claim_embeddings.model`: the model, and int8 when quantised.

        The fp32 ONNX export gives the model's own vectors, so it keeps the model's name (the
        `runs` manifest records the backend); int8 vectors differ (cosine ~0.99), and say so.
        """
        backend = self.running_backend
        return f"{self.spec.name} [{backend}]" if backend == ONNX_INT8 else self.spec.name

    @property
    def weights_sha256(self) -> str:
        """Verified SHA-256 of the model weights."""
        return verify_weights(self.spec)

    @property
    def cache_key(self) -> str:
        """Embedding-cache directory: model name, weights hash and (if not torch) backend.

        Another backend's vectors differ (int8: cosine ~0.99), so backends never share a cache.
        """
        key = model_key(self.spec, self.weights_sha256)
        backend = self.running_backend
        return key if backend == TORCH else f"{key}-{backend}"

    def recipe(self, num_threads: int | None) -> EncoderRecipe:
        """What a cluster's workers need to open this encoder (the backend resolved here)."""
        return EncoderRecipe(
            model=self.model,
            expected_sha256=self.expected_sha256,
            backend=self.running_backend,
            onnx_dir=os.path.abspath(self.onnx_dir),
            device=self.device,
            num_threads=num_threads,
            batch_size=self.batch_size,
        )

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed texts as L2-normalised float32 vectors of shape ``(len(texts), dim)``."""
        return self._loaded().encode(texts)

    @property
    def dimension(self) -> int:
        """Embedding dimension of the loaded model."""
        return self._loaded().dimension

    @property
    def load_seconds(self) -> float:
        """Time this run spent importing and loading the model (0 if it was not needed)."""
        return self._load_seconds

    def _loaded(self) -> Encoder:
        # Loaded lazily so that a run with nothing new to embed never loads a model.
        if self._encoder is None:
            start = time.perf_counter()
            self._encoder = open_encoder(
                self.spec,
                self.running_backend,
                self.onnx_dir,
                device=self.device,
                num_threads=self.num_threads,
                batch_size=self.batch_size,
            )
            self._load_seconds = time.perf_counter() - start
        return self._encoder


class MatchingSettings(MatchConfig, dg.Config):
    """Claim-matching settings (docs/matching.md); the launchpad shows every field."""


class ThemeSettings(ThemeConfig, dg.Config):
    """Theme assignment, discovery and description settings (docs/themes.md); all shown."""


class PipelineSettings(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Where raw articles and tables live, and how articles are ingested, split and themed.

    Validated when the run starts, before any work: a wrong path, an unknown theme setting or a
    negative threshold fails with one clear message.
    """

    raw_dir: Location = Field(
        default=DEFAULT_RAW_DIR,
        description="Folder of raw articles, or an s3:// URL (DOCTHEMES_RAW_DIR).",
    )
    processed_dir: Location = Field(
        default=DEFAULT_PROCESSED_DIR,
        description="Output dir, or an s3:// URL (DOCTHEMES_PROCESSED_DIR).",
    )
    theme_catalog: str | None = Field(
        default=None, description="Theme catalog YAML (DOCTHEMES_THEME_CATALOG); packaged default."
    )
    theme_labels: str | None = Field(
        default=None,
        description=(
            "Analysts' labels CSV (DOCTHEMES_THEME_LABELS): claim_id or text, theme_id or "
            "not:<theme_id>; used as examples by the next run (docs/themes.md)."
        ),
    )
    extensions: list[str] = Field(default_factory=lambda: [".txt"])
    max_file_bytes: int = Field(default=5_000_000, gt=0)
    legacy_encodings: list[str] = Field(default_factory=lambda: ["cp1252", "latin_1"])
    near_duplicate_threshold: float = Field(default=0.9, gt=0, le=1)
    max_sentence_chars: int = Field(default=1000, ge=50)
    embed_chunk_size: int = Field(default=2048, ge=1, description="Claims embedded per checkpoint.")
    full_refresh: bool = Field(default=False, description="Ignore previous tables and caches.")
    keep_snapshots: int = Field(
        default=DEFAULT_KEEP_SNAPSHOTS,
        ge=1,
        description="Published snapshots kept in the output dir, for `docthemes rollback`.",
    )
    max_corpus_shrink: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description=(
            "Refuse to publish when the documents drop by more than this fraction since the "
            "last published run (0 documents always refuses unless this is 1.0)."
        ),
    )
    themes: ThemeSettings = Field(
        default_factory=ThemeSettings,
        description="How claims get named themes and how new themes are found (docs/themes.md).",
    )
    matching: MatchingSettings = Field(
        default_factory=MatchingSettings,
        description="How claims are matched across articles (docs/matching.md).",
    )

    @model_validator(mode="after")
    def _validate_nested(self) -> "PipelineSettings":
        self.ingest_config()
        if self.theme_catalog is not None and not os.path.isfile(self.theme_catalog):
            raise ValueError(f"theme_catalog {self.theme_catalog!r} is not a file")
        if self.theme_labels is not None and not os.path.isfile(self.theme_labels):
            raise ValueError(f"theme_labels {self.theme_labels!r} is not a file")
        _refuse_overlap(self.raw_dir, self.processed_dir)
        return self

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Fail the run at its start if the theme catalog is invalid.

        A missing raw dir fails the first step (`corpus`) with its own message, and makes the
        sensor skip rather than error.
        """
        self.catalog()

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

    def theme_labels_sha256(self) -> str | None:
        """SHA-256 of the labels file's bytes, or None without one."""
        if self.theme_labels is None:
            return None
        return labels_sha256(self.theme_labels)

    def match_config(self) -> MatchConfig:
        """Validated matching settings, as the pure pipeline takes them."""
        return MatchConfig.model_validate(self.matching.model_dump())

    def theme_config(self) -> ThemeConfig:
        """Validated theme settings."""
        return ThemeConfig.model_validate(self.themes.model_dump())

    @property
    def store(self) -> TableStore:
        """Published and staged tables (for an s3:// output, its local working copy)."""
        return open_store(self.processed_dir)

    def local_raw_dir(self) -> tuple[str, MirrorReport | None]:
        """The raw dir to read: itself, or an s3:// raw dir mirrored into its local copy.

        Only called by the corpus step, which holds the run lock (the mirror is not shared).
        """
        if not is_remote(self.raw_dir):
            return self.raw_dir, None
        local = work_dir(self.raw_dir)
        return str(local), mirror_objects(self.raw_dir, local)


class RunLockResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Holds the output dir's lock for the whole run, so two runs never write at once."""

    processed_dir: Location = Field(default=DEFAULT_PROCESSED_DIR)
    timeout_s: float = Field(default=60.0, ge=0, description="How long a second run waits.")
    lease_ttl_s: float = Field(
        default=DEFAULT_TTL_S,
        gt=0,
        description=(
            "s3:// output only: how long the lock object outlives a run that died without "
            "releasing it (renewed every third of it while the run lives)."
        ),
    )

    _held: Any = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Take the lock, then clear staging left by runs that were killed.

        For an s3:// output the local copy is then brought to the published snapshot.
        """
        store = open_store(self.processed_dir, self.lease_ttl_s)
        self._held = store.lock(self.timeout_s)
        self._held.__enter__()
        try:
            self._prepare(context, store)
        except BaseException:
            # Dagster does not tear down a resource whose setup failed: release the lock here
            # (an s3:// lease would otherwise block the next run until it expires).
            self.teardown_after_execution(context)
            raise

    def _prepare(self, context: dg.InitResourceContext, store: TableStore) -> None:
        """Under the lock: finish killed publications, sync, resume or clear staging."""
        finished = store.recover()
        if finished and context.log is not None:
            context.log.warning(f"finished the publication of killed runs: {', '.join(finished)}")
        synced = store.sync()
        if synced and context.log is not None:
            context.log.info(synced)
        run_id = context.run.run_id if context.run else None
        if context.run is not None and context.run.parent_run_id is not None:
            self._resume(context, store, context.run.parent_run_id, context.run.run_id)
        removed = store.discard_staging(keep=run_id)
        removed += [p.name for p in remove_stale_temporaries(store.base_dir)]
        if removed and context.log is not None:
            context.log.warning(f"removed leftovers of killed runs: {', '.join(removed)}")

    def _resume(
        self, context: dg.InitResourceContext, store: TableStore, parent: str, run_id: str
    ) -> None:
        """A re-execution continues from the tables its parent run staged, or fails clearly.

        The steps it does not re-run would otherwise read the published tables of another
        night, and publish them mixed with tonight's.
        """
        names = store.inherit_staging(parent, run_id)
        if names is not None:
            if context.log is not None:
                context.log.info(f"resuming run {parent}: its staged {', '.join(names)}")
            return
        parent_run = context.instance.get_run_by_id(parent) if context.instance else None
        if parent_run is not None and parent_run.status == dg.DagsterRunStatus.SUCCESS:
            return  # it published: its tables are the published ones
        raise dg.Failure(
            f"cannot re-execute run {parent}: the tables it staged are gone (another run has "
            "started since, or its output dir changed), so the steps this re-execution skips "
            "would read another night's tables. Start a new run instead (docthemes run, or "
            "materialize all assets)."
        )

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        """Release the lock."""
        if self._held is not None:
            self._held.__exit__(None, None, None)
            self._held = None


def _refuse_overlap(raw_dir: str, processed_dir: str) -> None:
    """Raw and output dirs must not contain each other.

    An output dir inside the raw dir would read its own tables back as articles every night
    (and wake the sensor after every publish); a raw dir inside the output dir would sit among
    the staging and cache folders the pipeline writes and deletes.
    """
    if is_remote(raw_dir) or is_remote(processed_dir):
        raw, out = Path(f"/{raw_dir}"), Path(f"/{processed_dir}")  # URLs compared as paths
    else:
        raw, out = Path(os.path.realpath(raw_dir)), Path(os.path.realpath(processed_dir))
    if raw == out or out.is_relative_to(raw) or raw.is_relative_to(out):
        raise ValueError(
            f"raw_dir {raw_dir!r} and processed_dir {processed_dir!r} overlap: put the output "
            "dir outside the raw dir (DOCTHEMES_RAW_DIR, DOCTHEMES_PROCESSED_DIR)"
        )


def settings_from_env() -> PipelineSettings:
    """Settings from DOCTHEMES_* environment variables, with documented defaults."""
    return PipelineSettings(
        raw_dir=os.environ.get("DOCTHEMES_RAW_DIR") or DEFAULT_RAW_DIR,
        processed_dir=processed_dir_from_env(),
        theme_catalog=os.environ.get("DOCTHEMES_THEME_CATALOG") or None,
        theme_labels=os.environ.get("DOCTHEMES_THEME_LABELS") or None,
    )


def processed_dir_from_env() -> str:
    """DOCTHEMES_PROCESSED_DIR (a path, file:// or s3:// URL) or the default, normalised."""
    return normalise(os.environ.get("DOCTHEMES_PROCESSED_DIR") or DEFAULT_PROCESSED_DIR)


def run_lock_from_env(processed_dir: str) -> RunLockResource:
    """The run lock of ``processed_dir``; DOCTHEMES_LEASE_TTL_S for an s3:// output's lease."""
    ttl = os.environ.get("DOCTHEMES_LEASE_TTL_S")
    return RunLockResource(processed_dir=processed_dir, lease_ttl_s=float(ttl or DEFAULT_TTL_S))


def embedder_from_env(processed_dir: str | None = None) -> EmbedderResource:
    """Embedder from DOCTHEMES_EMBEDDING_MODEL / _MODEL_SHA256 / _EMBEDDING_BACKEND / _ONNX_DIR."""
    out = processed_dir or processed_dir_from_env()
    return EmbedderResource(
        model=os.environ.get("DOCTHEMES_EMBEDDING_MODEL") or DEFAULT_MODEL,
        expected_sha256=os.environ.get("DOCTHEMES_MODEL_SHA256") or None,
        backend=os.environ.get("DOCTHEMES_EMBEDDING_BACKEND") or "auto",  # type: ignore[arg-type]
        onnx_dir=onnx_dir_from_env(out),
    )


def onnx_dir_from_env(processed_dir: str) -> str:
    """DOCTHEMES_ONNX_DIR, or the exports folder of ``processed_dir`` (its local copy's)."""
    local = open_store(processed_dir).base_dir
    return os.environ.get("DOCTHEMES_ONNX_DIR") or f"{local}/_cache/onnx"
