"""Sentence embeddings with a verified, offline model, cached by text.

Modules: :mod:`~pipeline.embed.model` resolves and verifies the model,
:mod:`~pipeline.embed.encoders` holds the :class:`Encoder` protocol and the torch encoder,
:mod:`~pipeline.embed.onnx` the ONNX export and encoder, :mod:`~pipeline.embed.cache` the
embedding cache, and :mod:`~pipeline.embed.claims` writes the `claim_embeddings` table.
"""

from pipeline.embed.cache import CachedEmbeddings, EmbeddingCache, embed_with_cache, text_key
from pipeline.embed.claims import (
    EmbeddedClaims,
    align_embeddings,
    embed_claims,
    embeddings_table,
)
from pipeline.embed.encoders import (
    AUTO,
    BACKENDS,
    ONNX,
    ONNX_INT8,
    TORCH,
    Encoder,
    TorchEncoder,
    embed_texts,
    export_dir,
    load_model,
    open_encoder,
    resolve_backend,
)
from pipeline.embed.model import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_DEVICE,
    DEFAULT_MODEL,
    PACKAGED_MODEL_SHA256,
    ModelError,
    ModelSpec,
    file_sha256,
    model_key,
    resolve_model,
    verify_weights,
)

__all__ = [
    "AUTO",
    "BACKENDS",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_DEVICE",
    "DEFAULT_MODEL",
    "ONNX",
    "ONNX_INT8",
    "PACKAGED_MODEL_SHA256",
    "TORCH",
    "CachedEmbeddings",
    "EmbeddedClaims",
    "EmbeddingCache",
    "Encoder",
    "ModelError",
    "ModelSpec",
    "TorchEncoder",
    "align_embeddings",
    "embed_claims",
    "embed_texts",
    "embed_with_cache",
    "embeddings_table",
    "export_dir",
    "file_sha256",
    "load_model",
    "model_key",
    "open_encoder",
    "resolve_backend",
    "resolve_model",
    "text_key",
    "verify_weights",
]
