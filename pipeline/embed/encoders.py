"""Encoders: texts in, L2-normalised float32 vectors out, behind one small protocol.

:class:`TorchEncoder` runs sentence-transformers; :class:`~pipeline.embed.onnx.OnnxEncoder` runs
the same model exported to ONNX. :func:`open_encoder` picks one by backend name; ``auto`` takes
the ONNX export when it gives torch's vectors (checked once per export) and torch otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

import numpy as np

from pipeline.embed.model import ModelSpec, model_key, verify_weights

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = [
    "AUTO",
    "BACKENDS",
    "ONNX",
    "ONNX_INT8",
    "TORCH",
    "Encoder",
    "TorchEncoder",
    "embed_texts",
    "export_dir",
    "load_model",
    "open_encoder",
    "resolve_backend",
]

log = logging.getLogger(__name__)

AUTO: Final = "auto"
TORCH: Final = "torch"
ONNX: Final = "onnx"
ONNX_INT8: Final = "onnx-int8"
BACKENDS: Final = (AUTO, TORCH, ONNX, ONNX_INT8)


class Encoder(Protocol):
    """What the pipeline needs of an embedding backend."""

    backend: str
    """The backend actually running: ``torch``, ``onnx`` or ``onnx-int8`` (never ``auto``)."""
    dimension: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 vectors, shape ``(len(texts), dimension)``."""
        ...


def load_model(spec: ModelSpec, device: str = "cpu", num_threads: int | None = None) -> Any:
    """Verify and load a sentence-transformers model from its local folder, never the network.

    Args:
        spec: From :func:`~pipeline.embed.model.resolve_model`.
        device: Torch device.
        num_threads: Torch intra-op threads; ``None`` keeps torch's default (one per core).
    """
    verify_weights(spec)
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


def embed_texts(
    model: SentenceTransformer, texts: Sequence[str], batch_size: int = 64
) -> np.ndarray:
    """Embed texts into L2-normalised float32 vectors with a sentence-transformers model.

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


class TorchEncoder:
    """sentence-transformers on torch, loaded when constructed.

    Args:
        spec: The model.
        device: Torch device.
        num_threads: Torch intra-op threads; ``None`` = one per core.
        batch_size: Texts per forward pass.
    """

    backend = TORCH

    def __init__(
        self,
        spec: ModelSpec,
        device: str = "cpu",
        num_threads: int | None = None,
        batch_size: int = 64,
    ) -> None:
        """Verify and load the model."""
        self.model = load_model(spec, device, num_threads)
        self.batch_size = batch_size
        self.dimension = int(self.model.get_embedding_dimension())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 vectors, shape ``(len(texts), dimension)``."""
        return embed_texts(self.model, texts, self.batch_size)


def resolve_backend(
    spec: ModelSpec, backend: str, onnx_dir: str | Path, *, device: str = "cpu"
) -> str:
    """The backend that will run: ``backend`` itself, or for ``auto`` onnx or torch.

    ``auto`` is ONNX fp32 when :func:`~pipeline.embed.onnx.verified_export` accepts the export
    (made on first use, checked against torch once, then by its hash), and torch otherwise,
    with the reason logged.

    Raises:
        ValueError: On an unknown backend.
    """
    from pipeline.embed.onnx import ExportRefused, verified_export

    if backend not in BACKENDS:
        raise ValueError(f"unknown embedding backend {backend!r}; expected one of {BACKENDS}")
    if backend != AUTO:
        return backend
    try:
        verified_export(spec, export_dir(spec, onnx_dir, ONNX), device=device)
    except ExportRefused as err:
        log.warning("embedding with torch: %s", err)
        return TORCH
    except OSError as err:  # the export folder cannot be written (read-only, full disk)
        log.warning("embedding with torch: the ONNX export cannot be kept in %s: %s", onnx_dir, err)
        return TORCH
    return ONNX


def open_encoder(
    spec: ModelSpec,
    backend: str,
    onnx_dir: str | Path,
    *,
    device: str = "cpu",
    num_threads: int | None = None,
    batch_size: int = 64,
) -> Encoder:
    """Load the encoder of ``backend`` (``auto`` is resolved first, see :func:`resolve_backend`).

    Args:
        spec: The model.
        backend: One of :data:`BACKENDS`; ``onnx`` and ``onnx-int8`` are exported on first use.
        onnx_dir: Where exports are kept, one subfolder per model, weights and backend.
        device: Torch device (ONNX runs on the CPU).
        num_threads: Threads for torch or ONNX Runtime; ``None`` = one per core.
        batch_size: Texts per forward pass.
    """
    from pipeline.embed.onnx import OnnxEncoder, export_model

    backend = resolve_backend(spec, backend, onnx_dir, device=device)
    if backend == TORCH:
        return TorchEncoder(spec, device, num_threads, batch_size)
    path = export_model(spec, export_dir(spec, onnx_dir, backend), backend)
    return OnnxEncoder(path, spec.path, batch_size, num_threads, backend=backend)


def export_dir(spec: ModelSpec, onnx_dir: str | Path, backend: str) -> Path:
    """The folder of one model's export for one backend (keyed by the weights' hash)."""
    return Path(onnx_dir) / f"{model_key(spec, verify_weights(spec))}-{backend}"
